/**
 * What /proc says about a process (proc(5)): the login uid and session the
 * audit subsystem stamps on its records, credentials and user-namespace
 * maps, the five capability sets (capabilities(7)), no_new_privs and seccomp,
 * namespace inodes (namespaces(7): two processes share a namespace when
 * /proc/PID/ns/X point at the same inode), cgroup membership (cgroups(7)) and
 * the LSM label. Every reader returns null for what the kernel does not have
 * rather than guessing.
 */
import { readFileSync, readdirSync, readlinkSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/cli-kit';
import { KNOWN_CAPABILITIES } from '@berth/oci-spec';
import { UNSET_ID } from './records.ts';

export const NAMESPACE_TYPES = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts'] as const;
export type NamespaceType = (typeof NAMESPACE_TYPES)[number];

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

export function processExists(pid: number): boolean {
  return Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`);
}

/** Throw a clear error when there is no such process. */
export function requireProcess(pid: number): void {
  if (!processExists(pid)) throw new BerthError('E_NO_PROCESS', `no process with pid ${pid}: /proc/${pid} does not exist`);
}

/** /proc/PID/status as name -> value. */
export function procStatus(pid: number): Record<string, string> {
  const text = readText(`/proc/${pid}/status`);
  if (text === null) throw new BerthError('E_NO_PROCESS', `read /proc/${pid}/status: the process is gone`);
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  startTime: string;
}

/** /proc/PID/stat; comm sits in parentheses and may hold spaces or ')', so split at the last ')'. */
export function procStat(pid: number): ProcStat | null {
  const text = readText(`/proc/${pid}/stat`);
  if (text === null) return null;
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const rest = text.slice(close + 2).split(' ');
  return { pid, comm, state: rest[0]!, ppid: Number(rest[1]), pgrp: Number(rest[2]), session: Number(rest[3]), startTime: rest[19]! };
}

/** The login uid (auid) and session id, or null for unset (4294967295). */
export function loginIds(pid: number): { loginuid: number | null; sessionid: number | null } {
  const read = (f: string) => {
    const t = readText(`/proc/${pid}/${f}`);
    if (t === null) return null;
    const n = Number(t.trim());
    return Number.isFinite(n) && n !== UNSET_ID ? n : null;
  };
  return { loginuid: read('loginuid'), sessionid: read('sessionid') };
}

let passwd: Map<number, string> | undefined;
/** A uid's name in the host's /etc/passwd, or null. */
export function userName(uid: number | null): string | null {
  if (uid === null) return null;
  if (!passwd) {
    passwd = new Map();
    for (const line of (readText('/etc/passwd') ?? '').split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && !passwd.has(Number(f[2]))) passwd.set(Number(f[2]), f[0]!);
    }
  }
  return passwd.get(uid) ?? null;
}

export function exePath(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

export function cmdline(pid: number): string[] {
  const t = readText(`/proc/${pid}/cmdline`);
  return t ? t.replace(/\0$/, '').split('\0') : [];
}

export interface IdMapEntry { inside: number; outside: number; count: number }

export function idMap(pid: number, which: 'uid_map' | 'gid_map'): IdMapEntry[] {
  return (readText(`/proc/${pid}/${which}`) ?? '').split('\n').map((l) => l.trim().split(/\s+/).map(Number))
    .filter((f) => f.length === 3 && f.every(Number.isFinite))
    .map(([inside, outside, count]) => ({ inside: inside!, outside: outside!, count: count! }));
}

/** A capability mask (hex, as /proc/PID/status prints it) as names, lowest bit first. */
export function capNames(hex: string): string[] {
  const mask = BigInt(`0x${hex}`);
  const out: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (mask & (1n << BigInt(bit))) out.push(KNOWN_CAPABILITIES[bit] ?? `CAP_${bit}`);
  }
  return out;
}

export const CAP_SETS = { inheritable: 'CapInh', permitted: 'CapPrm', effective: 'CapEff', bounding: 'CapBnd', ambient: 'CapAmb' } as const;
export type CapSetName = keyof typeof CAP_SETS;
export type CapSets = Record<CapSetName, string[]>;

export function capabilitySets(status: Record<string, string>): CapSets {
  const out = {} as CapSets;
  for (const [name, field] of Object.entries(CAP_SETS) as [CapSetName, string][]) out[name] = capNames(status[field] ?? '0');
  return out;
}

export interface NamespaceInfo {
  type: NamespaceType;
  inode: number | null;
  /** Same inode as the reference process (pid 1 unless told otherwise). */
  host: boolean | null;
}

/** `/proc/PID/ns/TYPE` -> inode (readlink gives `type:[INODE]`). */
export function namespaceInode(pid: number, type: NamespaceType): number | null {
  try {
    const m = /\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/${type}`));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export function namespaces(pid: number, reference = 1): NamespaceInfo[] {
  return NAMESPACE_TYPES.map((type) => {
    const inode = namespaceInode(pid, type);
    const ref = namespaceInode(reference, type);
    return { type, inode, host: inode === null || ref === null ? null : inode === ref };
  });
}

