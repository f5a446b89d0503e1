import {
  closeSync, constants as fsc, fchmodSync, fchownSync, futimesSync, linkSync, lchownSync, chmodSync, lutimesSync,
  mkdirSync, openSync, readSync, readdirSync, rmSync, createReadStream, symlinkSync, unlinkSync, writeSync, utimesSync,
} from 'node:fs';
import { createGunzip, type ZlibOptions } from 'node:zlib';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { BerthError, log } from '@berth/cli-kit';
import { Digester } from '@berth/digest';
import { TarReader, TarFormatError, type TarHeader, type TarSink } from './tar.ts';
import { fsetxattr, lsetxattr, mknod, makedev, S_IFBLK, S_IFCHR, S_IFIFO } from './xattr.ts';
import { compressionOf, detectCompression, type Compression } from './compression.ts';
import { inflateFile } from './inflate-worker.ts';

/**
 * Which namespace overlayfs markers use. `chardev` is the classic form:
 * trusted.overlay.opaque=y on an opaque directory. `xattr` is for where
 * trusted.* is refused (root of a user namespace): user.overlay.opaque=y, and
 * the overlay must be mounted with `userxattr`. Deleted names are 0/0
 * character devices in both (Linux lets anyone create that one device); only
 * where even that is refused, an empty file with user.overlay.whiteout (its
 * directory marked user.overlay.whiteouts, read by Linux 6.7+).
 */
export type WhiteoutFormat = 'chardev' | 'xattr';

export interface ApplyOptions {
  /** The layer's media type: decides the decompressor, checked against the magic bytes. */
  mediaType: string;
  /** What the uncompressed tar must hash to (config rootfs.diff_ids[i]). */
  diffId?: string;
  /** Name for messages, e.g. the blob digest. */
  label?: string;
  /** Default: chardev when running as root, xattr otherwise. */
  whiteoutFormat?: WhiteoutFormat;
  /** Called with the count of compressed bytes read so far. */
  onProgress?: (compressedBytes: number) => void;
}

export interface ApplyResult {
  diffId: string;
  /** bytes of the uncompressed tar */
  size: number;
  entries: number;
  compression: Compression;
  whiteoutFormat: WhiteoutFormat;
}

/** An entry that would write outside the layer, or cannot be applied. */
export class UnsafeEntryError extends BerthError {
  constructor(entry: string, why: string) {
    super('E_UNSAFE_ENTRY', `tar entry "${entry}": ${why}; refused`);
  }
}

const WH_PREFIX = '.wh.';
const WH_OPAQUE = '.wh..wh..opq';

/**
 * Extract one layer (a compressed tar stream) into `dest`, an empty directory
 * the caller owns; verify the uncompressed bytes against `diffId` on the way.
 * On any failure the caller removes `dest` — nothing here is visible to
 * others until the caller renames it into place.
 */
export async function applyLayer(source: NodeJS.ReadableStream, dest: string, opts: ApplyOptions): Promise<ApplyResult> {
  const label = opts.label ?? 'layer';
  const expected = compressionOf(opts.mediaType);
  let compressed = 0;
  const counted = (async function* () {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      compressed += chunk.length;
      opts.onProgress?.(compressed);
      yield chunk;
    }
  })();
  const { head, rest } = await peek(counted, 512);
  checkMagic(label, opts.mediaType, expected, detectCompression(head));
  const digester = new Digester('sha256');
  const hashed = (async function* () {
    for await (const chunk of decompress(expected, rest)) {
      digester.update(chunk);
      yield chunk;
    }
  })();
  return applyTar(hashed, dest, opts, expected, () => ({ diffId: digester.digest(), size: digester.size }));
}

/**
 * Like applyLayer, for a blob in a file: reading and inflating run on a
 * worker thread (see inflate-worker.ts), hashing and extraction on this one.
 */
export async function applyLayerFile(path: string, dest: string, opts: ApplyOptions): Promise<ApplyResult> {
  const label = opts.label ?? 'layer';
  const expected = compressionOf(opts.mediaType);
  const head = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  try { readSync(fd, head, 0, 4, 0); } finally { closeSync(fd); }
  checkMagic(label, opts.mediaType, expected, detectCompression(head));
  if (expected === 'zstd') return applyLayer(createReadStream(path, { highWaterMark: 1024 * 1024 }), dest, opts);
  const digester = new Digester('sha256');
  const hashed = (async function* () {
    for await (const chunk of inflateFile(path, expected)) {
      digester.update(chunk);
      yield chunk;
    }
  })();
  return applyTar(hashed, dest, opts, expected, () => ({ diffId: digester.digest(), size: digester.size }));
}

