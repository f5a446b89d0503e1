/**
 * The container's filesystem, built by the init stage inside its own mount
 * namespace: rootfs bind, config.json mounts in order, /dev, then pivot_root,
 * then masked and read-only paths and the read-only root. Every step names the
 * call and the path when it fails.
 */
import { chmodSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { BerthError } from '@berth/cli-kit';
import type { Device, Mount, RuntimeSpec } from '@berth/oci-spec';
import * as sys from '@berth/sys';
import { parseMountOptions, propagationFlags } from './mount-options.ts';
import { secureJoin } from './paths.ts';
import { mountRootfsFromAnnotation } from './rootless.ts';

export interface RootfsContext {
  spec: RuntimeSpec;
  rootfs: string;
  bundle: string;
  /** A new user namespace: mknod is not allowed, devices are bind-mounted from the host. */
  userns: boolean;
  /** A new cgroup namespace: cgroup mounts show the container's cgroup as their root. */
  cgroupns: boolean;
}

function ensureDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o755 });
}

function ensureFile(path: string): void {
  ensureDir(dirname(path));
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o644));
}

/** A remount that keeps the flags the kernel locks on a mount made in another user namespace. */
function remount(target: string, flags: number): void {
  try {
    sys.mount(null, target, null, flags | sys.MS_REMOUNT | sys.MS_BIND);
  } catch (err) {
    if (!(err instanceof sys.SysError) || err.errnoName !== 'EPERM') throw err;
    sys.mount(null, target, null, flags | sys.MS_REMOUNT | sys.MS_BIND | sys.MS_NOSUID | sys.MS_NODEV | sys.MS_NOEXEC);
  }
}

/** Step 1: the host's mounts must not see what we do (slave by default), and the rootfs must be a mount point for pivot_root. */
export function prepareRoot(ctx: RootfsContext): void {
  const prop = ctx.spec.linux?.rootfsPropagation;
  sys.mount(null, '/', null, sys.MS_REC | (prop ? propagationFlags[prop]! | sys.MS_REC : sys.MS_SLAVE));
  // A rootless bundle's overlay, mounted here in the container's own namespaces (rootless.ts).
  mountRootfsFromAnnotation(ctx.spec, ctx.rootfs);
  sys.mount(ctx.rootfs, ctx.rootfs, null, sys.MS_BIND | sys.MS_REC);
}

/** Step 2: config.json's mounts, in order. */
export function mountAll(ctx: RootfsContext): void {
  for (const [i, m] of (ctx.spec.mounts ?? []).entries()) {
    try {
      mountOne(ctx, m);
    } catch (err) {
      const e = err as Error;
      throw new BerthError('E_MOUNT', `mounts[${i}] (${m.destination}): ${e.message}`, { cause: err });
    }
  }
}

