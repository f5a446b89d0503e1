import { execFile, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxEntries, writeImage } from '../helpers/images.ts';
import { skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { binPath, runToolAsync, tempDir, type RunResult } from '../helpers/run.ts';
import { issueCert, makeCa } from '../helpers/tls.ts';
import { startTokenServer, type TokenServer } from '../pull/token-server.ts';
import { Berth, until } from './fixtures.ts';

type TempDir = ReturnType<typeof tempDir>;

// Pins `berth login`/`logout` against a real docker-registry (htpasswd Basic,
// and Bearer tokens from a token server): a rejected password writes nothing;
// a login lands in podman's auth file (0600, dir 0700) that berth pull/push,
// skopeo and podman all read, and podman's login is read by berth pull;
// logout removes one entry or all. And `berth commit`: a container's added,
// changed and deleted files become one layer (the deletion a whiteout) on its
// image, with --change, author, comment and history in the config, readable
// by skopeo from the OCI layout at ROOT/images.
const user = 'alice';
const password = 's3cret:with:colon';
const execFileAsync = promisify(execFile);

describe('berth login / logout', () => {
  let reg: TestRegistry;
  // Made in beforeAll, so a run filtered with -t that skips this suite makes nothing.
  let dir: TempDir;
  let b: Berth;
  let b2: Berth;
  let ref = '';

  // Each case gets a HOME and XDG_RUNTIME_DIR of its own, so the machine's real auth files never count.
  function isolated(name: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const home = join(dir.path, name);
    mkdirSync(join(home, 'run'), { recursive: true });
    return { HOME: home, XDG_RUNTIME_DIR: join(home, 'run'), XDG_CONFIG_HOME: join(home, 'config'), DOCKER_CONFIG: undefined, REGISTRY_AUTH_FILE: undefined, ...extra };
  }
  const defaultFile = (env: NodeJS.ProcessEnv) => join(env.XDG_RUNTIME_DIR!, 'containers', 'auth.json');
  const berth = (env: NodeJS.ProcessEnv, args: string[], input?: string): Promise<RunResult> =>
    runToolAsync('berth', b.args(args), { env, input, timeoutMs: 90_000 });

  beforeAll(async () => {
    dir = tempDir('berth-login-');
    b = new Berth();
    b2 = new Berth();
    reg = await startRegistry({ basicAuth: { user, password } });
    await writeImage(join(dir.path, 'layout'), 'busybox:latest', { layers: [busyboxEntries()] });
    skopeoPush(join(dir.path, 'layout'), 'busybox:latest', `${reg.host}/library/busybox:latest`, { creds: `${user}:${password}` });
    ref = `${reg.host}/library/busybox:latest`;
  });
  afterAll(async () => {
    await b?.cleanup();
    await b2?.cleanup();
    await reg?.stop();
    dir?.cleanup();
  });

  it('refuses a wrong password with podman\'s message and writes no auth file', async () => {
    const env = isolated('wrong');
    const r = await berth(env, ['login', '--tls-verify=false', '-u', user, '-p', 'nope', reg.host]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`Error: logging into "${reg.host}": invalid username/password`);
    expect(existsSync(defaultFile(env))).toBe(false);
    // An existing file is left byte for byte as it was.
    const file = join(dir.path, 'keep.json');
    const before = '{"auths":{"other.example":{"auth":"eDp5"}},"credHelpers":{}}';
    writeFileSync(file, before);
    const r2 = await berth(env, ['login', '--tls-verify=false', '--authfile', file, '-u', user, '-p', 'nope', reg.host]);
    expect(r2.code).toBe(125);
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('refuses to prompt when stdin is not a terminal and no credentials are given', async () => {
    const env = isolated('notty');
    const r = await berth(env, ['login', '--tls-verify=false', reg.host], '');
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/no username given and stdin is not a terminal/);
    const r2 = await berth(env, ['login', '--tls-verify=false', '--password-stdin', reg.host], password);
    expect(r2.stderr).toMatch(/Must provide --username with --password-stdin/);
    expect(existsSync(defaultFile(env))).toBe(false);
  });

  it('stores the login in podman\'s file (0600, dir 0700), and berth pull and push use it with no --creds', async () => {
    const env = isolated('ok');
    const before = await berth(env, ['pull', '--tls-verify=false', ref]);
    expect(before.code, 'the registry must refuse anonymous pulls, or this test proves nothing').toBe(125);
    // --password-stdin: the newline echo adds is not part of the password.
    const r = await berth(env, ['login', '--tls-verify=false', '-u', user, '--password-stdin', reg.host], `${password}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('Login Succeeded!\n');
    const file = defaultFile(env);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(env.XDG_RUNTIME_DIR!, 'containers')).mode & 0o777).toBe(0o700);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(doc.auths[reg.host]!.auth, 'base64').toString()).toBe(`${user}:${password}`);

    const pull = await berth(env, ['pull', '--tls-verify=false', ref]);
    expect(pull.code, pull.stderr).toBe(0);
    expect((await berth(env, ['images', '--format', 'json'])).stdout).toContain(ref);
    const stage = await runToolAsync('berth-pull', ['--root', join(dir.path, 'stage-root'), '--tls-verify=false', ref], { env, timeoutMs: 90_000 });
    expect(stage.code, stage.stderr).toBe(0);
    const push = await berth(env, ['push', '--tls-verify=false', ref, `${reg.host}/team/copy:1`]);
    expect(push.code, push.stderr).toBe(0);
    await execFileAsync('skopeo', ['inspect', '--tls-verify=false', '--creds', `${user}:${password}`, `docker://${reg.host}/team/copy:1`]);

    // A second login with nothing given checks the stored one, as podman does.
    const again = await berth(env, ['login', '--tls-verify=false', reg.host], '');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`Already logged in to ${reg.host}`);
  });

  it('writes a file skopeo and podman read, and reads the one podman login writes', async () => {
    const file = join(dir.path, 'shared', 'auth.json');
    const env = isolated('shared');
    const r = await berth(env, ['login', '--tls-verify=false', '--authfile', file, '-u', user, '-p', password, reg.host]);
    expect(r.code, r.stderr).toBe(0);
    const { stdout } = await execFileAsync('skopeo', ['inspect', '--tls-verify=false', '--authfile', file, `docker://${ref}`]);
    expect(JSON.parse(stdout).Layers).toHaveLength(1);
    const who = await execFileAsync('podman', ['login', '--get-login', '--authfile', file, reg.host]);
    expect(who.stdout.trim()).toBe(user);
    expect((await berth(env, ['login', '--get-login', '--authfile', file, reg.host])).stdout).toBe(`${user}\n`);

    // podman login into podman's default place for this environment; berth pull finds it there.
    const penv = isolated('podman');
    await execFileAsync('podman', ['login', '--tls-verify=false', '-u', user, '-p', password, reg.host], { env: { ...process.env, ...penv } });
    expect(existsSync(defaultFile(penv))).toBe(true);
    // A store of its own, so the pull has to ask the registry.
    const pull = await runToolAsync('berth', b2.args(['pull', '--tls-verify=false', ref]), { env: penv, timeoutMs: 90_000 });
    expect(pull.code, pull.stderr).toBe(0);
  });

  it('asks for the username and password on a terminal, without echoing the password', async () => {
    const env = isolated('tty');
    const cmd = [process.execPath, binPath('berth'), ...b.args(['login', '--tls-verify=false', reg.host])].map((a) => `'${a}'`).join(' ');
    // script(1) gives berth a pty; answers are typed only once their question is on the screen.
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, ...env } as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout.on('data', (d: Buffer) => { screen += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await until('the Username: question', () => screen.includes('Username: '), 30_000);
      child.stdin.write(`${user}\r`);
      await until('the Password: question', () => screen.includes('Password: '), 30_000);
      child.stdin.write(`${password}\r`);
      await until('berth to finish', () => screen.includes('Login Succeeded!') || /Error/.test(screen), 30_000);
      child.stdin.end();
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    expect(screen).toContain(user);
    expect(screen).not.toContain(password);
    const doc = JSON.parse(readFileSync(defaultFile(env), 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(doc.auths[reg.host]!.auth, 'base64').toString()).toBe(`${user}:${password}`);
  });

  it('logout removes just that entry; --all removes every login', async () => {
    const env = isolated('logout');
    const file = defaultFile(env);
    mkdirSync(join(env.XDG_RUNTIME_DIR!, 'containers'), { recursive: true, mode: 0o700 });
    writeFileSync(file, JSON.stringify({ auths: { 'other.example': { auth: Buffer.from('bob:pw').toString('base64') } }, credHelpers: { 'helped.example': 'pass' } }), { mode: 0o600 });
    expect((await berth(env, ['login', '--tls-verify=false', '-u', user, '-p', password, reg.host])).code).toBe(0);
    expect((await berth(env, ['login', '--tls-verify=false', '-u', user, '-p', password, `${reg.host}/library/busybox`])).code).toBe(0);
    let doc = JSON.parse(readFileSync(file, 'utf8')) as { auths: Record<string, unknown>; credHelpers?: Record<string, string> };
    expect(Object.keys(doc.auths).sort()).toEqual([reg.host, `${reg.host}/library/busybox`, 'other.example']);
    expect(doc.credHelpers).toEqual({ 'helped.example': 'pass' });

    const out = await berth(env, ['logout', reg.host]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe(`Removed login credentials for ${reg.host}\n`);
    doc = JSON.parse(readFileSync(file, 'utf8'));
    expect(Object.keys(doc.auths).sort()).toEqual([`${reg.host}/library/busybox`, 'other.example']);
    const missing = await berth(env, ['logout', reg.host]);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain(`not logged into ${reg.host}`);

    const all = await berth(env, ['logout', '--all']);
    expect(all.code, all.stderr).toBe(0);
    doc = JSON.parse(readFileSync(file, 'utf8'));
    expect(doc.auths).toEqual({});
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect((await berth(env, ['login', '--get-login', reg.host])).code).toBe(125);
  });
});

describe('berth login with a Bearer token server', () => {
  let reg: TestRegistry;
  let tokens: TokenServer;
  let dir: TempDir;
  let b: Berth;

  beforeAll(async () => {
    dir = tempDir('berth-login-token-');
    b = new Berth();
    tokens = await startTokenServer(dir.path, user, password);
    reg = await startRegistry({ tokenAuth: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.certPath } });
  });
  afterAll(async () => {
    await b?.cleanup();
    await reg?.stop();
    await tokens?.stop();
    dir?.cleanup();
  });

  it('gets a token with the credentials; a rejected one writes nothing', async () => {
    const file = join(dir.path, 'auth.json');
    // The token server runs in this process: the berth calls must not block it.
    const bad = await runToolAsync('berth', b.args(['login', '--tls-verify=false', '--authfile', file, '-u', user, '-p', 'nope', reg.host]));
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain(`logging into "${reg.host}": invalid username/password`);
    expect(existsSync(file)).toBe(false);
    tokens.requests.length = 0;
    const ok = await runToolAsync('berth', b.args(['login', '--tls-verify=false', '--authfile', file, '-u', user, '-p', password, reg.host]));
    expect(ok.code, ok.stderr).toBe(0);
    expect(tokens.requests.map((t) => t.user)).toEqual([user]);
    expect(existsSync(file)).toBe(true);
  });
});

describe('berth login over HTTPS with a private CA', () => {
  let reg: TestRegistry;
  let dir: TempDir;
  let b: Berth;
  let caDir = '';

  beforeAll(async () => {
    dir = tempDir('berth-login-tls-');
    b = new Berth();
    const ca = makeCa(dir.path);
    const server = issueCert(ca, 'registry', 'server');
    caDir = join(dir.path, 'certs');
    mkdirSync(caDir);
    copyFileSync(ca.cert, join(caDir, 'ca.crt'));
    reg = await startRegistry({ basicAuth: { user, password }, tls: { certificate: server.cert, key: server.key } });
  });
  afterAll(async () => {
    await b?.cleanup();
    await reg?.stop();
    dir?.cleanup();
  });

  it('verifies the registry with --cert-dir\'s CA, and says what to do without it', async () => {
    const file = join(dir.path, 'auth.json');
    const untrusted = await runToolAsync('berth', b.args(['login', '--authfile', file, '-u', user, '-p', password, reg.host]));
    expect(untrusted.code).toBe(125);
    expect(untrusted.stderr).toContain(`logging into "${reg.host}": GET https://${reg.host}/v2/`);
    expect(untrusted.stderr).toContain('certs.d');
    expect(existsSync(file)).toBe(false);
    const ok = await runToolAsync('berth', b.args(['login', '--cert-dir', caDir, '--authfile', file, '-u', user, '-p', password, reg.host]));
    expect(ok.code, ok.stderr).toBe(0);
    expect(existsSync(file)).toBe(true);
  });
});

describe('berth commit', () => {
  let reg: TestRegistry;
  let dir: TempDir;
  let b: Berth;
  const suffix = Math.random().toString(36).slice(2, 8);
  let ref = '';

  beforeAll(async () => {
    dir = tempDir('berth-commit-');
    b = new Berth();
    reg = await startRegistry();
    const layout = join(dir.path, 'layout');
    await writeImage(layout, 'base:latest', {
      layers: [busyboxEntries(), [
        { path: 'srv/', type: 'dir' },
        { path: 'srv/keep.txt', content: 'old\n' },
        { path: 'srv/gone.txt', content: 'bye\n' },
      ]],
      config: { Cmd: ['sh'], Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] },
    });
    ref = `${reg.host}/commit/base:latest`;
    skopeoPush(layout, 'base:latest', ref);
    b.ok('pull', '--tls-verify=false', ref);
  });
  afterAll(async () => {
    await b?.cleanup();
    await reg?.stop();
    dir?.cleanup();
  });

  const layerFiles = (image: string): string[] => {
    const stdout = execFileSync('skopeo', ['inspect', `oci:${join(b.root, 'images')}:${image}`], { encoding: 'utf8' });
    const top = (JSON.parse(stdout) as { Layers: string[] }).Layers.at(-1)!;
    return execFileSync('tar', ['-tzf', join(b.root, 'images', 'blobs', 'sha256', top.slice(7))], { encoding: 'utf8' }).split('\n').filter(Boolean);
  };

  it('turns an exited container\'s added, changed and deleted files into one layer with the --change edits', () => {
    const name = `c-${suffix}`;
    const run = b.run('run', '--name', name, '-e', 'FROM_RUN=yes', ref, 'sh', '-c', 'echo new > /srv/new.txt && echo changed > /srv/keep.txt && rm /srv/gone.txt');
    expect(run.code, run.stderr).toBe(0);
    const r = b.run('commit', '-q', '-m', 'add new.txt', '-a', 'Jane Doe <jane@example.com>',
      '-c', 'CMD ["cat", "/srv/new.txt"]', '--change', 'ENV GREETING=hello there', '-c', 'LABEL stage=committed', name, `snap-${suffix}`);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const image = `localhost/snap-${suffix}:latest`;

    // The image runs with the new CMD; the files are as the container left them.
    expect(b.ok('run', '--rm', image)).toBe('new\n');
    const seen = b.ok('run', '--rm', image, 'sh', '-c', 'cat /srv/keep.txt; ls /srv; echo "$GREETING/$FROM_RUN"');
    expect(seen).toBe('changed\nkeep.txt\nnew.txt\nhello there/yes\n');

    // One layer more than the base, with a whiteout for the deleted file and
    // none of the mount points the runtime made (the image has no /etc/hosts).
    const files = layerFiles(image);
    expect(files).toContain('srv/.wh.gone.txt');
    expect(files).toContain('srv/new.txt');
    expect(files).toContain('srv/keep.txt');
    expect(files.filter((f) => /^etc\/(hosts|hostname|resolv\.conf)$/.test(f))).toEqual([]);

    // skopeo reads it from the store's OCI layout; the config has the history entry.
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${join(b.root, 'images')}:${image}`], { encoding: 'utf8' })) as { Layers: string[]; Env: string[]; Labels: Record<string, string> };
    expect(info.Layers).toHaveLength(3);
    expect(info.Env).toContain('GREETING=hello there');
    expect(info.Labels).toMatchObject({ stage: 'committed' });
    const config = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci:${join(b.root, 'images')}:${image}`], { encoding: 'utf8' })) as {
      author?: string; rootfs: { diff_ids: string[] }; history: Array<{ author?: string; comment?: string; created_by?: string }>; config: { Cmd: string[] };
    };
    expect(config.author).toBe('Jane Doe <jane@example.com>');
    expect(config.rootfs.diff_ids).toHaveLength(3);
    expect(config.history.at(-1)).toMatchObject({ author: 'Jane Doe <jane@example.com>', comment: 'add new.txt' });
    expect(config.history.at(-1)!.created_by).toContain('rm /srv/gone.txt');

    // berth inspect shows the image under the id commit printed, with the new config.
    const inspected = JSON.parse(b.ok('inspect', image)) as Array<{ Id: string; Config: { Cmd: string[]; Env: string[] }; Author: string; Comment: string; History: unknown[] }>;
    expect(inspected[0]!.Id).toBe(id);
    expect(inspected[0]!.Config.Cmd).toEqual(['cat', '/srv/new.txt']);
    expect(inspected[0]).toMatchObject({ Author: 'Jane Doe <jane@example.com>', Comment: 'add new.txt' });
    // skopeo re-encodes `created` the way Go does (trailing zeros of the
    // fraction dropped: .120Z becomes .12Z), so compare instants, not text.
    const instants = (h: unknown[]) => h.map((e) => {
      const { created, ...rest } = e as { created?: string };
      return { ...rest, created: created === undefined ? undefined : Date.parse(created) };
    });
    expect(instants(inspected[0]!.History)).toEqual(instants(config.history));
  });

  it('keeps a directory the container replaced as opaque, so the image shows none of the old entries', () => {
    const name = `opq-${suffix}`;
    const run = b.run('run', '--name', name, ref, 'sh', '-c', 'rm -rf /srv && mkdir /srv && echo only > /srv/only.txt');
    expect(run.code, run.stderr).toBe(0);
    b.ok('commit', '-q', name, `opq-${suffix}`);
    expect(layerFiles(`localhost/opq-${suffix}:latest`)).toContain('srv/.wh..wh..opq');
    expect(b.ok('run', '--rm', `opq-${suffix}`, 'ls', '/srv')).toBe('only.txt\n');
  });

  it('commits a running container with --pause and leaves it running', async () => {
    const name = `live-${suffix}`;
    b.ok('run', '-d', '--name', name, ref, 'sh', '-c', 'echo live > /srv/live.txt; exec sleep 600');
    await until('the container wrote its file', () => b.run('exec', name, 'cat', '/srv/live.txt').stdout === 'live\n', 60_000);
    const r = await b.runAsync('--log-level', 'debug', 'commit', '--pause', '--format', 'docker', name, `live-${suffix}:v1`);
    expect(r.code, r.stderr).toBe(0);
    // Frozen through the runtime's cgroup freezer for the copy, and thawed again.
    expect(r.stderr).toMatch(/runtime: \S+ --root \S+ pause [0-9a-f]{64}/);
    expect(r.stderr).toMatch(/runtime: \S+ --root \S+ resume [0-9a-f]{64}/);
    expect(r.stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(b.ok('ps', '--filter', `name=${name}`, '--format', '{{.Status}}')).toMatch(/^Up/);
    expect(b.ok('exec', name, 'echo', 'still here')).toBe('still here\n');
    expect(b.ok('run', '--rm', `localhost/live-${suffix}:v1`, 'cat', '/srv/live.txt')).toBe('live\n');
    // --format docker: Docker schema2 media types (which skopeo's oci: transport does not look up by name).
    const index = JSON.parse(readFileSync(join(b.root, 'images', 'index.json'), 'utf8')) as { manifests: Array<{ mediaType: string; annotations?: Record<string, string> }> };
    const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === `localhost/live-${suffix}:v1`);
    expect(entry?.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    b.ok('rm', '-f', name);
  });

  it('refuses a bad --change or an unknown container, writing nothing', () => {
    const before = readFileSync(join(b.root, 'images', 'index.json'), 'utf8');
    const bad = b.run('commit', '-c', 'RUN echo hi', `c-${suffix}`, 'nope');
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/--change "RUN echo hi": expected one of CMD, ENTRYPOINT/);
    const missing = b.run('commit', `no-such-${suffix}`, 'nope');
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/no such container/);
    expect(readFileSync(join(b.root, 'images', 'index.json'), 'utf8')).toBe(before);
  });
});
