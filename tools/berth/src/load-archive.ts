import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, unlinkSync, writeSync, createReadStream } from 'node:fs';
import { join, posix } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { TarFormatError, TarReader, detectCompression, type TarHeader } from '@berth/archive';
import { ImageLayout, acquireLease, fsyncDir } from '@berth/content';
import { Digester, parseDigest } from '@berth/digest';
import { EngineError } from '@berth/engine';
import {
  MediaType, RefNameAnnotation, localReference, manifestKind, normalizeReference, parseJsonDocument, validateConfig, validateIndex, validateManifest,
  type Descriptor, type ImageConfig, type ImageManifest,
} from '@berth/oci-spec';

/**
 * `berth load`: a docker-archive (docker save's manifest.json format) or an
 * oci-archive (a tar of an OCI image layout) into the image store.
 *
 * Nothing of the archive is trusted until the whole of it has been read:
 * every regular file is staged under ROOT/images/ingest while it is hashed,
 * paths are checked as they arrive (no `..`, no absolute names) and symlinks
 * are only followed inside the archive. Only then are the manifests checked
 * against what was staged, digest and size of every blob, and the config's
 * diffIDs against the layers. Blobs become visible (rename into blobs/) only
 * after all of that passed, under a lease so berth-gc leaves them alone, and
 * index.json gets all the names in one atomic rewrite at the very end: a
 * failure at any point leaves no name and no new blob referenced.
 */

export interface LoadedImage {
  /** What podman prints after "Loaded image: ", one line each: the names, or sha256:<image id> for an unnamed image. */
  display: string[];
  names: string[];
  manifest: Descriptor;
}

export interface LoadOptions {
  imageStore: string;
  /** The data root, where leases live. */
  dataRoot: string;
  /** The archive's bytes, or a directory written by `save --format oci-dir|docker-dir`. */
  input: NodeJS.ReadableStream | { directory: string };
  /** The file name for messages, or "stdin". */
  source: string;
  progress?: (line: string) => void;
}

interface StagedFile { kind: 'file'; tmp: string; digest: string; size: number; head: Buffer }
interface StagedLink { kind: 'link'; target: string; symlink: boolean }
type Staged = StagedFile | StagedLink;

const MAX_JSON = 8 * 1024 * 1024;

function bad(source: string, what: string): EngineError {
  return new EngineError('E_LOAD', `loading ${source}: ${what}`);
}

