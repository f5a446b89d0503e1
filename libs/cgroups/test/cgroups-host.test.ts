/**
 * Against the host's real cgroup hierarchies (root; this host is hybrid: v1
 * controllers plus cgroup2 at /sys/fs/cgroup/unified), and against a cgroup2
 * mount made for the test. Every cgroup lives under /berth-test-RANDOM and is
 * removed in afterAll.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { detectCgroupMode, openCgroup, v1Hierarchies, type Cgroup } from '../src/index.ts';

const ROOT = '/sys/fs/cgroup';
const parent = `/berth-test-${randomBytes(4).toString('hex')}`;
const children: ChildProcess[] = [];
const cgroups: Cgroup[] = [];

function spawnChild(cmd: string, args: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

function output(child: ChildProcess): () => string {
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  return () => out;
}

function procState(pid: number): string {
  return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
}

function newCgroup(name: string): Cgroup {
  const cg = openCgroup({ id: name, path: `${parent}/${name}`, root: ROOT });
  cgroups.push(cg);
  cg.create();
  return cg;
}

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(async () => {
  for (const cg of cgroups) await cg.destroy().catch(() => undefined);
  // The parent directories create() made on the way down.
  for (const h of v1Hierarchies(ROOT)) if (existsSync(join(h.mount, parent))) rmdirSync(join(h.mount, parent));
  if (existsSync(join(ROOT, 'unified', parent))) rmdirSync(join(ROOT, 'unified', parent));
});

describe('the host hierarchy (hybrid)', () => {
  it('is detected as hybrid', () => {
    expect(detectCgroupMode(ROOT)).toBe('hybrid');
  });

  it('limits a process: memory, pids, cpu and cpuset read back from the kernel', async () => {
    const cg = newCgroup('limits');
    cg.apply({
      memory: { limit: 64 << 20, reservation: 32 << 20, swap: 64 << 20 },
      pids: { limit: 16 },
      cpu: { shares: 512, quota: 25_000, period: 100_000, cpus: '0' },
    });
    const sleeper = spawnChild('sleep', ['60']);
    cg.addProcess(sleeper.pid!);
    const p = cg.paths;
    expect(readFileSync(join(p.memory!, 'memory.limit_in_bytes'), 'utf8').trim()).toBe(String(64 << 20));
    expect(readFileSync(join(p.memory!, 'memory.memsw.limit_in_bytes'), 'utf8').trim()).toBe(String(64 << 20));
    expect(readFileSync(join(p.memory!, 'memory.soft_limit_in_bytes'), 'utf8').trim()).toBe(String(32 << 20));
    expect(readFileSync(join(p.pids!, 'pids.max'), 'utf8').trim()).toBe('16');
    expect(readFileSync(join(p.cpu!, 'cpu.shares'), 'utf8').trim()).toBe('512');
    expect(readFileSync(join(p.cpu!, 'cpu.cfs_quota_us'), 'utf8').trim()).toBe('25000');
    expect(readFileSync(join(p.cpuset!, 'cpuset.cpus'), 'utf8').trim()).toBe('0');
    // The kernel says the process is in our cgroup in every hierarchy, the unified one included.
    const procCgroup = readFileSync(`/proc/${sleeper.pid}/cgroup`, 'utf8');
    for (const key of ['memory', 'pids', 'cpu', 'cpuset', 'devices', 'freezer', 'blkio', 'name=systemd', '']) {
      expect(procCgroup).toMatch(new RegExp(`^\\d+:${key}:${parent}/limits$`, 'm'));
    }
    expect(cg.pids()).toEqual([sleeper.pid]);
    expect(cg.stats().pids).toEqual({ current: 1, limit: 16 });
    expect(cg.stats().memory?.limit).toBe(64 << 20);
  });

  it('pids.max stops forks past the limit', async () => {
    const cg = newCgroup('forks');
    cg.apply({ pids: { limit: 4 } });
    const sh = spawnChild('busybox', ['sh', '-c', 'read go; for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; wait']);
    const out = output(sh);
    cg.addProcess(sh.pid!);
    sh.stdin!.write('go\n');
    for (let i = 0; i < 200 && !/fork/i.test(out()); i++) await sleep(10);
    expect(out()).toMatch(/can't fork|Resource temporarily unavailable/i);
    // The kernel counted the refusals, and the cgroup never held more than 4.
    expect(readFileSync(join(cg.paths.pids!, 'pids.events'), 'utf8')).toMatch(/^max [1-9]/m);
    expect(Number(readFileSync(join(cg.paths.pids!, 'pids.peak'), 'utf8'))).toBe(4);
    expect(cg.pids().length).toBeLessThanOrEqual(4);
    // The background sleeps outlive the shell; killAll reaches them through the cgroup.
    await cg.killAll('SIGKILL');
    for (let i = 0; i < 200 && cg.pids().length > 0; i++) await sleep(10);
    expect(cg.pids()).toEqual([]);
  });

  it('the device controller refuses what the rules do not allow', async () => {
    const cg = newCgroup('devices');
    cg.apply({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }] });
    expect(readFileSync(join(cg.paths.devices!, 'devices.list'), 'utf8').trim()).toBe('c 1:3 rw');
    const sh = spawnChild('busybox', ['sh', '-c', 'read go; echo hi > /dev/null && echo null-ok; head -c 1 /dev/zero >/dev/null && echo zero-ok; true']);
    const out = output(sh);
    cg.addProcess(sh.pid!);
    sh.stdin!.write('go\n');
    await exited(sh);
    expect(out()).toContain('null-ok');
    expect(out()).not.toContain('zero-ok');
    expect(out()).toMatch(/\/dev\/zero: Operation not permitted/);
  });

  it('freezes and thaws: the process stops in the freezer and runs again', async () => {
    const cg = newCgroup('freeze');
    const sleeper = spawnChild('sleep', ['60']);
    cg.addProcess(sleeper.pid!);
    await cg.freeze();
    expect(cg.freezerState()).toBe('frozen');
    expect(readFileSync(join(cg.paths.freezer!, 'freezer.state'), 'utf8').trim()).toBe('FROZEN');
    // A frozen task sleeps uninterruptibly in the freezer.
    expect(procState(sleeper.pid!)).toBe('D');
    await cg.thaw();
    expect(cg.freezerState()).toBe('thawed');
    expect(procState(sleeper.pid!)).toBe('S');
  });

  it('an allocation past memory.limit_in_bytes is OOM-killed and oomKilled() says so', async () => {
    const cg = newCgroup('oom');
    cg.apply({ memory: { limit: 16 << 20, swap: 16 << 20 } });
    expect(cg.oomKilled()).toBe(false);
    // The shell keeps the command substitution's 64 MiB output in its own memory.
    const sh = spawnChild('busybox', ['sh', '-c', 'read go; x=$(head -c 67108864 /dev/zero | tr "\\0" a); echo survived ${#x}']);
    const out = output(sh);
    cg.addProcess(sh.pid!);
    sh.stdin!.write('go\n');
    const { signal } = await exited(sh);
    expect(out()).not.toContain('survived');
    expect(signal).toBe('SIGKILL');
    expect(cg.oomKilled()).toBe(true);
    expect(cg.stats().memory?.oomKills).toBeGreaterThan(0);
  });

  it('killAll sends a signal to every process, frozen first when it is not SIGKILL', async () => {
    const cg = newCgroup('kill');
    const a = spawnChild('sleep', ['60']);
    const b = spawnChild('sleep', ['60']);
    cg.addProcess(a.pid!);
    cg.addProcess(b.pid!);
    await cg.killAll('SIGTERM');
    expect(await exited(a)).toEqual({ code: null, signal: 'SIGTERM' });
    expect(await exited(b)).toEqual({ code: null, signal: 'SIGTERM' });
    expect(cg.freezerState()).toBe('thawed');
  });

  it('a signal to a paused cgroup waits for resume, and the cgroup stays paused', async () => {
    const cg = newCgroup('paused-term');
    const sleeper = spawnChild('sleep', ['60']);
    cg.addProcess(sleeper.pid!);
    await cg.freeze();
    await cg.killAll('SIGTERM');
    expect(cg.freezerState()).toBe('frozen');
    expect(procState(sleeper.pid!)).toBe('D');
    await cg.thaw();
    expect(await exited(sleeper)).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('puts hugetlb limits in the unified hierarchy, the only place this host offers it', () => {
    const before = readFileSync(join(ROOT, 'unified', 'cgroup.subtree_control'), 'utf8').trim();
    try {
      const cg = newCgroup('hugetlb');
      cg.apply({ hugepageLimits: [{ pageSize: '2MB', limit: 4 * 2097152 }] });
      expect(readFileSync(join(cg.paths.unified!, 'hugetlb.2MB.max'), 'utf8').trim()).toBe(String(4 * 2097152));
    } finally {
      // subtree_control of the unified root is host-wide: put it back.
      cleanupHugetlb(before);
    }
  });

  it('destroy kills what is left and removes every directory, child cgroups included', async () => {
    const cg = newCgroup('destroy');
    const sleeper = spawnChild('sleep', ['60']);
    cg.addProcess(sleeper.pid!);
    // A container with a cgroup namespace may make cgroups of its own.
    spawnSync('mkdir', [join(cg.paths.memory!, 'inner'), join(cg.paths.pids!, 'inner')]);
    await cg.destroy();
    expect(await exited(sleeper)).toEqual({ code: null, signal: 'SIGKILL' });
    for (const dir of Object.values(cg.paths)) expect(existsSync(dir), dir).toBe(false);
    expect(cg.exists()).toBe(false);
    // Destroying again is not an error: delete --force after a crash.
    await cg.destroy();
  });

  it('destroy of a frozen (paused) cgroup thaws it so the processes can die', async () => {
    const cg = newCgroup('paused');
    const sleeper = spawnChild('sleep', ['60']);
    cg.addProcess(sleeper.pid!);
    await cg.freeze();
    await cg.destroy();
    expect(await exited(sleeper)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(cg.exists()).toBe(false);
  });

  it('says which file and errno when the kernel refuses a value', () => {
    const cg = newCgroup('einval');
    // No machine has CPU 100000: the kernel's cpulist parser says ERANGE.
    expect(() => cg.apply({ cpu: { cpus: '100000' } })).toThrow(`cgroup: write 100000 to ${join(cg.paths.cpuset!, 'cpuset.cpus')}: ERANGE`);
    // A real-time budget larger than the parent's (0 in a new cgroup): EINVAL.
    expect(() => cg.apply({ cpu: { realtimeRuntime: 10_000 } })).toThrow(`cgroup: write 10000 to ${join(cg.paths.cpu!, 'cpu.rt_runtime_us')}: EINVAL`);
  });
});

function cleanupHugetlb(before: string): void {
  const u = join(ROOT, 'unified');
  const dir = join(u, parent, 'hugetlb');
  if (existsSync(dir)) rmdirSync(dir);
  if (!before.split(/\s+/).includes('hugetlb')) {
    writeFileSync(join(u, parent, 'cgroup.subtree_control'), '-hugetlb');
    writeFileSync(join(u, 'cgroup.subtree_control'), '-hugetlb');
  }
}

describe('a cgroup2 mount', () => {
  let mnt: string;

  it('works as a v2 host: create, join, freeze with cgroup.freeze, kill with cgroup.kill, destroy', async () => {
    mnt = mkdtempSync(join(tmpdir(), 'berth-cgroup2-'));
    const mounted = spawnSync('mount', ['-t', 'cgroup2', 'none', mnt], { encoding: 'utf8' });
    expect(mounted.status, mounted.stderr).toBe(0);
    const before = readFileSync(join(mnt, 'cgroup.subtree_control'), 'utf8').trim();
    try {
      expect(detectCgroupMode(mnt)).toBe('v2');
      const cg = openCgroup({ id: 'v2', path: `${parent}-v2/c`, root: mnt });
      cg.create();
      // Only what no v1 hierarchy holds is offered here; memory is not.
      expect(() => cg.apply({ memory: { limit: 1 << 24 } })).toThrow(`cgroup: linux.resources.memory needs the memory controller, which the cgroup v2 hierarchy at ${mnt} does not offer`);
      const sleeper = spawnChild('sleep', ['60']);
      cg.addProcess(sleeper.pid!);
      expect(cg.pids()).toEqual([sleeper.pid]);
      expect(readFileSync(`/proc/${sleeper.pid}/cgroup`, 'utf8')).toContain(`0::${parent}-v2/c\n`);
      await cg.freeze();
      expect(readFileSync(join(cg.paths.unified!, 'cgroup.events'), 'utf8')).toContain('frozen 1');
      await cg.thaw();
      expect(readFileSync(join(cg.paths.unified!, 'cgroup.events'), 'utf8')).toContain('frozen 0');
      await cg.killAll('SIGKILL');
      expect(await exited(sleeper)).toEqual({ code: null, signal: 'SIGKILL' });
      await cg.destroy();
      expect(existsSync(cg.paths.unified!)).toBe(false);
      rmdirSync(join(mnt, `${parent}-v2`));
    } finally {
      const now = readFileSync(join(mnt, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/).filter(Boolean);
      for (const c of now) if (!before.split(/\s+/).includes(c)) writeFileSync(join(mnt, 'cgroup.subtree_control'), `-${c}`);
      spawnSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });
});
