import { accessSync, constants as fsConstants, existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';

/**
 * Pausing is the cgroup freezer: the runtime writes FROZEN to the v1
 * `freezer.state` of the container's cgroup, or 1 to the v2 `cgroup.freeze`
 * (see the kernel's Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst
 * and cgroup-v2.rst "Freezer"). So a container can be paused only when it has
 * a freezer cgroup of its own that the caller may write. Root always may;
 * an ordinary user on a v1 or hybrid host never has one (the container's
 * processes stay in root's hierarchy, often its top, which cannot even be
 * frozen), and on v2 only with a cgroup delegated to the user. This file
 * reads what the kernel says about one process, with no runtime call.
 */
interface FreezerCgroup {
  /** 'v1': the freezer hierarchy; 'v2': the unified one (pure v2, or a hybrid host's unified mount). */
  kind: 'v1' | 'v2';
  /** The cgroup's path as /proc/PID/cgroup names it ("/" is the hierarchy's top). */
  path: string;
  /** The control file the runtime would write: freezer.state or cgroup.freeze. */
  control: string;
}

const CGROUP_ROOT = '/sys/fs/cgroup';

/** The freezer cgroup a process is in, the v1 freezer first (the one runc and berth-runtime use on a hybrid host); undefined when the process is gone. */
function freezerCgroupOf(pid: number, cgroupRoot = CGROUP_ROOT): FreezerCgroup | undefined {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/cgroup`, 'utf8'); } catch { return undefined; }
  let unified: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, , controllers, path] = m as unknown as [string, string, string, string];
    if (controllers.split(',').includes('freezer')) {
      // systemd mounts each v1 hierarchy at ROOT/<its controllers> (with symlinks for the single names).
      return { kind: 'v1', path, control: posix.join(cgroupRoot, controllers, path, 'freezer.state') };
    }
    if (controllers === '') unified = path;
  }
  if (unified === undefined) return undefined;
  const mount = existsSync(posix.join(cgroupRoot, 'cgroup.controllers')) ? cgroupRoot : posix.join(cgroupRoot, 'unified');
  return { kind: 'v2', path: unified, control: posix.join(mount, unified, 'cgroup.freeze') };
}

/**
 * Why the caller cannot freeze the container whose init is `pid`, or
 * undefined when it can: the control file must exist (a hierarchy's top has
 * none) and be writable by this process, and the cgroup must not be the one
 * the monitor is in (freezing that would stop conmon, or a user's whole
 * session, with the container).
 */
export function freezerProblem(pid: number, monitorPid: number | undefined): { kind: 'v1' | 'v2'; reason: string } | undefined {
  const cg = freezerCgroupOf(pid);
  if (!cg) return { kind: 'v1', reason: `its process ${pid} is gone` };
  const problem = (reason: string) => ({ kind: cg.kind, reason });
  const where = `its processes are in "${cg.path}" of the ${cg.kind === 'v1' ? 'cgroup v1 freezer' : 'cgroup v2'} hierarchy`;
  if (monitorPid !== undefined) {
    const monitor = freezerCgroupOf(monitorPid);
    if (monitor && monitor.kind === cg.kind && monitor.path === cg.path) return problem(`this container does not have a cgroup of its own (${where}, with its monitor)`);
  }
  if (!existsSync(cg.control)) return problem(`this container does not have a cgroup (${where}, which has no ${posix.basename(cg.control)}: the top of a hierarchy cannot be frozen)`);
  try {
    accessSync(cg.control, fsConstants.W_OK);
  } catch {
    return problem(`this container does not have a cgroup you may freeze (${where}, and ${cg.control} is not writable by you)`);
  }
  return undefined;
}
