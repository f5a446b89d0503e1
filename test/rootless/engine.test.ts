import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { binPath, tempDir } from '../helpers/run.ts';
import { berthAs, dataRootOf, makeUser, type Result, type TestUser } from './users.ts';

// The berth front as an ordinary user (issue 12): `berth run`, ps, exec,
// logs, stop, rm, images, rmi against the user's own store, with no root
// anywhere. Storage steps (unpack, snapshot, bundle, snapshot removal) run in
// the user's namespace; conmon and berth-runtime run as the user.

/** A berth command line typed at a terminal: script(1) gives it a pty, as a user's shell would. */
function berthAtTerminal(user: TestUser, args: string[]): Result {
  const line = [process.execPath, binPath('berth'), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: user.home, LANG: 'C.UTF-8' };
  const r = spawnSync('runuser', ['-u', user.name, '--', 'script', '-qec', line, '/dev/null'], {
    encoding: 'utf8', env, cwd: user.home, timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Snapshots in the user's store that are not committed layers: an active one left behind is a leak. */
function activeSnapshots(user: TestUser): string[] {
  const file = join(dataRootOf(user), 'snapshots', 'metadata.json');
  if (!existsSync(file)) return [];
  const meta = JSON.parse(readFileSync(file, 'utf8')) as { snapshots: Record<string, { kind: string }> };
  return Object.entries(meta.snapshots).filter(([, s]) => s.kind !== 'committed').map(([k]) => k);
}

describe('rootless berth: the front as an ordinary user', () => {
  const suffix = process.pid.toString(36);
  const range = { start: 600000, count: 65536 };
  let user: TestUser;
  let other: TestUser;
  let registry: TestRegistry;
  const work = tempDir('berth-rootless-engine-');
  let ref = '';

  beforeAll(async () => {
    user = makeUser(`bre${suffix}`, range);
    other = makeUser(`bre2${suffix}`, { start: 700000, count: 65536 });
    registry = await startRegistry();
    chmodSync(work.path, 0o755);
    ref = await pushBusybox(registry, join(work.path, 'layout'), 'rootless/eng:1');
    const pull = berthAs(user, ['pull', '--tls-verify=false', ref]);
    expect(pull.code, pull.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    for (const u of [user, other]) {
      if (!u) continue;
      // A container a failed test left running goes with its monitor.
      berthAs(u, ['rm', '-f', '-a']);
      rmSync(`/tmp/berth-run-${u.uid}`, { recursive: true, force: true });
      u.remove();
    }
    await registry?.stop();
    work.cleanup();
  }, 60_000);

  it('pull and images: the image is in the user\'s own store, private to them', () => {
    const images = berthAs(user, ['images']);
    expect(images.code, images.stderr).toBe(0);
    expect(images.stdout).toContain(`${registry.host}/rootless/eng`);
    for (const dir of [dataRootOf(user), `/tmp/berth-run-${user.uid}`, `/tmp/berth-run-${user.uid}/berth`]) {
      const st = lstatSync(dir);
      expect(st.uid, dir).toBe(user.uid);
      expect(st.mode & 0o777, dir).toBe(0o700);
    }
  });

  it('run --rm: root inside with the user and the range in uid_map, network none by default, one cgroup warning, nothing left behind', () => {
    const r = berthAs(user, ['run', '--rm', ref, 'sh', '-c', 'id; cat /proc/self/uid_map; cat /proc/net/dev']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('uid=0(root) gid=0(root)');
    const maps = r.stdout.split('\n').filter((l) => /^\s*\d+\s+\d+\s+\d+\s*$/.test(l)).map((l) => l.trim().split(/\s+/).map(Number));
    expect(maps).toEqual([[0, user.uid, 1], [1, range.start, range.count]]);
    const ifaces = r.stdout.split('\n').filter((l) => /^\s*\w+:\s+\d/.test(l)).map((l) => l.split(':')[0]!.trim());
    expect(ifaces).toEqual(['lo']);
    expect(r.stderr.split('\n').filter((l) => /cgroup limits are not applied/.test(l))).toHaveLength(1);
    const ps = berthAs(user, ['ps', '-a', '-q']);
    expect(ps.stdout.trim()).toBe('');
    expect(activeSnapshots(user)).toEqual([]);
  }, 60_000);

  it('a file chowned to uid 1000 inside belongs to range start + 999 on the host', () => {
    const vol = join(work.path, 'vol');
    mkdirSync(vol);
    chownSync(vol, user.uid, user.uid);
    const r = berthAs(user, ['run', '--rm', '-v', `${vol}:/vol`, ref, 'sh', '-c', 'touch /vol/f && chown 1000:1000 /vol/f']);
    expect(r.code, r.stderr).toBe(0);
    expect(lstatSync(join(vol, 'f')).uid).toBe(range.start + 999);
    expect(lstatSync(join(vol, 'f')).gid).toBe(range.start + 999);
  }, 60_000);

  it('the guide\'s `podman run -it busybox echo hello`, typed as berth at a terminal, prints hello', () => {
    const r = berthAtTerminal(user, ['run', '-it', '--rm', ref, 'echo', 'hello']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.split(/\r?\n/)).toContain('hello');
  }, 60_000);

  it('detached: ps, exec, logs, stop and rm work on the user\'s container; a missing command is 127', () => {
    const name = `web${suffix}`;
    const run = berthAs(user, ['run', '-d', '--name', name, ref, 'sh', '-c', 'echo started; exec sleep 60']);
    expect(run.code, run.stderr).toBe(0);
    const id = run.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    try {
      const ps = berthAs(user, ['ps']);
      expect(ps.stdout).toMatch(new RegExp(`${id.slice(0, 12)}.*Up.*${name}`));
      const exec = berthAs(user, ['exec', name, 'id', '-u']);
      expect(exec.code, exec.stderr).toBe(0);
      expect(exec.stdout.trim()).toBe('0');
      const missing = berthAs(user, ['exec', name, 'nosuchcmd']);
      expect(missing.code).toBe(127);
      expect(missing.stderr).toContain('nosuchcmd: executable file not found');
      const logs = berthAs(user, ['logs', name]);
      expect(logs.code, logs.stderr).toBe(0);
      expect(logs.stdout).toContain('started');
      const stop = berthAs(user, ['stop', '-t', '0', name]);
      expect(stop.code, stop.stderr).toBe(0);
      expect(berthAs(user, ['ps', '-a']).stdout).toMatch(new RegExp(`Exited \\(137\\).*${name}`));
    } finally {
      const rm = berthAs(user, ['rm', '-f', name]);
      expect(rm.code, rm.stderr).toBe(0);
    }
    expect(berthAs(user, ['ps', '-a', '-q']).stdout).not.toContain(id.slice(0, 12));
    expect(existsSync(join(dataRootOf(user), 'containers', id))).toBe(false);
    expect(activeSnapshots(user)).toEqual([]);
    const notFound = berthAs(user, ['run', '--rm', ref, 'nosuchcmd']);
    expect(notFound.code).toBe(127);
  }, 90_000);

  it('run -d --rm: the monitor (conmon, as the user) runs the cleanup that removes the container and its snapshot', async () => {
    const run = berthAs(user, ['run', '-d', '--rm', ref, 'sh', '-c', 'sleep 1']);
    expect(run.code, run.stderr).toBe(0);
    const id = run.stdout.trim();
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && existsSync(join(dataRootOf(user), 'containers', id))) await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(join(dataRootOf(user), 'containers', id))).toBe(false);
    expect(activeSnapshots(user)).toEqual([]);
  }, 60_000);

  it('a second user cannot see or touch the first user\'s containers or images', () => {
    const name = `mine${suffix}`;
    const create = berthAs(user, ['create', '--name', name, ref, 'true']);
    expect(create.code, create.stderr).toBe(0);
    const id = create.stdout.trim();
    try {
      const ps = berthAs(other, ['ps', '-a']);
      expect(ps.code, ps.stderr).toBe(0);
      expect(ps.stdout).not.toContain(id.slice(0, 12));
      expect(ps.stdout).not.toContain(name);
      expect(berthAs(other, ['images']).stdout).not.toContain('rootless/eng');
      const rm = berthAs(other, ['rm', id]);
      expect(rm.code).toBe(125);
      expect(rm.stderr).toContain('no such container');
      // Pointing at the first user's store is refused by its mode, not by berth's good manners.
      const theirs = berthAs(other, ['--root', dataRootOf(user), 'rm', '-f', id]);
      expect(theirs.code).toBe(125);
      expect(theirs.stderr).toMatch(/EACCES|permission denied/i);
      expect(existsSync(join(dataRootOf(user), 'containers', id, 'container.json'))).toBe(true);
    } finally {
      expect(berthAs(user, ['rm', name]).code).toBe(0);
    }
  }, 60_000);

  it('refusals before any work: -p names /dev/net/tun as berth-pod does, --pod of a missing pod is named, --runtime runc says it cannot take the rootless bundle', () => {
    const p = berthAs(user, ['run', '--rm', '-p', '8080:80', ref, 'true']);
    expect(p.code).toBe(125);
    expect(p.stderr).toContain('-p 8080:80: a private network for an ordinary user is a user-mode network (slirp4netns) on /dev/net/tun');
    expect(p.stderr).toContain(`setfacl -m u:${user.name}:rw /dev/net/tun`);
    const pod = berthAs(user, ['run', '--rm', '--pod', 'wp_pod', ref, 'true']);
    expect(pod.code).toBe(125);
    expect(pod.stderr).toContain('--pod wp_pod: no pod with name or ID wp_pod found');
    const runc = berthAs(user, ['--runtime', 'runc', 'run', '--rm', ref, 'true']);
    expect(runc.code).toBe(125);
    expect(runc.stderr).toMatch(/runc cannot run berth's rootless bundle.*berth-runtime/);
    expect(berthAs(user, ['ps', '-a', '-q']).stdout.trim()).toBe('');
    expect(readdirSync(join(dataRootOf(user), 'containers')).filter((f) => /^[0-9a-f]{64}$/.test(f))).toEqual([]);
    expect(activeSnapshots(user)).toEqual([]);
  }, 60_000);

  it('rmi -f removes the image and the containers that use it, snapshots included', () => {
    const create = berthAs(user, ['create', ref, 'true']);
    expect(create.code, create.stderr).toBe(0);
    const rmi = berthAs(user, ['rmi', '-f', ref]);
    expect(rmi.code, rmi.stderr).toBe(0);
    expect(berthAs(user, ['ps', '-a', '-q']).stdout.trim()).toBe('');
    expect(berthAs(user, ['images', '-q']).stdout.trim()).toBe('');
    expect(activeSnapshots(user)).toEqual([]);
  }, 60_000);
});
