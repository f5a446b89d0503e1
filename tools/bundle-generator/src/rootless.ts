import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BerthError, defaultDataRoot, inBerthUserNamespace } from '@berth/cli-kit';
import type { IdMapping, Mount, Namespace, RuntimeSpec } from '@berth/oci-spec';
import { relativeOverlayOptions, type Mount as SnapshotMount } from '@berth/snapshots';
import * as sys from '@berth/sys';

/**
 * Rootless bundles (issue 12). An ordinary user's berth-bundle runs inside the
 * user's namespace (cli.ts re-executes it there, as berth-store does), where
 * it is uid 0 with the user's range mapped. It still cannot mount anything in
 * the host's mount namespace, and a mount made in a private one dies with the
 * process. So, as podman and crun do for rootless containers, the rootfs is
 * mounted by the runtime, inside the container's own user and mount
 * namespaces: root.path is the empty BUNDLE/rootfs directory and the
 * snapshot's mounts travel in the ROOTFS_MOUNTS_ANNOTATION annotation.
 * berth-bundle mounts them only briefly, in a mount namespace of its own, to
 * read /etc/passwd and /etc/group and to create the working directory.
 *
 * runc cannot run such a bundle: it has no way to mount the rootfs from an
 * annotation, and as an ordinary user it cannot mount overlayfs before it
 * starts either. Root bundles (berth-bundle as root) keep working with runc.
 */

/** config.json annotation: the rootfs document's mounts (JSON), for the runtime to mount on root.path. */
export const ROOTFS_MOUNTS_ANNOTATION = 'io.berth.rootfs.mounts';
/** config.json annotation: cgroup limits are applied only where the user may write the cgroup. */
export const RESOURCES_ANNOTATION = 'io.berth.resources';

/** Is this process a rootless berth: an ordinary user, or the user's namespace it re-executed into? */
export function isRootless(): boolean {
  return inBerthUserNamespace() || (typeof process.getuid === 'function' && process.getuid() !== 0);
}

/**
 * The id maps of this process's user namespace (user_namespaces(7)): read
 * from inside, each line is "inside-id outside-id count", which is exactly
 * what config.json's uidMappings/gidMappings say. Root of the container is
 * the user; 1..N is the subordinate range (or nothing, for a user without one).
 */
export function ownIdMappings(file: 'uid_map' | 'gid_map'): IdMapping[] {
  const text = readFileSync(`/proc/self/${file}`, 'utf8');
  const maps = text.trim().split('\n').map((line) => {
    const [containerID, hostID, size] = line.trim().split(/\s+/).map(Number);
    return { containerID: containerID!, hostID: hostID!, size: size! };
  });
  if (maps.length === 1 && maps[0]!.containerID === 0 && maps[0]!.hostID === 0 && maps[0]!.size === 4294967295) {
    throw new BerthError('E_ROOTLESS', `berth-bundle is not in a user namespace (/proc/self/${file} is the identity map): a rootless bundle needs the user's namespace`);
  }
  return maps;
}

/**
 * Turn a root bundle's config into a rootless one: a user namespace first,
 * sysfs only where the container owns its network namespace, devpts without a
 * gid the map may not have, and resources marked best-effort.
 *
 * In a rootless pod (`podUserNs`, the holder's /proc/PID/ns/user) the
 * container joins the pod's user namespace by path instead of making one:
 * the pod's network, IPC and UTS namespaces belong to it, and setns(2) into
 * them needs CAP_SYS_ADMIN there. Its maps are the ones berth-pod wrote with
 * the same range as this process's namespace, so the mappings stay as a
 * description (the runtime writes no map for a joined namespace).
 */