/** An entry's name as a clean path inside the archive; anything that could land outside it is refused. */
export function archiveEntryPath(name: string, source: string): string {
  if (name.startsWith('/')) throw bad(source, `tar entry "${name}" is an absolute path, which escapes the archive root`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw bad(source, `tar entry "${name}" has a ".." component, which escapes the archive root`);
  return parts.join('/');
}

class Staging {
  readonly entries = new Map<string, Staged>();
  private current: { path: string; fd: number; digester: Digester; head: Buffer[]; headLen: number; tmp: string } | undefined;
  private seq = 0;
  private readonly prefix = `load-${process.pid}-${randomBytes(4).toString('hex')}`;
  private readonly temps = new Set<string>();

  constructor(private readonly dir: string, private readonly source: string) {
    mkdirSync(dir, { recursive: true });
  }

  entry(h: TarHeader): void {
    const path = archiveEntryPath(h.name, this.source);
    this.drop(path);
    if (h.type === 'directory') return;
    if (h.type === 'symlink' || h.type === 'hardlink') {
      if (h.linkname.startsWith('/')) throw bad(this.source, `${h.type} "${h.name}" -> "${h.linkname}" points at an absolute path, outside the archive`);
      // A symlink is relative to its own directory; a hardlink names another entry from the root.
      const joined = h.type === 'symlink' ? posix.normalize(posix.join(posix.dirname(path), h.linkname)) : posix.normalize(h.linkname);
      if (joined === '..' || joined.startsWith('../')) throw bad(this.source, `${h.type} "${h.name}" -> "${h.linkname}" points outside the archive`);
      this.entries.set(path, { kind: 'link', target: joined === '.' ? '' : joined, symlink: h.type === 'symlink' });
      return;
    }
    if (h.type !== 'file') throw bad(this.source, `tar entry "${h.name}" is a ${h.type}: an image archive holds only files, directories and links`);
    const tmp = join(this.dir, `${this.prefix}-${this.seq++}`);
    const fd = openSync(tmp, 'wx', 0o644);
    this.temps.add(tmp);
    this.current = { path, fd, digester: new Digester('sha256'), head: [], headLen: 0, tmp };
  }

  data(chunk: Buffer): void {
    const c = this.current;
    if (!c) return;
    c.digester.update(chunk);
    if (c.headLen < 8) { c.head.push(Buffer.from(chunk.subarray(0, 8))); c.headLen += Math.min(8, chunk.length); }
    let off = 0;
    while (off < chunk.length) off += writeSync(c.fd, chunk, off, chunk.length - off);
  }

  end(): void {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    // fsync now: these files become blobs by rename, and a blob must be on disk before index.json names it.
    fsyncSync(c.fd);
    closeSync(c.fd);
    this.entries.set(c.path, { kind: 'file', tmp: c.tmp, digest: c.digester.digest(), size: c.digester.size, head: Buffer.concat(c.head) });
  }

  private drop(path: string): void {
    const old = this.entries.get(path);
    if (old?.kind === 'file') { this.unlink(old.tmp); }
    this.entries.delete(path);
  }

  private unlink(tmp: string): void {
    try { unlinkSync(tmp); } catch { /* already gone */ }
    this.temps.delete(tmp);
  }

  /** A path of the archive down to its file, following links inside the archive only. */
  resolve(path: string, what: string): StagedFile {
    let p = archiveEntryPath(path, this.source);
    for (let hops = 0; hops < 16; hops++) {
      const e = this.entries.get(p);
      if (!e) throw bad(this.source, `${what} "${path}" is not in the archive`);
      if (e.kind === 'file') return e;
      p = e.target;
    }
    throw bad(this.source, `${what} "${path}": too many levels of links`);
  }

  has(path: string): boolean {
    return this.entries.has(path);
  }

  readJson(path: string, what: string): unknown {
    const f = this.resolve(path, what);
    if (f.size > MAX_JSON) throw bad(this.source, `${what} "${path}" is ${f.size} bytes, too big for a JSON document`);
    return parseJsonDocument(readFileSync(f.tmp), `${what} ${path} of ${this.source}`);
  }

  /** Make a staged file the blob `digest` (it was hashed while staged), unless the store already has it. */
  async commit(layout: ImageLayout, file: StagedFile): Promise<void> {
    if (await layout.hasBlob(file.digest, file.size)) return;
    const final = layout.blobPath(file.digest);
    mkdirSync(join(final, '..'), { recursive: true });
    renameSync(file.tmp, final);
    this.temps.delete(file.tmp);
    // Two names may point at one staged file; the second commit finds the blob there.
  }

  cleanup(): void {
    if (this.current) { try { closeSync(this.current.fd); } catch { /* closed */ } }
    for (const t of [...this.temps]) this.unlink(t);
  }
}

/** Read the whole input into the staging area; the input may be a gzip-compressed tar (docker save | gzip). */
async function stageArchive(input: NodeJS.ReadableStream, staging: Staging, source: string): Promise<void> {
  const reader = new TarReader(staging);
  let total = 0;
  let stream: AsyncIterable<Buffer> = input as AsyncIterable<Buffer>;
  const iterator = stream[Symbol.asyncIterator]();
  const head = await iterator.next();
  if (head.done || (head.value as Buffer).length === 0) throw bad(source, 'the input is empty: no archive to load');
  const firstChunk = head.value as Buffer;
  if (detectCompression(firstChunk) === 'gzip') {
    const gunzip = createGunzip();
    const feed = (async () => {
      gunzip.write(firstChunk);
      for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
        if (!gunzip.write(r.value as Buffer)) await new Promise((ok) => gunzip.once('drain', ok));
      }
      gunzip.end();
    })();
    feed.catch((err: unknown) => gunzip.destroy(err as Error));
    stream = gunzip;
  } else {
    stream = (async function* () {
      yield firstChunk;
      for (let r = await iterator.next(); !r.done; r = await iterator.next()) yield r.value as Buffer;
    })();
  }
  try {
    for await (const chunk of stream) {
      total += chunk.length;
      if (!reader.ended) reader.push(chunk);
    }
    reader.finish();
  } catch (err) {
    if (err instanceof TarFormatError) {
      throw bad(source, reader.entries === 0 ? `not a tar archive (${err.message})` : `the archive is corrupt or truncated: ${err.message}`);
    }
    if (err instanceof Error && /unexpected end of file|incorrect header check|invalid/.test(err.message) && 'code' in err && String(err.code).startsWith('Z_')) {
      throw bad(source, `the gzip stream is corrupt or truncated: ${err.message}`);
    }
    throw err;
  }
  if (!reader.ended) {
    throw bad(source, reader.entries === 0 && total < 512 ? 'not a tar archive (shorter than one tar header)' : 'the archive is truncated: it ends without tar\'s end-of-archive blocks');
  }
}

