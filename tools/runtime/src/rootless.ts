/**
 * berth-runtime for an ordinary user (issue 12), kept in one place so the
 * root paths read as before. What changes without root:
 *
 * - id maps: an unprivileged process may write only a map of its own id into
 *   a child user namespace; the user's subordinate range (subuid(5)) is written
 *   by the setuid helpers newuidmap(1)/newgidmap(1), which check /etc/subuid
 *   and /etc/subgid.
 * - the rootfs: a rootless berth-bundle leaves root.path empty and hands the
 *   snapshot's overlay mount over in an annotation; the init mounts it in the
 *   container's mount namespace, which the container's user namespace owns
 *   (overlayfs with `userxattr` may be mounted there), before pivot_root.
 * - the node binary for the init: open_tree(2) needs CAP_SYS_ADMIN over the
 *   host's mount namespace; a plain read-only fd does, because the user (the
 *   container's root) cannot write the host's node anyway.
 * - cgroups: on cgroup v1 (and v2 without a delegated subtree) the user cannot
 *   create one; limits are skipped with one warning, as podman does.
 * - state: under $XDG_RUNTIME_DIR/berth/runtime, else /tmp/berth-run-UID/berth/runtime,
 *   private to the user (0700), so no other user can list, kill or delete.
 */
import { spawnSync } from 'node:child_process';
import { openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { BerthError } from '@berth/cli-kit';
import type { IdMapping, RuntimeSpec } from '@berth/oci-spec';
import * as sys from '@berth/sys';
import { secureJoin } from './paths.ts';
import { isRootlessCaller } from './rootless-state.ts';

/** A bundle's rootfs mounts, as berth-bundle writes them for a rootless container. */
export const ROOTFS_MOUNTS_ANNOTATION = 'io.berth.rootfs.mounts';

/** newuidmap/newgidmap, or BERTH_NEWUIDMAP/BERTH_NEWGIDMAP (another install prefix; the tests point them at a copy). */
function helperPath(kind: 'uid' | 'gid'): string {
  return (kind === 'uid' ? process.env.BERTH_NEWUIDMAP : process.env.BERTH_NEWGIDMAP) || `/usr/bin/new${kind}map`;
}

function checkHelper(path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new BerthError('E_ROOTLESS', `${path} is missing: install Debian's uidmap package (apt-get install uidmap) to map a subordinate id range`);
  }
  if ((st.mode & 0o4000) === 0 || st.uid !== 0) {
    throw new BerthError('E_ROOTLESS', `${path} is not setuid root, so it cannot write the id maps: chmod u+s ${path} (or reinstall uidmap)`);
  }
}

/**
 * Write the id maps of the holder's new user namespace as an ordinary user.
 * A map of just the caller's own id needs no helper (gid_map then needs
 * setgroups "deny" first, user_namespaces(7)); anything else goes through
 * newuidmap/newgidmap, which take "inside outside count" triplets.
 */