export function makeRootless(spec: RuntimeSpec, rootfsMounts: SnapshotMount[] | undefined, podUserNs?: string): void {
  const linux = spec.linux ?? (spec.linux = {});
  const uidMappings = ownIdMappings('uid_map');
  const gidMappings = ownIdMappings('gid_map');
  linux.uidMappings = uidMappings;
  linux.gidMappings = gidMappings;
  // The user namespace comes first: every other namespace is created inside
  // it, so the container's root owns them (and may mount proc, mqueue, sysfs).
  const others: Namespace[] = (linux.namespaces ?? []).filter((n) => n.type !== 'user');
  linux.namespaces = [podUserNs ? { type: 'user', path: podUserNs } : { type: 'user' }, ...others];
  const ownNetns = others.some((n) => n.type === 'network' && n.path === undefined);
  const mapsGid5 = gidMappings.some((m) => m.containerID <= 5 && 5 < m.containerID + m.size);
  spec.mounts = (spec.mounts ?? []).map((m): Mount => {
    // sysfs may only be mounted by the owner of the network namespace; with
    // the host's (or a joined) one, a read-only recursive bind of the host's
    // /sys stands in, as runc's `spec --rootless` writes it.
    if (m.destination === '/sys' && m.type === 'sysfs' && !ownNetns) {
      return { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
    }
    // A devpts gid= must be mapped in the namespace, or the kernel says EINVAL.
    if (m.type === 'devpts' && !mapsGid5) return { ...m, options: (m.options ?? []).filter((o) => !o.startsWith('gid=')) };
    return m;
  });
  // A map of the user's own gid alone is written with setgroups "deny":
  // supplementary groups cannot be set in such a namespace.
  if (gidMappings.length === 1 && gidMappings[0]!.size === 1 && spec.process?.user) delete spec.process.user.additionalGids;
  const annotations = spec.annotations ?? (spec.annotations = {});
  if (rootfsMounts) annotations[ROOTFS_MOUNTS_ANNOTATION] = JSON.stringify(rootfsMounts);
  annotations[RESOURCES_ANNOTATION] = 'best-effort';
}

/**
 * Mount the rootfs document's mounts on `target` in a private mount namespace
 * of this thread, run `use`, and unmount. Only the main thread enters the new
 * namespace (unshare(CLONE_NEWNS) in a threaded process unshares the calling
 * thread's fs context), so everything in between must be synchronous: libuv's
 * worker threads still see the host's tree, where nothing is mounted.
 */
export function withRootfsMounted<T>(mounts: SnapshotMount[], target: string, use: () => T): T {
  sys.unshare(sys.CLONE_NEWNS);
  // Nothing made here may reach another namespace.
  sys.mount(null, '/', null, sys.MS_REC | sys.MS_PRIVATE);
  const done: string[] = [];
  try {
    for (const m of mounts) mountOneSync(m, m.target ? `${target}/${m.target}` : target, done);
    return use();
  } finally {
    for (const where of done.reverse()) {
      try {
        sys.umount2(where, sys.MNT_DETACH);
      } catch {
        // The namespace dies with this process anyway.
      }
    }
  }
}

function mountOneSync(m: SnapshotMount, where: string, done: string[]): void {
  if (m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind')) {
    sys.mount(m.source, where, null, sys.MS_BIND | (m.options.includes('rbind') ? sys.MS_REC : 0));
    done.push(where);
    return;
  }
  let options = m.options;
  let cwd: string | undefined;
  // mount(2) takes one page of options: long lowerdir lists go relative to their common parent.
  if (options.join(',').length > 4000) ({ options, cwd } = relativeOverlayOptions(options));
  const here = process.cwd();
  if (cwd) process.chdir(cwd);
  try {
    sys.mount(m.source, where, m.type, 0, options.join(','));
  } finally {
    if (cwd) process.chdir(here);
  }
  done.push(where);
}

/**
 * A user without a subordinate range (rootlessPlan warned already): the
 * namespace maps the user's own uid and gid only, which needs no setuid
 * helper (unshare --map-root-user writes "deny" to setgroups first). Files of
 * other owners in the image then show up as nobody inside, as with podman.
 */
export function reexecWithOwnIdOnly(): never {
  const r = spawnSync('/usr/bin/unshare', ['--map-root-user', '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, BERTH_IN_USERNS: '1', BERTH_ROOT: defaultDataRoot() },
  });
  if (r.error) throw new BerthError('E_ROOTLESS', `unshare --map-root-user: ${r.error.message}`);
  if (r.signal) process.kill(process.pid, r.signal);
  process.exit(r.status ?? 1);
}
