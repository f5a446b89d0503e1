import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { KNOWN_CAPABILITIES } from '@berth/oci-spec';
import { DEFAULT_CAPABILITIES } from '../../tools/bundle-generator/src/defaults.ts';
import { parseProcLimits } from '../../tools/bundle-generator/src/rlimits.ts';
import { interfacesIn, stableHostInterfaces } from '../helpers/net.ts';
import { tempDir } from '../helpers/run.ts';
import { bundleTool, busyboxConfig, makeBusyboxRootfs, readSpec, runBundle, uniqueId, writeConfig } from './fixtures.ts';

/**
 * Bundles from berth-bundle run unchanged under runc and crun and do what the
 * flags asked. Each test generates a bundle from a busybox rootfs
 * (--rootfs/--image-config), validates its config.json, runs it with
 * `RUNTIME run` and always deletes the container. Needs root.
 */

let tmp: { path: string; cleanup: () => void };
let rootfs: string;
let imageConfig: string;
let data: string;

beforeAll(async () => {
  tmp = tempDir('berth-bundle-run-');
  rootfs = await makeBusyboxRootfs(join(tmp.path, 'rootfs'));
  imageConfig = writeConfig(tmp.path, 'config.json', busyboxConfig({ Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'FROM_IMAGE=yes'], WorkingDir: '/' }));
  data = join(tmp.path, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'greeting.txt'), 'hello from the host\n');
}, 60_000);

afterAll(() => {
  tmp?.cleanup();
  // runc and crun leave the empty parent cgroup /berth behind (as podman leaves machine.slice): remove it when nothing else uses it.
  for (const ctl of ['memory', 'pids', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'blkio', 'systemd', 'unified']) {
    try { rmdirSync(`/sys/fs/cgroup/${ctl}/berth`); } catch { /* in use by another container, or absent */ }
  }
});

function generate(flags: string[], command: string[]): { bundle: string; id: string } {
  const id = uniqueId('bb');
  const bundle = join(tmp.path, 'bundles', id);
  const r = bundleTool(['--rootfs', rootfs, '--image-config', imageConfig, '--bundle-dir', bundle, '--name', id, ...flags, '--', ...command]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.json).toMatchObject({ kind: 'bundle', id, bundle });
  readSpec(bundle);
  return { bundle, id };
}

function capsFrom(status: string, field: string): string[] {
  const hex = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1];
  expect(hex).toBeDefined();
  const mask = BigInt(`0x${hex}`);
  return KNOWN_CAPABILITIES.filter((_, i) => ((mask >> BigInt(i)) & 1n) === 1n);
}

