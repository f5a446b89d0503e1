/**
 * Containers as the runtimes record them, and which container a pid belongs to.
 *
 * The OCI runtime CLI keeps one state directory per container: berth-runtime
 * writes ROOT/ID/state.json with `pid` and `pidStartTime` (default root
 * /run/berth/runtime), runc writes ROOT/ID/state.json with
 * `init_process_pid` and `init_process_start` (default root /run/runc). The
 * kernel itself has no notion of a container: a pid belongs to one when it is
 * the container's init, shares its pid namespace, or sits in its cgroup.
 * Those checks need the process alive (or its parent); a process that exited
 * before we look can only be matched by its pid or ppid against an init pid,
 * which is why the attributor also remembers each container's namespaces
 * and cgroups while it is running.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/cli-kit';
import { cgroupMounts, cgroups, namespaceInode, procStat, processExists, type CgroupMount } from './proc.ts';

export const DEFAULT_BERTH_RUNTIME_ROOT = '/run/berth/runtime';
export const DEFAULT_RUNC_ROOT = '/run/runc';

export interface ContainerInfo {
  id: string;
  runtime: 'berth-runtime' | 'runc';
  /** The runtime's --root holding the state. */
  root: string;
  /** Host pid of the container's init process. */
  pid: number;
  /** Field 22 of /proc/PID/stat when the init started; tells a reused pid apart. */
  pidStartTime: string | null;
  bundle: string | null;
  created: string | null;
  /** running: the init pid exists and started when the state says; else stopped. */
  status: 'running' | 'stopped';
}

