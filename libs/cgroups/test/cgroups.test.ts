import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { log } from '@berth/cli-kit';
import type { LinuxResources } from '@berth/oci-spec';
import { DEFAULT_ALLOWED_DEVICES, detectCgroupMode, openCgroup, sharesToWeight, v1Hierarchies, validateResources, type OpenCgroupOptions } from '../src/index.ts';
import { fakeHybrid, fakeV1, fakeV2 } from './fake-hierarchy.ts';

let root: string;
let writes: Array<[string, string]>;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'berth-cgroup-fake-'));
  writes = [];
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Open with the write trace recorded as [path relative to root, value]. */
function open(opts: Partial<OpenCgroupOptions> = {}) {
  return openCgroup({ id: 'c1', path: '/berth/c1', root, trace: (file, value) => writes.push([file.slice(root.length + 1), value]), ...opts });
}

function read(rel: string): string {
  return readFileSync(join(root, rel), 'utf8');
}

describe('detectCgroupMode', () => {
  it('tells v1, v2 and hybrid apart', () => {
    fakeV1(join(root, 'a'), []);
    fakeV2(join(root, 'b'), []);
    fakeHybrid(join(root, 'c'), []);
    expect(detectCgroupMode(join(root, 'a'))).toBe('v1');
    expect(detectCgroupMode(join(root, 'b'))).toBe('v2');
    expect(detectCgroupMode(join(root, 'c'))).toBe('hybrid');
  });

  it('says so when nothing is mounted', () => {
    expect(() => detectCgroupMode(join(root, 'missing'))).toThrow(`cgroup: ${join(root, 'missing')} does not exist`);
    expect(() => detectCgroupMode(root)).toThrow('no cgroup hierarchy under');
  });

  it('finds co-mounted controllers once, through their symlinks', () => {
    mkdirSync(join(root, 'cpu,cpuacct'));
    writeFileSync(join(root, 'cpu,cpuacct', 'cgroup.procs'), '');
    symlinkSync('cpu,cpuacct', join(root, 'cpu'));
    symlinkSync('cpu,cpuacct', join(root, 'cpuacct'));
    fakeV1(root, [], ['memory', 'systemd']);
    expect(v1Hierarchies(root)).toEqual([
      { key: 'cpu,cpuacct', mount: join(root, 'cpu,cpuacct'), controllers: ['cpu', 'cpuacct'] },
      { key: 'memory', mount: join(root, 'memory'), controllers: ['memory'] },
      { key: 'name=systemd', mount: join(root, 'systemd'), controllers: [] },
    ]);
  });
});

describe('cgroup paths', () => {
  it('places an absolute cgroupsPath under every hierarchy, the unified one too on hybrid hosts', () => {
    fakeHybrid(root, []);
    const cg = open();
    expect(cg.mode).toBe('hybrid');
    expect(cg.paths).toEqual({
      blkio: join(root, 'blkio/berth/c1'), cpu: join(root, 'cpu/berth/c1'), cpuacct: join(root, 'cpuacct/berth/c1'),
      cpuset: join(root, 'cpuset/berth/c1'), devices: join(root, 'devices/berth/c1'), freezer: join(root, 'freezer/berth/c1'),
      memory: join(root, 'memory/berth/c1'), pids: join(root, 'pids/berth/c1'), 'name=systemd': join(root, 'systemd/berth/c1'),
      unified: join(root, 'unified/berth/c1'),
    });
  });

  it('places a relative cgroupsPath under the caller\'s own cgroup in each hierarchy', () => {
    fakeV1(root, [], ['memory', 'pids']);
    const self = join(root, 'self-cgroup');
    writeFileSync(self, '4:memory:/session/7\n8:pids:/\n0::/\n');
    const cg = open({ path: 'berth/c1', selfCgroupFile: self });
    expect(cg.paths).toEqual({ memory: join(root, 'memory/session/7/berth/c1'), pids: join(root, 'pids/berth/c1') });
  });

  it('uses the container id, relative, when cgroupsPath is empty (as runc does)', () => {
    fakeV2(root, []);
    const self = join(root, 'self-cgroup');
    writeFileSync(self, '0::/user.slice\n');
    expect(open({ path: undefined, id: 'web', selfCgroupFile: self }).paths.unified).toBe(join(root, 'user.slice/web'));
  });

  it('maps systemd\'s slice:prefix:name to the directory systemd would make', () => {
    fakeV2(root, []);
    expect(open({ path: 'machine-pods.slice:berth:c1' }).paths.unified).toBe(join(root, 'machine.slice/machine-pods.slice/berth-c1.scope'));
  });

  it('refuses paths that leave the hierarchy or name its root', () => {
    fakeV2(root, []);
    expect(() => open({ path: '/berth/../../etc' })).toThrow('cgroupsPath "/berth/../../etc" must not contain ".."');
    expect(() => open({ path: '/' })).toThrow('resolves to the root cgroup');
    expect(() => open({ path: undefined, id: 'a/b' })).toThrow('container id "a/b" cannot name a cgroup');
  });
});

