/**
 * Where the cgroup hierarchies are. Three layouts exist
 * (Documentation/admin-guide/cgroup-v2.rst, cgroup-v1/cgroups.rst):
 *
 * - v2 (unified): ROOT is a cgroup2 mount; ROOT/cgroup.controllers lists the
 *   controllers.
 * - v1: ROOT is a tmpfs with one cgroup mount per controller (or co-mounted
 *   set, "cpu,cpuacct"), plus named hierarchies without a controller
 *   (name=systemd).
 * - hybrid: v1 as above, and a cgroup2 mount at ROOT/unified holding whatever
 *   controllers no v1 hierarchy took (often none, here hugetlb).
 *
 * Detection looks at files rather than filesystem magic so a test can lay out
 * a fake hierarchy in a temp dir and point ROOT at it.
 */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { BerthError } from '@berth/cli-kit';

export type CgroupMode = 'v1' | 'v2' | 'hybrid';

export const DEFAULT_CGROUP_ROOT = '/sys/fs/cgroup';

/** Controllers the v1 kernel knows; any other hierarchy is a named one (name=systemd). */
const V1_CONTROLLERS = new Set([
  'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'net_prio',
  'blkio', 'perf_event', 'hugetlb', 'pids', 'rdma', 'misc',
]);

export function detectCgroupMode(root: string = DEFAULT_CGROUP_ROOT): CgroupMode {
  if (existsSync(join(root, 'cgroup.controllers'))) return 'v2';
  if (!existsSync(root)) throw new BerthError('E_CGROUP', `cgroup: ${root} does not exist: no cgroup filesystem is mounted there`);
  if (existsSync(join(root, 'unified', 'cgroup.controllers'))) return 'hybrid';
  if (v1Hierarchies(root).length === 0) {
    throw new BerthError('E_CGROUP', `cgroup: no cgroup hierarchy under ${root} (neither ${root}/cgroup.controllers nor ${root}/<controller>/cgroup.procs)`);
  }
  return 'v1';
}

/** One mounted v1 hierarchy. `key` is how /proc/PID/cgroup names it ("cpu,cpuacct", "name=systemd"). */
export interface V1Hierarchy {
  key: string;
  mount: string;
  controllers: string[];
}

/**
 * The v1 hierarchies under ROOT, each once: co-mounted controllers often have
 * symlinks (cpu -> cpu,cpuacct), which resolve to the same mount.
 */
export function v1Hierarchies(root: string): V1Hierarchy[] {
  const seen = new Map<string, V1Hierarchy>();
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return [];
  }
  for (const name of entries.sort()) {
    if (name === 'unified') continue;
    const dir = join(root, name);
    let real: string;
    try {
      if (!statSync(dir).isDirectory() || !existsSync(join(dir, 'cgroup.procs'))) continue;
      real = realpathSync(dir);
    } catch {
      continue;
    }
    if (seen.has(real)) continue;
    const base = basename(real);
    const parts = base.split(',');
    const isController = parts.every((p) => V1_CONTROLLERS.has(p));
    const key = isController ? base : `name=${base.replace(/^name=/, '')}`;
    // Use the directory named like the mount, not a symlink to it, for paths
    // that read the same as /proc/PID/mountinfo.
    const mount = existsSync(join(root, base)) ? join(root, base) : real;
    seen.set(real, { key, mount, controllers: isController ? parts : [] });
  }
  return [...seen.values()];
}

/** The controllers a cgroup2 directory offers (its cgroup.controllers). */
export function v2Controllers(dir: string): string[] {
  try {
    return readFileSync(join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * Parse /proc/PID/cgroup: "ID:CONTROLLERS:PATH" per line; v2 is "0::PATH".
 * Returns hierarchy key -> path, with '' for the v2 hierarchy.
 */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    out.set(m[2]!, m[3]!);
  }
  return out;
}
