import { randomBytes } from 'node:crypto';
import {
  closeSync, constants, fchmodSync, fchownSync, fstatSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync,
  mkdirSync, mkdtempSync, openSync, readdirSync, readlinkSync, readSync, renameSync, rmdirSync, rmSync, symlinkSync,
  unlinkSync, writeSync, createReadStream, createWriteStream, type Stats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { posix } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { log } from '@berth/cli-kit';
import { CopyPathError, RootDir, at, openRegularFile, engineErrorFor, errnoOf, split, type Located } from './cp-path.ts';
import { withContainerRoot } from './cp-rootfs.ts';
export { copyInUserNamespace } from './cp-rootless.ts';
import { EngineError } from './errors.ts';
import type { EngineEnv } from './paths.ts';
import { mustFindRecord, type ContainerRecord } from './records.ts';
import { readSpec } from './status.ts';

/**
 * `berth cp` (podman-cp(1)): copy between the host and one container, or
 * stream a tar archive in from stdin or out to stdout. The rules for what
 * lands where are podman's (and docker's): a file onto a file replaces it,
 * into a directory takes its base name; a directory onto a missing path
 * becomes it, into a directory goes below it, and `DIR/.` copies only its
 * contents. Container paths are resolved inside the container's root by
 * cp-path.ts, so nothing the container controls can make berth read or
 * write a host path. Files are written to a temporary name and renamed into
 * place, so a failed copy leaves no half-written file.
 */

/** One side of a copy, as typed: `CONTAINER:PATH`, a host path, or `-` (a tar on stdin/stdout). */
export type CopyEndpoint = { kind: 'container'; container: string; path: string } | { kind: 'host'; path: string } | { kind: 'stream' };

/**
 * podman's reading of an argument: `-` is the stream; a path starting with
 * `/` or `.` is the host's even with a colon in it (`./file:name.txt`);
 * otherwise the text before the first colon names a container.
 */
export function parseCopyEndpoint(arg: string): CopyEndpoint {
  if (arg === '-') return { kind: 'stream' };
  if (arg.startsWith('/') || arg.startsWith('.')) return { kind: 'host', path: arg };
  const colon = arg.indexOf(':');
  if (colon < 0) return { kind: 'host', path: arg };
  if (colon === 0) throw new EngineError('E_USAGE', `"${arg}": name or ID cannot be empty (write ./${arg} for a host path with a colon)`);
  return { kind: 'container', container: arg.slice(0, colon), path: arg.slice(colon + 1) || '/' };
}

export interface CopyRequest {
  src: CopyEndpoint;
  dest: CopyEndpoint;
  /** podman's -a/--archive (default true): what is copied in belongs to the container's process user; false keeps the source's owners. */
  archive: boolean;
  /** Replace a directory with a non-directory and the other way round. */
  overwrite: boolean;
  stdin: Readable;
  stdout: Writable;
}

interface CopyOptions {
  /** Owner of everything written; undefined: the source's own. */
  owner: { uid: number; gid: number } | undefined;
  overwrite: boolean;
  /** dev:ino of the directories this copy made: met again as a source, the copy is going into itself. */
  made?: Set<string>;
}

export async function containerCopy(env: EngineEnv, req: CopyRequest): Promise<void> {
  const { src, dest } = req;
  if (src.kind === 'container' && dest.kind === 'container') {
    throw new EngineError('E_USAGE', `copying between containers is not supported: berth cp copies between the host and one container (copy to a host directory first)`);
  }
  if (src.kind !== 'container' && dest.kind !== 'container') {
    throw new EngineError('E_USAGE', `one of SRC and DEST must be CONTAINER:PATH (got "${describe(src)}" and "${describe(dest)}"); a host path with a colon is written ./name:with:colon`);
  }
  const ctr = (src.kind === 'container' ? src : dest) as Extract<CopyEndpoint, { kind: 'container' }>;
  const rec = mustFindRecord(env, ctr.container);
  const where = `on container ${rec.name}`;
  if (src.kind === 'stream' || (src.kind === 'host' && dest.kind === 'container')) {
    const destPath = (dest as Extract<CopyEndpoint, { kind: 'container' }>).path;
    const owner = req.archive ? processOwner(rec) : undefined;
    if (src.kind === 'host') await preflightHostSource(src.path);
    await withContainerRoot(env, rec, async (root) => {
      const ctrRoot = new RootDir(root, where);
      try {
        if (src.kind === 'stream') await untarInto(ctrRoot, destPath, req.stdin, { owner, overwrite: req.overwrite }, where);
        else await withHostRoot((h) => copyBetween({ root: h, path: hostPath(src.path), shown: src.path }, { root: ctrRoot, path: destPath, shown: destPath }, { owner, overwrite: req.overwrite }));
      } finally {
        ctrRoot.close();
      }
    });
    return;
  }
  const srcPath = (src as Extract<CopyEndpoint, { kind: 'container' }>).path;
  await withContainerRoot(env, rec, async (root) => {
    const ctrRoot = new RootDir(root, where);
    try {
      if (dest.kind === 'stream') await tarFrom(ctrRoot, srcPath, req.stdout, where);
      // Copied out, files belong to whoever runs berth, as with podman.
      else {
        const owner = { uid: process.getuid!(), gid: process.getgid!() };
        await withHostRoot((h) => copyBetween({ root: ctrRoot, path: srcPath, shown: srcPath }, { root: h, path: hostPath(dest.path), shown: dest.path }, { owner, overwrite: req.overwrite }));
      }
    } finally {
      ctrRoot.close();
    }
  });
}

function describe(e: CopyEndpoint): string {
  return e.kind === 'stream' ? '-' : e.kind === 'host' ? e.path : `${e.container}:${e.path}`;
}

/** The container's process user (config.json process.user), podman's "primary UID/GID of the container". */
function processOwner(rec: ContainerRecord): { uid: number; gid: number } {
  const user = readSpec(rec.bundle).process?.user;
  return { uid: user?.uid ?? 0, gid: user?.gid ?? 0 };
}

/**
 * A host path made absolute without collapsing its "..": the walk resolves
 * them after the symlinks before them, as the kernel does (`link/..` is the
 * parent of where link points, not the directory link is in).
 */
function hostPath(path: string): string {
  return path.startsWith('/') ? path : `${process.cwd()}/${path}`;
}

/** The host as a root to resolve in: symlinks on the host are the user's own and followed as the kernel would. */
function hostRoot(): RootDir {
  return new RootDir('/', 'on the host');
}

async function withHostRoot(fn: (root: RootDir) => Promise<void>): Promise<void> {
  const root = hostRoot();
  try {
    await fn(root);
  } finally {
    root.close();
  }
}

/** One side of a file copy: the root it is resolved in, the path to resolve there, the path as the user typed it. */
interface Side { root: RootDir; path: string; shown: string }

/** A missing host source fails before the container's rootfs is touched (or mounted). */
async function preflightHostSource(path: string): Promise<void> {
  const root = hostRoot();
  try {
    const loc = locate(root, hostPath(path), root.label, path);
    if (!loc.st) throw new EngineError('E_CP_PATH', `"${path}" could not be found on the host: no such file or directory`);
  } finally {
    root.close();
  }
}

/** Resolve a path, turning a walk failure into an error that names the path and where it is. */
function locate(root: RootDir, path: string, where: string, display: string): Located {
  try {
    return root.locate(path, { followLast: true });
  } catch (err) {
    if (err instanceof CopyPathError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) {
      throw new EngineError('E_CP_PATH', `"${display}" could not be found ${where}: ${err.message}`);
    }
    throw engineErrorFor(err, `(resolving "${display}" ${where})`);
  }
}

/**
 * podman-cp(1)'s table. The source's last symlink is followed (podman copies
 * what a link points to, named after its target); so is the destination's,
 * inside its own root.
 */
async function copyBetween(from: Side, to: Side, opts: CopyOptions): Promise<void> {
  const { root: srcRoot, shown: srcPath } = from;
  const { root: destRoot, shown: destPath } = to;
  const srcWhere = srcRoot.label;
  const destWhere = destRoot.label;
  try {
    const s = locate(srcRoot, from.path, srcWhere, srcPath);
    if (!s.st) throw new EngineError('E_CP_PATH', `"${srcPath}" could not be found ${srcWhere}: no such file or directory`);
    const d = locate(destRoot, to.path, destWhere, destPath);
    const srcIsDir = s.st.isDirectory();
    const contentsOnly = srcIsDir && (/(^|\/)\.$/.test(srcPath) || s.resolved === '/');
    const srcName = posix.basename(s.resolved);
    if (!d.st) {
      if (!srcIsDir && destPath.endsWith('/')) throw new EngineError('E_CP_PATH', `"${destPath}" could not be found ${destWhere}: no such directory`);
      // A missing destination becomes the file, or the directory with the source's contents.
      copyEntry(srcRoot, s.parent, s.name, s.st, destRoot, d.parent, d.name, opts);
      return;
    }
    if (!d.st.isDirectory() && destPath.endsWith('/')) throw new EngineError('E_CP_PATH', `"${destPath}" ${destWhere}: not a directory`);
    if (d.st.isDirectory()) {
      const into = destRoot.openDir(d.parent, d.name);
      try {
        if (contentsOnly) {
          const from = srcRoot.openDir(s.parent, s.name);
          try {
            for (const e of readdirSync(at(from))) copyEntry(srcRoot, from, e, lstatSync(at(from, e)), destRoot, into, e, opts);
          } finally {
            srcRoot.release(from);
          }
        } else {
          copyEntry(srcRoot, s.parent, s.name, s.st, destRoot, into, srcName, opts);
        }
      } finally {
        destRoot.release(into);
      }
      return;
    }
    if (srcIsDir && !opts.overwrite) {
      throw new EngineError('E_CP_DIR_ONTO_FILE', `destination must be a directory when copying a directory: "${destPath}" ${destWhere} is a file (--overwrite replaces it)`);
    }
    copyEntry(srcRoot, s.parent, s.name, s.st, destRoot, d.parent, d.name, opts);
  } catch (err) {
    if (err instanceof EngineError) throw err;
    throw engineErrorFor(err, `(copying "${srcPath}" ${srcWhere} to "${destPath}" ${destWhere})`);
  }
}

function tempName(): string {
  return `.berth-cp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Set owner, mode and times on what fd holds. The order matters: chown
 * clears the set-id bits, so the mode comes after it; the times come last,
 * since nothing after them may touch the inode.
 */
function finish(fd: number, st: FileMeta, opts: CopyOptions): void {
  fchownSync(fd, opts.owner?.uid ?? st.uid, opts.owner?.gid ?? st.gid);
  fchmodSync(fd, st.mode & 0o7777);
  futimesSync(fd, st.atime, st.mtime);
}

/** Make room for a new entry of another kind at NAME: only with --overwrite, and never through a symlink. */
function clearForKind(root: RootDir, parent: number, name: string, wantDir: boolean, opts: CopyOptions): Stats | undefined {
  const existing = lstatOrUndefined(at(parent, name));
  if (!existing) return undefined;
  if (existing.isDirectory() === wantDir) return existing;
  if (!opts.overwrite) {
    throw new EngineError('E_CP_KIND', wantDir
      ? `cannot overwrite non-directory "${name}" ${root.label} with a directory (--overwrite replaces it)`
      : `cannot overwrite directory "${name}" ${root.label} with a non-directory (--overwrite replaces it)`);
  }
  if (existing.isDirectory()) removeTree(root, parent, name);
  else unlinkSync(at(parent, name));
  return undefined;
}

/** rm -r through descriptors: a directory swapped for a symlink mid-way fails the open instead of being followed. */
function removeTree(root: RootDir, parent: number, name: string): void {
  const fd = root.openDir(parent, name);
  try {
    for (const e of readdirSync(at(fd))) {
      const st = lstatSync(at(fd, e));
      if (st.isDirectory()) removeTree(root, fd, e);
      else unlinkSync(at(fd, e));
    }
  } finally {
    root.release(fd);
  }
  rmdirSync(at(parent, name));
}

/** Copy one entry (recursively for a directory) from (srcParent, srcName) to (destParent, destName). */
function copyEntry(srcRoot: RootDir, srcParent: number, srcName: string, st: Stats, destRoot: RootDir, destParent: number, destName: string, opts: CopyOptions): void {
  if (st.isDirectory()) {
    const made = (opts.made ??= new Set());
    // A container's rootfs is a host directory too: DEST may lie inside SRC (cp CTR:/ /var/lib/berth/...).
    if (made.has(`${st.dev}:${st.ino}`)) throw new EngineError('E_CP_INTO_ITSELF', `cannot copy a directory into itself: "${srcName}" ${srcRoot.label} is inside what is being copied`);
    const existing = clearForKind(destRoot, destParent, destName, true, opts);
    // Made private first, given its mode when full: a read-only directory could not be filled.
    if (!existing) mkdirSync(at(destParent, destName), 0o700);
    const into = destRoot.openDir(destParent, destName);
    const intoSt = fstatSync(into);
    made.add(`${intoSt.dev}:${intoSt.ino}`);
    const from = srcRoot.openDir(srcParent, srcName);
    try {
      for (const e of readdirSync(at(from))) copyEntry(srcRoot, from, e, lstatSync(at(from, e)), destRoot, into, e, opts);
      // A directory merged into keeps its own owner and mode, as podman's does.
      if (!existing) finish(into, st, opts);
    } finally {
      srcRoot.release(from);
      destRoot.release(into);
    }
    return;
  }
  if (st.isFile()) {
    clearForKind(destRoot, destParent, destName, false, opts);
    const opened = openRegularFile(at(srcParent, srcName));
    if (!opened) throw new EngineError('E_CP', `"${srcName}" ${srcRoot.label} changed into a non-file while being copied`);
    const { fd: input, st: real } = opened;
    try {
      writeFileAt(destParent, destName, (out) => copyFd(input, out), real, opts);
    } finally {
      closeSync(input);
    }
    return;
  }
  if (st.isSymbolicLink()) {
    clearForKind(destRoot, destParent, destName, false, opts);
    symlinkAt(destParent, destName, readlinkSync(at(srcParent, srcName)), st, opts);
    return;
  }
  log.warn(`skipping "${srcName}" ${srcRoot.label}: berth cp copies files, directories and symbolic links, not devices, FIFOs or sockets`);
}

function copyFd(input: number, output: number): void {
  const buf = Buffer.allocUnsafe(1 << 20);
  for (;;) {
    const n = readSync(input, buf, 0, buf.length, null);
    if (n === 0) return;
    let off = 0;
    while (off < n) off += writeSync(output, buf, off, n - off);
  }
}

/**
 * A new file at (parent, name): written under a temporary name made with
 * O_EXCL (which never follows a symlink), finished through its descriptor,
 * then renamed over NAME (rename replaces a symlink there, never follows
 * it). Any failure removes the temporary file: nothing half-written is seen.
 */
function writeFileAt(parent: number, name: string, fill: (fd: number) => void | Promise<void>, st: Stats | FileMeta, opts: CopyOptions): void | Promise<void> {
  const tmp = tempName();
  const fd = openSync(at(parent, tmp), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  const fail = (err: unknown): never => {
    try { closeSync(fd); } catch { /* closed already */ }
    try { unlinkSync(at(parent, tmp)); } catch { /* never made it */ }
    throw err;
  };
  const done = () => {
    try {
      finish(fd, st, opts);
      closeSync(fd);
    } catch (err) {
      fail(err);
    }
    try {
      renameSync(at(parent, tmp), at(parent, name));
    } catch (err) {
      try {
        // A mount point (a running container's /etc/hosts, /etc/resolv.conf,
        // /etc/hostname are bind mounts) cannot be renamed over: its content
        // is replaced in place instead, as podman does.
        if (errnoOf(err) === 'EBUSY') return overwriteInPlace(parent, tmp, name);
        throw err;
      } finally {
        try { unlinkSync(at(parent, tmp)); } catch { /* gone */ }
      }
    }
  };
  let r: void | Promise<void>;
  try {
    r = fill(fd);
  } catch (err) {
    return fail(err);
  }
  if (r instanceof Promise) return r.then(done, fail);
  done();
}

function overwriteInPlace(parent: number, tmp: string, name: string): void {
  const opened = openRegularFile(at(parent, tmp));
  if (!opened) throw new EngineError('E_CP', `the copy's temporary file ${tmp} changed into a non-file`);
  const input = opened.fd;
  try {
    const output = openSync(at(parent, name), constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW);
    try {
      copyFd(input, output);
    } finally {
      closeSync(output);
    }
  } finally {
    closeSync(input);
  }
}

function symlinkAt(parent: number, name: string, target: string, st: Stats | FileMeta, opts: CopyOptions): void {
  const tmp = tempName();
  symlinkSync(target, at(parent, tmp));
  try {
    lchownSync(at(parent, tmp), opts.owner?.uid ?? st.uid, opts.owner?.gid ?? st.gid);
    lutimesSync(at(parent, tmp), st.atime, st.mtime);
    renameSync(at(parent, tmp), at(parent, name));
  } catch (err) {
    try { unlinkSync(at(parent, tmp)); } catch { /* gone */ }
    throw err;
  }
}

/** The part of fs.Stats finish() reads, for entries that come from a tar header. */
interface FileMeta { uid: number; gid: number; mode: number; atime: Date; mtime: Date }

// ---------------------------------------------------------------- tar out

type TarStream = typeof import('tar-stream');

/** tar-stream is CommonJS: bundled, its functions sit on the namespace's default. Loaded only by the tar paths. */
async function tarStream(): Promise<TarStream> {
  const mod = await import('tar-stream') as TarStream & { default?: TarStream };
  return mod.default ?? mod;
}

/**
 * `berth cp CTR:PATH -`: PATH as a tar on stdout, named as podman names it
 * (the base name, or the contents for `DIR/.`), with the container's owners.
 */
async function tarFrom(root: RootDir, path: string, out: Writable, where: string): Promise<void> {
  const s = locate(root, path, where, path);
  if (!s.st) throw new EngineError('E_CP_PATH', `"${path}" could not be found ${where}: no such file or directory`);
  const tar = await tarStream();
  const pack = tar.pack();
  const sent = pipeline(pack, out);
  const contentsOnly = s.st.isDirectory() && (/(^|\/)\.$/.test(path) || s.resolved === '/');
  const add = async (parent: number, name: string, st: Stats, entry: string): Promise<void> => {
    const base = { name: entry, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
    if (st.isDirectory()) {
      const fd = root.openDir(parent, name);
      try {
        if (entry !== '') pack.entry({ ...base, name: `${entry}/`, type: 'directory' });
        for (const e of readdirSync(at(fd)).sort()) await add(fd, e, lstatSync(at(fd, e)), entry === '' ? e : `${entry}/${e}`);
      } finally {
        root.release(fd);
      }
    } else if (st.isFile()) {
      const opened = openRegularFile(at(parent, name));
      if (!opened) throw new EngineError('E_CP', `"${entry}" ${where} changed into a non-file while being copied`);
      const { fd, st: real } = opened;
      if (real.size === 0) {
        closeSync(fd);
        pack.entry({ ...base, type: 'file' }, Buffer.alloc(0));
      } else {
        // Exactly the size the header promised, even if the file grows meanwhile.
        await pipeline(createReadStream('', { fd, autoClose: true, end: real.size - 1 }), pack.entry({ ...base, size: real.size, type: 'file' }));
      }
    } else if (st.isSymbolicLink()) {
      pack.entry({ ...base, type: 'symlink', linkname: readlinkSync(at(parent, name)) });
    } else {
      log.warn(`skipping "${entry}" ${where}: not a file, directory or symbolic link`);
    }
  };
  try {
    await add(s.parent, s.name, s.st, contentsOnly ? '' : posix.basename(s.resolved));
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await sent.catch(() => {});
    throw err instanceof EngineError ? err : engineErrorFor(err, `(archiving "${path}" ${where})`);
  }
  await sent;
}

// ----------------------------------------------------------------- tar in

interface TarHeaderLike { name: string; type?: string | null; mode?: number | null; uid?: number | null; gid?: number | null; mtime?: Date | null; linkname?: string | null; size?: number | null }

/** A tar entry's name as components below the target, or why it is refused. */
function entryComponents(name: string, what: string): string[] {
  if (name.startsWith('/')) throw new EngineError('E_CP_TAR', `tar ${what} "${name}" is an absolute path: it would be written outside the destination directory; refused, nothing copied`);
  const norm = posix.normalize(name);
  if (norm === '..' || norm.startsWith('../')) throw new EngineError('E_CP_TAR', `tar ${what} "${name}" climbs out of the destination directory with "..": refused, nothing copied`);
  return split(norm);
}

/**
 * `berth cp - CTR:DIR`: a tar from stdin unpacked into DIR. The archive is
 * spooled to a private temp file and read twice: first every name is
 * checked (no absolute path, no `..` out of DIR, no entry below a symlink
 * the archive itself makes), so a hostile archive is refused before a
 * single byte is written; then it is unpacked, walking DIR's subdirectories
 * without following any symlink the container has put there.
 */
async function untarInto(root: RootDir, destPath: string, input: Readable, opts: CopyOptions, where: string): Promise<void> {
  const d = locate(root, destPath, where, destPath);
  if (!d.st) throw new EngineError('E_CP_PATH', `"${destPath}" could not be found ${where}: no such file or directory`);
  if (!d.st.isDirectory()) throw new EngineError('E_CP_DIR', `destination must be a directory when copying from stdin: "${destPath}" ${where} is not a directory`);
  const tar = await tarStream();
  const spoolDir = mkdtempSync(`${tmpdir()}/berth-cp-`);
  const spool = `${spoolDir}/stdin.tar`;
  try {
    await pipeline(input, createWriteStream(spool, { mode: 0o600 }));
    // Pass 1: names only.
    const links = new Set<string>();
    try {
      await checkNames(tar, spool, links);
    } catch (err) {
      if (err instanceof EngineError) throw err;
      throw new EngineError('E_CP_TAR', `stdin is not a tar archive berth cp can read (${(err as Error).message}); nothing copied`);
    }
    // Pass 2: unpack.
    const into = root.openDir(d.parent, d.name);    const dirTimes: Array<{ comps: string[]; meta: FileMeta }> = [];
    try {
      for await (const entry of createReadStream(spool).pipe(tar.extract())) {
        const h = entry.header as TarHeaderLike;
        const comps = split(posix.normalize(h.name));
        const meta: FileMeta = { uid: h.uid ?? 0, gid: h.gid ?? 0, mode: h.mode ?? 0o644, mtime: h.mtime ?? new Date(), atime: h.mtime ?? new Date() };
        if (comps.length === 0) { entry.resume(); continue; }
        const parent = walkNoFollow(root, into, comps.slice(0, -1), h.name, opts);
        const name = comps.at(-1)!;
        try {
          switch (h.type) {
            case 'directory': {
              const existing = clearForKind(root, parent, name, true, opts);
              if (!existing) mkdirSync(at(parent, name), 0o700);
              dirTimes.push({ comps, meta });
              entry.resume();
              break;
            }
            case 'file': case 'contiguous-file': case null: case undefined:
              clearForKind(root, parent, name, false, opts);
              await writeFileAt(parent, name, async (fd) => { for await (const chunk of entry) writeAll(fd, chunk as Buffer); }, meta, opts);
              break;
            case 'symlink':
              clearForKind(root, parent, name, false, opts);
              symlinkAt(parent, name, h.linkname ?? '', meta, opts);
              entry.resume();
              break;
            case 'link': {
              clearForKind(root, parent, name, false, opts);
              const lc = split(posix.normalize(h.linkname ?? ''));
              const lparent = walkNoFollow(root, into, lc.slice(0, -1), h.linkname ?? '', { ...opts, noCreate: true });
              const tmp = tempName();
              linkSync(at(lparent, lc.at(-1)!), at(parent, tmp));
              renameSync(at(parent, tmp), at(parent, name));
              if (lparent !== into) root.release(lparent);
              entry.resume();
              break;
            }
            default:
              log.warn(`skipping tar entry "${h.name}" (${h.type}): berth cp unpacks files, directories and links`);
              entry.resume();
          }
        } finally {
          if (parent !== into) root.release(parent);
        }
      }
      // Directory modes and times last, deepest first: writing an entry changes its directory's mtime.
      for (const { comps, meta } of dirTimes.reverse()) {
        const parent = walkNoFollow(root, into, comps.slice(0, -1), comps.join('/'), { ...opts, noCreate: true });
        const fd = root.openDir(parent, comps.at(-1)!);
        try {
          finish(fd, meta, opts);
        } finally {
          root.release(fd);
          if (parent !== into) root.release(parent);
        }
      }
    } finally {
      root.release(into);
    }
  } catch (err) {
    if (err instanceof EngineError) throw err;
    throw engineErrorFor(err, `(unpacking the tar from stdin into "${destPath}" ${where})`);
  } finally {
    rmSync(spoolDir, { recursive: true, force: true });
  }
}

/** Pass 1 of untarInto: every name (and hard link target) checked; `links` collects the archive's own symlinks. */
async function checkNames(tar: TarStream, spool: string, links: Set<string>): Promise<void> {
  for await (const entry of createReadStream(spool).pipe(tar.extract())) {
    const h = entry.header as TarHeaderLike;
    const comps = entryComponents(h.name, 'entry');
    for (let i = 1; i < comps.length; i++) {
      if (links.has(comps.slice(0, i).join('/'))) throw new EngineError('E_CP_TAR', `tar entry "${h.name}" is below "${comps.slice(0, i).join('/')}", a symbolic link made by the same archive: it could be written outside the destination directory; refused, nothing copied`);
    }
    if (h.type === 'link' && entryComponents(h.linkname ?? '', `hard link target of "${h.name}"`).length === 0) {
      throw new EngineError('E_CP_TAR', `tar entry "${h.name}" is a hard link to "${h.linkname ?? ''}", which names no file; refused, nothing copied`);
    }
    if (h.type === 'symlink') links.add(comps.join('/'));
    entry.resume();
  }
}

function writeAll(fd: number, chunk: Buffer): void {
  let off = 0;
  while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
}

/**
 * The directory COMPS names below `from`, every step a real directory: a
 * symlink on the way (the container's, or one the archive made) is refused,
 * since following it would leave the destination. Missing directories are
 * made (owned as the copy's files), as tar does.
 */
function walkNoFollow(root: RootDir, from: number, comps: string[], entry: string, opts: CopyOptions & { noCreate?: boolean }): number {
  let cur = from;
  for (const c of comps) {
    const st = lstatOrUndefined(at(cur, c));
    if (!st && !opts.noCreate) {
      mkdirSync(at(cur, c), 0o755);
      const fd = root.openDir(cur, c);
      fchownSync(fd, opts.owner?.uid ?? 0, opts.owner?.gid ?? 0);
      if (cur !== from) root.release(cur);
      cur = fd;
      continue;
    }
    if (!st) throw new EngineError('E_CP_TAR', `tar entry "${entry}": "${c}" does not exist below the destination`);
    if (st.isSymbolicLink()) throw new EngineError('E_CP_TAR', `tar entry "${entry}": "${c}" ${root.label} is a symbolic link; writing through it could leave the destination directory, refused`);
    if (!st.isDirectory()) throw new EngineError('E_CP_TAR', `tar entry "${entry}": "${c}" ${root.label} is not a directory`);
    let fd: number;
    try {
      fd = root.openDir(cur, c);
    } catch (err) {
      if (errnoOf(err) === 'ELOOP') throw new EngineError('E_CP_TAR', `tar entry "${entry}": "${c}" ${root.label} became a symbolic link; refused`);
      throw err;
    }
    if (cur !== from) root.release(cur);
    cur = fd;
  }
  return cur;
}
