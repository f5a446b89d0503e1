import { closeSync, openSync, readSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '@berth/cli-kit';
import { ImageLayout } from '@berth/content';
import { RefNameAnnotation, type ImageIndex } from '@berth/oci-spec';
import type { BlobFacts, ImageFacts } from '@berth/gc';

/**
 * Reading the image store (an OCI image layout, image-layout.md) as plain
 * facts for the GC rules: which blobs exist, what each manifest, index and
 * config refers to, and the labels and creation time of each image.
 */

/** Manifests, indexes and configs are small JSON; layers are not read. */
const MAX_JSON_BLOB = 4 * 1024 * 1024;

export interface ScannedBlob extends BlobFacts {
  /** config.Labels and created when the blob is an image config */
  labels?: Record<string, string>;
  created?: number;
}

interface JsonShape {
  manifests?: Array<{ digest?: unknown }>;
  config?: { digest?: unknown; Labels?: unknown } & Record<string, unknown>;
  layers?: Array<{ digest?: unknown }>;
  subject?: { digest?: unknown };
  blobs?: Array<{ digest?: unknown }>;
  rootfs?: { diff_ids?: unknown };
  created?: unknown;
}

function digestsOf(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((d) => (d && typeof d === 'object' ? (d as { digest?: unknown }).digest : undefined)).filter((d): d is string => typeof d === 'string');
}

/** What a JSON blob refers to, whatever kind it is (manifest, index, config, artifact). */
export function describeJson(doc: JsonShape): Pick<ScannedBlob, 'refs' | 'diffIds' | 'labels' | 'created'> {
  const refs = [...digestsOf(doc.manifests), ...digestsOf(doc.layers), ...digestsOf(doc.blobs)];
  if (doc.config && typeof doc.config.digest === 'string') refs.push(doc.config.digest);
  if (doc.subject && typeof doc.subject.digest === 'string') refs.push(doc.subject.digest);
  const out: Pick<ScannedBlob, 'refs' | 'diffIds' | 'labels' | 'created'> = { refs };
  const diffIds = doc.rootfs?.diff_ids;
  if (Array.isArray(diffIds) && diffIds.every((d) => typeof d === 'string')) {
    out.diffIds = diffIds as string[];
    const labels = doc.config?.Labels;
    if (labels && typeof labels === 'object') out.labels = labels as Record<string, string>;
    if (typeof doc.created === 'string') {
      const t = Date.parse(doc.created);
      if (!Number.isNaN(t)) out.created = t;
    }
  }
  return out;
}

/** One buffer for the first read of every blob: most blobs end there, and a scan allocates nothing for them. */
const head = Buffer.allocUnsafe(4096);

function readSmallJson(path: string, size: number): JsonShape | undefined {
  if (size > MAX_JSON_BLOB || size < 2) return undefined;
  let fd: number;
  try { fd = openSync(path, 'r'); } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  try {
    // Layers start with a gzip/zstd magic or a tar header, never '{': the
    // first read decides whether the rest is worth reading, and for the
    // small JSON documents it is the whole blob.
    const first = readSync(fd, head, 0, Math.min(size, head.length), 0);
    if (first === 0 || head[0] !== 0x7b) return undefined;
    let bytes: Buffer = head.subarray(0, first);
    let off = first;
    if (off < size) {
      bytes = Buffer.allocUnsafe(size);
      head.copy(bytes, 0, 0, first);
      for (let n = 1; off < size && n > 0; off += n) n = readSync(fd, bytes, off, size - off, off);
    }
    try {
      const v: unknown = JSON.parse(bytes.subarray(0, off).toString('utf8'));
      return v && typeof v === 'object' ? (v as JsonShape) : undefined;
    } catch {
      return undefined;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * What each blob refers to never changes (a blob is named by its content),
 * so a run parses each blob once and a second scan only looks for blobs
 * that appeared or went and for changed mtimes.
 */
export type BlobCache = Map<string, Pick<ScannedBlob, 'size' | 'refs' | 'diffIds' | 'labels' | 'created'>>;

/**
 * Every blob in blobs/<alg>/ with what it refers to. Files that are not
 * digests are left alone. The calls are synchronous on purpose: a GC run has
 * nothing else to do meanwhile, and each asynchronous call would be a trip
 * through libuv's thread pool, which on a busy machine costs more than the
 * stat or read itself.
 */
export async function scanBlobs(layout: ImageLayout, cache: BlobCache = new Map()): Promise<ScannedBlob[]> {
  const out: ScannedBlob[] = [];
  for (const [algorithm, len] of [['sha256', 64], ['sha512', 128]] as const) {
    const dir = join(layout.root, 'blobs', algorithm);
    let names: string[];
    try { names = readdirSync(dir); } catch (err) {
      if (isErrno(err, 'ENOENT')) continue;
      throw err;
    }
    const hex = new RegExp(`^[a-f0-9]{${len}}$`);
    for (const name of names) {
      if (!hex.test(name)) continue;
      const path = join(dir, name);
      const digest = `${algorithm}:${name}`;
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st || !st.isFile()) continue;
      let facts = cache.get(digest);
      if (!facts) {
        const doc = readSmallJson(path, st.size);
        facts = { size: st.size, refs: [], ...(doc ? describeJson(doc) : {}) };
        cache.set(digest, facts);
      }
      out.push({ digest, mtimeMs: st.mtimeMs, ...facts });
    }
  }
  return out;
}

export interface IndexEntry { ref?: string; digest: string }

export function indexEntries(index: ImageIndex): IndexEntry[] {
  return index.manifests.map((d) => {
    const ref = d.annotations?.[RefNameAnnotation];
    return ref === undefined ? { digest: d.digest } : { ref, digest: d.digest };
  });
}

/** The facts the untag filters look at, for each index.json entry. */
export function imageFacts(entries: IndexEntry[], blobs: ReadonlyMap<string, ScannedBlob>): ImageFacts[] {
  return entries.map((e) => {
    const labels: Array<Record<string, string>> = [];
    let created: number | undefined;
    // Walk down an index to its manifests' configs (a multi-platform image
    // carries the labels of each platform's config).
    const seen = new Set<string>();
    const stack = [e.digest];
    while (stack.length > 0) {
      const d = stack.pop()!;
      if (seen.has(d)) continue;
      seen.add(d);
      const b = blobs.get(d);
      if (!b) continue;
      if (b.diffIds) {
        labels.push(b.labels ?? {});
        if (b.created !== undefined) created = created === undefined ? b.created : Math.min(created, b.created);
      } else stack.push(...b.refs);
    }
    return { ...(e.ref !== undefined ? { ref: e.ref } : {}), digest: e.digest, labels, ...(created !== undefined ? { created } : {}) };
  });
}

/**
 * Remove a blob file; a blob already gone counts as removed by someone else.
 * `notAfterMs`: the mtime is checked again just before the unlink, and a blob
 * touched since the scan (a writer that found it and refreshed it) is kept.
 */
export async function removeBlob(layout: ImageLayout, digest: string, notAfterMs?: number): Promise<boolean> {
  try {
    if (notAfterMs !== undefined && statSync(layout.blobPath(digest)).mtimeMs > notAfterMs) return false;
    unlinkSync(layout.blobPath(digest));
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

export interface StaleTemp { path: string; size: number }

/**
 * Temp files of writes that died: ingest/<digest>.<pid>.<rand> (a blob being
 * downloaded) and .<file>.tmp-<pid>-<rand> (an atomic write of index.json).
 * A file older than maxAgeMs, or whose writer pid is gone, is stale.
 */
export async function staleTemps(layout: ImageLayout, now: number, maxAgeMs: number, alive: (pid: number) => boolean): Promise<StaleTemp[]> {
  const out: StaleTemp[] = [];
  const consider = async (dir: string, name: string, pid: number | undefined) => {
    const path = join(dir, name);
    try {
      const st = await stat(path);
      if (!st.isFile()) return;
      if (now - st.mtimeMs > maxAgeMs || (pid !== undefined && !alive(pid))) out.push({ path, size: st.size });
    } catch { /* finished or removed by its writer meanwhile */ }
  };
  let names: string[] = [];
  try { names = await readdir(layout.ingestDir); } catch { names = []; }
  for (const name of names) {
    // <alg>-<hex>.<pid>.<rand> from BlobWriter, diff-<pid>-<ms> from a snapshot diff
    const m = /^[a-z0-9]+-[a-f0-9]+\.(\d+)\.[a-f0-9]+$/.exec(name) ?? /^diff-(\d+)-\d+$/.exec(name);
    await consider(layout.ingestDir, name, m ? Number(m[1]) : undefined);
  }
  try { names = await readdir(layout.root); } catch { names = []; }
  for (const name of names) {
    const m = /^\..+\.tmp-(\d+)-[a-f0-9]+$/.exec(name) ?? /^.+\.init-(\d+)-[a-f0-9]+$/.exec(name);
    if (m) await consider(layout.root, name, Number(m[1]));
  }
  return out;
}