function readState(root: string, id: string): ContainerInfo | null {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(readFileSync(join(root, id, 'state.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
  let info: Omit<ContainerInfo, 'status'>;
  if (typeof doc.pid === 'number') {
    info = {
      id, runtime: 'berth-runtime', root, pid: doc.pid,
      pidStartTime: typeof doc.pidStartTime === 'string' ? doc.pidStartTime : null,
      bundle: typeof doc.bundle === 'string' ? doc.bundle : null,
      created: typeof doc.created === 'string' ? doc.created : null,
    };
  } else if (typeof doc.init_process_pid === 'number') {
    const labels = ((doc.config as { labels?: string[] } | undefined)?.labels ?? []);
    const bundle = labels.find((l) => l.startsWith('bundle='))?.slice(7) ?? null;
    info = {
      id, runtime: 'runc', root, pid: doc.init_process_pid,
      pidStartTime: typeof doc.init_process_start === 'number' ? String(doc.init_process_start) : null,
      bundle, created: typeof doc.created === 'string' ? doc.created : null,
    };
  } else {
    return null;
  }
  const st = procStat(info.pid);
  const alive = st !== null && (info.pidStartTime === null || st.startTime === info.pidStartTime);
  return { ...info, status: alive ? 'running' : 'stopped' };
}

/** Every container in the given runtime roots (missing roots are empty). */
export function listContainers(roots: string[]): ContainerInfo[] {
  const out: ContainerInfo[] = [];
  for (const root of roots) {
    let names: string[];
    try {
      names = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      continue;
    }
    for (const id of names.sort()) {
      const c = readState(root, id);
      if (c) out.push(c);
    }
  }
  return out;
}

/**
 * A container by id, or by a unique id prefix (podman and docker accept the
 * first 12 characters of a 64-character id). Errors name the roots searched.
 */
export function resolveContainer(idOrPrefix: string, roots: string[]): ContainerInfo {
  const all = listContainers(roots);
  const exact = all.filter((c) => c.id === idOrPrefix);
  if (exact.length === 1) return exact[0]!;
  const matches = exact.length > 1 ? exact : all.filter((c) => c.id.startsWith(idOrPrefix));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new BerthError('E_AMBIGUOUS', `container id "${idOrPrefix}" is ambiguous: it matches ${matches.map((c) => `${c.id} (${c.runtime}, ${c.root})`).join(', ')}`);
  }
  throw new BerthError('E_NO_CONTAINER', `no such container "${idOrPrefix}" in ${roots.join(', ')} (not a pid either; give --runtime-root for another runtime's state)`);
}

function stateMtime(root: string, id: string): number | null {
  try {
    return statSync(join(root, id, 'state.json')).mtimeMs;
  } catch {
    return null;
  }
}

/** `controllers:path` for each cgroup line of a process ("0::path" for v2). */
let mounts: CgroupMount[] | undefined;
function cgroupKeys(pid: number): string[] {
  mounts ??= cgroupMounts();
  return cgroups(pid, mounts).map((e) => `${e.version === 2 ? '0:' : e.controllers.join(',')}:${e.path}`);
}

function hostPidNamespace(): number | null {
  return namespaceInode(1, 'pid') ?? namespaceInode(process.pid, 'pid');
}

/**
 * The running container a live process belongs to: it is a container's init,
 * descends from one, or shares one's pid namespace (a process joined with
 * `exec`). For `inspect`; stopped containers are not candidates, since their
 * old init pid may belong to someone else now.
 */
export function containerOfProcess(pid: number, roots: string[]): { info: ContainerInfo; matchedBy: 'init-pid' | 'descendant' | 'pid-namespace' } | null {
  const running = listContainers(roots).filter((c) => c.status === 'running');
  if (running.length === 0) return null;
  let cur = pid;
  for (let depth = 0; depth < 64 && cur > 1; depth++) {
    const c = running.find((x) => x.pid === cur);
    if (c) return { info: c, matchedBy: cur === pid ? 'init-pid' : 'descendant' };
    cur = procStat(cur)?.ppid ?? 0;
  }
  const ns = namespaceInode(pid, 'pid');
  if (ns !== null && ns !== hostPidNamespace()) {
    const c = running.find((x) => namespaceInode(x.pid, 'pid') === ns);
    if (c) return { info: c, matchedBy: 'pid-namespace' };
  }
  return null;
}

export interface Attribution {
  id: string;
  runtime: ContainerInfo['runtime'];
  /** How the pid was tied to the container. */
  matchedBy: 'init-pid' | 'parent-is-init' | 'pid-namespace' | 'cgroup';
  /** The pid whose /proc entry (or pid number) matched: the event's pid, or an ancestor. */
  via: number;
}

interface Known {
  info: ContainerInfo;
  /** mtime of its state.json when read. */
  mtime: number | null;
  /** Seen while running: its pid namespace inode (when not the host's) and cgroup paths. */
  pidNs: number | null;
  cgroupPaths: string[];
}

/**
 * Maps pids to containers. `refresh()` rereads the state dirs and, for the
 * containers running now, remembers their pid namespace and cgroups, so a
 * later event from a still-running member process can be matched even when
 * the container's init has gone.
 */
export class ContainerAttributor {
  private readonly known = new Map<string, Known>();
  private lastRefresh = 0;
  /** pid 1's pid namespace, or ours when pid 1's cannot be read (a container sharing it is not told apart by it). */
  private readonly hostPidNs = hostPidNamespace();
  /** Cgroups of pid 1 and of this process: a container still sharing one of them says nothing by it. */
  private readonly hostCgroups = new Set([...cgroupKeys(1), ...cgroupKeys(process.pid)]);

  constructor(private readonly roots: string[]) {}

  refresh(now = Date.now()): void {
    this.lastRefresh = now;
    for (const root of this.roots) {
      let names: string[];
      try {
        names = readdirSync(root);
      } catch {
        continue;
      }
      for (const id of names) {
        const key = `${root}\0${id}`;
        const prev = this.known.get(key);
        // Cheap on a busy host: a container seen running whose init is the
        // same process still, or a stopped one whose state file did not
        // change (stopped is final in the OCI lifecycle), needs no reread.
        if (prev?.info.status === 'running' && prev.info.pidStartTime !== null && procStat(prev.info.pid)?.startTime === prev.info.pidStartTime) continue;
        const mtime = stateMtime(root, id);
        if (prev?.info.status === 'stopped' && prev.mtime === mtime) continue;
        const info = readState(root, id);
        if (!info) continue;
        if (info.status === 'running') {
          const ns = namespaceInode(info.pid, 'pid');
          const paths = cgroupKeys(info.pid).filter((p) => !p.endsWith(':/') && !this.hostCgroups.has(p));
          this.known.set(key, { info, mtime, pidNs: ns !== this.hostPidNs ? ns : null, cgroupPaths: paths });
        } else if (prev && prev.info.pid === info.pid) {
          // It stopped: keep what was seen while it ran.
          this.known.set(key, { ...prev, info, mtime });
        } else {
          this.known.set(key, { info, mtime, pidNs: null, cgroupPaths: [] });
        }
      }
    }
  }

  /** Refresh when the last look is older than `maxAgeMs`. */
  refreshIfStale(maxAgeMs: number, now = Date.now()): void {
    if (now - this.lastRefresh >= maxAgeMs) this.refresh(now);
  }

  private matchPid(pid: number): Attribution | null {
    for (const k of this.known.values()) if (k.info.pid === pid) return { id: k.info.id, runtime: k.info.runtime, matchedBy: 'init-pid', via: pid };
    if (!processExists(pid)) return null;
    const ns = namespaceInode(pid, 'pid');
    if (ns !== null && ns !== this.hostPidNs) {
      for (const k of this.known.values()) if (k.pidNs === ns) return { id: k.info.id, runtime: k.info.runtime, matchedBy: 'pid-namespace', via: pid };
    }
    const mine = cgroupKeys(pid);
    for (const k of this.known.values()) {
      if (k.cgroupPaths.some((p) => mine.some((m) => m === p || m.startsWith(`${p}/`)))) {
        return { id: k.info.id, runtime: k.info.runtime, matchedBy: 'cgroup', via: pid };
      }
    }
    return null;
  }

  /**
   * The container `pid` (with parent `ppid`, as the audit record says) ran
   * in: the pid itself first, then its parent and the parent's ancestors
   * (a short-lived child of the container's shell is usually gone by now).
   */
  attribute(pid: number | null, ppid: number | null): Attribution | null {
    const tryOnce = (): Attribution | null => {
      if (pid !== null) {
        const a = this.matchPid(pid);
        if (a) return a;
      }
      let cur = ppid;
      for (let depth = 0; cur !== null && cur > 1 && depth < 32; depth++) {
        const a = this.matchPid(cur);
        if (a) return a.matchedBy === 'init-pid' && depth === 0 ? { ...a, matchedBy: 'parent-is-init' } : a;
        cur = procStat(cur)?.ppid ?? null;
      }
      return null;
    };
    let a = tryOnce();
    if (!a) {
      // Maybe a container created since the last look (its state.json is
      // written before its process runs): reread the state dirs once.
      this.refresh();
      a = tryOnce();
    }
    return a;
  }
}