function checkMagic(label: string, mediaType: string, expected: Compression, actual: Compression): void {
  if (actual !== expected) {
    throw new BerthError('E_LAYER_FORMAT', `${label}: media type ${mediaType} says ${expected}, but the blob starts like ${actual === 'none' ? 'an uncompressed tar' : actual} data`);
  }
}

/** Feed uncompressed tar bytes to the writer; check the diffID `digest()` reports once they are all read. */
async function applyTar(tar: AsyncIterable<Buffer>, dest: string, opts: ApplyOptions, compression: Compression, digest: () => { diffId: string; size: number }): Promise<ApplyResult> {
  const label = opts.label ?? 'layer';
  const root = process.geteuid?.() === 0;
  if (readdirSync(dest).length > 0) throw new BerthError('E_APPLY', `${label}: ${dest} is not empty; a layer is applied into a fresh directory`);
  const writer = new LayerWriter(dest, opts.whiteoutFormat ?? (root && canSetTrustedXattrs(dest) ? 'chardev' : 'xattr'), root);
  const reader = new TarReader(writer);
  // Modes are given to open/mkdir/mknod exactly as the tar says, saving a chmod per entry.
  holdZeroUmask();
  try {
    // Every byte is read, also past the end-of-archive blocks: the diffID covers them.
    for await (const chunk of tar) if (!reader.ended) reader.push(chunk);
    reader.finish();
  } catch (err) {
    if (err instanceof BerthError) throw new BerthError(err.code, err.message.startsWith(label) ? err.message : `${label}: ${err.message}`, { cause: err });
    if (err instanceof TarFormatError) throw new BerthError('E_LAYER_FORMAT', `${label}: ${err.message}`);
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('Z_')) throw new BerthError('E_LAYER_FORMAT', `${label}: gzip stream is corrupt (${(err as Error).message})`);
    throw new BerthError('E_APPLY', `${label}: ${(err as Error).message}`, { cause: err });
  } finally {
    releaseZeroUmask();
  }
  writer.finishDirectories();
  const { diffId, size } = digest();
  if (opts.diffId !== undefined && diffId !== opts.diffId) {
    throw new BerthError('E_DIFFID_MISMATCH', `${label}: uncompressed content hashes to ${diffId}, but the image config says its diffID is ${opts.diffId}`);
  }
  return { diffId, size, entries: reader.entries, compression, whiteoutFormat: writer.whiteoutFormat };
}

/**
 * The umask is per process and layers are applied concurrently: it stays 0
 * while any apply runs and comes back when the last one ends.
 */
let umaskHolders = 0;
let savedUmask = 0;
function holdZeroUmask(): void {
  if (umaskHolders++ === 0) savedUmask = process.umask(0);
}
function releaseZeroUmask(): void {
  if (--umaskHolders === 0) process.umask(savedUmask);
}

/** Read at least `min` bytes (or all there is) to look at, and hand back a stream that still starts with them. */
async function peek(it: AsyncGenerator<Buffer>, min: number): Promise<{ head: Buffer; rest: AsyncGenerator<Buffer> }> {
  const got: Buffer[] = [];
  let len = 0;
  let done = false;
  while (len < min) {
    const n = await it.next();
    if (n.done) { done = true; break; }
    got.push(n.value);
    len += n.value.length;
  }
  const head = Buffer.concat(got);
  const rest = (async function* () {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const n = await it.next();
      if (n.done) return;
      yield n.value;
    }
  })();
  return { head, rest };
}

async function* decompress(kind: Compression, input: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  if (kind === 'none') {
    yield* input;
    return;
  }
  if (kind === 'gzip') {
    // zlib inflates on the libuv threadpool, so it overlaps with the
    // synchronous file writes the extractor does on the main thread.
    const gunzip = createGunzip({ chunkSize: 256 * 1024, readableHighWaterMark: 8 * 1024 * 1024 } as ZlibOptions);
    const src = Readable.from(input);
    src.on('error', (e) => gunzip.destroy(e));
    src.pipe(gunzip);
    yield* gunzip as AsyncIterable<Buffer>;
    return;
  }
  const { Decompress } = await import('fzstd');
  const out: Buffer[] = [];
  const z = new Decompress((data) => { out.push(Buffer.from(data.buffer, data.byteOffset, data.length)); });
  for await (const chunk of input) {
    z.push(chunk);
    while (out.length > 0) yield out.shift()!;
  }
  z.push(new Uint8Array(0), true);
  while (out.length > 0) yield out.shift()!;
}