describe('create', () => {
  it('fills cpuset.cpus and cpuset.mems from the parent, top down, before anything can join (v1)', () => {
    fakeV1(root, ['/berth/c1'], ['cpuset']);
    open().create();
    expect(writes).toEqual([
      ['cpuset/berth/cpuset.cpus', '0-3'], ['cpuset/berth/cpuset.mems', '0-1'],
      ['cpuset/berth/c1/cpuset.cpus', '0-3'], ['cpuset/berth/c1/cpuset.mems', '0-1'],
    ]);
  });

  it('makes the directories it does not find', () => {
    fakeV1(root, [], ['memory', 'pids']);
    const cg = open({ path: '/a/b/c' });
    expect(cg.exists()).toBe(false);
    cg.create();
    expect(cg.exists()).toBe(true);
  });

  it('enables the offered controllers in every ancestor\'s subtree_control, root first (v2)', () => {
    fakeV2(root, ['/berth/c1']);
    open().create();
    const all = '+cpuset +cpu +io +memory +hugetlb +pids';
    expect(writes).toEqual([['cgroup.subtree_control', all], ['berth/cgroup.subtree_control', all]]);
  });
});

describe('apply on cgroup v1', () => {
  const full: LinuxResources = {
    devices: [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' },
      { allow: true, type: 'c', major: 136, minor: null, access: 'rwm' },
      { allow: false, type: 'c', major: 1, minor: 3, access: 'w' },
    ],
    memory: { limit: 64 << 20, reservation: 32 << 20, swap: 128 << 20, swappiness: 10, disableOOMKiller: true },
    cpu: { shares: 512, quota: 50_000, period: 100_000, burst: 10_000, realtimePeriod: 1_000_000, realtimeRuntime: 0, cpus: '0-1', mems: '0' },
    pids: { limit: 64 },
    blockIO: { weight: 300, weightDevice: [{ major: 8, minor: 0, weight: 200 }], throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }], throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 100 }] },
  };

  it('writes each field to its file, in order', () => {
    fakeV1(root, ['/berth/c1']);
    const cg = open();
    cg.apply(full);
    expect(writes).toEqual([
      // devices: deny all, then the rules in the spec's order
      ['devices/berth/c1/devices.deny', 'a'],
      ['devices/berth/c1/devices.deny', 'a *:* rwm'],
      ['devices/berth/c1/devices.allow', 'c 1:3 rw'],
      ['devices/berth/c1/devices.allow', 'c 136:* rwm'],
      ['devices/berth/c1/devices.deny', 'c 1:3 w'],
      // memsw comes down from "unlimited": the limit first
      ['memory/berth/c1/memory.limit_in_bytes', String(64 << 20)],
      ['memory/berth/c1/memory.memsw.limit_in_bytes', String(128 << 20)],
      ['memory/berth/c1/memory.soft_limit_in_bytes', String(32 << 20)],
      ['memory/berth/c1/memory.swappiness', '10'],
      ['memory/berth/c1/memory.oom_control', '1'],
      ['cpu/berth/c1/cpu.shares', '512'],
      ['cpu/berth/c1/cpu.cfs_period_us', '100000'],
      ['cpu/berth/c1/cpu.cfs_quota_us', '50000'],
      ['cpu/berth/c1/cpu.cfs_burst_us', '10000'],
      ['cpu/berth/c1/cpu.rt_period_us', '1000000'],
      ['cpu/berth/c1/cpu.rt_runtime_us', '0'],
      ['cpuset/berth/c1/cpuset.cpus', '0-1'],
      ['cpuset/berth/c1/cpuset.mems', '0'],
      ['pids/berth/c1/pids.max', '64'],
      // no blkio.weight on this kernel: BFQ's file takes the same range
      ['blkio/berth/c1/blkio.bfq.weight', '300'],
      ['blkio/berth/c1/blkio.bfq.weight_device', '8:0 200'],
      ['blkio/berth/c1/blkio.throttle.read_bps_device', '8:0 1048576'],
      ['blkio/berth/c1/blkio.throttle.write_iops_device', '8:16 100'],
    ]);
    expect(read('memory/berth/c1/memory.limit_in_bytes')).toBe(String(64 << 20));
  });

  it('raises memory+swap before the memory limit when swap goes up', () => {
    fakeV1(root, ['/berth/c1'], ['memory']);
    writeFileSync(join(root, 'memory/berth/c1/memory.limit_in_bytes'), String(32 << 20));
    writeFileSync(join(root, 'memory/berth/c1/memory.memsw.limit_in_bytes'), String(32 << 20));
    open().apply({ memory: { limit: 256 << 20, swap: 512 << 20 } });
    expect(writes).toEqual([
      ['memory/berth/c1/memory.memsw.limit_in_bytes', String(512 << 20)],
      ['memory/berth/c1/memory.limit_in_bytes', String(256 << 20)],
    ]);
  });

  it('writes -1 and max for unlimited', () => {
    fakeV1(root, ['/berth/c1'], ['memory', 'pids']);
    open().apply({ memory: { limit: -1, swap: -1 }, pids: { limit: -1 } });
    expect(writes).toEqual([
      ['memory/berth/c1/memory.memsw.limit_in_bytes', '-1'],
      ['memory/berth/c1/memory.limit_in_bytes', '-1'],
      ['pids/berth/c1/pids.max', 'max'],
    ]);
  });

  it('puts hugetlb limits in the unified directory of a hybrid host, enabling hugetlb on the way down', () => {
    fakeHybrid(root, ['/berth/c1']);
    open().apply({ hugepageLimits: [{ pageSize: '2MB', limit: 4 << 21 }] });
    expect(writes).toEqual([
      ['unified/cgroup.subtree_control', '+hugetlb'],
      ['unified/berth/cgroup.subtree_control', '+hugetlb'],
      ['unified/berth/c1/hugetlb.2MB.max', String(4 << 21)],
    ]);
  });

  it('uses each controller where a hybrid host mounts it: v1 files for v1 controllers, v2 files in unified for the rest', () => {
    fakeHybrid(root, ['/berth/c1'], 'pids io hugetlb', ['memory', 'cpu', 'cpuset', 'systemd']);
    open().apply({
      memory: { limit: 64 << 20 },
      cpu: { shares: 512, cpus: '1' },
      pids: { limit: 10 },
      blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1000 }] },
      unified: { 'pids.max': '12' },
    });
    expect(writes).toEqual([
      // only what the writes need is enabled, root first
      ['unified/cgroup.subtree_control', '+pids +io'],
      ['unified/berth/cgroup.subtree_control', '+pids +io'],
      ['memory/berth/c1/memory.limit_in_bytes', String(64 << 20)],
      ['cpu/berth/c1/cpu.shares', '512'],
      ['cpuset/berth/c1/cpuset.cpus', '1'],
      ['unified/berth/c1/pids.max', '10'],
      ['unified/berth/c1/io.max', '8:0 rbps=1000'],
      ['unified/berth/c1/pids.max', '12'],
    ]);
  });

  it('refuses unified on a v1-only host and what no mounted controller can do, writing nothing', () => {
    fakeV1(root, ['/berth/c1']);
    const cg = open();
    expect(() => cg.apply({ pids: { limit: 5 }, unified: { 'memory.high': '1G' } }))
      .toThrow('cgroup: linux.resources.unified (memory.high) needs cgroup v2; this host has only cgroup v1');
    expect(() => cg.apply({ pids: { limit: 5 }, network: { classID: 0x100001 } }))
      .toThrow(`cgroup: linux.resources.network.classID needs the net_cls controller, which the cgroup v1 hierarchies under ${root} does not offer`);
    expect(() => cg.apply({ blockIO: { leafWeight: 500 } })).toThrow('blockIO.leafWeight needs blkio.leaf_weight');
    expect(writes).toEqual([]);
  });

  it('refuses to apply before create', () => {
    fakeV1(root, []);
    expect(() => open().apply({ pids: { limit: 5 } })).toThrow('create() the cgroup before applying limits');
  });

  it('names the file and the errno when the kernel offers no such file', () => {
    fakeV1(root, ['/berth/c1'], ['memory']);
    rmSync(join(root, 'memory/berth/c1/memory.swappiness'));
    expect(() => open().apply({ memory: { swappiness: 5 } }))
      .toThrow(`cgroup: write 5 to ${join(root, 'memory/berth/c1/memory.swappiness')}: ENOENT`);
  });

  it('writes the default device rules as the runtime appends them', () => {
    fakeV1(root, ['/berth/c1'], ['devices']);
    open().apply({ devices: [{ allow: false, access: 'rwm' }, ...DEFAULT_ALLOWED_DEVICES] });
    expect(writes.map(([, v]) => v)).toEqual([
      'a', 'a *:* rwm', 'c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm',
      'c 5:0 rwm', 'c 5:1 rwm', 'c 5:2 rwm', 'c 136:* rwm', 'c 10:200 rwm',
    ]);
  });
});

