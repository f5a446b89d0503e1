/**
 * linux.resources turned into control-file writes, in the order they must
 * happen. Planning is separate from writing so that every check (a missing
 * controller, a field this cgroup version cannot express) runs before the
 * first byte is written, and so a test can read the plan.
 *
 * Kernel references: Documentation/admin-guide/cgroup-v1/{memory,cpusets,
 * devices,blkio-controller,pids,hugetlb,net_cls,net_prio,rdma}.rst and
 * sched-bwc.rst; Documentation/admin-guide/cgroup-v2.rst for v2.
 */
import { BerthError, log } from '@berth/cli-kit';
import type { DeviceCgroupRule, LinuxResources } from '@berth/oci-spec';

/** One write of `value` to `file` (a name inside the controller's directory). */
export interface ControlWrite {
  controller: string;
  file: string;
  value: string;
}

/** What the planner may look at: which controllers exist, which files, current values. */
export interface PlanHost {
  /** Is this controller available to the container's cgroup? */
  has(controller: string): boolean;
  /** Does the controller's directory offer this file? */
  hasFile(controller: string, file: string): boolean;
  /** The current value of a control file, if it exists. */
  read(controller: string, file: string): string | undefined;
  /** Where the hierarchy lives, for error messages. */
  describe: string;
}

function fail(message: string): never {
  throw new BerthError('E_CGROUP', `cgroup: ${message}`);
}

function need(host: PlanHost, controller: string, field: string): void {
  if (!host.has(controller)) fail(`linux.resources.${field} needs the ${controller} controller, which ${host.describe} does not offer`);
}

function set(v: number | undefined): v is number {
  return v !== undefined && v !== 0;
}

/** devices.allow/deny syntax: "TYPE MAJOR:MINOR ACCESS", '*' for any number. */
export function deviceRuleLine(d: DeviceCgroupRule): string {
  const num = (n: number | null | undefined) => (n === undefined || n === null || n === -1 ? '*' : String(n));
  return `${d.type ?? 'a'} ${num(d.major)}:${num(d.minor)} ${d.access ?? 'rwm'}`;
}

