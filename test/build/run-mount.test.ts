import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestRegistry } from '../helpers/registry.ts';
import { startBuildWorld, type BuildWorld } from './world.ts';
import { runTool } from '../helpers/run.ts';

/**
 * RUN --mount (bind, cache, tmpfs), as podman build takes it: what the step
 * sees, what the image keeps (nothing of the mounts, not even their mount
 * points), what the build cache keys on, and the mistakes a user makes.
 */
let registry: TestRegistry;
let work: { path: string; cleanup: () => void };
let root: string;
let base: string;

function build(context: string, args: string[] = []) {
  return runTool('berth-build', ['--root', root, '--tls-verify=false', ...args, context], { timeoutMs: 180_000 });
}

function context(name: string, file: string, files: Record<string, string> = {}): string {
  const dir = join(work.path, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Containerfile'), file);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  return dir;
}

function unpack(ref: string): string {
  const bundle = join(work.path, `unpacked-${Math.random().toString(16).slice(2)}`);
  execFileSync('umoci', ['unpack', '--image', `${join(root, 'images')}:${ref}`, bundle], { stdio: ['ignore', 'ignore', 'pipe'] });
  return join(bundle, 'rootfs');
}

let world: BuildWorld | undefined;

beforeAll(async () => {
  world = await startBuildWorld('berth-build-mount-');
  ({ registry, work, root, base } = world);
}, 60_000);

afterAll(async () => {
  await world?.stop();
});

describe('berth-build RUN --mount', () => {
  it('binds the context read-only where the step asks, honouring .containerignore, and keeps neither the files nor the mount point', () => {
    const dir = context('bind', `FROM ${base}
RUN --mount=type=bind,source=conf,target=/mnt/conf/in \\
    cat /mnt/conf/in/app.conf > /app.conf && ls /mnt/conf/in > /listing && (touch /mnt/conf/in/x 2>/dev/null && echo writable || echo read-only) > /ro
RUN --mount=type=bind,target=/ctx,source=conf/app.conf cat /ctx > /single
`, { 'conf/app.conf': 'port=8080\n', 'conf/secret.key': 'no\n', '.containerignore': '**/*.key\n' });
    const r = build(dir, ['-t', 'mount-bind:1']);
    expect(r.code, r.stderr).toBe(0);
    const fs = unpack('localhost/mount-bind:1');
    expect(readFileSync(join(fs, 'app.conf'), 'utf8')).toBe('port=8080\n');
    expect(readFileSync(join(fs, 'listing'), 'utf8')).toBe('app.conf\n');
    expect(readFileSync(join(fs, 'ro'), 'utf8')).toBe('read-only\n');
    expect(readFileSync(join(fs, 'single'), 'utf8')).toBe('port=8080\n');
    expect(existsSync(join(fs, 'mnt')), 'no /mnt stub in the image').toBe(false);
    expect(existsSync(join(fs, 'ctx'))).toBe(false);
  });

  it('rebuilds a step when the bound content changes, and takes the cache when it does not', () => {
    const dir = context('bind-cache', `FROM ${base}\nRUN --mount=type=bind,source=v,target=/v cat /v > /version\n`, { v: 'one\n' });
    expect(build(dir, ['-t', 'mount-key:1']).code).toBe(0);
    const again = build(dir, ['-t', 'mount-key:1']);
    expect(again.stderr).toContain('--> Using cache');
    writeFileSync(join(dir, 'v'), 'two\n');
    const changed = build(dir, ['-t', 'mount-key:2']);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stderr).not.toContain('--> Using cache');
    expect(readFileSync(join(unpack('localhost/mount-key:2'), 'version'), 'utf8')).toBe('two\n');
  });

  it('keeps a cache mount between builds (by id), owned as asked, out of the image', () => {
    const file = `FROM ${base}
RUN --mount=type=cache,id=counter,target=/var/cache/c,uid=1000,gid=1000,mode=0700 \\
    sh -c 'echo run >> /var/cache/c/log; wc -l < /var/cache/c/log | tr -d " " > /count; stat -c "%u:%g %a" /var/cache/c > /owner'
`;
    const dir = context('cache', file);
    expect(build(dir, ['--no-cache', '-t', 'mount-cache:1']).code).toBe(0);
    const second = build(dir, ['--no-cache', '-t', 'mount-cache:2']);
    expect(second.code, second.stderr).toBe(0);
    const fs1 = unpack('localhost/mount-cache:1');
    const fs2 = unpack('localhost/mount-cache:2');
    expect(readFileSync(join(fs1, 'count'), 'utf8')).toBe('1\n');
    expect(readFileSync(join(fs2, 'count'), 'utf8')).toBe('2\n');
    expect(readFileSync(join(fs2, 'owner'), 'utf8')).toBe('1000:1000 700\n');
    // /var existed in the base image; /var/cache and /var/cache/c were only mount points.
    expect(existsSync(join(fs2, 'var', 'cache'))).toBe(false);
    expect(readdirSync(join(root, 'builder', 'cache-mounts')).length).toBeGreaterThan(0);
  });

  it('gives a tmpfs of the asked size, and binds from an earlier stage', () => {
    const dir = context('tmpfs', `FROM ${base} AS tools
RUN mkdir -p /opt/tool && echo 'tool v3' > /opt/tool/VERSION
FROM ${base}
RUN --mount=type=tmpfs,target=/scratch,size=1m sh -c 'grep " /scratch " /proc/mounts | cut -d" " -f3 > /fstype; df -k /scratch | tail -1 | tr -s " " | cut -d" " -f2 > /size'
RUN --mount=type=bind,from=tools,source=/opt/tool,target=/t cat /t/VERSION > /tool-version
`);
    const r = build(dir, ['-t', 'mount-tmpfs:1']);
    expect(r.code, r.stderr).toBe(0);
    const fs = unpack('localhost/mount-tmpfs:1');
    expect(readFileSync(join(fs, 'fstype'), 'utf8')).toBe('tmpfs\n');
    expect(readFileSync(join(fs, 'size'), 'utf8')).toBe('1024\n');
    expect(readFileSync(join(fs, 'tool-version'), 'utf8')).toBe('tool v3\n');
    expect(existsSync(join(fs, 'scratch'))).toBe(false);
    expect(existsSync(join(fs, 'opt'))).toBe(false);
  });

  it('refuses bad mounts with the line and the reason, tagging nothing', () => {
    const cases: Array<[string, Record<string, string>, string]> = [
      ['RUN --mount=type=bind,source=conf true', {}, 'target= is required'],
      ['RUN --mount=type=volume,target=/v true', {}, 'type=volume is not one of bind, cache, tmpfs'],
      ['RUN --mount=type=secret,id=x true', {}, 'needs build flags (--secret, --ssh)'],
      ['RUN --mount=type=bind,source=../outside,target=/o true', {}, 'outside the build context'],
      ['RUN --mount=type=cache,target=/c,color=blue true', {}, 'takes no option "color"'],
      ['RUN --mount=type=bind,source=missing,target=/m true', {}, 'no such file or directory in the build context'],
      ['RUN --mount=type=bind,source=k.key,target=/k true', { 'k.key': 'x', '.containerignore': '*.key\n' }, 'excluded by'],
    ];
    for (const [step, files, message] of cases) {
      const dir = context(`bad-${Math.random().toString(16).slice(2)}`, `FROM ${base}\n${step}\n`, files);
      const r = build(dir, ['-t', 'mount-bad:1']);
      expect(r.code, step).toBe(1);
      expect(r.stderr, step).toContain('Containerfile:2');
      expect(r.stderr, step).toContain(message);
    }
    expect(readFileSync(join(root, 'images', 'index.json'), 'utf8')).not.toContain('mount-bad');
  });
});