describe('apply on cgroup v2', () => {
  it('converts the spec to v2 files: memory.max, swap alone, cpu.weight, cpu.max, io.max, pids.max', () => {
    fakeV2(root, ['/berth/c1']);
    open().apply({
      memory: { limit: 64 << 20, reservation: 32 << 20, swap: 96 << 20 },
      cpu: { shares: 1024, quota: 50_000, period: 100_000, cpus: '1', mems: '0' },
      pids: { limit: 0 },
      blockIO: { weight: 500, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }], throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 0 }] },
      hugepageLimits: [{ pageSize: '2MB', limit: 0 }],
      unified: { 'memory.high': '48M' },
    });
    expect(writes).toEqual([
      ['berth/c1/memory.low', String(32 << 20)],
      ['berth/c1/memory.max', String(64 << 20)],
      ['berth/c1/memory.swap.max', String(32 << 20)],
      ['berth/c1/cpu.weight', String(sharesToWeight(1024))],
      ['berth/c1/cpu.max', '50000 100000'],
      ['berth/c1/cpuset.cpus', '1'],
      ['berth/c1/cpuset.mems', '0'],
      ['berth/c1/pids.max', 'max'],
      ['berth/c1/io.weight', 'default 4950'],
      ['berth/c1/io.max', '8:0 rbps=1048576'],
      ['berth/c1/io.max', '8:0 wiops=max'],
      ['berth/c1/hugetlb.2MB.max', '0'],
      ['berth/c1/memory.high', '48M'],
    ]);
    expect(sharesToWeight(1024)).toBe(39);
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(262144)).toBe(10000);
  });

  it('writes max for an unlimited quota and keeps the period', () => {
    fakeV2(root, ['/berth/c1']);
    open().apply({ cpu: { quota: -1, period: 200_000 }, memory: { limit: -1, swap: -1 } });
    expect(writes).toEqual([['berth/c1/memory.max', 'max'], ['berth/c1/memory.swap.max', 'max'], ['berth/c1/cpu.max', 'max 200000']]);
  });

  it('refuses what v2 cannot express, and does not write device rules', () => {
    fakeV2(root, ['/berth/c1']);
    const cg = open();
    expect(() => cg.apply({ cpu: { realtimeRuntime: 1000, realtimePeriod: 10000 } })).toThrow('realtimePeriod and realtimeRuntime are not supported by cgroup v2');
    expect(() => cg.apply({ network: { classID: 1 } })).toThrow('linux.resources.network (net_cls, net_prio) is not supported by cgroup v2');
    expect(() => cg.apply({ rdma: { mlx5_0: { hcaHandles: 3 } } })).toThrow('needs the rdma controller');
    const warnings: string[] = [];
    log.configure({ write: (line) => warnings.push(line) });
    try {
      cg.apply({ devices: [{ allow: false, access: 'rwm' }] });
    } finally {
      log.configure({ write: (line) => process.stderr.write(line) });
    }
    expect(writes).toEqual([]);
    expect(warnings.join('')).toContain('linux.resources.devices is not enforced on cgroup v2');
  });
});

