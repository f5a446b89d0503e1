import { join } from 'node:path';
import { log } from '@berth/cli-kit';
import type { Mount, RuntimeSpec } from '@berth/oci-spec';
import { withRootfsMounted } from '@berth/bundle-generator/rootless';
import type { Mount as SnapshotMount } from '@berth/snapshots';
import type { EngineEnv } from './paths.ts';
import { ROOTFS_MOUNTS_ANNOTATION } from './rootless.ts';
import { prepareVolumeSync } from './volume-copyup.ts';
import { bindMountShown, sortByDepth, volumeBindOptions, type ContainerMount, type VolumeMountRequest } from './volume-mounts.ts';
import {
  ensureVolume, newVolumeName, readVolume, removeVolumeLocked, saveVolume, volumePaths, volumeUsers, withVolumeLock,
} from './volume-store.ts';
import { listRecords } from './records.ts';

/**
 * A container's volumes through create, in three steps around the others:
 * plan (names, the bundle's bind mounts and the record's Mounts, before the
 * record is reserved, so `volume rm` sees the container as a user from its
 * first moment), ensure (each volume made on first use, as podman does; taken
 * back if the create fails), prepare (after the bundle: copy-up and owner).
 */
export interface VolumePlan {
  /** Every user mount for the bundle: -v/--mount binds and tmpfs as given, volumes as binds of _data; by depth. */
  bundleMounts: Mount[];
  /** inspect's Mounts: the volumes, then the binds. */
  recordMounts: ContainerMount[];
  volumes: Array<{ name: string; anonymous: boolean; request: VolumeMountRequest }>;
}

/** Name the volumes (anonymous ones get 64 hex digits now) and turn them into bind mounts of their _data. */
export function planVolumes(env: EngineEnv, requests: readonly VolumeMountRequest[], userMounts: readonly Mount[]): VolumePlan {
  const volumes = requests.map((request) => ({ name: request.name ?? newVolumeName(), anonymous: request.name === undefined, request }));
  const binds = userMounts.filter((m) => m.type === 'bind').map(bindMountShown);
  const volumeMounts = volumes.map(({ name, anonymous, request }) => {
    const { spec, shown } = volumeBindOptions(request);
    const source = volumePaths.data(env, name);
    return {
      bundle: { destination: request.destination, type: 'bind', source, options: spec } satisfies Mount,
      record: {
        type: 'volume', name, ...(anonymous ? { anonymous: true } : {}), source, destination: request.destination,
        options: shown, rw: !request.readOnly, propagation: request.propagation,
      } satisfies ContainerMount,
    };
  });
  return {
    bundleMounts: sortByDepth([...userMounts, ...volumeMounts.map((v) => v.bundle)]),
    // podman's inspect lists the volumes first, then the binds, each in the order typed.
    recordMounts: [...volumeMounts.map((v) => v.record), ...binds],
    volumes,
  };
}

/** Make the volumes that do not exist yet; the function returned removes those again (a failed create leaves none). */
export async function ensureVolumes(env: EngineEnv, plan: VolumePlan, containerId: string): Promise<() => Promise<void>> {
  const made: string[] = [];
  const undo = async (): Promise<void> => {
    if (made.length === 0) return;
    await withVolumeLock(env, async () => {
      for (const name of made) {
        // The failed container's own record may still be there: it does not count.
        if (volumeUsers(env, name, listRecords(env).filter((r) => r.id !== containerId)).length > 0) continue;
        await removeVolumeLocked(env, name).catch((e: unknown) => log.debug(`undo volume ${name}: ${(e as Error).message}`));
      }
    });
  };
  try {
    for (const v of plan.volumes) {
      const { created } = await ensureVolume(env, v.name, v.anonymous);
      if (created) made.push(v.name);
    }
  } catch (err) {
    // One volume failed: the ones made before it go again.
    await undo();
    throw err;
  }
  return undo;
}

/**
 * Copy-up and owner for volumes used for the first time, once the bundle is
 * there. A root bundle's rootfs is mounted under it already; a rootless
 * one's is mounted here only, in this thread's private mount namespace,
 * as berth-bundle does (this runs inside the user's namespace then).
 */
export async function prepareVolumes(env: EngineEnv, plan: VolumePlan, bundle: string, spec: RuntimeSpec): Promise<void> {
  if (plan.volumes.length === 0) return;
  await withVolumeLock(env, async () => {
    const todo = plan.volumes.flatMap((v) => {
      const vol = readVolume(env, v.name);
      if (!vol) return [];
      const copyUp = vol.needsCopyUp && v.request.copy;
      return copyUp || vol.needsChown ? [{ v, vol, copyUp }] : [];
    });
    if (todo.length === 0) return;
    const user = spec.process?.user ?? { uid: 0, gid: 0 };
    const rootfs = join(bundle, 'rootfs');
    const run = () => todo.map(({ v, vol, copyUp }) => prepareVolumeSync({
      rootfs, destination: v.request.destination, volumeDir: volumePaths.dir(env, v.name), copyUp,
      ...(vol.needsChown ? { chown: { uid: user.uid, gid: user.gid } } : {}),
    }));
    const rootlessMounts = spec.annotations?.[ROOTFS_MOUNTS_ANNOTATION];
    const copied = rootlessMounts === undefined ? run() : withRootfsMounted(JSON.parse(rootlessMounts) as SnapshotMount[], rootfs, run);
    // podman's flags: the copy-up is done once something was copied; the owner is set once.
    // One volume on two mount points is one record: it is written once, from both results.
    const done = new Map<string, { vol: (typeof todo)[number]['vol']; copied: boolean }>();
    for (const [i, { vol }] of todo.entries()) done.set(vol.name, { vol, copied: (done.get(vol.name)?.copied ?? false) || copied[i] === true });
    for (const { vol, copied: any } of done.values()) await saveVolume(env, { ...vol, needsCopyUp: vol.needsCopyUp && !any, needsChown: false });
  });
}