/**
 * Normalize an entry name into path components inside the layer, refusing
 * anything that could leave it: absolute names and `..` components.
 */
export function entryComponents(name: string, entry = name): string[] {
  if (name.startsWith('/')) throw new UnsafeEntryError(entry, `"${name}" is an absolute path`);
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new UnsafeEntryError(entry, `"${name}" has a ".." component`);
    parts.push(p);
  }
  return parts;
}

/** What this layer put at a path; the layer directory starts empty, so this map is the whole truth about it. */
type Written = 'dir' | 'file' | 'symlink' | 'whiteout' | 'other';

/**
 * Applies tar entries to a directory, one short synchronous syscall sequence
 * per entry. The directory starts empty, so what exists in it is exactly what
 * this layer wrote: a map of those paths answers "is this parent a real
 * directory?" without an lstat per component, and no entry can be written
 * through a symlink, even one an earlier entry planted.
 */
class LayerWriter implements TarSink {
  private readonly written = new Map<string, Written>([['', 'dir']]);
  private readonly dirTimes: Array<[string, number]> = [];
  private fd = -1;
  private current: TarHeader | undefined;
  private currentPath = '';
  private warnedOwners = false;
  private readonly uid = process.geteuid?.() ?? 0;
  private readonly gid = process.getegid?.() ?? 0;

  constructor(private readonly dest: string, public whiteoutFormat: WhiteoutFormat, private readonly root: boolean) {}

  entry(h: TarHeader): void {
    this.current = h;
    try {
      this.apply(h);
    } catch (err) {
      if (this.fd >= 0) { closeSync(this.fd); this.fd = -1; }
      if (err instanceof BerthError) throw err;
      throw new BerthError('E_APPLY', `tar entry "${h.name}": ${(err as Error).message}`, { cause: err });
    }
  }

  data(chunk: Buffer): void {
    if (this.fd < 0) return;
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
  }