describe('validateResources', () => {
  const bad: Array<[string, unknown, string]> = [
    ['a negative memory limit', { memory: { limit: -5 } }, 'memory.limit must be a number of bytes, or -1 for unlimited, got -5'],
    ['memory+swap below memory', { memory: { limit: 100 << 20, swap: 50 << 20 } }, 'memory.swap (52428800) is memory+swap and must be >= memory.limit (104857600)'],
    ['swap without a limit', { memory: { swap: 50 << 20 } }, 'memory.swap needs memory.limit'],
    ['swappiness 101', { memory: { swappiness: 101 } }, 'memory.swappiness must be an integer between 0 and 100, got 101'],
    ['cpu shares 1', { cpu: { shares: 1 } }, 'cpu.shares must be an integer between 2 and 262144, got 1'],
    ['a quota under 1ms', { cpu: { quota: 10 } }, 'cpu.quota must be microseconds, -1 for unlimited, or >= 1000, got 10'],
    ['a period over 1s', { cpu: { period: 2_000_000 } }, 'cpu.period must be microseconds between 1000 and 1000000'],
    ['a cpu list in words', { cpu: { cpus: 'all' } }, 'cpu.cpus must be a list like "0-3,6", got "all"'],
    ['a fractional pids limit', { pids: { limit: 1.5 } }, 'pids.limit must be an integer'],
    ['a blkio weight of 5', { blockIO: { weight: 5 } }, 'blockIO.weight must be an integer between 10 and 1000'],
    ['device access x', { devices: [{ allow: true, access: 'rwx' }] }, 'devices[0].access must combine r, w and m, got "rwx"'],
    ['device type p', { devices: [{ allow: true, type: 'p' }] }, 'devices[0].type must be "a", "c" or "b"'],
    ['a page size in bytes', { hugepageLimits: [{ pageSize: '2097152', limit: 0 }] }, 'hugepageLimits[0].pageSize must look like "2MB"'],
    ['a unified key with a slash', { unified: { '../memory.max': '1' } }, 'unified key "../memory.max" is not a cgroup v2 file name'],
    ['a unified write to cgroup.procs', { unified: { 'cgroup.procs': '1' } }, 'unified key cgroup.procs is managed by the runtime'],
    ['a string limit', { memory: { limit: '1g' } }, 'memory.limit must be a number of bytes, or -1 for unlimited, got "1g"'],
  ];
  for (const [what, resources, message] of bad) {
    it(`refuses ${what}`, () => {
      expect(() => validateResources(resources)).toThrow(`cgroup: linux.resources.${message}`);
    });
  }

  it('accepts zeros as "not set", as runc reads them', () => {
    expect(() => validateResources({ memory: { limit: 0, swap: 0 }, cpu: { shares: 0, quota: 0, period: 0 }, blockIO: { weight: 0 } })).not.toThrow();
  });
});

