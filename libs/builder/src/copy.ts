import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chown, copyFile, chmod, lchown, lstat, lutimes, mkdir, open, readdir, readlink, realpath, rm, stat, symlink, utimes } from 'node:fs/promises';
import { basename, join, posix, relative, resolve, sep } from 'node:path';
import { BerthError, isErrno } from '@berth/cli-kit';
import { globToRegExp, type IgnoreMatcher } from './ignore.ts';
import { resolveInRoot } from './paths.ts';

/**
 * COPY and ADD sources, as the Dockerfile reference defines them: paths (and
 * globs) relative to the build context, never outside it; a directory source
 * copies its contents; files are owned by root unless --chown; modes and
 * mtimes are kept; .containerignore'd files are not there.
 */
export interface Source {
  /** As written in the Containerfile. */
  spec: string;
  /** Absolute host path. */
  path: string;
  /** Context-relative path, `/`-separated. */
  rel: string;
  isDir: boolean;
}

const globChars = /[*?[]/;

export async function resolveSources(context: string, specs: string[], ignore: IgnoreMatcher, keyword: string, where: string): Promise<Source[]> {
  const root = resolve(context);
  const out: Source[] = [];
  for (const spec of specs) {
    const abs = resolve(root, spec.replace(/^\/+/, ''));
    const rel = relative(root, abs);
    // The spec's own `..` is checked here; symlinks inside the context are copied as links, never followed out of it.
    if (rel === '..' || rel.startsWith(`..${sep}`)) {
      throw new BerthError('E_CONTEXT', `${where}: ${keyword} ${spec}: the source is outside the build context ${root}`);
    }
    if (globChars.test(spec)) {
      const re = globToRegExp(rel.split(sep).join('/'));
      const hits: Source[] = [];
      for (const candidate of await walkNames(root, '', ignore)) {
        if (re.test(candidate.rel)) hits.push({ spec, path: join(root, candidate.rel), rel: candidate.rel, isDir: candidate.isDir });
      }
      if (hits.length === 0) throw new BerthError('E_CONTEXT', `${where}: ${keyword} ${spec}: no file in the build context matches`);
      out.push(...hits);
      continue;
    }
    const relSlash = rel.split(sep).join('/');
    if (relSlash !== '' && ignore.ignores(relSlash)) {
      throw new BerthError('E_CONTEXT', `${where}: ${keyword} ${spec}: the file is excluded by ${ignore.source}`);
    }
    let st;
    try {
      st = await stat(abs);
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) throw new BerthError('E_CONTEXT', `${where}: ${keyword} ${spec}: no such file or directory in the build context ${root}`);
      throw err;
    }
    // A symlink given by name is followed, but only to somewhere inside the context.
    const real = await realpath(abs);
    const realRoot = await realpath(root);
    const realRel = relative(realRoot, real);
    if (realRel === '..' || realRel.startsWith(`..${sep}`)) {
      throw new BerthError('E_CONTEXT', `${where}: ${keyword} ${spec}: it is a symlink to ${real}, outside the build context`);
    }
    out.push({ spec, path: abs, rel: relSlash, isDir: st.isDirectory() });
  }
  return out;
}

async function walkNames(root: string, rel: string, ignore: IgnoreMatcher): Promise<Array<{ rel: string; isDir: boolean }>> {
  const out: Array<{ rel: string; isDir: boolean }> = [];
  const entries = await readdir(join(root, rel), { withFileTypes: true });
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (ignore.skips(r, e.isDirectory())) continue;
    if (!ignore.ignores(r)) out.push({ rel: r, isDir: e.isDirectory() });
    if (e.isDirectory()) out.push(...(await walkNames(root, r, ignore)));
  }
  return out;
}

/**
 * The digest of what a COPY would copy: names, types, modes, link targets
 * and file contents (not mtimes or owners, which the layer takes from
 * --chown), so touching a file does not break the cache but editing it does.
 */
export async function contentDigest(sources: Source[], ignore: IgnoreMatcher): Promise<string> {
  const hash = createHash('sha256');
  const visit = async (abs: string, rel: string, top: boolean): Promise<void> => {
    const st = top ? await stat(abs) : await lstat(abs);
    hash.update(`${rel}\0${st.mode.toString(8)}\0`);
    if (st.isSymbolicLink()) hash.update(`link:${await readlink(abs)}\0`);
    else if (st.isFile()) {
      hash.update(`${st.size}\0`);
      for await (const chunk of createReadStream(abs) as AsyncIterable<Buffer>) hash.update(chunk);
    } else if (st.isDirectory()) {
      const names = (await readdir(abs)).sort();
      for (const n of names) {
        const r = rel === '' ? n : `${rel}/${n}`;
        if (ignore.skips(r, (await lstat(join(abs, n))).isDirectory())) continue;
        await visit(join(abs, n), r, false);
      }
    }
  };
  for (const s of sources) {
    hash.update(`source:${s.spec}\0`);
    await visit(s.path, s.rel, true);
  }
  return `sha256:${hash.digest('hex')}`;
}