/**
 * An oci-dir or docker-dir: its files go through the same staging as tar
 * entries (hashed copies), so a directory someone changes while it loads
 * cannot make berth store bytes other than the ones it checked.
 */
async function stageDirectory(root: string, staging: Staging): Promise<void> {
  const header = (name: string, type: TarHeader['type'], linkname = ''): TarHeader => ({
    name, type, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname, devmajor: 0, devminor: 0, xattrs: new Map(),
  });
  const has = (name: string) => { try { lstatSync(join(root, name)); return true; } catch { return false; } };
  // Decide the kind before reading anything: a wrong directory must not be copied whole into the store's ingest area.
  const oci = has('oci-layout') && has('index.json');
  if (!oci && !(has('manifest.json') && has('version'))) {
    throw bad(root, 'a directory to load must be an oci-dir (oci-layout, index.json, blobs/) or a docker-dir (manifest.json, version)');
  }
  const walk = async (rel: string, depth: number): Promise<void> => {
    // oci-dir: the top level and blobs/ALG/; docker-dir: the top level only.
    if (depth > (oci ? 2 : 0) || (oci && depth === 1 && rel !== 'blobs')) return;
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, path));
      if (st.isDirectory()) await walk(path, depth + 1);
      else if (st.isSymbolicLink()) staging.entry(header(path, 'symlink', readlinkSync(join(root, path))));
      else if (st.isFile()) {
        staging.entry(header(path, 'file'));
        for await (const chunk of createReadStream(join(root, path), { highWaterMark: 1024 * 1024 })) staging.data(chunk as Buffer);
        staging.end();
      }
    }
  };
  await walk('', 0);
}

/** The diffID of a layer blob: its own digest when uncompressed, else the digest of what it inflates to. */
async function diffIdOf(file: StagedFile, source: string, what: string): Promise<string> {
  const kind = detectCompression(file.head);
  if (kind === 'none') return file.digest;
  const d = new Digester('sha256');
  const raw = createReadStream(file.tmp);
  try {
    if (kind === 'gzip') {
      const z = raw.pipe(createGunzip());
      for await (const chunk of z) d.update(chunk as Buffer);
    } else {
      const { Decompress } = await import('fzstd');
      const z = new Decompress((chunk) => d.update(chunk));
      for await (const chunk of raw) z.push(new Uint8Array(chunk as Buffer));
      z.push(new Uint8Array(0), true);
    }
  } catch (err) {
    throw bad(source, `${what} does not decompress as ${kind}: ${(err as Error).message}`);
  }
  return d.digest();
}

function mediaTypeFor(file: StagedFile): string {
  const kind = detectCompression(file.head);
  return kind === 'gzip' ? MediaType.OciLayerGzip : kind === 'zstd' ? MediaType.OciLayerZstd : MediaType.OciLayer;
}

/** The name podman records for a name found in an archive: docker's normalisation (busybox is docker.io/library/busybox:latest). */
function dockerName(name: string, source: string): string {
  try {
    return normalizeReference(name);
  } catch (err) {
    throw bad(source, `RepoTags entry "${name}": ${(err as Error).message}`);
  }
}

