import { spawn } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { log } from '@berth/cli-kit';
import { EngineError } from './errors.ts';
import type { EngineEnv } from './paths.ts';
import { findRecord } from './records.ts';
import { isRunning } from './status.ts';

/**
 * `berth cp` for an ordinary user. The container's files carry ids of the
 * user's subordinate range and its rootfs is an overlay only its own user
 * namespace mounts, so the copy runs where both make sense: berth cp
 * re-executed under `unshare --map-root-user --map-users=START,1,COUNT
 * --mount`, the same map berth-runtime gives the container (container uid N
 * is host uid START+N-1, 0 the user). There the user is root over exactly
 * the container's ids, so chown to the container's user and reading files
 * of any owner work; a running container is reached through its
 * /proc/PID/root, opened before the re-exec, a stopped one by
 * mounting the bundle's overlay in the private mount namespace, which goes
 * away with the process: nothing can be left mounted.
 */
export async function copyInUserNamespace(env: EngineEnv, container: string | undefined, cpArgs: string[]): Promise<number> {
  if (!env.rootless) throw new EngineError('E_ROOTLESS', 'internal: no user namespace plan for a rootless cp');
  // A running container's root is opened here, as the user: the user owns the
  // container's user namespace, so the kernel lets it in; from the sibling
  // namespace below it would not (the init is not dumpable to it). The
  // child gets the descriptor as fd 3.
  const rec = container !== undefined ? findRecord(env, container) : undefined;
  let rootFd: number | undefined;
  if (rec && isRunning(rec) && rec.state.pid !== undefined) {
    try {
      rootFd = openSync(`/proc/${rec.state.pid}/root`, constants.O_RDONLY | constants.O_DIRECTORY);
    } catch (err) {
      log.debug(`open /proc/${rec.state.pid}/root: ${(err as Error).message}`);
    }
  }
  const plan = env.rootless.plan();
  const map = plan
    ? ['--map-root-user', `--map-users=${plan.uids.start},1,${Math.min(plan.uids.count, plan.gids.count)}`, `--map-groups=${plan.gids.start},1,${Math.min(plan.uids.count, plan.gids.count)}`, '--setgroups', 'allow']
    : ['--map-root-user'];
  const argv = [...env.rootless.self, 'cp', '--root', env.dataRoot, '--runroot', env.runRoot, ...(log.level === 'debug' ? ['--debug'] : []), ...cpArgs];
  const child = spawn('/usr/bin/unshare', [...map, '--mount', '--', ...argv], {
    // stdin and stdout are the tar streams of `cp -` and `cp ... -`: the child gets ours.
    stdio: ['inherit', 'inherit', 'inherit', ...(rootFd !== undefined ? [rootFd] : [])],
    env: {
      ...process.env, BERTH_IN_USERNS: '1', BERTH_ROOT: env.dataRoot, BERTH_RUN_ROOT: env.runRoot,
      ...(rootFd !== undefined && rec ? { [ROOT_FD_ENV]: `3:${rec.id}:${rec.state.pid}` } : {}),
    },
    cwd: process.cwd(),
  });
  if (rootFd !== undefined) closeSync(rootFd);
  return new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new EngineError('E_ROOTLESS', `unshare: ${(err as NodeJS.ErrnoException).code ?? err.message}: install Debian's util-linux`)));
    child.on('close', (code, signal) => resolve(code ?? 125));
  });
}

/** fd:containerId:pid of a running container's root the parent opened (see above). */
export const ROOT_FD_ENV = 'BERTH_CP_ROOT_FD';

/** In the re-executed cp: the running container's root the parent passed, if it is this container's. */
export function inheritedRoot(id: string, pid: number | undefined): string | undefined {
  const [fd, forId, forPid] = (process.env[ROOT_FD_ENV] ?? '').split(':');
  return fd && forId === id && forPid === String(pid) ? `/proc/self/fd/${fd}` : undefined;
}
