/**
 * `inspect`: everything the kernel keeps about one process that makes it a
 * container, gathered from /proc into one document, each part compared with
 * a reference process (pid 1 by default: "the host").
 */
import { BerthError } from '@berth/cli-kit';
import { containerOfProcess, resolveContainer, type ContainerInfo } from './containers.ts';
import {
  ancestry, capabilitySets, cgroups, cmdline, effectiveLimits, exePath, idMap, lsmLabel, loginIds, namespaceInode, namespaces,
  procStat, procStatus, processExists, userName, type Ancestor, type CapSets, type CgroupEntry, type IdMapEntry, type NamespaceInfo,
} from './proc.ts';

export interface InspectTarget {
  pid: number;
  /** The running container the pid belongs to, if any. */
  container: ContainerInfo | null;
  /** How the pid was tied to the container: its init, a descendant of it, or in its pid namespace. */
  matchedBy: 'init-pid' | 'descendant' | 'pid-namespace' | null;
}

/**
 * A pid when the argument is a number naming a live process; otherwise a
 * container id (or unique prefix) in the runtime roots. A number that is
 * neither a process nor a container is reported as a missing process.
 */
export function resolveTarget(arg: string, roots: string[]): InspectTarget {
  if (/^\d+$/.test(arg)) {
    const pid = Number(arg);
    if (processExists(pid)) {
      const owner = containerOfProcess(pid, roots);
      return { pid, container: owner?.info ?? null, matchedBy: owner?.matchedBy ?? null };
    }
    try {
      return containerTarget(resolveContainer(arg, roots));
    } catch (err) {
      if (err instanceof BerthError && err.code === 'E_NO_CONTAINER') {
        throw new BerthError('E_NO_PROCESS', `no process with pid ${pid} (/proc/${pid} does not exist) and no container with that id in ${roots.join(', ')}`);
      }
      throw err;
    }
  }
  if (arg === '' || /[/\s]/.test(arg)) throw new BerthError('E_USAGE', `"${arg}" is neither a pid nor a container id`, { exitCode: 2 });
  return containerTarget(resolveContainer(arg, roots));
}

function containerTarget(c: ContainerInfo): InspectTarget {
  if (c.status !== 'running') {
    throw new BerthError('E_NOT_RUNNING', `container "${c.id}" (${c.runtime}, ${c.root}) is stopped: its init pid ${c.pid} is gone, so /proc has nothing to show`);
  }
  return { pid: c.pid, container: c, matchedBy: 'init-pid' };
}

export interface CapabilityReport extends CapSets {
  /** Against the reference process: what this one lacks, and what it has beyond it. */
  diff: Record<keyof CapSets, { missing: string[]; extra: string[] }>;
  /**
   * Whether the sets are held in a user namespace other than the reference's
   * (a rootless container's): capabilities act only on what that namespace
   * owns (user_namespaces(7)), so "beyond the host" grants nothing over the
   * host. null when either namespace cannot be read (another user's process).
   */
  ownUserNamespace: boolean | null;
}

export interface InspectDocument {
  kind: 'audit-inspect';
  pid: number;
  container: { id: string; name?: string; runtime: string; root: string; bundle: string | null; created: string | null; initPid: number; matchedBy: string | null } | null;
  process: { comm: string; exe: string | null; cmdline: string[]; state: string; ppid: number };
  login: { loginuid: number | null; user: string | null; unset: boolean; sessionid: number | null };
  credentials: { uid: number[]; gid: number[]; groups: number[]; uidMap: IdMapEntry[]; gidMap: IdMapEntry[] };
  capabilities: CapabilityReport;
  noNewPrivs: boolean;
  seccomp: { mode: 'disabled' | 'strict' | 'filter' | 'unknown'; filters: number | null };
  namespaces: NamespaceInfo[];
  cgroups: CgroupEntry[];
  limits: ReturnType<typeof effectiveLimits>;
  lsm: { lsm: string | null; label: string | null };
  ancestry: Ancestor[];
  /** The process the capabilities and namespaces are compared with (pid 1, or berth-audit itself when pid 1's are unreadable). */
  reference: { pid: number; comm: string | null };
}