/** An oci-archive's ref name as podman reads it: a full name kept, a short one made local (localhost/NAME:TAG), a bare tag localhost/TAG:latest. */
function ociName(refName: string, source: string): string {
  try {
    return localReference(refName);
  } catch (err) {
    throw bad(source, `index.json ref name "${refName}": ${(err as Error).message}`);
  }
}

interface PlannedImage {
  names: string[];
  manifest: Descriptor;
  /** Manifest/index documents berth writes itself (docker-archive). */
  documents: Array<{ bytes: Buffer; digest: string }>;
  blobs: StagedFile[];
  configDigest: string;
  /** Manifest and index blobs among `blobs` (oci-archive). */
  manifestDigests: Set<string>;
}

/** A manifest, index or config blob, parsed: refused above MAX_JSON before it is read into memory. */
function readJsonBlob(file: StagedFile, what: string, source: string): unknown {
  if (file.size > MAX_JSON) throw bad(source, `${what} is ${file.size} bytes, too big for a JSON document`);
  return parseJsonDocument(readFileSync(file.tmp), `${what} of ${source}`);
}

function checkBlob(file: StagedFile, desc: { digest: string; size: number }, what: string, source: string): void {
  if (file.digest !== desc.digest) throw bad(source, `${what} ${desc.digest}: its content hashes to ${file.digest}`);
  if (file.size !== desc.size) throw bad(source, `${what} ${desc.digest}: it is ${file.size} bytes, its descriptor says ${desc.size}`);
}

async function checkDiffIds(layers: Array<{ file: StagedFile; what: string }>, config: ImageConfig, configWhat: string, source: string): Promise<void> {
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== layers.length) throw bad(source, `${configWhat} lists ${diffIds.length} diff_ids for ${layers.length} layers`);
  for (let i = 0; i < layers.length; i++) {
    const actual = await diffIdOf(layers[i]!.file, source, layers[i]!.what);
    if (actual !== diffIds[i]) throw bad(source, `${layers[i]!.what}: its uncompressed content hashes to ${actual}, the config's diff_ids[${i}] says ${diffIds[i]}`);
  }
}

async function planDockerArchive(staging: Staging, source: string): Promise<PlannedImage[]> {
  const doc = staging.readJson('manifest.json', 'docker-archive manifest');
  if (!Array.isArray(doc) || doc.length === 0) throw bad(source, 'manifest.json must be a non-empty JSON array of {Config, RepoTags, Layers}');
  const planned: PlannedImage[] = [];
  for (const [n, item] of doc.entries()) {
    const entry = item as { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
    if (typeof entry?.Config !== 'string' || !Array.isArray(entry.Layers) || !entry.Layers.every((l) => typeof l === 'string')) {
      throw bad(source, `manifest.json entry ${n} needs Config (a path) and Layers (paths)`);
    }
    const tags = entry.RepoTags === undefined || entry.RepoTags === null ? [] : entry.RepoTags;
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw bad(source, `manifest.json entry ${n}: RepoTags must be a list of names`);
    const configFile = staging.resolve(entry.Config, 'config');
    const config = validateConfig(staging.readJson(entry.Config, 'config'), `config ${entry.Config} of ${source}`);
    const layers = (entry.Layers as string[]).map((p, i) => ({ file: staging.resolve(p, `layer ${i}`), what: `layer ${p}` }));
    await checkDiffIds(layers, config, `config ${entry.Config}`, source);
    planned.push(ociImageOf(configFile, layers.map((l) => l.file), config, (tags as string[]).map((t) => dockerName(t, source))));
  }
  return planned;
}

/** containers/image's dir: transport (podman save --format docker-dir): manifest.json (v2s2), blobs named by hex digest. */
async function planDockerDir(staging: Staging, source: string): Promise<PlannedImage[]> {
  const doc = validateManifest(staging.readJson('manifest.json', 'docker-dir manifest'), `manifest.json of ${source}`);
  const file = (desc: Descriptor, what: string) => {
    const f = staging.resolve(parseDigest(desc.digest, `${what} digest`).encoded, what);
    checkBlob(f, desc, what, source);
    return f;
  };
  const configFile = file(doc.config, 'config');
  const config = validateConfig(readJsonBlob(configFile, `config ${doc.config.digest}`, source), `config ${doc.config.digest}`);
  const layers = doc.layers.map((l, i) => ({ file: file(l, `layer ${i}`), what: `layer ${l.digest}` }));
  await checkDiffIds(layers, config, `config ${doc.config.digest}`, source);
  return [ociImageOf(configFile, layers.map((l) => l.file), config, [])];
}

/** An OCI manifest for a config and layers that came without one berth can store as is (docker-archive, docker-dir). */
function ociImageOf(configFile: StagedFile, layers: StagedFile[], config: ImageConfig, names: string[]): PlannedImage {
  const manifestDoc: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: configFile.digest, size: configFile.size },
    layers: layers.map((l) => ({ mediaType: mediaTypeFor(l), digest: l.digest, size: l.size })),
  };
  const bytes = Buffer.from(JSON.stringify(manifestDoc));
  const digest = new Digester('sha256');
  digest.update(bytes);
  const manifest: Descriptor = {
    mediaType: MediaType.OciManifest, digest: digest.digest(), size: bytes.length,
    platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) },
  };
  return { names, manifest, documents: [{ bytes, digest: manifest.digest }], blobs: [...layers, configFile], configDigest: configFile.digest, manifestDigests: new Set() };
}