export interface CgroupMount {
  /** 'v2' for cgroup2, else the v1 hierarchy's controllers ("cpu,cpuacct", "name=systemd"). */
  key: string;
  mountPoint: string;
  /** The cgroup the mount shows at its mount point (not "/" when a subtree was mounted). */
  root: string;
}

/** cgroup mounts from /proc/self/mountinfo, to turn a /proc/PID/cgroup path into a directory. */
export function cgroupMounts(): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of (readText('/proc/self/mountinfo') ?? '').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const [fstype, , superOpts] = right.split(' ');
    const f = left.split(' ');
    const root = f[3]!.replace(/\\040/g, ' ');
    const mountPoint = f[4]!.replace(/\\040/g, ' ');
    if (fstype === 'cgroup2') out.push({ key: 'v2', mountPoint, root });
    else if (fstype === 'cgroup') {
      const opts = (superOpts ?? '').split(',');
      const named = opts.find((o) => o.startsWith('name='));
      const ctrls = opts.filter((o) => ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'net_prio', 'blkio', 'perf_event', 'hugetlb', 'pids', 'rdma', 'misc'].includes(o));
      out.push({ key: named ?? ctrls.join(','), mountPoint, root });
    }
  }
  return out;
}

/** Files that hold limits, per controller; only the ones present are read. */
const LIMIT_FILES: Record<string, string[]> = {
  memory: ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes', 'memory.soft_limit_in_bytes', 'memory.max', 'memory.high', 'memory.swap.max'],
  pids: ['pids.max'],
  cpu: ['cpu.cfs_quota_us', 'cpu.cfs_period_us', 'cpu.shares', 'cpu.max', 'cpu.weight'],
  cpuset: ['cpuset.cpus', 'cpuset.mems'],
  blkio: ['blkio.weight'],
  io: ['io.max', 'io.weight'],
  hugetlb: [],
};

export interface CgroupEntry {
  /** v1 hierarchy id:controllers, or '0::' line as version 2. */
  version: 1 | 2;
  controllers: string[];
  path: string;
  /** The directory under the cgroup mount, when it is visible here. */
  dir: string | null;
  limits: Record<string, string>;
}

