import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { stableHostInterfaces } from '../helpers/net.ts';
import { tempDir } from '../helpers/run.ts';
import { waitFor } from '../engines/helpers.ts';
import { makeUser, runAs, type TestUser } from './users.ts';

// Rootless containers (issue 12): an ordinary user runs the whole pipeline —
// berth-pull | berth-store prepare | berth-bundle | berth-runtime run — with
// no root anywhere. The runtime makes the user namespace first (the user's
// subordinate range written by newuidmap/newgidmap) and mounts the overlay
// rootfs inside it; devices are bound from the host, cgroup limits skipped.

const stateRootOf = (user: TestUser) => `/tmp/berth-run-${user.uid}/berth/runtime`;

describe('rootless berth-runtime: a container run by an ordinary user', () => {
  const suffix = process.pid.toString(36);
  const range = { start: 400000, count: 65536 };
  let user: TestUser;
  let other: TestUser;
  let registry: TestRegistry;
  const work = tempDir('berth-rootless-run-');
  let ref = '';
  let rootfsDoc = '';
  let n = 0;

  /** berth-bundle the prepared rootfs as the user, then berth-runtime run it; returns the run's result. */
  function runContainer(bundleArgs: string[], command: string[]): { code: number; stdout: string; stderr: string } {
    const id = `r${suffix}-${++n}`;
    const bundle = runAs(user, 'berth-bundle', ['--name', id, ...bundleArgs, '-', '--', ...command], rootfsDoc);
    expect(bundle.code, bundle.stderr).toBe(0);
    return runAs(user, 'berth-runtime', ['run', '--bundle', JSON.parse(bundle.stdout).bundle, id]);
  }

  beforeAll(async () => {
    user = makeUser(`brr${suffix}`, range);
    other = makeUser(`bro${suffix}`, { start: 500000, count: 65536 });
    registry = await startRegistry();
    chmodSync(work.path, 0o755);
    ref = await pushBusybox(registry, join(work.path, 'layout'), 'rootless/run:1');
    const pull = runAs(user, 'berth-pull', ['--tls-verify=false', ref]);
    expect(pull.code, pull.stderr).toBe(0);
    const prep = runAs(user, 'berth-store', ['prepare', `c${suffix}`, '--image', ref]);
    expect(prep.code, prep.stderr).toBe(0);
    rootfsDoc = prep.stdout;
  }, 120_000);

  afterAll(async () => {
    await registry?.stop();
    for (const u of [user, other]) {
      if (!u) continue;
      // A container left running by a failed test dies with its state.
      for (const id of ['keep']) runAs(u, 'berth-runtime', ['delete', '--force', `${id}${suffix}`]);
      rmSync(`/tmp/berth-run-${u.uid}`, { recursive: true, force: true });
      u.remove();
    }
    work.cleanup();
  });

  it('the bundle maps root to the user and 1.. to the range, and leaves the rootfs for the runtime to mount', () => {
    const bundle = runAs(user, 'berth-bundle', ['--name', `b${suffix}`, '-', '--', 'true'], rootfsDoc);
    expect(bundle.code, bundle.stderr).toBe(0);
    const dir = JSON.parse(bundle.stdout).bundle as string;
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(config.linux.namespaces[0]).toEqual({ type: 'user' });
    expect(config.linux.uidMappings).toEqual([{ containerID: 0, hostID: user.uid, size: 1 }, { containerID: 1, hostID: range.start, size: range.count }]);
    expect(JSON.parse(config.annotations['io.berth.rootfs.mounts'])[0].type).toBe('overlay');
    // Nothing is mounted on the host: the runtime mounts the overlay in the container's namespaces.
    expect(spawnSync('findmnt', [join(dir, 'rootfs')]).status).not.toBe(0);
  }, 60_000);

  it('inside, `id` says root and /proc/self/uid_map shows the user and the subordinate range; cgroup limits are skipped with one warning', () => {
    const r = runContainer([], ['sh', '-c', 'id; cat /proc/self/uid_map /proc/self/gid_map']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('uid=0(root) gid=0(root)');
    const maps = r.stdout.split('\n').filter((l) => /^\s*\d+\s+\d+\s+\d+\s*$/.test(l)).map((l) => l.trim().split(/\s+/).map(Number));
    expect(maps).toEqual([[0, user.uid, 1], [1, range.start, range.count], [0, user.uid, 1], [1, range.start, range.count]]);
    expect(r.stderr.split('\n').filter((l) => /cgroup limits are not applied/.test(l))).toHaveLength(1);
  }, 60_000);

  it('a file chowned to uid 1000 inside belongs to range start + 999 on the host', () => {
    const vol = join(work.path, 'vol');
    mkdirSync(vol);
    chownSync(vol, user.uid, user.uid);
    const r = runContainer(['-v', `${vol}:/vol`], ['sh', '-c', 'touch /vol/f && chown 1000:1000 /vol/f']);
    expect(r.code, r.stderr).toBe(0);
    const st = lstatSync(join(vol, 'f'));
    expect(st.uid).toBe(range.start + 999);
    expect(st.gid).toBe(range.start + 999);
  }, 60_000);

  it('a root-only host file bind-mounted in cannot be read, although the container runs as root', () => {
    const secret = join(work.path, 'secret');
    writeFileSync(secret, 'host secret\n', { mode: 0o600 });
    const r = runContainer(['-v', `${secret}:/secret`], ['cat', '/secret']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain('host secret');
    expect(r.stderr).toMatch(/Permission denied/);
  }, 60_000);

  it('--network none gives a network namespace with loopback only', () => {
    const r = runContainer(['--network', 'none'], ['cat', '/proc/net/dev']);
    expect(r.code, r.stderr).toBe(0);
    const ifaces = r.stdout.split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean);
    expect(ifaces).toEqual(['lo']);
  }, 60_000);

  it('--network host shares the host\'s interfaces, with the host\'s /sys bound read-only (sysfs belongs to the netns owner)', () => {
    const { result: r, interfaces: hostIfaces } = stableHostInterfaces(() => runContainer(['--network', 'host'], ['sh', '-c', 'cat /proc/net/dev; ls /sys/class/net; touch /sys/x']));
    expect(hostIfaces.length).toBeGreaterThan(1);
    for (const i of hostIfaces) expect(r.stdout).toContain(i);
    expect(r.stderr).toMatch(/Read-only file system/);
  }, 60_000);

  it('the state is private: another user can neither list nor kill nor delete the container', () => {
    const id = `keep${suffix}`;
    const bundle = runAs(user, 'berth-bundle', ['--name', id, '-', '--', 'sh', '-c', 'exec sleep 60'], rootfsDoc);
    expect(bundle.code, bundle.stderr).toBe(0);
    const create = runAs(user, 'berth-runtime', ['create', '--bundle', JSON.parse(bundle.stdout).bundle, id], { detached: true });
    expect(create.code, create.stderr).toBe(0);
    expect(runAs(user, 'berth-runtime', ['start', id]).code).toBe(0);
    const st = lstatSync(stateRootOf(user));
    expect(st.uid).toBe(user.uid);
    expect(st.mode & 0o777).toBe(0o700);

    const theirs = ['--root', stateRootOf(user)];
    const list = runAs(other, 'berth-runtime', [...theirs, 'list']);
    expect(list.code).not.toBe(0);
    expect(list.stderr).toMatch(/EACCES|permission denied/i);
    expect(runAs(other, 'berth-runtime', [...theirs, 'kill', id, 'KILL']).code).not.toBe(0);
    expect(runAs(other, 'berth-runtime', [...theirs, 'delete', '--force', id]).code).not.toBe(0);
    // Their own default state root does not show it either.
    const own = runAs(other, 'berth-runtime', ['list', '--format', 'json']);
    expect(own.code, own.stderr).toBe(0);
    expect(own.stdout).not.toContain(id);

    const state = runAs(user, 'berth-runtime', ['state', id]);
    expect(JSON.parse(state.stdout).status).toBe('running');
    // The owner can still exec into it: nsenter joins the user namespace the user owns.
    const exec = runAs(user, 'berth-runtime', ['exec', id, 'id', '-u']);
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.stdout.trim()).toBe('0');
    expect(runAs(user, 'berth-runtime', ['delete', '--force', id]).code).toBe(0);
  }, 60_000);

  it('NOTIFY_SOCKET: the container\'s READY=1 reaches the caller\'s socket through the runtime\'s proxy, as for root', async () => {
    // A datagram receiver (perl: Node has no unix datagram sockets) that the user may send to.
    const sock = join(work.path, 'notify.sock');
    const receiver = spawn('perl', ['-MSocket', '-e', `socket(S, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
      bind(S, pack_sockaddr_un($ARGV[0])) or die "bind: $!"; $| = 1; print "bound\\n";
      while (defined(recv(S, my $m, 4096, 0))) { print "[$m]\\n" }`, sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let got = '';
    receiver.stdout!.on('data', (d: Buffer) => { got += d.toString(); });
    const exited = new Promise((r) => receiver.once('exit', r));
    try {
      await waitFor(() => got.includes('bound'));
      chmodSync(sock, 0o777);
      // busybox has no sd_notify: the container borrows the host's perl through read-only binds.
      const notify = `/usr/bin/perl -MSocket -e 'socket(S, PF_UNIX, SOCK_DGRAM, 0) or die; send(S, "READY=1", 0, pack_sockaddr_un($ENV{NOTIFY_SOCKET})) or die "send: $!"'`;
      const id = `notify${suffix}`;
      const binds = ['/usr', '/lib', '/lib64'].flatMap((d) => ['-v', `${d}:${d}:ro`]);
      const bundle = runAs(user, 'berth-bundle', ['--name', id, ...binds, '-', '--', 'sh', '-c', `echo "socket=$NOTIFY_SOCKET"; ${notify} && echo sent`], rootfsDoc);
      expect(bundle.code, bundle.stderr).toBe(0);
      const r = runAs(user, 'berth-runtime', ['run', '--bundle', JSON.parse(bundle.stdout).bundle, id], { env: { NOTIFY_SOCKET: sock } });
      expect(r.stdout).toBe('socket=/run/notify/notify.sock\nsent\n');
      expect(r.code, r.stderr).toBe(0);
      await waitFor(() => /\[MAINPID=\d+\n\]/.test(got));
      expect(got).toMatch(/^bound\n\[READY=1\n\]\n\[MAINPID=\d+\n\]\n$/);
    } finally {
      receiver.kill('SIGKILL');
      await exited;
    }
  }, 60_000);

  it('a user without a subordinate range still runs a container: root maps to the user alone, with the usermod hint', () => {
    const bare = makeUser(`brb${suffix}`);
    try {
      expect(runAs(bare, 'berth-pull', ['--tls-verify=false', ref]).code).toBe(0);
      const prep = runAs(bare, 'berth-store', ['prepare', 'c1', '--image', ref]);
      expect(prep.code, prep.stderr).toBe(0);
      const bundle = runAs(bare, 'berth-bundle', ['--name', 'c1', '-', '--', 'sh', '-c', 'id; cat /proc/self/uid_map'], prep.stdout);
      expect(bundle.code, bundle.stderr).toBe(0);
      expect(bundle.stderr).toContain(`no entry for ${bare.name} in /etc/subuid`);
      const r = runAs(bare, 'berth-runtime', ['run', '--bundle', JSON.parse(bundle.stdout).bundle, 'c1']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('uid=0(root)');
      expect(r.stdout.split('\n').filter((l) => /^\s*\d+\s+\d+\s+\d+\s*$/.test(l)).map((l) => l.trim().split(/\s+/).map(Number))).toEqual([[0, bare.uid, 1]]);
    } finally {
      rmSync(`/tmp/berth-run-${bare.uid}`, { recursive: true, force: true });
      bare.remove();
    }
  }, 90_000);

  it('a newuidmap that is not setuid root is named, with the fix', () => {
    const helpers = join(work.path, 'helpers');
    mkdirSync(helpers, { mode: 0o755 });
    // A copy loses the setuid bit: the state a broken uidmap install leaves.
    copyFileSync('/usr/bin/newuidmap', join(helpers, 'newuidmap'));
    chmodSync(join(helpers, 'newuidmap'), 0o755);
    const id = `nosuid${suffix}`;
    const bundle = runAs(user, 'berth-bundle', ['--name', id, '-', '--', 'true'], rootfsDoc);
    expect(bundle.code, bundle.stderr).toBe(0);
    const r = runAs(user, 'berth-runtime', ['run', '--bundle', JSON.parse(bundle.stdout).bundle, id], { env: { BERTH_NEWUIDMAP: join(helpers, 'newuidmap') } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${join(helpers, 'newuidmap')} is not setuid root`);
    expect(r.stderr).toContain('chmod u+s');
    // Nothing is left behind: no holder of the half-made user namespace, and the id can be used again.
    // (SIGKILL is delivered asynchronously: give the kernel up to 2 s to finish the holder off.)
    const holderGone = (): boolean => {
      for (let i = 0; i < 40; i++) {
        if (spawnSync('pgrep', ['-u', String(user.uid), '-x', 'cat']).status === 1) return true;
        spawnSync('sleep', ['0.05']);
      }
      return false;
    };
    expect(holderGone(), 'a user namespace holder outlived the failed run').toBe(true);
    const again = runAs(user, 'berth-runtime', ['run', '--bundle', JSON.parse(bundle.stdout).bundle, id]);
    expect(again.code, again.stderr).toBe(0);
  }, 60_000);
});
