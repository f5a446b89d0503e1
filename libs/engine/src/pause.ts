import { EngineError, noSuchContainer } from './errors.ts';
import { freezerProblem } from './pause-freezer.ts';
import type { EngineEnv } from './paths.ts';
import { readRecord, saveRecord, withContainerLock, type ContainerRecord } from './records.ts';
import { isRootlessCaller } from './rootless.ts';
import { isRunning, observedStatus, runtimeFor } from './status.ts';

/**
 * pause and unpause, podman's verbs over the OCI runtime's `pause` and
 * `resume` (the cgroup freezer; runc, crun and berth-runtime all have them),
 * so they work the same under every runtime. The record keeps `paused`, as
 * podman's database keeps the state, so `ps` and `inspect` show it without a
 * runtime call; it is set and cleared under the container's lock, only after
 * the runtime said yes, so it never claims a freeze that did not happen.
 */

/** podman's state word for the messages: "created", "exited", "running", "paused". */
function stateWord(env: EngineEnv, rec: ContainerRecord): string {
  return observedStatus(env, rec).status;
}

/** Freeze every process of a running container. Fails (125) on one that is not running, or already paused. */
export async function pauseContainer(env: EngineEnv, id: string): Promise<ContainerRecord> {
  return withContainerLock(env, id, async () => {
    const rec = readRecord(env, id);
    if (!rec) throw noSuchContainer(id);
    if (isRunning(rec) && rec.state.paused) throw new EngineError('E_STATE', `"${rec.id}" is already paused: container state improper`);
    if (!isRunning(rec)) {
      throw new EngineError('E_STATE', `"${rec.id}" is not running (it is ${stateWord(env, rec)}), can't pause: container state improper`);
    }
    if (isRootlessCaller()) {
      // The runtime would fail deep in the freezer (berth-runtime: ENOENT on
      // a freezer.state that does not exist); say why in podman's words first.
      const problem = freezerProblem(rec.state.pid!, rec.state.monitorPid);
      if (problem !== undefined) {
        throw new EngineError('E_ROOTLESS_CGROUP', `can not pause containers on rootless containers${problem.kind === 'v1' ? ' with cgroup V1' : ''}: ${problem.reason}. Pausing freezes the container's own cgroup, which an ordinary user has only on a cgroup v2 host with a delegated cgroup; run the container as root to pause it`);
      }
    }
    await runtimeFor(env, rec).call('pause', [rec.id]);
    rec.state.paused = true;
    await saveRecord(env, rec);
    return rec;
  });
}

/** Thaw a paused container. Fails (125) on one that is not paused. */
export async function unpauseContainer(env: EngineEnv, id: string): Promise<ContainerRecord> {
  return withContainerLock(env, id, async () => {
    const rec = readRecord(env, id);
    if (!rec) throw noSuchContainer(id);
    if (!(isRunning(rec) && rec.state.paused)) {
      throw new EngineError('E_STATE', `"${rec.id}" is not paused (it is ${stateWord(env, rec)}), can't unpause: container state improper`);
    }
    await runtimeFor(env, rec).call('resume', [rec.id]);
    delete rec.state.paused;
    await saveRecord(env, rec);
    return rec;
  });
}

/**
 * After a signal was sent to a paused container: thaw it, so the signal is
 * acted on. A frozen task does nothing with a signal, SIGKILL included (on
 * cgroup v1 it stays in the refrigerator until thawed), so stop and rm -f
 * send their signal first (it waits, pending) and then resume: the
 * container's first instruction after the thaw is the signal's. runc thaws by
 * itself after a SIGKILL to a paused container; berth-runtime does not, so
 * the resume is always asked for and a "not paused" answer is fine.
 */
export async function resumeAfterSignal(env: EngineEnv, id: string): Promise<void> {
  await withContainerLock(env, id, async () => {
    const rec = readRecord(env, id);
    if (!rec?.state.paused) return;
    await runtimeFor(env, rec).call('resume', [rec.id], { allowFail: true });
    delete rec.state.paused;
    await saveRecord(env, rec);
  });
}
