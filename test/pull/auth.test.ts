import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBusyboxImage } from '../helpers/images.ts';
import { skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { runToolAsync, tempDir, type RunResult } from '../helpers/run.ts';
import { expectStoreClean, indexText } from './store-check.ts';
import { startTokenServer, type TokenServer } from './token-server.ts';

// Pins registry auth: Basic (htpasswd), Bearer tokens from a token server
// (including a refresh when the registry rejects a token), and where
// credentials come from: --creds, --authfile, podman's auth.json under
// $XDG_RUNTIME_DIR, and docker's ~/.docker/config.json.
const user = 'berth';
const password = 's3cret:with:colons';
const execFileAsync = promisify(execFile);
const b64 = (s: string) => Buffer.from(s).toString('base64');

// Every pull runs with a HOME and XDG dirs of its own, so the machine's real
// auth files never leak in.
function isolatedEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  mkdirSync(home, { recursive: true });
  return { HOME: home, XDG_RUNTIME_DIR: join(home, 'run'), XDG_CONFIG_HOME: join(home, 'config'), DOCKER_CONFIG: undefined, REGISTRY_AUTH_FILE: undefined, ...extra };
}

describe('berth-pull with Basic auth', () => {
  let reg: TestRegistry;
  const dir = tempDir('berth-pull-basic-');
  let ref = '';
  let n = 0;
  const pull = (args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> =>
    runToolAsync('berth-pull', ['--root', join(dir.path, `root${n++}`), '--tls-verify=false', ...args, ref], { env });

  beforeAll(async () => {
    reg = await startRegistry({ basicAuth: { user, password } });
    await writeBusyboxImage(join(dir.path, 'layout'), 'busybox:latest');
    skopeoPush(join(dir.path, 'layout'), 'busybox:latest', `${reg.host}/library/busybox:latest`, { creds: `${user}:${password}` });
    ref = `${reg.host}/library/busybox:latest`;
  });
  afterAll(async () => {
    await reg?.stop();
    dir.cleanup();
  });

  it('asks for credentials when none are given, and says how to give them', async () => {
    const root = join(dir.path, 'anon');
    const r = await runToolAsync('berth-pull', ['--root', root, '--tls-verify=false', ref], { env: isolatedEnv(join(dir.path, 'home-anon')) });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/authentication required: pass --creds USER:PASS or --authfile/);
    expectStoreClean(join(root, 'images'), indexText(join(root, 'images')));
  });

  it('says the credentials were rejected when they are wrong', async () => {
    const r = await pull(['--creds', `${user}:wrong`], isolatedEnv(join(dir.path, 'home-wrong')));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/credentials from --creds were rejected/);
  });

  it('pulls with --creds', async () => {
    const r = await pull(['--creds', `${user}:${password}`], isolatedEnv(join(dir.path, 'home-creds')));
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.reference).toBe(ref);
  });

  it('pulls with --authfile, the most specific key winning', async () => {
    const file = join(dir.path, 'auth.json');
    writeFileSync(file, JSON.stringify({ auths: {
      [reg.host]: { auth: b64(`${user}:wrong`) },
      [`${reg.host}/library/busybox`]: { auth: b64(`${user}:${password}`) },
    } }));
    const r = await pull(['--authfile', file], isolatedEnv(join(dir.path, 'home-authfile')));
    expect(r.code, r.stderr).toBe(0);
  });

  it('finds podman login\'s $XDG_RUNTIME_DIR/containers/auth.json', async () => {
    const home = join(dir.path, 'home-podman');
    const env = isolatedEnv(home);
    mkdirSync(join(env.XDG_RUNTIME_DIR!, 'containers'), { recursive: true });
    writeFileSync(join(env.XDG_RUNTIME_DIR!, 'containers', 'auth.json'), JSON.stringify({ auths: { [reg.host]: { auth: b64(`${user}:${password}`) } } }));
    const r = await pull(['--debug'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/using credentials from .*\/run\/containers\/auth\.json/);
  });

  it('finds docker login\'s ~/.docker/config.json', async () => {
    const home = join(dir.path, 'home-docker');
    mkdirSync(join(home, '.docker'), { recursive: true });
    writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [`http://${reg.host}`]: { auth: b64(`${user}:${password}`) } } }));
    const r = await pull([], isolatedEnv(home));
    expect(r.code, r.stderr).toBe(0);
  });

  it('names a broken auth file', async () => {
    const file = join(dir.path, 'broken.json');
    writeFileSync(file, '{"auths": ');
    const r = await pull(['--authfile', file], isolatedEnv(join(dir.path, 'home-broken')));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`auth file ${file} is not valid JSON`));
  });
});

describe('berth-pull with Bearer tokens', () => {
  let reg: TestRegistry;
  let tokens: TokenServer;
  const dir = tempDir('berth-pull-token-');
  let ref = '';

  beforeAll(async () => {
    tokens = await startTokenServer(dir.path, user, password);
    reg = await startRegistry({ tokenAuth: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.certPath } });
    await writeBusyboxImage(join(dir.path, 'layout'), 'busybox:latest');
    // skopeo asks the token server, which runs in this process: push without blocking it.
    await execFileAsync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', `${user}:${password}`, `oci:${join(dir.path, 'layout')}:busybox:latest`, `docker://${reg.host}/library/busybox:latest`]);
    ref = `${reg.host}/library/busybox:latest`;
  });
  afterAll(async () => {
    await reg?.stop();
    await tokens?.stop();
    dir.cleanup();
  });

  it('fetches a token for repository:NAME:pull and pulls with it', async () => {
    tokens.requests.length = 0;
    const r = await runToolAsync('berth-pull', ['--root', join(dir.path, 'r1'), '--tls-verify=false', '--creds', `${user}:${password}`, ref], { env: isolatedEnv(join(dir.path, 'h1')) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.reference).toBe(ref);
    // One token serves the manifest, the config and the layer.
    expect(tokens.requests).toEqual([{ scope: 'repository:library/busybox:pull', user }]);
  });

  it('fetches a new token when the registry rejects an expired one or one without the scope', async () => {
    tokens.requests.length = 0;
    tokens.plan.push('expired', 'no-access');
    const r = await runToolAsync('berth-pull', ['--root', join(dir.path, 'r2'), '--tls-verify=false', '--debug', '--creds', `${user}:${password}`, ref], { env: isolatedEnv(join(dir.path, 'h2')) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/401 \(invalid_token\), authenticating again/);
    expect(r.stderr).toMatch(/401 \(insufficient_scope\), authenticating again/);
    expect(tokens.requests).toHaveLength(3);
  });

  it('says the token server rejected the credentials', async () => {
    const root = join(dir.path, 'r3');
    const r = await runToolAsync('berth-pull', ['--root', root, '--tls-verify=false', '--creds', `${user}:nope`, ref], { env: isolatedEnv(join(dir.path, 'h3')) });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/token from http:\/\/127\.0\.0\.1:\d+\/token for repository:library\/busybox:pull: token server answered 401 \(credentials from --creds were rejected\)/);
    expectStoreClean(join(root, 'images'), indexText(join(root, 'images')));
  });
});
