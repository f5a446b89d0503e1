import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inBerthUserNamespace } from '@berth/cli-kit';
import type { Mount } from '@berth/snapshots';
import { EngineError } from './errors.ts';
import { mark } from './proc.ts';
import type { EngineEnv } from './paths.ts';
import { readRecord, withContainerLock, type ContainerRecord } from './records.ts';
import { inheritedRoot } from './cp-rootless.ts';
import { ROOTFS_MOUNTS_ANNOTATION } from './rootless.ts';
import { isRunning, readSpec } from './status.ts';

/**
 * Where `berth cp` reaches a container's files.
 *
 * - Running: /proc/PID/root, the container's own view of its root, so a
 *   file copied into /tmp lands where `berth exec cat` finds it even when the
 *   container has a tmpfs or a volume there (the bundle's rootfs would show
 *   the overlay only).
 * - Created or exited: the overlay under the bundle, ROOT/containers/ID/
 *   bundle/rootfs, which create mounted from the container's active snapshot
 *   and which stays mounted until rm. After a reboot (or a wiped /run) it is
 *   not: then it is mounted from the snapshot for the copy and unmounted
 *   afterwards, so cp leaves the mount table as it found it. This runs under
 *   the container's lock, the one start takes, so a start cannot mount the
 *   same upper directory a second time while the copy has it.
 * - Rootless (the bundle carries its overlay in an annotation): only from
 *   inside the user's namespace cp-rootless.ts re-executes into; see
 *   withRootlessRoot.
 */
export async function withContainerRoot<T>(env: EngineEnv, rec: ContainerRecord, fn: (root: string) => Promise<T>): Promise<T> {
  const rootlessMounts = readSpec(rec.bundle).annotations?.[ROOTFS_MOUNTS_ANNOTATION];
  if (rootlessMounts !== undefined) return withRootlessRoot(env, rec, rootlessMounts, fn);
  if (isRunning(rec) && rec.state.pid !== undefined) return fn(`/proc/${rec.state.pid}/root`);
  return withMountedRootfs(env, rec, 'cp', (now) => (now.state.pid !== undefined ? fn(`/proc/${now.state.pid}/root`) : undefined), fn);
}

/**
 * A container's overlay at BUNDLE/rootfs for `fn`, under the container's
 * lock (the one start takes, so a start cannot mount the same upper
 * directory a second time meanwhile): as create left it mounted, or, after
 * a reboot or a wiped /run, mounted from its snapshot for `fn` and
 * unmounted afterwards, so the mount table is left as it was found. A
 * container found running once the lock is held goes to `running` instead
 * (undefined from it: use the mounted overlay if it is there). `what`
 * names the caller in --debug marks.
 */
export async function withMountedRootfs<T>(
  env: EngineEnv, rec: ContainerRecord, what: string,
  running: (now: ContainerRecord) => Promise<T> | undefined, fn: (root: string) => Promise<T>,
): Promise<T> {
  return withContainerLock(env, rec.id, async () => {
    // Read again under the lock: a start may have won the race since.
    const now = readRecord(env, rec.id) ?? rec;
    const { isMountPoint, mountAll, unmountAll, Snapshotter } = await import('@berth/snapshots');
    const target = join(now.bundle, 'rootfs');
    if (isRunning(now)) {
      const answer = running(now);
      if (answer !== undefined) return answer;
    }
    if (await isMountPoint(target)) return fn(target);
    if (isRunning(now)) throw new EngineError('E_STATE', `container ${now.name} started while berth ${what} was getting ready, and its rootfs is not mounted at ${target}; run it again`);
    const snapshotter = new Snapshotter(env.dataRoot);
    if (!(await snapshotter.exists(now.snapshot))) {
      throw new EngineError('E_NO_SNAPSHOT', `container ${now.name}: its rootfs snapshot "${now.snapshot}" is missing from ${snapshotter.root}`);
    }
    await mountAll(await snapshotter.mounts(now.snapshot), target);
    mark(`rootfs mounted for ${what}`);
    try {
      return await fn(target);
    } finally {
      await unmountAll(target);
      mark(`rootfs unmounted after ${what}`);
    }
  });
}

/**
 * A rootless container, from inside the user namespace cp-rootless.ts
 * re-executes into: running, its /proc/PID/root; stopped, the overlay from
 * the bundle's annotation (what berth-runtime mounts in the container's
 * namespace) mounted on a private directory of this mount namespace.
 */
async function withRootlessRoot<T>(env: EngineEnv, rec: ContainerRecord, annotation: string, fn: (root: string) => Promise<T>): Promise<T> {
  if (!inBerthUserNamespace()) {
    throw new EngineError('E_ROOTLESS', `container ${rec.name} is rootless: its rootfs is mounted only inside a user namespace; run berth cp as the user who owns it`);
  }
  const passed = inheritedRoot(rec.id, rec.state.pid);
  if (isRunning(rec) && passed !== undefined) return fn(passed);
  return withContainerLock(env, rec.id, async () => {
    const now = readRecord(env, rec.id) ?? rec;
    if (isRunning(now)) {
      throw new EngineError('E_ROOTLESS', `container ${now.name} started while berth cp was getting ready; run it again`);
    }
    let mounts: Mount[];
    try {
      mounts = (JSON.parse(annotation) as Mount[]).filter((m) => m.target === undefined || m.target === '' || m.target === '/');
    } catch {
      throw new EngineError('E_BUNDLE', `${rec.bundle}/config.json: annotations["${ROOTFS_MOUNTS_ANNOTATION}"] is not JSON`);
    }
    const { mountAll, unmountAll } = await import('@berth/snapshots');
    const target = mkdtempSync(join(tmpdir(), 'berth-cp-rootfs-'));
    try {
      await mountAll(mounts.map(({ target: _onRoot, ...m }) => m), target);
      try {
        return await fn(target);
      } finally {
        await unmountAll(target);
      }
    } finally {
      rmdirSync(target);
    }
  });
}