/** The writes for a set of cgroup v1 hierarchies. */
export function planV1(r: LinuxResources, host: PlanHost): ControlWrite[] {
  const out: ControlWrite[] = [];
  const w = (controller: string, file: string, value: string | number) => out.push({ controller, file, value: String(value) });

  if (r.unified && Object.keys(r.unified).length > 0) {
    fail(`linux.resources.unified (${Object.keys(r.unified).join(', ')}) needs cgroup v2; this host has only cgroup v1`);
  }

  if (r.devices !== undefined) {
    need(host, 'devices', 'devices');
    // Deny everything first, then walk the rules in order: the v1 device
    // controller keeps a list where later entries refine earlier ones, so
    // the spec's order is the order of the writes.
    w('devices', 'devices.deny', 'a');
    for (const d of r.devices) w('devices', d.allow ? 'devices.allow' : 'devices.deny', deviceRuleLine(d));
  }

  const m = r.memory;
  if (m !== undefined) {
    const wants = set(m.limit) || set(m.reservation) || set(m.swap) || m.swappiness !== undefined || m.disableOOMKiller === true;
    if (wants) need(host, 'memory', 'memory');
    const limit = set(m.limit) ? m.limit : undefined;
    const swap = set(m.swap) ? m.swap : undefined;
    if (swap !== undefined && !host.hasFile('memory', 'memory.memsw.limit_in_bytes')) {
      fail('linux.resources.memory.swap needs swap accounting (memory.memsw.limit_in_bytes is missing; boot with swapaccount=1)');
    }
    if (swap !== undefined) {
      // The kernel keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes
      // at every moment. Raising memsw goes first (so the new limit fits under
      // it); lowering it goes last (after the limit came down).
      const current = BigInt(host.read('memory', 'memory.memsw.limit_in_bytes') ?? '0');
      const raising = swap === -1 || BigInt(swap) >= current;
      if (raising) {
        w('memory', 'memory.memsw.limit_in_bytes', swap);
        if (limit !== undefined) w('memory', 'memory.limit_in_bytes', limit);
      } else {
        if (limit !== undefined) w('memory', 'memory.limit_in_bytes', limit);
        w('memory', 'memory.memsw.limit_in_bytes', swap);
      }
    } else if (limit !== undefined) {
      w('memory', 'memory.limit_in_bytes', limit);
    }
    if (set(m.reservation)) w('memory', 'memory.soft_limit_in_bytes', m.reservation);
    if (m.swappiness !== undefined) w('memory', 'memory.swappiness', m.swappiness);
    if (m.disableOOMKiller === true) w('memory', 'memory.oom_control', 1);
    if (set(m.kernel) || set(m.kernelTCP)) {
      log.warn('cgroup: linux.resources.memory.kernel and kernelTCP are ignored: the kernel deprecated kernel memory limits (5.4) and no longer enforces them');
    }
  }

  const c = r.cpu;
  if (c !== undefined) {
    if (set(c.shares)) { need(host, 'cpu', 'cpu.shares'); w('cpu', 'cpu.shares', c.shares); }
    // CFS bandwidth (sched-bwc.rst): the period first, so the quota is
    // checked against the period it will run with.
    if (set(c.period)) { need(host, 'cpu', 'cpu.period'); w('cpu', 'cpu.cfs_period_us', c.period); }
    if (set(c.quota)) { need(host, 'cpu', 'cpu.quota'); w('cpu', 'cpu.cfs_quota_us', c.quota); }
    if (c.burst !== undefined) {
      need(host, 'cpu', 'cpu.burst');
      if (!host.hasFile('cpu', 'cpu.cfs_burst_us')) fail('linux.resources.cpu.burst needs cpu.cfs_burst_us (kernel 5.14 or later)');
      w('cpu', 'cpu.cfs_burst_us', c.burst);
    }
    // Real-time: the period first, since the runtime must fit inside it.
    if (set(c.realtimePeriod)) { need(host, 'cpu', 'cpu.realtimePeriod'); w('cpu', 'cpu.rt_period_us', c.realtimePeriod); }
    if (c.realtimeRuntime !== undefined) { need(host, 'cpu', 'cpu.realtimeRuntime'); w('cpu', 'cpu.rt_runtime_us', c.realtimeRuntime); }
    if (c.idle !== undefined) { need(host, 'cpu', 'cpu.idle'); w('cpu', 'cpu.idle', c.idle); }
    if (c.cpus) { need(host, 'cpuset', 'cpu.cpus'); w('cpuset', 'cpuset.cpus', c.cpus); }
    if (c.mems) { need(host, 'cpuset', 'cpu.mems'); w('cpuset', 'cpuset.mems', c.mems); }
  }

  if (r.pids !== undefined) {
    need(host, 'pids', 'pids');
    w('pids', 'pids.max', r.pids.limit > 0 ? r.pids.limit : 'max');
  }

  const b = r.blockIO;
  if (b !== undefined) {
    const anything = set(b.weight) || set(b.leafWeight) || (b.weightDevice?.length ?? 0) > 0 || (b.throttleReadBpsDevice?.length ?? 0) > 0
      || (b.throttleWriteBpsDevice?.length ?? 0) > 0 || (b.throttleReadIOPSDevice?.length ?? 0) > 0 || (b.throttleWriteIOPSDevice?.length ?? 0) > 0;
    if (anything) need(host, 'blkio', 'blockIO');
    // CFQ's blkio.weight went away with the legacy block layer; BFQ offers
    // blkio.bfq.weight with the same range when it is the I/O scheduler.
    const weightFile = host.hasFile('blkio', 'blkio.weight') ? 'blkio.weight' : host.hasFile('blkio', 'blkio.bfq.weight') ? 'blkio.bfq.weight' : undefined;
    if (set(b.weight) || (b.weightDevice ?? []).some((d) => d.weight !== undefined)) {
      if (!weightFile) fail('linux.resources.blockIO.weight needs blkio.weight or blkio.bfq.weight (the CFQ or BFQ I/O scheduler)');
    }
    if (set(b.weight)) w('blkio', weightFile!, b.weight);
    if (set(b.leafWeight)) {
      if (!host.hasFile('blkio', 'blkio.leaf_weight')) fail('linux.resources.blockIO.leafWeight needs blkio.leaf_weight (the CFQ scheduler, gone since kernel 5.0)');
      w('blkio', 'blkio.leaf_weight', b.leafWeight);
    }
    for (const d of b.weightDevice ?? []) {
      if (d.weight !== undefined) w('blkio', `${weightFile!}_device`, `${d.major}:${d.minor} ${d.weight}`);
      if (d.leafWeight !== undefined) {
        if (!host.hasFile('blkio', 'blkio.leaf_weight_device')) fail('linux.resources.blockIO.weightDevice[].leafWeight needs blkio.leaf_weight_device (the CFQ scheduler)');
        w('blkio', 'blkio.leaf_weight_device', `${d.major}:${d.minor} ${d.leafWeight}`);
      }
    }
    const throttles = [
      ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
      ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
      ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
      ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
    ] as const;
    for (const [key, file] of throttles) {
      for (const d of b[key] ?? []) w('blkio', file, `${d.major}:${d.minor} ${d.rate}`);
    }
  }

  for (const h of r.hugepageLimits ?? []) { need(host, 'hugetlb', 'hugepageLimits'); w('hugetlb', `hugetlb.${h.pageSize}.limit_in_bytes`, h.limit); }

  if (r.network?.classID !== undefined) { need(host, 'net_cls', 'network.classID'); w('net_cls', 'net_cls.classid', r.network.classID); }
  for (const p of r.network?.priorities ?? []) { need(host, 'net_prio', 'network.priorities'); w('net_prio', 'net_prio.ifpriomap', `${p.name} ${p.priority}`); }

  for (const [dev, l] of Object.entries(r.rdma ?? {})) {
    need(host, 'rdma', 'rdma');
    w('rdma', 'rdma.max', rdmaLine(dev, l));
  }

  return out;
}