describe('reading the kernel files', () => {
  it('reports an OOM kill from memory.oom_control (v1) and memory.events (v2)', () => {
    fakeV1(join(root, 'v1'), ['/berth/c1'], ['memory']);
    fakeV2(join(root, 'v2'), ['/berth/c1']);
    const v1 = openCgroup({ id: 'c1', path: '/berth/c1', root: join(root, 'v1') });
    const v2 = openCgroup({ id: 'c1', path: '/berth/c1', root: join(root, 'v2') });
    expect(v1.oomKilled()).toBe(false);
    expect(v2.oomKilled()).toBe(false);
    writeFileSync(join(root, 'v1/memory/berth/c1/memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    writeFileSync(join(root, 'v2/berth/c1/memory.events'), 'low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n');
    expect(v1.oomKilled()).toBe(true);
    expect(v2.oomKilled()).toBe(true);
  });

  it('collects stats in bytes and nanoseconds', () => {
    fakeV2(root, ['/berth/c1']);
    writeFileSync(join(root, 'berth/c1/memory.current'), '1048576\n');
    writeFileSync(join(root, 'berth/c1/memory.max'), '2097152\n');
    writeFileSync(join(root, 'berth/c1/cpu.stat'), 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\nnr_throttled 1\nthrottled_usec 20\n');
    writeFileSync(join(root, 'berth/c1/pids.current'), '3\n');
    writeFileSync(join(root, 'berth/c1/pids.max'), '10\n');
    expect(open().stats()).toEqual({
      memory: { usage: 1048576, limit: 2097152, oomKills: 0, stat: {} },
      cpu: { usageNs: 1_500_000, userNs: 1_000_000, systemNs: 500_000, periods: 3, throttledPeriods: 1, throttledNs: 20_000 },
      pids: { current: 3, limit: 10 },
    });
  });

  it('lists the processes of the cgroup and its children', () => {
    fakeV1(root, ['/berth/c1', '/berth/c1/inner'], ['pids']);
    writeFileSync(join(root, 'pids/berth/c1/cgroup.procs'), '40\n12\n');
    writeFileSync(join(root, 'pids/berth/c1/inner/cgroup.procs'), '77\n');
    expect(open().pids()).toEqual([12, 40, 77]);
  });
});