/** /proc/PID/cgroup with each cgroup's directory and the limits written there. */
export function cgroups(pid: number, mounts: CgroupMount[] = cgroupMounts()): CgroupEntry[] {
  const text = readText(`/proc/${pid}/cgroup`);
  if (text === null) return [];
  const out: CgroupEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const v2 = m[1] === '0' && m[2] === '';
    const path = m[3]!;
    const key = v2 ? 'v2' : m[2]!;
    const mount = mounts.find((x) => x.key === key);
    let dir: string | null = null;
    if (mount) {
      const rel = mount.root === '/' ? path : path.startsWith(mount.root) ? path.slice(mount.root.length) : null;
      if (rel !== null) {
        const d = join(mount.mountPoint, rel);
        if (existsSync(d)) dir = d;
      }
    }
    const controllers = v2 ? (dir ? (readText(join(dir, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean) : []) : key.split(',');
    const limits: Record<string, string> = {};
    if (dir) {
      for (const c of controllers) {
        for (const f of LIMIT_FILES[c] ?? []) {
          const v = readText(join(dir, f));
          if (v !== null) limits[f] = v.trim();
        }
      }
    }
    out.push({ version: v2 ? 2 : 1, controllers, path, dir, limits });
  }
  return out;
}

/** A v1 "no limit" is the largest page-aligned signed 64-bit number. */
const V1_UNLIMITED = 9223372036854771712n;

/** The limits that matter most, summed up from whichever hierarchy set them. */
export function effectiveLimits(entries: CgroupEntry[]): { memoryBytes: number | null; pidsMax: number | null; cpuQuotaUs: number | null; cpuPeriodUs: number | null } {
  let memoryBytes: number | null = null;
  let pidsMax: number | null = null;
  let cpuQuotaUs: number | null = null;
  let cpuPeriodUs: number | null = null;
  for (const e of entries) {
    const l = e.limits;
    const mem = l['memory.limit_in_bytes'] ?? l['memory.max'];
    if (mem !== undefined && mem !== 'max' && /^\d+$/.test(mem) && BigInt(mem) < V1_UNLIMITED) memoryBytes = Number(mem);
    const pids = l['pids.max'];
    if (pids !== undefined && /^\d+$/.test(pids)) pidsMax = Number(pids);
    if (l['cpu.cfs_quota_us'] !== undefined && Number(l['cpu.cfs_quota_us']) > 0) {
      cpuQuotaUs = Number(l['cpu.cfs_quota_us']);
      cpuPeriodUs = Number(l['cpu.cfs_period_us'] ?? 100000);
    }
    const cpuMax = l['cpu.max']?.split(' ');
    if (cpuMax && cpuMax[0] !== 'max') {
      cpuQuotaUs = Number(cpuMax[0]);
      cpuPeriodUs = Number(cpuMax[1] ?? 100000);
    }
  }
  return { memoryBytes, pidsMax, cpuQuotaUs, cpuPeriodUs };
}

/** Which LSMs the kernel runs (/sys/kernel/security/lsm), when securityfs is mounted. */
export function activeLsms(): string[] | null {
  const t = readText('/sys/kernel/security/lsm');
  return t === null ? null : t.trim().split(',').filter(Boolean);
}

/**
 * The process's LSM label: /proc/PID/attr/current (SELinux's context, or
 * AppArmor's profile and mode). Without a labelling LSM the kernel answers
 * EINVAL, which is "no label", not an error.
 */
export function lsmLabel(pid: number): { lsm: string | null; label: string | null } {
  const lsms = activeLsms() ?? [];
  const lsm = lsms.find((l) => l === 'selinux' || l === 'apparmor' || l === 'smack') ?? null;
  for (const f of lsm ? [`attr/${lsm}/current`, 'attr/current'] : ['attr/current']) {
    const t = readText(`/proc/${pid}/${f}`);
    if (t !== null && t.replace(/\0/g, '').trim() !== '') return { lsm, label: t.replace(/\0/g, '').trim() };
  }
  return { lsm, label: null };
}

export interface Ancestor {
  pid: number;
  ppid: number;
  comm: string;
  exe: string | null;
  uid: number | null;
  loginuid: number | null;
  sessionid: number | null;
  /** setsid(2) made this process a session leader (terminal sessions; a container init often is one). */
  sessionLeader: boolean;
  /**
   * Its audit session differs from its parent's: the loginuid was written
   * here (login, sshd), or the process was re-parented (a detached
   * container's init under pid 1) away from the one that wrote it.
   */
  loginSessionStart: boolean;
}

/**
 * The fork/exec chain from `pid` up through its parents to pid 1, so the
 * point where the login uid was set (or never was) shows. A container init
 * re-parented to a subreaper shows the subreaper as parent, as the kernel does.
 */
export function ancestry(pid: number, maxDepth = 64): Ancestor[] {
  const out: Ancestor[] = [];
  let cur = pid;
  for (let i = 0; i < maxDepth && cur > 0; i++) {
    const st = procStat(cur);
    if (!st) break;
    const ids = loginIds(cur);
    let uid: number | null = null;
    try {
      uid = Number(procStatus(cur).Uid?.split(/\s+/)[0]);
    } catch {
      uid = null;
    }
    const parentSession = st.ppid > 0 ? loginIds(st.ppid).sessionid : null;
    out.push({
      pid: cur, ppid: st.ppid, comm: st.comm, exe: exePath(cur), uid, loginuid: ids.loginuid, sessionid: ids.sessionid,
      sessionLeader: st.session === cur, loginSessionStart: ids.sessionid !== null && st.ppid > 0 && parentSession !== ids.sessionid,
    });
    if (cur === 1) break;
    cur = st.ppid;
  }
  return out;
}

/** Pids of every process whose pid namespace inode is `inode` (a container's members). */
export function pidsInNamespace(type: NamespaceType, inode: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (namespaceInode(Number(name), type) === inode) out.push(Number(name));
  }
  return out;
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
