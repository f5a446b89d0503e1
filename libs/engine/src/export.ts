import { join } from 'node:path';
import { treeTar } from '@berth/archive';
import { isMountPoint } from '@berth/snapshots';
import { EngineError } from './errors.ts';
import type { EngineEnv } from './paths.ts';
import { mark } from './proc.ts';
import type { ContainerRecord } from './records.ts';
import { withMountedRootfs } from './cp-rootfs.ts';
import { ROOTFS_MOUNTS_ANNOTATION } from './rootless.ts';
import { isRunning, readSpec } from './status.ts';

/**
 * `berth export`: a container's whole filesystem as one tar, as
 * podman-export(1) writes it: the container's rootfs as its storage mounts
 * it — the image's layers with the container's changes on top — and nothing
 * the runtime mounted inside (no /proc, no volumes, the empty stubs of
 * /etc/hosts and /etc/resolv.conf rather than the files bound over them).
 *
 * That is the overlay at ROOT/containers/ID/bundle/rootfs, mounted in the
 * host's mount namespace by create and kept until rm: the runtime's own
 * mounts live in the container's namespace and never show there. A created
 * or exited container whose overlay a reboot took away gets it mounted for
 * the export and unmounted after, under the container's lock (the one start
 * takes), as `berth cp` does. The walk does not leave the overlay's
 * filesystem and never follows a symlink (@berth/archive's walkUpper), so
 * a running container that plants links cannot make the tar carry a host
 * file.
 */
/** `write` must be done with a chunk (written or copied) when its promise resolves: the buffers are reused. */
export async function exportContainer(env: EngineEnv, rec: ContainerRecord, write: (chunk: Buffer) => Promise<void>): Promise<void> {
  if (readSpec(rec.bundle).annotations?.[ROOTFS_MOUNTS_ANNOTATION] !== undefined) {
    throw new EngineError('E_ROOTLESS', `container ${rec.name} is rootless: its rootfs is mounted only inside its user namespace; export as an ordinary user is not supported yet`);
  }
  const target = join(rec.bundle, 'rootfs');
  const send = async (root: string) => {
    mark('export: walk starts');
    await streamTree(root, write);
    mark('export: tar written');
  };
  if (isRunning(rec)) {
    if (!(await isMountPoint(target))) {
      throw new EngineError('E_EXPORT', `container ${rec.name} is running but its rootfs is not mounted at ${target} in this mount namespace; stop it and export again`);
    }
    return send(target);
  }
  // Stopped: the overlay as create left it, or mounted for the walk (cp-rootfs.ts, as `berth cp` does).
  return withMountedRootfs(env, rec, 'export', () => undefined, send);
}

/**
 * The tar in writes of about 1 MiB: headers and small files are gathered
 * (one write per 512-byte header would be a syscall each), a big file's
 * pieces go out as they come. `write` must be done with a buffer when its
 * promise resolves: both the gathering buffer and the walk's read buffer
 * are refilled right after, which spares a fresh megabyte per megabyte.
 */
async function streamTree(root: string, write: (chunk: Buffer) => Promise<void>): Promise<void> {
  const SIZE = 1 << 20;
  const buf = Buffer.allocUnsafe(SIZE);
  let used = 0;
  const flush = async () => {
    if (used === 0) return;
    const n = used;
    used = 0;
    await write(buf.subarray(0, n));
  };
  for await (const chunk of treeTar(root, { oneFileSystem: true, reuseBuffers: true })) {
    if (chunk.length >= SIZE / 4) {
      await flush();
      await write(chunk);
      continue;
    }
    if (used + chunk.length > SIZE) await flush();
    chunk.copy(buf, used);
    used += chunk.length;
  }
  await flush();
}
