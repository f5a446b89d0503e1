import { readFileSync } from 'node:fs';
import { BerthUsageError } from '@berth/cli-kit';
import type { Rlimit } from '@berth/oci-spec';
import { DEFAULT_RLIMITS } from './defaults.ts';
import { RLIM_INFINITY } from './options.ts';

/**
 * The caller's own resource limits, from /proc/self/limits (proc(5)). A
 * runtime sets a container's rlimits with setrlimit(2) in a process that
 * inherits the caller's, and raising a hard limit needs CAP_SYS_RESOURCE. On
 * hosts where even root lacks it (this one, some CI sandboxes) podman's
 * default of 1048576 open files fails with "setrlimit RLIMIT_NOFILE: Operation
 * not permitted". So berth caps its defaults at the caller's hard limits, and
 * an explicit --ulimit above them is refused before anything is created.
 */
export interface HostLimits {
  hard: Map<string, number>;
  /** Can the caller raise hard limits (CAP_SYS_RESOURCE in its effective set)? */
  canRaise: boolean;
}

const PROC_NAMES: Record<string, string> = {
  'Max cpu time': 'RLIMIT_CPU', 'Max file size': 'RLIMIT_FSIZE', 'Max data size': 'RLIMIT_DATA',
  'Max stack size': 'RLIMIT_STACK', 'Max core file size': 'RLIMIT_CORE', 'Max resident set': 'RLIMIT_RSS',
  'Max processes': 'RLIMIT_NPROC', 'Max open files': 'RLIMIT_NOFILE', 'Max locked memory': 'RLIMIT_MEMLOCK',
  'Max address space': 'RLIMIT_AS', 'Max file locks': 'RLIMIT_LOCKS', 'Max pending signals': 'RLIMIT_SIGPENDING',
  'Max msgqueue size': 'RLIMIT_MSGQUEUE', 'Max nice priority': 'RLIMIT_NICE', 'Max realtime priority': 'RLIMIT_RTPRIO',
  'Max realtime timeout': 'RLIMIT_RTTIME',
};

export function parseProcLimits(text: string): Map<string, number> {
  const hard = new Map<string, number>();
  for (const line of text.split('\n').slice(1)) {
    // Columns are padded to fixed widths; the name has spaces, so split on runs of 2+ spaces.
    const cols = line.trim().split(/\s{2,}/);
    const type = PROC_NAMES[cols[0] ?? ''];
    if (!type || cols.length < 3) continue;
    hard.set(type, cols[2] === 'unlimited' ? RLIM_INFINITY : Number(cols[2]));
  }
  return hard;
}

const CAP_SYS_RESOURCE = 24;

export function readHostLimits(): HostLimits {
  const hard = parseProcLimits(readFileSync('/proc/self/limits', 'utf8'));
  const status = readFileSync('/proc/self/status', 'utf8');
  const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '0';
  // Capabilities held in a user namespace other than the host's do not let
  // setrlimit(2) raise a hard limit (rootless berth runs as root in the user's).
  const canRaise = ((BigInt(`0x${eff}`) >> BigInt(CAP_SYS_RESOURCE)) & 1n) === 1n && inInitialUserNamespace();
  return { hard, canRaise };
}

/** The initial user namespace maps every id to itself: "0 0 4294967295". */
function inInitialUserNamespace(): boolean {
  try {
    return readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/).join(' ') === '0 0 4294967295';
  } catch {
    return true;
  }
}

function show(n: number): string {
  return n >= RLIM_INFINITY ? 'unlimited' : String(n);
}

/**
 * The rlimits for process.rlimits: the defaults capped at the caller's hard
 * limits (when it cannot raise them), then the user's --ulimit values, each
 * checked against the same hard limits.
 */
export function computeRlimits(user: Rlimit[], host: HostLimits): Rlimit[] {
  const out = new Map<string, Rlimit>();
  for (const d of DEFAULT_RLIMITS) {
    const cap = host.canRaise ? Infinity : host.hard.get(d.type) ?? Infinity;
    const v = Math.min(d.value, cap);
    out.set(d.type, { type: d.type, soft: v, hard: v });
  }
  for (const u of user) {
    const cap = host.hard.get(u.type);
    if (!host.canRaise && cap !== undefined && u.hard > cap) {
      const name = u.type.slice('RLIMIT_'.length).toLowerCase();
      throw new BerthUsageError(`--ulimit ${name}=${show(u.soft)}:${show(u.hard)}: the hard limit is above the caller's hard limit ${show(cap)} for ${u.type}, and raising it needs CAP_SYS_RESOURCE, which this process lacks (ask for at most ${name}=${show(cap)})`);
    }
    out.set(u.type, u);
  }
  return [...out.values()];
}