/**
 * A hybrid host: each controller is used where it is mounted. Whatever a v1
 * hierarchy holds is written v1-style; a controller only the unified
 * hierarchy offers (hugetlb here; on some hosts pids or io) is written
 * v2-style into the unified directory; `unified` keys go there too. The v2
 * writes come back with controller "unified:NAME".
 */
export function planHybrid(r: LinuxResources, v1: PlanHost, unified: PlanHost): ControlWrite[] {
  const toV2 = (v1Name: string, v2Name = v1Name) => !v1.has(v1Name) && unified.has(v2Name);
  const a: LinuxResources = {};
  const b: LinuxResources = {};
  if (r.devices !== undefined) (v1.has('devices') ? a : b).devices = r.devices;
  if (r.memory !== undefined) (toV2('memory') ? b : a).memory = r.memory;
  if (r.cpu !== undefined) {
    const { cpus, mems, ...cpu } = r.cpu;
    if (Object.keys(cpu).length > 0) (toV2('cpu') ? b : a).cpu = cpu;
    if (cpus !== undefined || mems !== undefined) {
      const side = toV2('cpuset') ? b : a;
      side.cpu = { ...side.cpu, ...(cpus !== undefined ? { cpus } : {}), ...(mems !== undefined ? { mems } : {}) };
    }
  }
  if (r.pids !== undefined) (toV2('pids') ? b : a).pids = r.pids;
  if (r.blockIO !== undefined) (toV2('blkio', 'io') ? b : a).blockIO = r.blockIO;
  if (r.hugepageLimits !== undefined) (toV2('hugetlb') ? b : a).hugepageLimits = r.hugepageLimits;
  if (r.rdma !== undefined) (toV2('rdma') ? b : a).rdma = r.rdma;
  if (r.network !== undefined) a.network = r.network;
  if (r.unified !== undefined) b.unified = r.unified;
  return [
    ...planV1(a, v1),
    ...planV2(b, unified).map((w) => ({ ...w, controller: `unified:${w.controller}` })),
  ];
}

