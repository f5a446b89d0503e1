import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestRegistry } from '../helpers/registry.ts';
import { startBuildWorld, type BuildWorld } from './world.ts';
import { binPath, runTool } from '../helpers/run.ts';

/**
 * berth-build, black box: a Containerfile with RUN, COPY, ENV, ARG, LABEL...
 * built FROM a busybox image that skopeo pushed to a real registry (so the
 * build pulls it), the layers checked by unpacking them with umoci, the
 * cache checked by rebuilding, the stage contract checked by piping into
 * berth-store, and the bad inputs checked for their messages.
 */
let registry: TestRegistry;
let work: { path: string; cleanup: () => void };
let root: string;
let base: string;

const containerfile = (from: string) => `# escape=\\
ARG BASE=${from}
FROM \${BASE}
ARG GIT_HASH=unset
ENV GREETING="hello builder" \\
    STAGE=test
LABEL site.hash=$GIT_HASH
# RUN creates two files and deletes one of the base image's
RUN echo "building $GIT_HASH as $(id -u)" && mkdir -p /data \\
 && echo one > /data/one && echo two > /data/two && rm /bin/vi
# a later RUN deletes a file of an earlier layer: a whiteout
RUN rm /data/two && echo "$GREETING" > /data/greet
COPY --chown=1000:1001 site/ /www/
COPY note.txt /data/
WORKDIR /www
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080"]
`;

function build(context: string, args: string[]) {
  return runTool('berth-build', ['--root', root, '--tls-verify=false', ...args, context], { timeoutMs: 180_000 });
}

function makeContext(name: string, file: string): string {
  const dir = join(work.path, name);
  mkdirSync(join(dir, 'site'), { recursive: true });
  writeFileSync(join(dir, 'Containerfile'), file);
  writeFileSync(join(dir, 'site', 'index.html'), '<h1>hello</h1>\n');
  writeFileSync(join(dir, 'site', 'secret.key'), 'do not ship\n');
  writeFileSync(join(dir, 'note.txt'), 'note v1\n');
  writeFileSync(join(dir, '.containerignore'), '# keys stay out of images\n**/*.key\n');
  return dir;
}

function umociUnpack(ref: string): string {
  const bundle = join(work.path, `unpacked-${Math.random().toString(16).slice(2)}`);
  execFileSync('umoci', ['unpack', '--image', `${join(root, 'images')}:${ref}`, bundle], { stdio: ['ignore', 'ignore', 'pipe'] });
  return join(bundle, 'rootfs');
}

function blobJson(digest: string): any {
  return JSON.parse(readFileSync(join(root, 'images', 'blobs', 'sha256', digest.slice(7)), 'utf8'));
}

let world: BuildWorld | undefined;

beforeAll(async () => {
  world = await startBuildWorld('berth-build-');
  ({ registry, work, root, base } = world);
}, 60_000);

afterAll(async () => {
  await world?.stop();
});