const SECCOMP_MODES = ['disabled', 'strict', 'filter'] as const;

function ids(field: string | undefined): number[] {
  return (field ?? '').split(/\s+/).filter(Boolean).map(Number);
}

/**
 * The process that stands for "the host": pid 1, unless its namespaces
 * cannot be read (pid 1 of a sandbox may deny it), then this process, which
 * runs in the caller's namespaces with the caller's capabilities.
 */
export function defaultReference(): number {
  return namespaceInode(1, 'pid') !== null ? 1 : process.pid;
}

export function inspectProcess(target: InspectTarget, opts: { reference?: number } = {}): InspectDocument {
  const { pid } = target;
  const reference = opts.reference ?? defaultReference();
  const status = procStatus(pid);
  const refStatus = procStatus(reference);
  const st = procStat(pid);
  if (!st) throw new BerthError('E_NO_PROCESS', `read /proc/${pid}/stat: the process is gone`);
  const caps = capabilitySets(status);
  const refCaps = capabilitySets(refStatus);
  const diff = {} as CapabilityReport['diff'];
  for (const set of Object.keys(caps) as (keyof CapSets)[]) {
    diff[set] = {
      missing: refCaps[set].filter((c) => !caps[set].includes(c)),
      extra: caps[set].filter((c) => !refCaps[set].includes(c)),
    };
  }
  const login = loginIds(pid);
  const cg = cgroups(pid);
  const seccompMode = Number(status.Seccomp ?? -1);
  const c = target.container;
  const nsList = namespaces(pid, reference);
  const userNs = nsList.find((n) => n.type === 'user');
  return {
    kind: 'audit-inspect',
    pid,
    container: c ? { id: c.id, runtime: c.runtime, root: c.root, bundle: c.bundle, created: c.created, initPid: c.pid, matchedBy: target.matchedBy } : null,
    process: { comm: st.comm, exe: exePath(pid), cmdline: cmdline(pid), state: st.state, ppid: st.ppid },
    login: { loginuid: login.loginuid, user: userName(login.loginuid), unset: login.loginuid === null, sessionid: login.sessionid },
    credentials: { uid: ids(status.Uid), gid: ids(status.Gid), groups: ids(status.Groups), uidMap: idMap(pid, 'uid_map'), gidMap: idMap(pid, 'gid_map') },
    capabilities: { ...caps, diff, ownUserNamespace: userNs === undefined || userNs.host === null ? null : !userNs.host },
    noNewPrivs: status.NoNewPrivs === '1',
    seccomp: {
      mode: SECCOMP_MODES[seccompMode] ?? 'unknown',
      filters: status.Seccomp_filters === undefined ? null : Number(status.Seccomp_filters),
    },
    namespaces: nsList,
    cgroups: cg,
    limits: effectiveLimits(cg),
    lsm: lsmLabel(pid),
    ancestry: ancestry(pid),
    reference: { pid: reference, comm: procStat(reference)?.comm ?? null },
  };
}