function rdmaLine(dev: string, l: { hcaHandles?: number; hcaObjects?: number }): string {
  return `${dev} hca_handle=${l.hcaHandles ?? 'max'} hca_object=${l.hcaObjects ?? 'max'}`;
}

/** cpu.shares (2-262144, default 1024) to cpu.weight (1-10000, default 100), linearly. */
export function sharesToWeight(shares: number): number {
  return Math.floor(1 + ((shares - 2) * 9999) / 262142);
}

/** blkio.weight (10-1000) to io.weight (1-10000), linearly. */
export function blkioWeightToIoWeight(weight: number): number {
  return Math.floor(1 + ((weight - 10) * 9999) / 990);
}

/**
 * The writes for a cgroup v2 directory. Every controller named must be
 * enabled in the parent's cgroup.subtree_control, which create() does.
 */
export function planV2(r: LinuxResources, host: PlanHost): ControlWrite[] {
  const out: ControlWrite[] = [];
  const w = (controller: string, file: string, value: string | number) => out.push({ controller, file, value: String(value) });

  if (r.devices !== undefined && r.devices.length > 0) {
    // v2 has no devices files: access is decided by an eBPF program attached
    // to the cgroup (BPF_CGROUP_DEVICE), which berth does not build.
    log.warn('cgroup: linux.resources.devices is not enforced on cgroup v2 (needs a BPF_CGROUP_DEVICE program, not supported by berth); device nodes still come only from linux.devices');
  }

  const m = r.memory;
  if (m !== undefined) {
    const limit = set(m.limit) ? m.limit : undefined;
    const swap = set(m.swap) ? m.swap : undefined;
    if (limit !== undefined || swap !== undefined || set(m.reservation)) need(host, 'memory', 'memory');
    // memory.low is applied before memory.max: a protection above the new
    // limit would make no sense, and the kernel takes them independently.
    if (set(m.reservation)) w('memory', 'memory.low', m.reservation === -1 ? 'max' : m.reservation);
    if (limit !== undefined) w('memory', 'memory.max', limit === -1 ? 'max' : limit);
    if (swap !== undefined) {
      // The spec's swap is memory+swap (v1's memsw); v2's memory.swap.max is
      // swap alone.
      if (!host.hasFile('memory', 'memory.swap.max')) fail('linux.resources.memory.swap needs memory.swap.max (swap accounting)');
      if (swap === -1) w('memory', 'memory.swap.max', 'max');
      else if (limit === undefined || limit === -1) fail('linux.resources.memory.swap needs a memory.limit on cgroup v2, where swap is limited on its own');
      else w('memory', 'memory.swap.max', swap - limit);
    }
    if (m.swappiness !== undefined) log.warn('cgroup: linux.resources.memory.swappiness has no cgroup v2 equivalent and is ignored');
    if (m.disableOOMKiller === true) log.warn('cgroup: linux.resources.memory.disableOOMKiller has no cgroup v2 equivalent and is ignored');
    if (set(m.kernel) || set(m.kernelTCP)) log.warn('cgroup: linux.resources.memory.kernel and kernelTCP are ignored on cgroup v2');
  }

  const c = r.cpu;
  if (c !== undefined) {
    if (set(c.realtimePeriod) || set(c.realtimeRuntime)) fail('linux.resources.cpu.realtimePeriod and realtimeRuntime are not supported by cgroup v2');
    if (set(c.shares)) { need(host, 'cpu', 'cpu.shares'); w('cpu', 'cpu.weight', sharesToWeight(c.shares)); }
    if (set(c.quota) || set(c.period)) {
      need(host, 'cpu', 'cpu.quota');
      const quota = set(c.quota) && c.quota > 0 ? String(c.quota) : 'max';
      w('cpu', 'cpu.max', set(c.period) ? `${quota} ${c.period}` : quota);
    }
    if (c.burst !== undefined) { need(host, 'cpu', 'cpu.burst'); w('cpu', 'cpu.max.burst', c.burst); }
    if (c.idle !== undefined) { need(host, 'cpu', 'cpu.idle'); w('cpu', 'cpu.idle', c.idle); }
    if (c.cpus) { need(host, 'cpuset', 'cpu.cpus'); w('cpuset', 'cpuset.cpus', c.cpus); }
    if (c.mems) { need(host, 'cpuset', 'cpu.mems'); w('cpuset', 'cpuset.mems', c.mems); }
  }

  if (r.pids !== undefined) {
    need(host, 'pids', 'pids');
    w('pids', 'pids.max', r.pids.limit > 0 ? r.pids.limit : 'max');
  }

  const b = r.blockIO;
  if (b !== undefined) {
    const bfq = host.hasFile('io', 'io.bfq.weight');
    if (set(b.weight) || (b.weightDevice ?? []).length > 0) need(host, 'io', 'blockIO.weight');
    // io.bfq.weight takes v1's 10-1000 range as is; io.weight wants 1-10000.
    if (set(b.weight)) w('io', bfq ? 'io.bfq.weight' : 'io.weight', bfq ? `default ${b.weight}` : `default ${blkioWeightToIoWeight(b.weight)}`);
    if (set(b.leafWeight)) fail('linux.resources.blockIO.leafWeight is not supported by cgroup v2');
    for (const d of b.weightDevice ?? []) {
      if (d.leafWeight !== undefined) fail('linux.resources.blockIO.weightDevice[].leafWeight is not supported by cgroup v2');
      if (d.weight !== undefined) w('io', bfq ? 'io.bfq.weight' : 'io.weight', `${d.major}:${d.minor} ${bfq ? d.weight : blkioWeightToIoWeight(d.weight)}`);
    }
    const throttles = [
      ['throttleReadBpsDevice', 'rbps'], ['throttleWriteBpsDevice', 'wbps'],
      ['throttleReadIOPSDevice', 'riops'], ['throttleWriteIOPSDevice', 'wiops'],
    ] as const;
    for (const [key, name] of throttles) {
      for (const d of b[key] ?? []) {
        need(host, 'io', `blockIO.${key}`);
        // io.max keeps the keys a write does not mention, so one key per write is fine.
        w('io', 'io.max', `${d.major}:${d.minor} ${name}=${d.rate === 0 ? 'max' : d.rate}`);
      }
    }
  }

  for (const h of r.hugepageLimits ?? []) { need(host, 'hugetlb', 'hugepageLimits'); w('hugetlb', `hugetlb.${h.pageSize}.max`, h.limit); }

  if (r.network?.classID !== undefined || (r.network?.priorities?.length ?? 0) > 0) {
    fail('linux.resources.network (net_cls, net_prio) is not supported by cgroup v2; use an eBPF or nftables cgroup match instead');
  }

  for (const [dev, l] of Object.entries(r.rdma ?? {})) { need(host, 'rdma', 'rdma'); w('rdma', 'rdma.max', rdmaLine(dev, l)); }

  for (const [key, value] of Object.entries(r.unified ?? {})) {
    const controller = key.split('.')[0]!;
    if (controller !== 'cgroup') need(host, controller, `unified.${key}`);
    w(controller === 'cgroup' ? 'unified' : controller, key, value);
  }
  return out;
}