function blobFile(staging: Staging, desc: Descriptor, what: string, source: string): StagedFile {
  const { algorithm, encoded } = parseDigest(desc.digest, `${what} digest`);
  let file: StagedFile;
  try {
    file = staging.resolve(`blobs/${algorithm}/${encoded}`, what);
  } catch (err) {
    if (err instanceof EngineError && /is not in the archive/.test(err.message)) throw bad(source, `${what} ${desc.digest} is named by the archive but its blob is missing`);
    throw err;
  }
  checkBlob(file, desc, what, source);
  return file;
}

/** An OCI layout's image: the manifest (or, for an index, every manifest it lists) with its config and layers, all checked. */
async function planOciImage(staging: Staging, desc: Descriptor, source: string, depth = 0): Promise<{ blobs: StagedFile[]; configDigest: string; manifests: string[] }> {
  const kind = manifestKind(desc.mediaType);
  const file = blobFile(staging, desc, kind === 'index' ? 'index' : 'manifest', source);
  const doc = readJsonBlob(file, `manifest ${desc.digest}`, source);
  if (kind === 'index') {
    if (depth > 2) throw bad(source, `index ${desc.digest} nests indexes too deeply`);
    const index = validateIndex(doc, `index ${desc.digest}`);
    const blobs: StagedFile[] = [];
    const manifests = [file.digest];
    let configDigest = '';
    for (const m of index.manifests) {
      const sub = await planOciImage(staging, m, source, depth + 1);
      blobs.push(...sub.blobs);
      manifests.push(...sub.manifests);
      if (!configDigest) configDigest = sub.configDigest;
    }
    return { blobs: [...blobs, file], configDigest, manifests };
  }
  if (kind !== 'manifest') throw bad(source, `index.json names ${desc.digest} of media type ${desc.mediaType}, which is not an image manifest or index`);
  const manifest = validateManifest(doc, `manifest ${desc.digest}`);
  const configFile = blobFile(staging, manifest.config, 'config', source);
  const config = validateConfig(readJsonBlob(configFile, `config ${manifest.config.digest}`, source), `config ${manifest.config.digest}`);
  const layers = manifest.layers.map((l, i) => ({ file: blobFile(staging, l, `layer ${i}`, source), what: `layer ${l.digest}` }));
  await checkDiffIds(layers, config, `config ${manifest.config.digest}`, source);
  // Layers, config, manifest: the order podman copies them in.
  return { blobs: [...layers.map((l) => l.file), configFile, file], configDigest: manifest.config.digest, manifests: [file.digest] };
}

