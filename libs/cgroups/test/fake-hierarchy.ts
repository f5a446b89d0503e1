/**
 * A cgroup hierarchy laid out in a temp dir with the files the kernel would
 * show, for unit tests that check which file gets which value. The kernel
 * fills a new cgroup directory itself; here the container's directories are
 * laid out in advance (create() finds them existing, as it would when joining
 * a pre-made cgroup), with the values a fresh kernel cgroup has.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const UNLIMITED = '9223372036854771712';

type Files = Record<string, string>;

const v1Files: Record<string, { root: Files; child: Files }> = {
  memory: {
    root: { 'memory.limit_in_bytes': UNLIMITED, 'memory.memsw.limit_in_bytes': UNLIMITED, 'memory.usage_in_bytes': '0', 'memory.stat': '', 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0', 'memory.swappiness': '60' },
    child: {
      'memory.limit_in_bytes': UNLIMITED, 'memory.memsw.limit_in_bytes': UNLIMITED, 'memory.soft_limit_in_bytes': UNLIMITED,
      'memory.swappiness': '60', 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0', 'memory.usage_in_bytes': '0',
      'memory.max_usage_in_bytes': '0', 'memory.failcnt': '0', 'memory.stat': 'cache 0\nrss 0', 'memory.kmem.limit_in_bytes': UNLIMITED,
    },
  },
  cpu: {
    root: { 'cpu.shares': '1024' },
    child: { 'cpu.shares': '1024', 'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '-1', 'cpu.cfs_burst_us': '0', 'cpu.rt_period_us': '1000000', 'cpu.rt_runtime_us': '0', 'cpu.idle': '0', 'cpu.stat': 'nr_periods 0\nnr_throttled 0\nthrottled_time 0' },
  },
  cpuacct: { root: {}, child: { 'cpuacct.usage': '0', 'cpuacct.stat': 'user 0\nsystem 0' } },
  cpuset: { root: { 'cpuset.cpus': '0-3', 'cpuset.mems': '0-1' }, child: { 'cpuset.cpus': '', 'cpuset.mems': '' } },
  devices: { root: {}, child: { 'devices.allow': '', 'devices.deny': '', 'devices.list': 'a *:* rwm' } },
  freezer: { root: {}, child: { 'freezer.state': 'THAWED' } },
  blkio: {
    root: {},
    child: {
      'blkio.bfq.weight': 'default 100', 'blkio.bfq.weight_device': '', 'blkio.throttle.read_bps_device': '', 'blkio.throttle.write_bps_device': '',
      'blkio.throttle.read_iops_device': '', 'blkio.throttle.write_iops_device': '',
    },
  },
  pids: { root: {}, child: { 'pids.max': 'max', 'pids.current': '0' } },
  systemd: { root: {}, child: {} },
};

const v2Controllers = 'cpuset cpu io memory hugetlb pids';
const v2Root: Files = { 'cgroup.controllers': v2Controllers, 'cgroup.subtree_control': '', 'cgroup.procs': '' };
const v2Child: Files = {
  'cgroup.controllers': v2Controllers, 'cgroup.subtree_control': '', 'cgroup.procs': '', 'cgroup.freeze': '0', 'cgroup.events': 'populated 0\nfrozen 0',
  'memory.max': 'max', 'memory.low': '0', 'memory.high': 'max', 'memory.swap.max': 'max', 'memory.current': '0', 'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0', 'memory.stat': '',
  'cpu.weight': '100', 'cpu.max': 'max 100000', 'cpu.max.burst': '0', 'cpu.idle': '0', 'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0',
  'cpuset.cpus': '', 'cpuset.mems': '', 'io.max': '', 'io.weight': 'default 100', 'pids.max': 'max', 'pids.current': '0', 'hugetlb.2MB.max': 'max',
};

function lay(dir: string, files: Files): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, name), value);
}

function levels(cgroupPath: string): string[] {
  const parts = cgroupPath.split('/').filter(Boolean);
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

/** v1 controllers, one mount each, like this host (no co-mounts). */
export function fakeV1(root: string, cgroupPaths: string[], controllers = Object.keys(v1Files)): void {
  for (const c of controllers) {
    const mount = join(root, c);
    lay(mount, { 'cgroup.procs': '', ...v1Files[c]!.root });
    for (const p of cgroupPaths) for (const level of levels(p)) lay(join(mount, level), { 'cgroup.procs': '', ...v1Files[c]!.child });
  }
}

/** v1 plus a cgroup2 mount at ROOT/unified offering only `unified` controllers. */
export function fakeHybrid(root: string, cgroupPaths: string[], unified = 'hugetlb', v1Controllers = Object.keys(v1Files)): void {
  fakeV1(root, cgroupPaths, v1Controllers);
  lay(join(root, 'unified'), { ...v2Root, 'cgroup.controllers': unified });
  for (const p of cgroupPaths) for (const level of levels(p)) lay(join(root, 'unified', level), { ...v2Child, 'cgroup.controllers': unified });
}

export function fakeV2(root: string, cgroupPaths: string[]): void {
  lay(root, v2Root);
  for (const p of cgroupPaths) for (const level of levels(p)) lay(join(root, level), v2Child);
}