/** The document as a few aligned sections for people (`--format table`). */
export function formatInspectTable(d: InspectDocument): string {
  const lines: string[] = [];
  const row = (k: string, v: string) => lines.push(`${k.padEnd(18)} ${v}`);
  const list = (xs: string[]) => (xs.length ? xs.map((x) => x.replace(/^CAP_/, '')).join(' ') : '-');
  row('PID', String(d.pid));
  if (d.container) row('CONTAINER', `${d.container.id} (${d.container.runtime}, ${d.container.root})${d.container.initPid !== d.pid ? `  init pid ${d.container.initPid}, this process by ${d.container.matchedBy}` : ''}`);
  row('COMMAND', `${d.process.comm}  ${d.process.exe ?? '?'}  ${d.process.cmdline.join(' ')}`);
  row('LOGINUID', d.login.unset ? 'unset (4294967295)' : `${d.login.loginuid}${d.login.user ? ` (${d.login.user})` : ''}`);
  row('SESSION', d.login.sessionid === null ? 'unset' : String(d.login.sessionid));
  row('UID/GID', `uid ${d.credentials.uid.join(' ')}  gid ${d.credentials.gid.join(' ')}  groups ${d.credentials.groups.join(' ') || '-'}`);
  row('UID MAP', d.credentials.uidMap.map((m) => `${m.inside}->${m.outside} x${m.count}`).join(', ') || '-');
  const ref = `pid ${d.reference.pid}${d.reference.comm ? ` (${d.reference.comm})` : ''}`;
  for (const set of ['effective', 'permitted', 'inheritable', 'bounding', 'ambient'] as const) {
    const df = d.capabilities.diff[set];
    const held = d.capabilities[set];
    // Name the shorter side: a container keeps a few caps, a host process lacks a few.
    const shown = held.length > 0 && held.length <= 14 ? `: ${list(held)}` : '';
    const dropped = df.missing.length === 0 ? '' : df.missing.length <= 14 || held.length <= 14
      ? `; ${df.missing.length} fewer than ${ref}${df.missing.length <= 14 ? `: ${list(df.missing)}` : ''}`
      : `; ${df.missing.length} fewer than ${ref}`;
    row(`CAP ${set.toUpperCase()}`, `${held.length} caps${shown}${dropped}${df.extra.length ? `; beyond ${ref}: ${list(df.extra)}` : ''}`);
  }
  if (d.capabilities.ownUserNamespace) row('CAP SCOPE', `held in the process's own user namespace, not ${ref}'s: they act only on what that namespace owns`);
  row('NO_NEW_PRIVS', d.noNewPrivs ? 'yes' : 'no');
  row('SECCOMP', `${d.seccomp.mode}${d.seccomp.filters !== null ? ` (${d.seccomp.filters} filters)` : ''}`);
  lines.push('');
  lines.push(`${'NAMESPACE'.padEnd(10)} ${'INODE'.padEnd(12)} SHARED WITH ${ref.toUpperCase()}`);
  for (const n of d.namespaces) lines.push(`${n.type.padEnd(10)} ${String(n.inode ?? '-').padEnd(12)} ${n.host === null ? '?' : n.host ? 'yes (host)' : 'no (own)'}`);
  lines.push('');
  lines.push('CGROUP');
  for (const e of d.cgroups) {
    const limits = Object.entries(e.limits).map(([k, v]) => `${k}=${v}`).join(' ');
    lines.push(`  v${e.version} ${(e.controllers.join(',') || '-').padEnd(14)} ${e.path}${limits ? `  ${limits}` : ''}`);
  }
  lines.push('');
  row('LSM', d.lsm.label ? `${d.lsm.lsm ?? '?'}: ${d.lsm.label}` : `none${d.lsm.lsm ? ` (${d.lsm.lsm} active, no label)` : ''}`);
  lines.push('');
  lines.push('ANCESTRY (fork/exec chain, child first)');
  for (const a of d.ancestry) {
    const auid = a.loginuid === null ? 'unset' : `${a.loginuid}${userName(a.loginuid) ? `(${userName(a.loginuid)})` : ''}`;
    const marks = [a.sessionLeader ? 'session leader' : '', a.loginSessionStart ? 'audit session differs from parent' : ''].filter(Boolean).join(', ');
    lines.push(`  ${String(a.pid).padStart(7)} ${a.comm.padEnd(16)} auid=${auid.padEnd(12)} ses=${String(a.sessionid ?? 'unset').padEnd(6)} ${a.exe ?? '?'}${marks ? `  [${marks}]` : ''}`);
  }
  return lines.join('\n') + '\n';
}