export interface Owner { uid: number; gid: number }

/** mkdir -p inside the rootfs: missing directories are made 0755 and owned by `owner` (root by default). */
export async function mkdirInRoot(rootfs: string, containerPath: string, owner: Owner = { uid: 0, gid: 0 }): Promise<string> {
  const parts = posix.normalize('/' + containerPath).split('/').filter((p) => p !== '');
  let cur = '/';
  for (const p of parts) {
    cur = posix.join(cur, p);
    const host = await resolveInRoot(rootfs, cur);
    try {
      const st = await stat(host);
      if (!st.isDirectory()) throw new BerthError('E_COPY', `${cur} exists in the image and is not a directory`);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      await mkdir(host, { mode: 0o755 });
      await chown(host, owner.uid, owner.gid);
    }
  }
  return resolveInRoot(rootfs, containerPath);
}

/**
 * Copy the sources to `dest` inside the mounted rootfs with Docker's rules:
 * several sources or a dest ending in `/` mean a directory; a directory
 * source copies its contents; a file onto an existing directory goes inside it.
 */
export async function copySources(rootfs: string, sources: Source[], dest: string, owner: Owner | undefined, chmodMode: number | undefined, ignore: IgnoreMatcher, where: string): Promise<void> {
  const destIsDir = dest.endsWith('/') || sources.length > 1 || sources.some((s) => s.isDir);
  const destHost = await resolveInRoot(rootfs, dest);
  let destExistsAsDir = false;
  try { destExistsAsDir = (await stat(destHost)).isDirectory(); } catch { /* absent */ }
  if (destIsDir || destExistsAsDir) await mkdirInRoot(rootfs, dest, owner);
  else await mkdirInRoot(rootfs, posix.dirname(dest), undefined);
  for (const s of sources) {
    if (s.isDir) {
      await copyTree(s.path, destHost, s.rel, owner, chmodMode, ignore);
    } else {
      const target = destIsDir || destExistsAsDir ? join(destHost, basename(s.path)) : destHost;
      await copyEntry(s.path, target, owner, chmodMode, true, where);
    }
  }
}

async function copyTree(src: string, dst: string, rel: string, owner: Owner | undefined, chmodMode: number | undefined, ignore: IgnoreMatcher): Promise<void> {
  for (const name of (await readdir(src)).sort()) {
    const r = rel === '' ? name : `${rel}/${name}`;
    const from = join(src, name);
    const to = join(dst, name);
    const st = await lstat(from);
    if (ignore.skips(r, st.isDirectory())) continue;
    if (st.isDirectory()) {
      let existing = false;
      try { existing = (await lstat(to)).isDirectory(); } catch { /* absent */ }
      if (!existing) {
        await rm(to, { force: true, recursive: true });
        await mkdir(to, { mode: 0o700 });
      }
      await copyTree(from, to, r, owner, chmodMode, ignore);
      await chmod(to, chmodMode ?? st.mode & 0o7777);
      await chown(to, owner?.uid ?? 0, owner?.gid ?? 0);
      await utimes(to, st.atime, st.mtime);
    } else {
      await copyEntry(from, to, owner, chmodMode, false, r);
    }
  }
}

async function copyEntry(from: string, to: string, owner: Owner | undefined, chmodMode: number | undefined, follow: boolean, what: string): Promise<void> {
  const st = follow ? await stat(from) : await lstat(from);
  try {
    const old = await lstat(to);
    if (old.isDirectory() && !st.isDirectory()) throw new BerthError('E_COPY', `cannot copy ${what} over the directory ${to}`);
    await rm(to, { force: true });
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  if (st.isSymbolicLink()) {
    await symlink(await readlink(from), to);
    await lchown(to, owner?.uid ?? 0, owner?.gid ?? 0);
    await lutimes(to, st.atime, st.mtime);
    return;
  }
  if (!st.isFile()) return; // sockets, fifos and devices of the context are not copied, as Docker skips them
  await copyFile(from, to);
  await chown(to, owner?.uid ?? 0, owner?.gid ?? 0);
  // chmod after chown: chown clears the set-id bits.
  await chmod(to, chmodMode ?? st.mode & 0o7777);
  await utimes(to, st.atime, st.mtime);
}

/** Is this file a tar archive (plain, gzip, bzip2 or xz) that ADD unpacks? */
export async function isArchive(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    const head = buf.subarray(0, bytesRead);
    if (head[0] === 0x1f && head[1] === 0x8b) return true;
    if (head.subarray(0, 3).toString('latin1') === 'BZh') return true;
    if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return true;
    if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return true;
    return bytesRead >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    await fh.close();
  }
}
