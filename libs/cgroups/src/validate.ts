/**
 * Checks on linux.resources (config-linux.md#control-groups) before any file
 * is written, so a bad value is reported by field name and nothing is left
 * half-applied.
 */
import { BerthError } from '@berth/cli-kit';
import type { LinuxResources } from '@berth/oci-spec';

function fail(message: string): never {
  throw new BerthError('E_CGROUP', `cgroup: linux.resources.${message}`);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

function int(v: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER, what = 'an integer'): void {
  if (v === undefined) return;
  if (!isInt(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
    fail(`${field} must be ${what} ${range}, got ${JSON.stringify(v)}`);
  }
}

/** Bytes, where -1 means unlimited and 0 means "not set" (as runc reads them). */
function bytes(v: unknown, field: string): void {
  if (v === undefined) return;
  if (!isInt(v) || v < -1) fail(`${field} must be a number of bytes, or -1 for unlimited, got ${JSON.stringify(v)}`);
}

/** The kernel's cpu list format (cpuset(7)): "0-3,8,10-11". */
const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;
const PAGE_SIZE = /^\d+[KMG]B$/;

function deviceNumber(v: unknown, field: string): void {
  if (v === undefined || v === null) return;
  if (!isInt(v) || v < -1) fail(`${field} must be a device number >= 0, or -1/null for any, got ${JSON.stringify(v)}`);
}

/** Check every field this lib writes; throws a BerthError naming the first bad one. */
export function validateResources(input: unknown): LinuxResources {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) fail('must be an object');
  const r = input as LinuxResources;

  if (r.memory !== undefined) {
    const m = r.memory;
    bytes(m.limit, 'memory.limit');
    bytes(m.reservation, 'memory.reservation');
    bytes(m.swap, 'memory.swap');
    bytes(m.kernel, 'memory.kernel');
    bytes(m.kernelTCP, 'memory.kernelTCP');
    int(m.swappiness, 'memory.swappiness', 0, 100);
    if (m.disableOOMKiller !== undefined && typeof m.disableOOMKiller !== 'boolean') fail(`memory.disableOOMKiller must be a boolean, got ${JSON.stringify(m.disableOOMKiller)}`);
    // memory.swap is the limit on memory+swap together, so it cannot be below
    // the memory limit (the kernel refuses memsw < limit with EINVAL).
    if (isInt(m.swap) && m.swap > 0 && isInt(m.limit) && m.limit > 0 && m.swap < m.limit) {
      fail(`memory.swap (${m.swap}) is memory+swap and must be >= memory.limit (${m.limit}), or -1`);
    }
    if (isInt(m.swap) && m.swap > 0 && (m.limit === undefined || m.limit === 0)) {
      fail('memory.swap needs memory.limit: swap is limited as memory+swap');
    }
  }

  if (r.cpu !== undefined) {
    const c = r.cpu;
    if (c.shares !== undefined && c.shares !== 0) int(c.shares, 'cpu.shares', 2, 262144);
    if (c.quota !== undefined && c.quota !== 0 && c.quota !== -1) int(c.quota, 'cpu.quota', 1000, Number.MAX_SAFE_INTEGER, 'microseconds, -1 for unlimited, or');
    if (c.period !== undefined && c.period !== 0) int(c.period, 'cpu.period', 1000, 1_000_000, 'microseconds');
    int(c.burst, 'cpu.burst', 0);
    if (isInt(c.burst) && c.burst > 0 && isInt(c.quota) && c.quota > 0 && c.burst > c.quota) fail(`cpu.burst (${c.burst}) must not exceed cpu.quota (${c.quota})`);
    if (c.realtimeRuntime !== undefined && c.realtimeRuntime !== -1) int(c.realtimeRuntime, 'cpu.realtimeRuntime', 0);
    int(c.realtimePeriod, 'cpu.realtimePeriod', 0);
    int(c.idle, 'cpu.idle', 0, 1);
    for (const k of ['cpus', 'mems'] as const) {
      const v = c[k];
      if (v !== undefined && v !== '' && (typeof v !== 'string' || !CPU_LIST.test(v))) fail(`cpu.${k} must be a list like "0-3,6", got ${JSON.stringify(v)}`);
    }
  }

  if (r.pids !== undefined) {
    if (!isInt(r.pids.limit)) fail(`pids.limit must be an integer (0 or -1 for unlimited), got ${JSON.stringify(r.pids.limit)}`);
  }

  if (r.blockIO !== undefined) {
    const b = r.blockIO;
    if (b.weight !== undefined && b.weight !== 0) int(b.weight, 'blockIO.weight', 10, 1000);
    if (b.leafWeight !== undefined && b.leafWeight !== 0) int(b.leafWeight, 'blockIO.leafWeight', 10, 1000);
    for (const [i, d] of (b.weightDevice ?? []).entries()) {
      int(d.major, `blockIO.weightDevice[${i}].major`, 0);
      int(d.minor, `blockIO.weightDevice[${i}].minor`, 0);
      if (d.weight !== undefined) int(d.weight, `blockIO.weightDevice[${i}].weight`, 10, 1000);
      if (d.leafWeight !== undefined) int(d.leafWeight, `blockIO.weightDevice[${i}].leafWeight`, 10, 1000);
    }
    for (const key of ['throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice'] as const) {
      for (const [i, d] of (b[key] ?? []).entries()) {
        int(d.major, `blockIO.${key}[${i}].major`, 0);
        int(d.minor, `blockIO.${key}[${i}].minor`, 0);
        int(d.rate, `blockIO.${key}[${i}].rate`, 0);
      }
    }
  }

  for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
    if (typeof h.pageSize !== 'string' || !PAGE_SIZE.test(h.pageSize)) fail(`hugepageLimits[${i}].pageSize must look like "2MB" or "1GB", got ${JSON.stringify(h.pageSize)}`);
    int(h.limit, `hugepageLimits[${i}].limit`, 0);
  }

  if (r.network !== undefined) {
    int(r.network.classID, 'network.classID', 0, 0xffffffff);
    for (const [i, p] of (r.network.priorities ?? []).entries()) {
      if (typeof p.name !== 'string' || !/^[^\s/]+$/.test(p.name)) fail(`network.priorities[${i}].name must be an interface name, got ${JSON.stringify(p.name)}`);
      int(p.priority, `network.priorities[${i}].priority`, 0, 0xffffffff);
    }
  }

  for (const [name, limits] of Object.entries(r.rdma ?? {})) {
    if (!/^[^\s/]+$/.test(name)) fail(`rdma key ${JSON.stringify(name)} must be a device name`);
    int(limits.hcaHandles, `rdma.${name}.hcaHandles`, 0, 0xffffffff);
    int(limits.hcaObjects, `rdma.${name}.hcaObjects`, 0, 0xffffffff);
  }

  for (const [i, d] of (r.devices ?? []).entries()) {
    if (typeof d.allow !== 'boolean') fail(`devices[${i}].allow must be a boolean, got ${JSON.stringify(d.allow)}`);
    if (d.type !== undefined && !['a', 'c', 'b'].includes(d.type)) fail(`devices[${i}].type must be "a", "c" or "b", got ${JSON.stringify(d.type)}`);
    deviceNumber(d.major, `devices[${i}].major`);
    deviceNumber(d.minor, `devices[${i}].minor`);
    if (d.access !== undefined && (typeof d.access !== 'string' || !/^[rwm]{1,3}$/.test(d.access) || new Set(d.access).size !== d.access.length)) {
      fail(`devices[${i}].access must combine r, w and m, got ${JSON.stringify(d.access)}`);
    }
  }

  for (const [key, value] of Object.entries(r.unified ?? {})) {
    // Keys are file names in the container's own cgroup directory; a slash or
    // a dot-dot would reach outside it.
    if (!/^[a-z0-9_]+\.[a-zA-Z0-9_.]+$/.test(key) || key.includes('..')) fail(`unified key ${JSON.stringify(key)} is not a cgroup v2 file name like "memory.high"`);
    if (key === 'cgroup.procs' || key === 'cgroup.threads' || key === 'cgroup.subtree_control') fail(`unified key ${key} is managed by the runtime`);
    if (typeof value !== 'string') fail(`unified.${key} must be a string, got ${JSON.stringify(value)}`);
  }
  return r;
}
