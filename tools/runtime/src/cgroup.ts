/**
 * The container's cgroup through @berth/cgroups (v1, v2 and hybrid hosts, the
 * cgroupfs driver). linux.cgroupsPath as given (default: the id, relative to
 * the creator's cgroup, as runc does). A relative path is placed from the
 * cgroup of the process that ran `create`, so create keeps a copy of its
 * /proc/self/cgroup in ROOT/ID and every later command places it the same way.
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { openCgroup, type Cgroup } from '@berth/cgroups';
import { BestEffortCgroup } from './rootless-cgroup.ts';
import { isRootlessCaller } from './rootless-state.ts';
import { containerDir } from './state.ts';

export type { Cgroup };

function selfFile(id: string): string {
  return join(containerDir(id), 'creator.cgroup');
}

/** At create: remember where the creator was, then open (the caller creates it). */
export function newContainerCgroup(cgroupsPath: string | undefined, id: string): Cgroup {
  copyFileSync('/proc/self/cgroup', selfFile(id));
  // An ordinary user may have no cgroup to write: limits become best-effort (rootless-cgroup.ts).
  if (isRootlessCaller()) return new BestEffortCgroup({ path: cgroupsPath || undefined, id, selfCgroupFile: selfFile(id) });
  return containerCgroup(cgroupsPath, id);
}

export function containerCgroup(cgroupsPath: string | undefined, id: string): Cgroup {
  const file = selfFile(id);
  return openCgroup({ path: cgroupsPath || undefined, id, ...(existsSync(file) ? { selfCgroupFile: file } : {}) });
}