async function planOciArchive(staging: Staging, source: string): Promise<PlannedImage[]> {
  const layoutDoc = staging.readJson('oci-layout', 'oci-layout file') as { imageLayoutVersion?: unknown };
  if (typeof layoutDoc?.imageLayoutVersion !== 'string') throw bad(source, 'oci-layout has no imageLayoutVersion');
  const index = validateIndex(staging.readJson('index.json', 'OCI index'), `index.json of ${source}`);
  if (index.manifests.length === 0) throw bad(source, 'index.json lists no image');
  const planned: PlannedImage[] = [];
  for (const desc of index.manifests) {
    const { blobs, configDigest, manifests } = await planOciImage(staging, desc, source);
    const { annotations, ...plain } = desc;
    const refName = annotations?.[RefNameAnnotation];
    // The archive's own name annotation is replaced by the names berth gives; other annotations stay.
    const kept = Object.fromEntries(Object.entries(annotations ?? {}).filter(([k]) => k !== RefNameAnnotation));
    planned.push({
      names: refName ? [ociName(refName, source)] : [],
      manifest: Object.keys(kept).length > 0 ? { ...plain, annotations: kept } : plain,
      documents: [], blobs, configDigest, manifestDigests: new Set(manifests),
    });
  }
  return planned;
}

/** Load an archive into the store; returns the images in the order the archive lists them. */
export async function loadArchive(opts: LoadOptions): Promise<LoadedImage[]> {
  const layout = new ImageLayout(opts.imageStore);
  await layout.init();
  const staging = new Staging(layout.ingestDir, opts.source);
  const progress = opts.progress ?? (() => {});
  let lease: { release(): Promise<void> } | undefined;
  try {
    if ('directory' in opts.input) await stageDirectory(opts.input.directory, staging);
    else await stageArchive(opts.input, staging, opts.source);
    let planned: PlannedImage[];
    if (staging.has('manifest.json') && staging.has('version')) planned = await planDockerDir(staging, opts.source);
    else if (staging.has('manifest.json')) planned = await planDockerArchive(staging, opts.source);
    else if (staging.has('index.json') && staging.has('oci-layout')) planned = await planOciArchive(staging, opts.source);
    else throw bad(opts.source, `not a docker-archive (no manifest.json) or an oci-archive (no oci-layout and index.json)${'directory' in opts.input ? ', nor an oci-dir or docker-dir' : ''}`);

    const digests = new Set<string>();
    for (const p of planned) {
      for (const b of p.blobs) digests.add(b.digest);
      for (const d of p.documents) digests.add(d.digest);
    }
    // The lease first, then the existence checks inside commit: berth-gc either sees the lease or already swept.
    lease = await acquireLease(opts.dataRoot, [...digests].map((id) => ({ type: 'blob' as const, id })));
    for (const p of planned) {
      for (const b of p.blobs) {
        // podman's lines: layers as blobs, then the config; manifests are written without a line.
        if (b.digest === p.configDigest) progress(`Copying config ${b.digest}`);
        else if (!p.manifestDigests.has(b.digest)) progress(`Copying blob ${b.digest}`);
        await staging.commit(layout, b);
      }
      for (const d of p.documents) await layout.writeBlob(d.bytes, MediaType.OciManifest);
    }
    await fsyncDir(join(opts.imageStore, 'blobs', 'sha256'));
    progress('Writing manifest to image destination');
    // One rewrite of index.json for every name: either all names of the archive land, or none.
    await layout.updateIndex((index) => {
      let manifests = index.manifests;
      for (const p of planned) {
        if (p.names.length === 0) {
          if (!manifests.some((m) => m.digest === p.manifest.digest)) manifests = [...manifests, p.manifest];
          continue;
        }
        for (const name of p.names) {
          manifests = manifests.filter((m) => m.annotations?.[RefNameAnnotation] !== name);
          manifests.push({ ...p.manifest, annotations: { ...(p.manifest.annotations ?? {}), [RefNameAnnotation]: name } });
        }
      }
      return { ...index, manifests };
    });
    return planned.map((p) => ({ display: p.names.length > 0 ? p.names : [p.configDigest], names: p.names, manifest: p.manifest }));
  } finally {
    staging.cleanup();
    await lease?.release();
  }
}