function mountOne(ctx: RootfsContext, m: Mount): void {
  const dest = secureJoin(ctx.rootfs, m.destination);
  const { flags, propagation, data } = parseMountOptions(m.options);
  const type = m.type ?? (flags & sys.MS_BIND ? 'bind' : 'none');
  if (type === 'cgroup') {
    mountCgroup(ctx, dest, flags);
  } else if (flags & sys.MS_BIND || type === 'bind') {
    const source = m.source === undefined ? '' : isAbsolute(m.source) ? m.source : resolve(ctx.bundle, m.source);
    let isDir: boolean;
    try {
      isDir = statSync(source).isDirectory();
    } catch (err) {
      throw new BerthError('E_MOUNT', `bind source ${source}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    if (isDir) ensureDir(dest);
    else ensureFile(dest);
    sys.mount(source, dest, null, sys.MS_BIND | (flags & sys.MS_REC));
    // A bind mount ignores every flag but MS_REC on creation; the others need a remount.
    const rest = flags & ~(sys.MS_BIND | sys.MS_REC | sys.MS_REMOUNT);
    if (rest !== 0) remount(dest, rest);
  } else {
    ensureDir(dest);
    try {
      sys.mount(m.source ?? type, dest, type, flags, data || null);
    } catch (err) {
      // sysfs belongs to the network namespace's owner: in a user namespace
      // that shares the host's network namespace the kernel refuses a new one,
      // and a read-only recursive bind of the host's /sys stands in (as runc does).
      if (type === 'sysfs' && err instanceof sys.SysError && err.errnoName === 'EPERM') {
        sys.mount('/sys', dest, null, sys.MS_BIND | sys.MS_REC);
        remount(dest, sys.MS_RDONLY | sys.MS_NOSUID | sys.MS_NODEV | sys.MS_NOEXEC);
      } else {
        throw err;
      }
    }
  }
  for (const p of propagation) sys.mount(null, dest, null, p);
}

interface HostHierarchy { mountPoint: string; fstype: 'cgroup' | 'cgroup2'; options: string; id: string }

/** The host's cgroup mounts (from mountinfo) keyed by the controller list /proc/self/cgroup uses. */
function hostHierarchies(): HostHierarchy[] {
  const out: HostHierarchy[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const fstype = right[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const superOpts = right[2] ?? '';
    const ids = superOpts.split(',').filter((o) => !['rw', 'ro', 'nsdelegate', 'memory_recursiveprot', 'relatime', 'xattr', 'clone_children', 'noprefix'].includes(o) && !o.startsWith('release_agent'));
    out.push({ mountPoint: left[4]!, fstype, options: superOpts, id: fstype === 'cgroup2' ? '' : ids.sort().join(',') });
  }
  return out;
}

/** This process's cgroup path per hierarchy (controller list, sorted) from /proc/self/cgroup. */
function ownCgroups(): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, ctl, path] = line.match(/^\d+:([^:]*):(.*)$/) ?? [];
    if (ctl === undefined || path === undefined) continue;
    map.set(ctl.split(',').sort().join(','), path);
  }
  return map;
}

/**
 * A `cgroup` mount. On a v2 host: cgroup2 (new cgroup namespace) or a bind of
 * the container's own cgroup. On v1 and hybrid hosts: a tmpfs with one
 * directory per hierarchy, each the container's cgroup in that hierarchy.
 */
function mountCgroup(ctx: RootfsContext, dest: string, flags: number): void {
  const hier = hostHierarchies();
  const own = ownCgroups();
  const base = flags & ~(sys.MS_BIND | sys.MS_REC | sys.MS_RDONLY);
  ensureDir(dest);
  const unifiedOnly = hier.length > 0 && hier.every((h) => h.fstype === 'cgroup2');
  if (unifiedOnly) {
    if (ctx.cgroupns) {
      sys.mount('cgroup2', dest, 'cgroup2', flags);
    } else {
      const h = hier[0]!;
      sys.mount(join(h.mountPoint, own.get('') ?? '/'), dest, null, sys.MS_BIND | sys.MS_REC);
      if (flags & ~sys.MS_REC) remount(dest, flags & ~(sys.MS_BIND | sys.MS_REC));
    }
    return;
  }
  sys.mount('tmpfs', dest, 'tmpfs', base, 'mode=755');
  for (const h of hier) {
    if (!h.mountPoint.startsWith('/sys/fs/cgroup/')) continue;
    const name = h.mountPoint.slice('/sys/fs/cgroup/'.length);
    const path = own.get(h.id);
    if (path === undefined) continue;
    const target = join(dest, name);
    ensureDir(target);
    if (ctx.cgroupns) {
      const opts = h.fstype === 'cgroup2' ? null : h.id;
      sys.mount('cgroup', target, h.fstype, flags & ~(sys.MS_BIND | sys.MS_REC), opts);
    } else {
      sys.mount(join(h.mountPoint, path), target, null, sys.MS_BIND | sys.MS_REC);
      remount(target, (flags & ~(sys.MS_BIND | sys.MS_REC)) | sys.MS_NOSUID | sys.MS_NODEV | sys.MS_NOEXEC);
    }
  }
  if (flags & sys.MS_RDONLY) sys.mount(null, dest, null, sys.MS_REMOUNT | base | sys.MS_RDONLY, 'mode=755');
}

const defaultDevices: Device[] = [
  { type: 'c', path: '/dev/null', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/zero', major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/full', major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/random', major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/urandom', major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/tty', major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0 },
];

/**
 * Step 3: /dev. The default devices and the spec's devices are made with
 * mknod, or bind-mounted from the host inside a user namespace (where mknod is
 * refused); then the standard symlinks. Skipped when /dev itself is a bind
 * mount of the host's /dev.
 */
export function createDevices(ctx: RootfsContext): void {
  const devMount = (ctx.spec.mounts ?? []).find((m) => m.destination.replace(/\/+$/, '') === '/dev');
  const devIsBind = devMount !== undefined && (devMount.type === 'bind' || (devMount.options ?? []).some((o) => o === 'bind' || o === 'rbind'));
  if (devIsBind) return;
  const specDevices = ctx.spec.linux?.devices ?? [];
  const all = [...defaultDevices.filter((d) => !specDevices.some((s) => s.path === d.path)), ...specDevices];
  const oldUmask = process.umask(0);
  try {
    for (const d of all) createDevice(ctx, d);
  } finally {
    process.umask(oldUmask);
  }
  const links: Array<[string, string]> = [
    ['/proc/self/fd', '/dev/fd'], ['/proc/self/fd/0', '/dev/stdin'], ['/proc/self/fd/1', '/dev/stdout'],
    ['/proc/self/fd/2', '/dev/stderr'],
  ];
  if (existsSync('/proc/kcore')) links.push(['/proc/kcore', '/dev/core']);
  for (const [target, link] of links) {
    const at = secureJoin(ctx.rootfs, link);
    try {
      symlinkSync(target, at);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new BerthError('E_DEV', `symlink ${link}: ${(err as NodeJS.ErrnoException).code}`);
    }
  }
  // /dev/ptmx must be the container's devpts instance, not the host's.
  const ptmx = secureJoin(ctx.rootfs, '/dev/ptmx');
  if (existsSync(secureJoin(ctx.rootfs, '/dev/pts/ptmx'))) {
    try {
      if (existsSync(ptmx) || isDanglingLink(ptmx)) return;
      symlinkSync('pts/ptmx', ptmx);
    } catch (err) {
      throw new BerthError('E_DEV', `symlink /dev/ptmx: ${(err as NodeJS.ErrnoException).code}`);
    }
  }
}

function isDanglingLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function createDevice(ctx: RootfsContext, d: Device): void {
  const dest = secureJoin(ctx.rootfs, d.path);
  ensureDir(dirname(dest));
  const mode = d.fileMode ?? 0o666;
  if (ctx.userns) {
    ensureFile(dest);
    sys.mount(d.path, dest, null, sys.MS_BIND);
    return;
  }
  const kind = d.type === 'b' ? sys.S_IFBLK : d.type === 'p' ? sys.S_IFIFO : sys.S_IFCHR;
  try {
    sys.mknod(dest, kind | mode, d.major ?? 0, d.minor ?? 0);
  } catch (err) {
    if (!(err instanceof sys.SysError) || err.errnoName !== 'EEXIST') throw err;
    chmodSync(dest, mode);
  }
  chownSync(dest, d.uid ?? 0, d.gid ?? 0);
}

/** The pty slave becomes /dev/console (a bind mount, so the container cannot replace it). */
export function bindConsole(ctx: RootfsContext, slavePath: string): void {
  const dest = secureJoin(ctx.rootfs, '/dev/console');
  ensureFile(dest);
  sys.mount(slavePath, dest, null, sys.MS_BIND);
}

/**
 * Step 4: make the rootfs "/". pivot_root(".", ".") stacks the old root on top
 * of the new one; it is made a slave (so the detach does not propagate to the
 * host) and lazily unmounted, leaving no path back to the host's tree.
 */
export function enterRootfs(ctx: RootfsContext, noPivot: boolean): void {
  process.chdir(ctx.rootfs);
  if (noPivot) {
    sys.mount(ctx.rootfs, '/', null, sys.MS_MOVE);
    sys.chroot('.');
  } else {
    sys.pivotRoot('.', '.');
    sys.mount(null, '.', null, sys.MS_SLAVE | sys.MS_REC);
    sys.umount2('.', sys.MNT_DETACH);
  }
  process.chdir('/');
}

/** Step 5 (after pivot_root): sysctls, read-only paths, masked paths, a read-only root. */
export function finishRootfs(ctx: RootfsContext): void {
  // sysctls first: /proc/sys is usually one of the read-only paths.
  for (const [key, value] of Object.entries(ctx.spec.linux?.sysctl ?? {})) {
    const file = '/proc/sys/' + key.replace(/\./g, '/');
    try {
      writeFileSync(file, value);
    } catch (err) {
      throw new BerthError('E_SYSCTL', `sysctl ${key}=${value}: write ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  }
  for (const p of ctx.spec.linux?.readonlyPaths ?? []) {
    if (!existsSync(p)) continue;
    sys.mount(p, p, null, sys.MS_BIND | sys.MS_REC);
    remount(p, sys.MS_RDONLY | sys.MS_REC);
  }
  for (const p of ctx.spec.linux?.maskedPaths ?? []) {
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) sys.mount('tmpfs', p, 'tmpfs', sys.MS_RDONLY);
    else sys.mount('/dev/null', p, null, sys.MS_BIND);
  }
  if (ctx.spec.root?.readonly) remount('/', sys.MS_RDONLY);
}