describe('berth-build', () => {
  let first: any;
  let fresh: any;
  let ctx: string;

  it('builds FROM an image skopeo pushed: RUN layers with whiteouts, COPY --chown, config from the metadata steps', () => {
    ctx = makeContext('site', containerfile(base));
    const r = build(ctx, ['--build-arg', 'GIT_HASH=abc123', '-t', 'web:1', '-t', `${registry.host}/site/web:abc123`]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    first = r.json;
    expect(first.kind).toBe('image');
    expect(first.reference).toBe('localhost/web:1');
    expect(first.tags).toEqual(['localhost/web:1', `${registry.host}/site/web:abc123`]);
    // podman's progress on stderr, the RUN's own output with it.
    expect(r.stderr).toContain(`STEP 1/11: FROM ${base}`);
    expect(r.stderr).toContain('STEP 6/11: RUN rm /data/two');
    expect(r.stderr).toContain('building abc123 as 0');
    expect(r.stderr).toContain('COMMIT localhost/web:1');
    // Base layer + 2 RUN + 2 COPY.
    expect(first.layers).toHaveLength(5);

    const config = blobJson(first.config.digest);
    expect(config.config.Env).toEqual(expect.arrayContaining(['GREETING=hello builder', 'STAGE=test']));
    expect(config.config.Labels).toEqual({ 'site.hash': 'abc123' });
    expect(config.config.WorkingDir).toBe('/www');
    expect(config.config.Cmd).toEqual(['httpd', '-f', '-p', '8080']);
    expect(config.config.ExposedPorts).toEqual({ '8080/tcp': {} });
    expect(config.rootfs.diff_ids).toHaveLength(5);
    expect(config.history.filter((h: any) => !h.empty_layer)).toHaveLength(5);

    // umoci, not berth, applies the layers: the whiteouts must be OCI ones.
    const rootfs = umociUnpack('localhost/web:1');
    expect(readFileSync(join(rootfs, 'data/one'), 'utf8')).toBe('one\n');
    expect(readFileSync(join(rootfs, 'data/greet'), 'utf8')).toBe('hello builder\n');
    expect(existsSync(join(rootfs, 'data/two'))).toBe(false);
    expect(existsSync(join(rootfs, 'bin/vi'))).toBe(false);
    expect(existsSync(join(rootfs, 'bin/sh'))).toBe(true);
    const page = statSync(join(rootfs, 'www/index.html'));
    expect([page.uid, page.gid]).toEqual([1000, 1001]);
    expect(existsSync(join(rootfs, 'www/secret.key'))).toBe(false);
    expect(statSync(join(rootfs, 'data/note.txt')).uid).toBe(0);
    const listing = (i: number) => execFileSync('tar', ['-tzf', join(root, 'images', 'blobs', 'sha256', first.layers[i].digest.slice(7))], { encoding: 'utf8' }).split('\n').filter((l) => l !== '');
    expect(listing(1).sort()).toEqual(['bin/', 'bin/.wh.vi', 'data/', 'data/one', 'data/two']);
    expect(listing(2)).toContain('data/.wh.two');
    // The mount points the runtime made (/proc, /dev, /sys) are in no layer.
    expect(listing(2).filter((l) => /^(proc|dev|sys)\//.test(l))).toEqual([]);
  });

  it('reuses every layer on an unchanged rebuild and gives the same image id; --no-cache runs the steps again', () => {
    const again = build(ctx, ['--build-arg', 'GIT_HASH=abc123', '-t', 'web:1']);
    expect(again.code).toBe(0);
    expect(again.stderr.match(/--> Using cache [0-9a-f]{64}/g)).toHaveLength(4);
    expect(again.stderr).not.toContain('building abc123');
    expect(again.json.id).toBe(first.id);

    const r = build(ctx, ['--build-arg', 'GIT_HASH=abc123', '--no-cache', '-t', 'web:nocache']);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain('Using cache');
    expect(r.stderr).toContain('building abc123');
    fresh = r.json;
  });

  it('misses the cache from the step whose input changed: a new build arg, an edited copied file', () => {
    writeFileSync(join(ctx, 'note.txt'), 'note v2\n');
    const edited = build(ctx, ['--build-arg', 'GIT_HASH=abc123', '-t', 'web:2']);
    expect(edited.code).toBe(0);
    // The two RUNs and the first COPY are unchanged, the note's COPY is not;
    // the cache holds the newest layers of each step (the --no-cache build's).
    expect(edited.stderr.match(/Using cache/g)).toHaveLength(3);
    expect(edited.json.layers.slice(0, 4)).toEqual(fresh.layers.slice(0, 4));
    expect(edited.json.layers[4].digest).not.toBe(fresh.layers[4].digest);
    expect(readFileSync(join(umociUnpack('localhost/web:2'), 'data/note.txt'), 'utf8')).toBe('note v2\n');

    const otherArg = build(ctx, ['--build-arg', 'GIT_HASH=def456', '-t', 'web:3']);
    expect(otherArg.code).toBe(0);
    expect(otherArg.stderr).not.toContain('Using cache');
    expect(otherArg.stderr).toContain('building def456');
    expect(blobJson(otherArg.json.config.digest).config.Labels['site.hash']).toBe('def456');
  });

  it('writes Docker schema2 media types with --format docker', () => {
    const r = build(ctx, ['--format', 'docker', '--label', 'extra=yes', '-t', 'web:docker']);
    expect(r.code).toBe(0);
    const manifest = blobJson(r.json.manifest.digest);
    expect(manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
    expect(new Set(manifest.layers.map((l: any) => l.mediaType))).toEqual(new Set(['application/vnd.docker.image.rootfs.diff.tar.gzip']));
    expect(blobJson(r.json.config.digest).config.Labels).toEqual({ 'site.hash': 'unset', extra: 'yes' });
  });

  it('keeps HEALTHCHECK in Docker configs and leaves it out of OCI ones with a warning, as podman does', () => {
    const dir = makeContext('health', `FROM ${base}\nHEALTHCHECK --interval=1m30s --timeout=5s --retries=3 CMD wget -q -O- http://127.0.0.1:8080/ || exit 1\n`);
    const docker = build(dir, ['--format', 'docker', '-t', 'health:docker']);
    expect(docker.code).toBe(0);
    expect(blobJson(docker.json.config.digest).config.Healthcheck).toEqual({
      Test: ['CMD-SHELL', 'wget -q -O- http://127.0.0.1:8080/ || exit 1'], Interval: 90e9, Timeout: 5e9, Retries: 3,
    });
    const oci = build(dir, ['-t', 'health:oci']);
    expect(oci.code).toBe(0);
    expect(oci.stderr).toContain('HEALTHCHECK and ONBUILD are not part of the OCI image format');
    expect(blobJson(oci.json.config.digest).config.Healthcheck).toBeUndefined();
  });

  it('is a pipeline stage: its image document feeds berth-store prepare', () => {
    const r = build(ctx, ['-q', '-t', 'web:pipe']);
    expect(r.code).toBe(0);
    const prepared = runTool('berth-store', ['prepare', '--root', root, 'pipe-ctr', '--image', '-'], { input: r.stdout });
    expect(prepared.stderr).toBe('');
    expect(prepared.json.kind).toBe('rootfs');
    expect(prepared.json.image.manifest.digest).toBe(r.json.manifest.digest);
    expect(runTool('berth-store', ['remove', '--root', root, 'pipe-ctr']).code).toBe(0);
  });

  it('ADD unpacks a local tar archive; COPY --from copies out of an earlier stage and out of an image', () => {
    const dir = makeContext('stages', `FROM ${base} AS builder
RUN mkdir /out && echo compiled > /out/app && chmod 755 /out/app
FROM ${base}
ADD files.tar.gz /opt/
ADD note.txt /opt/plain/
COPY --from=builder /out/app /usr/local/bin/app
COPY --from=${base} /etc/os-release /opt/base-os-release
ENTRYPOINT ["/usr/local/bin/app"]
`);
    mkdirSync(join(dir, 'payload', 'conf'), { recursive: true });
    writeFileSync(join(dir, 'payload', 'conf', 'settings.ini'), 'mode=fast\n');
    execFileSync('tar', ['-czf', join(dir, 'files.tar.gz'), '-C', join(dir, 'payload'), 'conf']);
    const r = build(dir, ['-t', 'stages:1']);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    // The final image has the base layer and its own four; the builder stage's layer is not in it.
    expect(r.json.layers).toHaveLength(5);
    const rootfs = umociUnpack('localhost/stages:1');
    expect(readFileSync(join(rootfs, 'opt/conf/settings.ini'), 'utf8')).toBe('mode=fast\n');
    expect(existsSync(join(rootfs, 'opt/files.tar.gz'))).toBe(false);
    expect(readFileSync(join(rootfs, 'opt/plain/note.txt'), 'utf8')).toBe('note v1\n');
    expect(readFileSync(join(rootfs, 'usr/local/bin/app'), 'utf8')).toBe('compiled\n');
    expect(existsSync(join(rootfs, 'out'))).toBe(false);
    expect(readFileSync(join(rootfs, 'opt/base-os-release'), 'utf8')).toContain('berth busybox');
    const config = blobJson(r.json.config.digest).config;
    expect(config.Entrypoint).toEqual(['/usr/local/bin/app']);
    expect(config.Cmd ?? null).toBeNull();
  });

  it('runs RUN as USER, in WORKDIR, with the build args in its environment, without a network under --network=none, through runc', () => {
    const dir = makeContext('runenv', `FROM ${base}
ARG FLAVOUR=plain
WORKDIR /home/tux
USER tux
RUN id -u > uid && pwd > cwd && echo "$FLAVOUR" > flavour
USER root
RUN --network=none ls /sys/class/net > /home/tux/ifaces
`);
    // The runtime is a swappable stage: this build runs its steps with runc.
    const r = build(dir, ['--runtime', 'runc', '--build-arg', 'FLAVOUR=spicy', '-t', 'runenv:1']);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const rootfs = umociUnpack('localhost/runenv:1');
    const read = (f: string) => readFileSync(join(rootfs, 'home/tux', f), 'utf8');
    expect(read('uid')).toBe('1000\n');
    expect(read('cwd')).toBe('/home/tux\n');
    expect(read('flavour')).toBe('spicy\n');
    expect(statSync(join(rootfs, 'home/tux/uid')).uid).toBe(1000);
    expect(read('ifaces')).toBe('lo\n');
    // ARG values are not kept in the image's environment.
    expect(blobJson(r.json.config.digest).config.Env.some((e: string) => e.startsWith('FLAVOUR='))).toBe(false);
  });

  it('tags: more names for the same manifest', () => {
    const r = runTool('berth-build', ['tag', '--root', root, 'web:1', 'web:latest', `${registry.host}/site/web:latest`]);
    expect(r.code).toBe(0);
    expect(r.json.tags).toEqual(['localhost/web:latest', `${registry.host}/site/web:latest`]);
    const index = JSON.parse(readFileSync(join(root, 'images', 'index.json'), 'utf8'));
    const named = (n: string) => index.manifests.find((m: any) => m.annotations?.['org.opencontainers.image.ref.name'] === n)?.digest;
    expect(named('localhost/web:latest')).toBe(first.manifest.digest);
    expect(named(`${registry.host}/site/web:latest`)).toBe(first.manifest.digest);
    const missing = runTool('berth-build', ['tag', '--root', root, 'nope:1', 'web:x']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('image "nope:1" is not in the image store');
  });
});

describe('berth-build refuses bad input clearly', () => {
  function fails(name: string, file: string, extra: string[] = []) {
    const dir = makeContext(name, file);
    return build(dir, ['-t', `bad-${name}:1`, ...extra]);
  }
  function tagged(name: string): boolean {
    const index = JSON.parse(readFileSync(join(root, 'images', 'index.json'), 'utf8'));
    return index.manifests.some((m: any) => m.annotations?.['org.opencontainers.image.ref.name'] === name);
  }

  it('names the line of an unknown instruction', () => {
    const r = fails('unknown', `FROM ${base}\nRUN true\n\nFOO bar\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Containerfile:4: unknown instruction FOO');
    expect(r.stdout).toBe('');
  });

  it('refuses a COPY source outside the context', () => {
    const r = fails('outside', `FROM ${base}\nCOPY ../x /x\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Containerfile:2: COPY \.\.\/x: the source is outside the build context/);
    expect(tagged('localhost/bad-outside:1')).toBe(false);
  });

  it('shows a failing RUN\'s output and status, tags nothing and leaves no snapshot behind', () => {
    const r = fails('run', `FROM ${base}\nRUN echo made > /made\nRUN echo boom-output >&2; exit 3\nRUN echo never\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('boom-output');
    expect(r.stderr).toMatch(/Containerfile:3: .*exited with status 3/);
    expect(r.stderr).not.toContain('STEP 4/4');
    expect(tagged('localhost/bad-run:1')).toBe(false);
    const snapshots = runTool('berth-store', ['list', '--root', root]).json.snapshots as Array<{ name: string; kind: string }>;
    expect(snapshots.filter((s) => s.kind !== 'committed')).toEqual([]);
  });

  it('stops a RUN on TERM: exit 130, the container killed, nothing mounted, tagged or left active', async () => {
    const dir = makeContext('term', `FROM ${base}\nRUN echo started-\$((1+1)); sleep 60; echo finished-\$((2+2))\n`);
    const child = spawn(process.execPath, [binPath('berth-build'), '--root', root, '--tls-verify=false', '-t', 'bad-term:1', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    // Signal once the step's own output shows the container is running (bounded wait).
    for (let i = 0; i < 300 && child.exitCode === null && !stderr.includes('started-2\n'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(stderr).toContain('started-2\n');
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(130);
    expect(stderr).toContain('build interrupted by SIGTERM; no image was tagged');
    expect(stderr).not.toContain('finished-4');
    expect(tagged('localhost/bad-term:1')).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(root);
    const snapshots = runTool('berth-store', ['list', '--root', root]).json.snapshots as Array<{ kind: string }>;
    expect(snapshots.filter((s) => s.kind !== 'committed')).toEqual([]);
    const procs = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    expect(procs).not.toContain('sleep 60; echo finished');
  }, 60_000);

  it('refuses a missing or .containerignore\'d COPY source', () => {
    const r = fails('missing', `FROM ${base}\nCOPY nothere.txt /x\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Containerfile:2: COPY nothere.txt: no such file or directory in the build context');
    const ignored = fails('ignored', `FROM ${base}\nCOPY site/secret.key /x\n`);
    expect(ignored.code).toBe(1);
    expect(ignored.stderr).toContain('excluded by .containerignore');
  });
});