  end(): void {
    if (this.fd < 0) return;
    const h = this.current!;
    const fd = this.fd;
    this.fd = -1;
    try {
      // The file was created with its final mode (umask is 0 while applying).
      // A different owner needs chown, which clears setuid/setgid, so the mode
      // goes on again after it; chown also drops security.capability, so
      // xattrs come after both.
      if (this.needsChown(h) && this.chown(h, () => fchownSync(fd, h.uid, h.gid))) fchmodSync(fd, h.mode);
      for (const [k, v] of h.xattrs) if (this.allowedXattr(h, k)) this.xattrOrWarn(h, k, () => fsetxattr(fd, k, v, this.currentPath));
      futimesSync(fd, h.mtime, h.mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** Directory times last: creating entries inside a directory changes its mtime. */
  finishDirectories(): void {
    for (let i = this.dirTimes.length - 1; i >= 0; i--) {
      const [p, t] = this.dirTimes[i]!;
      utimesSync(p, t, t);
    }
  }

  private needsChown(h: TarHeader): boolean {
    if (h.uid === this.uid && h.gid === this.gid) return false;
    if (this.root) return true;
    if (!this.warnedOwners) {
      this.warnedOwners = true;
      log.warn('not running as root: file owners from the layer are not applied');
    }
    return false;
  }

  /**
   * chown, tolerating ids the user namespace does not map (EINVAL) or may not
   * give (EPERM): the file keeps our ids and a warning says so, once.
   */
  private chown(h: TarHeader, call: () => void): boolean {
    try {
      call();
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EINVAL' && code !== 'EPERM') throw err;
      if (!this.warnedOwners) {
        this.warnedOwners = true;
        log.warn(`tar entry "${h.name}": cannot chown to ${h.uid}:${h.gid} (${code}; an unmapped id in a user namespace?): owners that do not map are not applied`);
      }
      return false;
    }
  }

  private apply(h: TarHeader): void {
    const parts = entryComponents(h.name);
    if (parts.length === 0) {
      // "./": the layer's root directory itself.
      if (h.type !== 'directory') throw new UnsafeEntryError(h.name, 'the root of the layer must be a directory');
      this.metadata(this.dest, h);
      this.dirTimes.push([this.dest, h.mtime]);
      return;
    }
    const base = parts[parts.length - 1]!;
    const parentRel = parts.length === 1 ? '' : parts.slice(0, -1).join('/');
    if (base.startsWith(WH_PREFIX)) return this.whiteout(h, parentRel, base);
    const parent = this.dir(parentRel, h.name);
    const rel = parts.length === 1 ? base : `${parentRel}/${base}`;
    const path = parent + '/' + base;
    this.currentPath = path;
    const existing = this.written.get(rel);
    if (h.type === 'directory') {
      if (existing !== 'dir') {
        if (existing !== undefined) this.remove(rel, path, existing);
        // Without root, a directory must stay writable for us to fill it.
        mkdirSync(path, this.root ? h.mode : h.mode | 0o700);
        this.written.set(rel, 'dir');
        // mkdir(2) drops setuid/setgid bits, and chown clears them: chmod again in both cases.
        const chowned = this.needsChown(h) && this.chown(h, () => lchownSync(path, h.uid, h.gid));
        if (chowned || (h.mode & 0o6000) !== 0) chmodSync(path, h.mode);
      } else {
        // Seen before in this layer (or created as a parent): the entry's metadata wins.
        this.metadata(path, h);
      }
      for (const [k, v] of h.xattrs) if (this.allowedXattr(h, k)) this.xattrOrWarn(h, k, () => lsetxattr(path, k, v));
      this.dirTimes.push([path, h.mtime]);
      return;
    }
    if (h.type === 'hardlink') {
      const target = this.linkTarget(h);
      if (target === path) return;
      if (existing !== undefined) this.remove(rel, path, existing);
      linkSync(target, path);
      this.written.set(rel, 'file');
      return;
    }
    if (existing !== undefined) this.remove(rel, path, existing);
    switch (h.type) {
      case 'file':
        this.fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, h.mode);
        this.written.set(rel, 'file');
        return; // data() and end() finish it
      case 'symlink':
        symlinkSync(h.linkname, path);
        this.written.set(rel, 'symlink');
        if (this.needsChown(h)) this.chown(h, () => lchownSync(path, h.uid, h.gid));
        for (const [k, v] of h.xattrs) if (this.allowedXattr(h, k)) this.xattrOrWarn(h, k, () => lsetxattr(path, k, v));
        lutimesSync(path, h.mtime, h.mtime);
        return;
      case 'char':
      case 'block':
      case 'fifo': {
        const kind = h.type === 'char' ? S_IFCHR : h.type === 'block' ? S_IFBLK : S_IFIFO;
        try {
          mknod(path, kind | h.mode, makedev(h.devmajor, h.devminor));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EPERM' || h.type === 'fifo') throw err;
          // Without CAP_MKNOD (rootless) device nodes cannot exist; runtimes bind-mount /dev anyway.
          log.warn(`tar entry "${h.name}": cannot create a ${h.type} device without CAP_MKNOD; skipped`);
          return;
        }
        this.written.set(rel, 'other');
        this.metadata(path, h);
        utimesSync(path, h.mtime, h.mtime);
        return;
      }
    }
  }

  /** chown, then chmod (chown clears setuid/setgid), then xattrs (chown clears capabilities). */
  private metadata(path: string, h: TarHeader): void {
    if (this.needsChown(h)) this.chown(h, () => lchownSync(path, h.uid, h.gid));
    chmodSync(path, h.mode);
    for (const [k, v] of h.xattrs) if (this.allowedXattr(h, k)) this.xattrOrWarn(h, k, () => lsetxattr(path, k, v));
  }

  private allowedXattr(h: TarHeader, name: string): boolean {
    // overlayfs's own markers must come from whiteout entries, never from a
    // layer's xattrs: a forged trusted.overlay.redirect could point outside.
    if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) {
      log.warn(`tar entry "${h.name}": xattr ${name} is reserved for overlayfs; ignored`);
      return false;
    }
    return true;
  }

  private xattrOrWarn(h: TarHeader, name: string, set: () => void): void {
    try {
      set();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // trusted.* needs CAP_SYS_ADMIN, user.* is not allowed on symlinks and devices, some filesystems lack xattrs.
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
        log.warn(`tar entry "${h.name}": xattr ${name} not set (${code})`);
        return;
      }
      throw err;
    }
  }