describe.each(['runc', 'crun'] as const)('bundles run under %s', (runtime) => {
  const state = () => {
    const dir = join(tmp.path, `state-${runtime}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  const run = (flags: string[], command: string[]) => {
    const { bundle, id } = generate(flags, command);
    return runBundle(runtime, bundle, id, state());
  };

  test('env, working directory, user with supplementary groups, hostname', () => {
    const r = run(['-e', 'GREETING=hi there', '-w', '/home/tux/work', '-u', 'tux', '--hostname', 'box-1'],
      ['sh', '-c', 'echo "$GREETING|$FROM_IMAGE|$HOME"; pwd; id; hostname; cat /etc/hostname; grep box-1 /etc/hosts']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      'hi there|yes|/home/tux',
      '/home/tux/work',
      'uid=1000(tux) gid=1000(tux) groups=10(wheel),29(audio),1000(tux)',
      'box-1',
      'box-1',
      '127.0.1.1\tbox-1',
      '',
    ]);
  });

  test('a read-only bind mount shows the host files and refuses writes', () => {
    const r = run(['-v', `${data}:/data:ro`], ['sh', '-c', 'cat /data/greeting.txt; touch /data/new 2>&1; echo touch=$?']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('hello from the host\n');
    expect(r.stdout).toMatch(/Read-only file system\ntouch=1/);
  });

  test('--read-only: the rootfs refuses writes, /tmp stays writable', () => {
    const r = run(['--read-only'], ['sh', '-c', 'touch /newfile 2>&1; echo root=$?; touch /tmp/ok && echo tmp=$?']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Read-only file system\nroot=1\ntmp=0/);
  });

  test('capabilities: podman\'s default set, --cap-drop and --cap-add; masked /proc/timer_list and /sys/firmware, read-only /proc/sys', () => {
    // The host's /proc/timer_list and /sys/firmware are not empty (checked first); masked, they are.
    expect(readFileSync('/proc/timer_list', 'utf8').length).toBeGreaterThan(0);
    const def = run([], ['sh', '-c', 'cat /proc/self/status; echo timers=$(wc -c < /proc/timer_list) firmware=$(ls /sys/firmware | wc -l); (echo x > /proc/sys/kernel/domainname) 2>&1; echo sys=$?']);
    expect(def.code).toBe(0);
    expect(capsFrom(def.stdout, 'CapBnd').sort()).toEqual([...DEFAULT_CAPABILITIES].sort());
    expect(capsFrom(def.stdout, 'CapEff').sort()).toEqual([...DEFAULT_CAPABILITIES].sort());
    expect(capsFrom(def.stdout, 'CapBnd')).not.toContain('CAP_SYS_ADMIN');
    expect(def.stdout).toContain('timers=0 firmware=0');
    expect(def.stdout).toMatch(/Read-only file system\nsys=1/);

    const changed = run(['--cap-drop', 'chown,NET_BIND_SERVICE', '--cap-add', 'CAP_NET_ADMIN'], ['sh', '-c', 'cat /proc/self/status; chown 1000 /tmp 2>&1; echo chown=$?']);
    const bnd = capsFrom(changed.stdout, 'CapBnd');
    expect(bnd).toContain('CAP_NET_ADMIN');
    expect(bnd).not.toContain('CAP_CHOWN');
    expect(bnd).not.toContain('CAP_NET_BIND_SERVICE');
    expect(changed.stdout).toMatch(/Operation not permitted\nchown=1/);
  });

  test('seccomp refuses unshare and mount with EPERM; seccomp=unconfined lets unshare through', () => {
    // unshare(CLONE_NEWUSER) needs no capability, so only the seccomp filter can refuse it.
    const confined = run([], ['sh', '-c', 'unshare -U true; echo unshare=$?; mount -t tmpfs none /mnt; echo mount=$?']);
    expect(confined.stderr).toMatch(/unshare\(0x10000000\): Operation not permitted/);
    expect(confined.stdout).toContain('unshare=1');
    expect(confined.stderr).toMatch(/mount: permission denied/);
    expect(confined.stdout).toContain('mount=1');
    const unconfined = run(['--security-opt', 'seccomp=unconfined'], ['sh', '-c', 'unshare -U true; echo unshare=$?']);
    expect(unconfined.stdout).toContain('unshare=0');
  });

  test('a memory limit kills an allocation beyond it (SIGKILL, 137)', () => {
    const r = run(['--memory', '16m'], ['sh', '-c', 'x=$(head -c 64000000 /dev/zero | tr "\\0" a); echo survived']);
    expect(r.stdout).not.toContain('survived');
    expect(r.code).toBe(137);
  });

  test('rlimits: defaults capped at the caller\'s hard limit; --ulimit sets them', () => {
    const hard = parseProcLimits(readFileSync('/proc/self/limits', 'utf8')).get('RLIMIT_NOFILE')!;
    const expected = Math.min(hard, 1048576);
    const r = run([], ['sh', '-c', 'ulimit -n']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(String(expected));
    const set = run(['--ulimit', 'nofile=256:512', '--pids-limit', '50'], ['sh', '-c', 'ulimit -n; ulimit -Hn']);
    expect(set.stdout).toBe('256\n512\n');
  });

  test('--network ns:PATH and --pod join existing namespaces; the pod keeps its hostname', () => {
    // A network namespace told apart by a per-namespace sysctl, and a UTS namespace with its own hostname.
    const netns = `berth-bb-${process.pid}-${runtime}`;
    const uts = join(tmp.path, `uts-${runtime}`);
    execFileSync('ip', ['netns', 'add', netns]);
    try {
      execFileSync('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', 'net.ipv4.ip_default_ttl=33']);
      writeFileSync(uts, '');
      execFileSync('unshare', [`--uts=${uts}`, 'hostname', 'podhost']);
      const joined = run(['--network', `ns:/run/netns/${netns}`], ['cat', '/proc/sys/net/ipv4/ip_default_ttl']);
      expect(joined.stdout).toBe('33\n');
      const pod = join(tmp.path, `pod-${runtime}.json`);
      writeFileSync(pod, JSON.stringify({ kind: 'pod', hostname: 'podhost', namespaces: { network: `/run/netns/${netns}`, uts } }));
      const inPod = run(['--pod', pod], ['sh', '-c', 'cat /proc/sys/net/ipv4/ip_default_ttl; hostname; cat /etc/hostname']);
      expect(inPod.stderr).toBe('');
      expect(inPod.stdout).toBe('33\npodhost\npodhost\n');
    } finally {
      spawnSync('umount', [uts]);
      spawnSync('ip', ['netns', 'del', netns]);
    }
  });

  test('--network none (the default) has only loopback; --network host shares the host\'s interfaces and hostname', () => {
    const none = run([], ['cat', '/proc/net/dev']);
    expect(interfacesIn(none.stdout)).toEqual(['lo']);
    const { result: host, interfaces } = stableHostInterfaces(() => run(['--network', 'host'], ['sh', '-c', 'hostname; cat /proc/net/dev']));
    const [name, ...dev] = host.stdout.split('\n');
    expect(name).toBe(hostname());
    expect(interfaces.length).toBeGreaterThan(1);
    expect(interfacesIn(dev.join('\n'))).toEqual(expect.arrayContaining(interfaces));
  });

  test('--init runs catatonit as PID 1, the command as its child', () => {
    const r = run(['--init'], ['sh', '-c', 'tr "\\0" " " < /proc/1/cmdline; echo; echo pid=$$']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\/run\/berth-init -- sh -c /);
    expect(r.stdout).not.toContain('pid=1\n');
  });
});