export function writeIdMapsRootless(pid: number, uid: IdMapping[], gid: IdMapping[]): void {
  const ownOnly = (m: IdMapping[], id: number) => m.length === 1 && m[0]!.hostID === id && m[0]!.size === 1;
  if (ownOnly(uid, process.geteuid!()) && ownOnly(gid, process.getegid!())) {
    const write = (file: string, text: string) => {
      try {
        writeFileSync(`/proc/${pid}/${file}`, text);
      } catch (err) {
        throw new BerthError('E_IDMAP', `write /proc/${pid}/${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
    };
    write('setgroups', 'deny');
    write('uid_map', `${uid[0]!.containerID} ${uid[0]!.hostID} 1\n`);
    write('gid_map', `${gid[0]!.containerID} ${gid[0]!.hostID} 1\n`);
    return;
  }
  for (const [kind, maps] of [['uid', uid], ['gid', gid]] as const) {
    const helper = helperPath(kind);
    checkHelper(helper);
    const args = [String(pid), ...maps.flatMap((m) => [String(m.containerID), String(m.hostID), String(m.size)])];
    const r = spawnSync(helper, args, { encoding: 'utf8' });
    if (r.error || r.status !== 0) {
      const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim();
      const file = kind === 'uid' ? '/etc/subuid' : '/etc/subgid';
      throw new BerthError('E_IDMAP', `${helper} ${args.join(' ')}: ${why} (the ${kind} mappings must lie in your own id and your ${file} range)`);
    }
  }
}

/** The fd the init's node runs from: a detached read-only mount as root, a plain read-only fd otherwise. */
export function openInitBinary(path: string): number {
  if (!isRootlessCaller()) return sys.openReadonlyClone(path);
  return openSync(path, 'r');
}

/**
 * Mount the rootfs mounts a rootless bundle carries in its annotation on
 * root.path. Called in the container's mount namespace, after the propagation
 * of / is set (so nothing reaches the host) and before root.path is bound on
 * itself for pivot_root.
 */
export function mountRootfsFromAnnotation(spec: RuntimeSpec, rootfs: string): void {
  const raw = spec.annotations?.[ROOTFS_MOUNTS_ANNOTATION];
  if (raw === undefined) return;
  let mounts: Array<{ type: string; source: string; target?: string; options: string[] }>;
  try {
    mounts = JSON.parse(raw);
    if (!Array.isArray(mounts) || mounts.some((m) => typeof m?.type !== 'string' || typeof m.source !== 'string' || !Array.isArray(m.options))) throw new Error('not a list of {type, source, options}');
  } catch (err) {
    throw new BerthError('E_CONFIG', `config.json: annotations["${ROOTFS_MOUNTS_ANNOTATION}"]: ${(err as Error).message}`);
  }
  for (const m of mounts) {
    const where = m.target ? secureJoin(rootfs, m.target) : rootfs;
    const bind = m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind');
    try {
      if (bind) sys.mount(m.source, where, null, sys.MS_BIND | (m.options.includes('rbind') ? sys.MS_REC : 0));
      else mountWithLongOptions(m.source, where, m.type, m.options);
    } catch (err) {
      throw new BerthError('E_MOUNT', `rootfs (${ROOTFS_MOUNTS_ANNOTATION}): ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * mount(2) copies one page of options: past that, overlay's lowerdir paths
 * are given relative to their common parent and the mount runs from there
 * (the kernel resolves them against the caller's cwd).
 */
function mountWithLongOptions(source: string, where: string, type: string, options: string[]): void {
  const data = options.join(',');
  if (data.length <= 4000) {
    sys.mount(source, where, type, 0, data);
    return;
  }
  const paths = options.flatMap((o) => /^(lowerdir|upperdir|workdir)=/.test(o) ? o.slice(o.indexOf('=') + 1).split(':') : []);
  let common = paths[0] ?? '/';
  while (common !== '/' && !paths.every((p) => p === common || p.startsWith(common + '/'))) common = common.slice(0, common.lastIndexOf('/')) || '/';
  const rel = options.map((o) => {
    const m = /^(lowerdir|upperdir|workdir)=(.*)$/.exec(o);
    return m ? `${m[1]}=${m[2]!.split(':').map((p) => p.slice(common.length).replace(/^\//, '') || '.').join(':')}` : o;
  });
  const here = process.cwd();
  process.chdir(common);
  try {
    sys.mount(source, where, type, 0, rel.join(','));
  } finally {
    process.chdir(here);
  }
}

/**
 * nsenter's credential flags for joining a user namespace. By default it
 * calls setgroups(0, NULL), then setgid(0) and setuid(0); a namespace whose
 * gid map an unprivileged user wrote (only its own id, no newgidmap) has
 * setgroups "deny", so that fails: keep the credentials instead, which already
 * map to root in that namespace.
 */
export function nsenterCredentialFlags(joins: Array<{ type: string; path?: string }>): string[] {
  const user = joins.find((n) => n.type === 'user' && n.path !== undefined);
  const m = user ? /^\/proc\/(\d+)\/ns\/user$/.exec(user.path!) : null;
  if (!m) return [];
  try {
    return readFileSync(`/proc/${m[1]}/setgroups`, 'utf8').trim() === 'deny' ? ['--preserve-credentials'] : [];
  } catch {
    return [];
  }
}

/**
 * setgroups(2) for the container's process. In a user namespace whose gid map
 * the user wrote alone, setgroups is "deny" (user_namespaces(7)) and the
 * process keeps the (unmapped) groups it has; asking for no extra groups is
 * then not an error, as in runc. Asking for some still fails, naming why.
 */
export function setgroupsUnlessDenied(gids: readonly number[]): void {
  if (gids.length === 0 && setgroupsDenied()) return;
  sys.setgroups(gids);
}

function setgroupsDenied(): boolean {
  try {
    return readFileSync('/proc/self/setgroups', 'utf8').trim() === 'deny';
  } catch {
    return false;
  }
}

/**
 * Why no user namespace could be made, when the kernel says so in a sysctl
 * (user_namespaces(7); Debian's kernel.unprivileged_userns_clone), with the
 * command that allows it; empty when nothing explains it.
 */
export function userNamespacesHint(): string {
  const read = (p: string) => { try { return readFileSync(p, 'utf8').trim(); } catch { return undefined; } };
  if (read('/proc/sys/user/max_user_namespaces') === '0') {
    return ': user namespaces are disabled (user.max_user_namespaces = 0): sudo sysctl -w user.max_user_namespaces=15000';
  }
  if (isRootlessCaller() && read('/proc/sys/kernel/unprivileged_userns_clone') === '0') {
    return ': unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0): sudo sysctl -w kernel.unprivileged_userns_clone=1';
  }
  return '';
}