  private whiteout(h: TarHeader, parentRel: string, base: string): void {
    const parent = this.dir(parentRel, h.name);
    if (base === WH_OPAQUE) {
      const name = this.whiteoutFormat === 'chardev' ? 'trusted.overlay.opaque' : 'user.overlay.opaque';
      lsetxattr(parent, name, Buffer.from('y'));
      return;
    }
    if (base.startsWith(WH_PREFIX + WH_PREFIX)) return; // AUFS bookkeeping (.wh..wh.plnk ...), meaningless to overlayfs
    const name = base.slice(WH_PREFIX.length);
    entryComponents(name, h.name);
    if (name.includes('/') || name === '') throw new UnsafeEntryError(h.name, 'malformed whiteout name');
    const rel = parentRel === '' ? name : `${parentRel}/${name}`;
    const path = parent + '/' + name;
    // Whatever exists here, this layer wrote, and a whiteout only hides what lies below the layer.
    if (this.written.has(rel)) return;
    this.written.set(rel, 'whiteout');
    // A 0/0 character device is a whiteout in both forms, and Linux lets
    // even an unprivileged user make one; only if that fails, the xattr form.
    try {
      mknod(path, S_IFCHR, makedev(0, 0));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
      if (this.whiteoutFormat === 'chardev') {
        log.warn('mknod of a whiteout refused: using xattr whiteouts; the overlay needs userxattr');
        this.whiteoutFormat = 'xattr';
      }
    }
    closeSync(openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o000));
    lsetxattr(path, 'user.overlay.whiteout', Buffer.alloc(0));
    lsetxattr(parent, 'user.overlay.whiteouts', Buffer.alloc(0));
  }

  /** A hardlink target must be a non-directory this layer already holds, reached without symlinks. */
  private linkTarget(h: TarHeader): string {
    if (h.linkname.startsWith('/')) throw new UnsafeEntryError(h.name, `hardlink target "${h.linkname}" is an absolute path`);
    let parts: string[];
    try {
      parts = entryComponents(h.linkname, h.name);
    } catch {
      throw new UnsafeEntryError(h.name, `hardlink target "${h.linkname}" leaves the layer`);
    }
    if (parts.length === 0) throw new UnsafeEntryError(h.name, 'hardlink to the layer root');
    let cur = '';
    for (const p of parts.slice(0, -1)) {
      cur = cur === '' ? p : `${cur}/${p}`;
      const w = this.written.get(cur);
      if (w !== 'dir') throw new UnsafeEntryError(h.name, `hardlink target directory "${cur}" is ${w === 'symlink' ? 'a symlink' : 'not a directory in this layer'}`);
    }
    const rel = parts.join('/');
    const w = this.written.get(rel);
    if (w === undefined || w === 'whiteout') throw new UnsafeEntryError(h.name, `hardlink target "${h.linkname}" is not in this layer`);
    if (w === 'dir') throw new UnsafeEntryError(h.name, `hardlink target "${h.linkname}" is a directory`);
    return join(this.dest, rel);
  }

  private remove(rel: string, path: string, what: Written): void {
    if (what === 'dir') {
      rmSync(path, { recursive: true, force: true });
      const prefix = rel + '/';
      for (const k of this.written.keys()) if (k.startsWith(prefix)) this.written.delete(k);
    } else {
      unlinkSync(path);
    }
    this.written.delete(rel);
  }

  /** The directory at `rel`, created (0755, like tar) where missing; never through a symlink. */
  private dir(rel: string, entry: string): string {
    const w = this.written.get(rel);
    if (w === 'dir') return rel === '' ? this.dest : this.dest + '/' + rel;
    const slash = rel.lastIndexOf('/');
    const parent = this.dir(slash < 0 ? '' : rel.slice(0, slash), entry);
    const path = parent + '/' + (slash < 0 ? rel : rel.slice(slash + 1));
    if (w === 'symlink') throw new UnsafeEntryError(entry, `its parent "${rel}" is a symlink planted by this layer; writing through it could leave the layer`);
    if (w === 'whiteout') {
      // A whiteout, then a new directory under the same name: the new content wins.
      unlinkSync(path);
    } else if (w !== undefined) {
      throw new UnsafeEntryError(entry, `its parent "${rel}" is not a directory`);
    }
    mkdirSync(path, 0o755);
    this.written.set(rel, 'dir');
    return path;
  }
}

/**
 * Root in a user namespace has euid 0 but may not set trusted.* xattrs, so
 * overlayfs's markers must use the user.overlay.* namespace (and the mount
 * the userxattr option). Probe once, before the first entry, so a layer never
 * mixes the two forms (an opaque marker may come before any whiteout).
 */
function canSetTrustedXattrs(dest: string): boolean {
  const probe = join(dest, '.berth-xattr-probe');
  closeSync(openSync(probe, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600));
  try {
    lsetxattr(probe, 'trusted.berth.probe', Buffer.from('1'));
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') return false;
    throw err;
  } finally {
    unlinkSync(probe);
  }
}
