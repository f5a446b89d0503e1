import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BerthError, isErrno } from '@berth/cli-kit';
import { Digester, blobRelPath, digestOf, parseDigest } from '@berth/digest';
import { MediaType, RefNameAnnotation, parseJsonDocument, validateIndex, type Descriptor, type ImageIndex } from '@berth/oci-spec';
import { fsyncDir, writeFileAtomic } from './atomic.ts';
import { withFileLock } from './lock.ts';

/**
 * An OCI image layout (image-layout.md): `oci-layout`, `index.json` and
 * `blobs/<alg>/<encoded>`. It is the image store of berth, and, being the
 * plain standard layout, skopeo (`oci:DIR:REF`) and umoci read and write it too.
 *
 * Contract:
 * - a blob becomes visible only after its bytes matched the digest and size;
 *   it is written to `ingest/`, fsynced and renamed into `blobs/`.
 * - index.json is rewritten atomically under a lock, so concurrent tags from
 *   several processes all land.
 * - names live in index.json as the annotation org.opencontainers.image.ref.name.
 */
export class ImageLayout {
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }

  get indexPath(): string { return join(this.root, 'index.json'); }
  get ingestDir(): string { return join(this.root, 'ingest'); }
  blobPath(digest: string): string { return join(this.root, blobRelPath(digest)); }

  /** Create the layout if it does not exist yet (idempotent, safe in parallel). */
  async init(): Promise<this> {
    await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
    await mkdir(this.ingestDir, { recursive: true });
    await createIfAbsent(join(this.root, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await createIfAbsent(this.indexPath, JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }));
    return this;
  }

  /** Is the layout there at all (oci-layout file present)? */
  async exists(): Promise<boolean> {
    try { await stat(join(this.root, 'oci-layout')); return true; } catch { return false; }
  }

  async hasBlob(digest: string, size?: number): Promise<boolean> {
    try {
      const st = await stat(this.blobPath(digest));
      return size === undefined || st.size === size;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  /** Start a blob write; the caller streams chunks in and commits or aborts. */
  async ingest(expected: { digest: string; size?: number }): Promise<BlobWriter> {
    parseDigest(expected.digest);
    await mkdir(this.ingestDir, { recursive: true });
    const tmp = join(this.ingestDir, `${expected.digest.replace(':', '-')}.${process.pid}.${randomBytes(4).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o644);
    return new BlobWriter(this, fh, tmp, expected);
  }

  /** Write a whole blob from memory; returns its descriptor. */
  async writeBlob(data: Uint8Array | string, mediaType: string, extra: Partial<Descriptor> = {}): Promise<Descriptor> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const digest = digestOf(bytes);
    if (!(await this.hasBlob(digest, bytes.length))) {
      const w = await this.ingest({ digest, size: bytes.length });
      await w.write(bytes);
      await w.commit();
    }
    return { mediaType, digest, size: bytes.length, ...extra };
  }

  /** Read a blob and verify it against its digest before handing it out. */
  async readBlob(digest: string, opts: { maxSize?: number } = {}): Promise<Buffer> {
    const path = this.blobPath(digest);
    let data: Buffer;
    try {
      if (opts.maxSize !== undefined) {
        const st = await stat(path);
        if (st.size > opts.maxSize) throw new BerthError('E_BLOB_SIZE', `blob ${digest} is ${st.size} bytes, over the limit of ${opts.maxSize}`);
      }
      data = await readFile(path);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new BerthError('E_BLOB_UNKNOWN', `blob ${digest} is not in the image store ${this.root}`);
      throw err;
    }
    const { algorithm } = parseDigest(digest);
    const actual = digestOf(data, algorithm);
    if (actual !== digest) throw new BerthError('E_DIGEST_MISMATCH', `blob ${digest} in ${this.root} is corrupt: its content hashes to ${actual}`);
    return data;
  }

  async readJsonBlob(digest: string, what: string): Promise<unknown> {
    return parseJsonDocument(await this.readBlob(digest, { maxSize: 4 * 1024 * 1024 }), `${what} ${digest}`);
  }

  /** A stream of a blob's bytes (the caller verifies as it consumes, e.g. while unpacking). */
  openBlob(digest: string): NodeJS.ReadableStream {
    return createReadStream(this.blobPath(digest));
  }

  async readIndex(): Promise<ImageIndex> {
    let text: string;
    try {
      text = await readFile(this.indexPath, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new BerthError('E_NO_STORE', `no OCI image layout at ${this.root} (index.json missing)`);
      throw err;
    }
    return validateIndex(parseJsonDocument(text, `${this.indexPath}`), this.indexPath);
  }

  /** Change index.json under the lock; `fn` returns the new index. */
  async updateIndex(fn: (index: ImageIndex) => ImageIndex | Promise<ImageIndex>): Promise<ImageIndex> {
    await this.init();
    return withFileLock(join(this.root, 'index.json.lock'), async () => {
      const next = await fn(await this.readIndex());
      await writeFileAtomic(this.indexPath, JSON.stringify(next));
      return next;
    });
  }

  /** Point `ref` at a manifest (or index): any entry carrying that name loses it. */
  async tag(ref: string, desc: Descriptor): Promise<void> {
    await this.updateIndex((index) => {
      const manifests = index.manifests.filter((m) => m.annotations?.[RefNameAnnotation] !== ref);
      const { annotations, ...rest } = desc;
      manifests.push({ ...rest, annotations: { ...(annotations ?? {}), [RefNameAnnotation]: ref } });
      return { ...index, manifests };
    });
  }

  async untag(ref: string): Promise<boolean> {
    let removed = false;
    await this.updateIndex((index) => {
      const manifests = index.manifests.filter((m) => m.annotations?.[RefNameAnnotation] !== ref);
      removed = manifests.length !== index.manifests.length;
      return { ...index, manifests };
    });
    return removed;
  }

  /** The entries of index.json with their names. */
  async list(): Promise<Array<{ ref: string | undefined; descriptor: Descriptor }>> {
    const index = await this.readIndex();
    return index.manifests.map((d) => ({ ref: d.annotations?.[RefNameAnnotation], descriptor: d }));
  }

  /**
   * Find an image by name (exact ref name, or name completed with :latest),
   * by full digest, or by a unique digest prefix of 12 or more hex chars.
   */
  async resolve(name: string, candidates: string[] = [name]): Promise<{ ref: string | undefined; descriptor: Descriptor } | undefined> {
    const entries = await this.list();
    for (const c of candidates) {
      const hit = entries.find((e) => e.ref === c);
      if (hit) return hit;
    }
    const hex = name.startsWith('sha256:') ? name.slice(7) : name;
    if (/^[a-f0-9]{12,64}$/.test(hex)) {
      const hits = entries.filter((e) => e.descriptor.digest.slice(7).startsWith(hex));
      const unique = new Set(hits.map((h) => h.descriptor.digest));
      if (unique.size === 1) return hits[0];
      if (unique.size > 1) throw new BerthError('E_AMBIGUOUS', `image id prefix ${hex} matches ${unique.size} images: give more characters`);
    }
    return undefined;
  }

  /** Remove temp files of writes that died (older than maxAgeMs). */
  async cleanIngest(maxAgeMs = 60 * 60 * 1000): Promise<number> {
    let n = 0;
    let names: string[];
    try { names = await readdir(this.ingestDir); } catch { return 0; }
    for (const name of names) {
      const p = join(this.ingestDir, name);
      try {
        const st = await stat(p);
        if (Date.now() - st.mtimeMs > maxAgeMs) { await unlink(p); n++; }
      } catch { /* raced with its writer */ }
    }
    return n;
  }
}

/**
 * One blob being written. Bytes are hashed as they are written; commit()
 * fsyncs, checks size and digest, and renames into blobs/. abort() removes
 * the temp file. A mismatch aborts and names the digest.
 */
export class BlobWriter {
  private readonly digester: Digester;
  private closed = false;
  constructor(
    private readonly layout: ImageLayout,
    private readonly fh: FileHandle,
    readonly tmpPath: string,
    private readonly expected: { digest: string; size?: number },
  ) {
    this.digester = new Digester(parseDigest(expected.digest).algorithm);
  }

  get written(): number { return this.digester.size; }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.expected.size !== undefined && this.digester.size + chunk.length > this.expected.size) {
      await this.abort();
      throw new BerthError('E_BLOB_SIZE', `blob ${this.expected.digest} is larger than the ${this.expected.size} bytes its descriptor declares`);
    }
    this.digester.update(chunk);
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off);
      off += bytesWritten;
    }
  }

  async commit(): Promise<Descriptor['digest']> {
    const { digest, size } = this.expected;
    try {
      if (size !== undefined && this.digester.size !== size) {
        throw new BerthError('E_BLOB_SIZE', `blob ${digest}: got ${this.digester.size} bytes, its descriptor declares ${size}`);
      }
      const actual = this.digester.digest();
      if (actual !== digest) throw new BerthError('E_DIGEST_MISMATCH', `blob ${digest}: content hashes to ${actual}; discarded`);
      await this.fh.sync();
      await this.fh.close();
      this.closed = true;
      const final = this.layout.blobPath(digest);
      await mkdir(join(final, '..'), { recursive: true });
      await rename(this.tmpPath, final);
      await fsyncDir(join(final, '..'));
      return digest;
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => {});
    }
    await unlink(this.tmpPath).catch(() => {});
  }
}

async function createIfAbsent(path: string, content: string): Promise<void> {
  try {
    await stat(path);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    // Another process may create it at the same time: write to a temp name and
    // link it in, so whoever wins, the file is complete.
    const tmp = `${path}.init-${process.pid}-${randomBytes(4).toString('hex')}`;
    await writeFileAtomic(tmp, content);
    const { link } = await import('node:fs/promises');
    try { await link(tmp, path); } catch (e) { if (!isErrno(e, 'EEXIST')) throw e; }
    await unlink(tmp).catch(() => {});
  }
}
