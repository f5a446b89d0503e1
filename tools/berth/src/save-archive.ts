import { closeSync, createReadStream, fsyncSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, statSync, writeSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createGunzip, createGzip } from 'node:zlib';
import { encodeHeader } from '@berth/archive';
import { ImageLayout, fsyncDir } from '@berth/content';
import { Digester, digestOf, parseDigest } from '@berth/digest';
import { EngineError } from '@berth/engine';
import { MediaType, RefNameAnnotation, layerCompression, localReference, validateManifest, type Descriptor, type ImageConfig, type ImageManifest } from '@berth/oci-spec';

/**
 * `berth save`: images of the store as podman writes them.
 *
 * - docker-archive (docker save's format, podman's default): manifest.json
 *   `[{Config, RepoTags, Layers}]`, the config as `<id>.json`, each layer
 *   uncompressed as `<diffID hex>.tar`. A compressed layer is inflated twice
 *   (once to learn its size for the tar header and check its diffID, once to
 *   write it) unless it is small enough to keep from the first pass.
 * - oci-archive / oci-dir: an OCI image layout (image-layout.md) holding the
 *   stored blobs as they are; an uncompressed layer is gzipped as podman does
 *   unless --uncompressed, which then means a new manifest.
 * - docker-dir: containers/image's `dir:` transport, a v2s2 manifest.json,
 *   blobs named by their hex digest and a `version` file.
 * Every blob read from the store is hashed as it is copied and the save fails
 * if one does not match its digest, so a corrupt store never leaks into an archive.
 */
export type SaveFormat = 'docker-archive' | 'oci-archive' | 'oci-dir' | 'docker-dir';
export const SAVE_FORMATS: readonly SaveFormat[] = ['docker-archive', 'oci-archive', 'oci-dir', 'docker-dir'];

export interface SaveImage {
  /** Names written into the archive (RepoTags, or the ref name annotation). */
  names: string[];
  manifest: Descriptor;
}

export interface SaveOptions {
  imageStore: string;
  images: SaveImage[];
  format: SaveFormat;
  uncompressed: boolean;
  /** docker-dir: gzip the layers stored uncompressed (podman's --compress). */
  compress?: boolean;
  progress?: (line: string) => void;
}

/** Where the archive's files go: a tar stream, or a directory. */
export interface ArchiveOutput {
  dir(path: string): Promise<void>;
  file(path: string, size: number, content: Buffer | AsyncIterable<Buffer>): Promise<void>;
  finish(): Promise<void>;
}

const KEEP_IN_MEMORY = 64 * 1024 * 1024;
const CHUNK = 1024 * 1024;

function fail(what: string): EngineError {
  return new EngineError('E_SAVE', what);
}

/** A name as podman records a short one (`web` is localhost/web:latest); one that does not parse is refused, not written. */
export function localName(name: string): string {
  try {
    return localReference(name);
  } catch (err) {
    throw fail(`${name}: not a valid image name for the archive (${(err as Error).message})`);
  }
}

/** A store blob's bytes, hashed while read; the last chunk is only yielded once the digest matched. */
async function* verifiedBlob(layout: ImageLayout, desc: { digest: string; size: number }): AsyncGenerator<Buffer> {
  const d = new Digester(parseDigest(desc.digest).algorithm);
  let held: Buffer | undefined;
  for await (const chunk of createReadStream(layout.blobPath(desc.digest), { highWaterMark: CHUNK })) {
    if (held) yield held;
    d.update(chunk as Buffer);
    held = chunk as Buffer;
  }
  if (d.digest() !== desc.digest || d.size !== desc.size) {
    throw fail(`blob ${desc.digest} in ${layout.root} is corrupt: ${d.size} bytes hashing to ${d.digest()}`);
  }
  if (held) yield held;
}

async function* inflate(layout: ImageLayout, desc: Descriptor, kind: 'gzip' | 'zstd'): AsyncGenerator<Buffer> {
  if (kind === 'gzip') {
    const z = createGunzip({ chunkSize: CHUNK });
    const feed = (async () => {
      for await (const c of verifiedBlob(layout, desc)) if (!z.write(c)) await new Promise((ok) => z.once('drain', ok));
      z.end();
    })();
    feed.catch((err: unknown) => z.destroy(err as Error));
    for await (const c of z) yield c as Buffer;
    await feed;
    return;
  }
  const { Decompress } = await import('fzstd');
  let out: Buffer[] = [];
  const z = new Decompress((data) => { out.push(Buffer.from(data.buffer, data.byteOffset, data.length)); });
  for await (const c of verifiedBlob(layout, desc)) {
    z.push(new Uint8Array(c));
    if (out.length > 0) { yield* out; out = []; }
  }
  z.push(new Uint8Array(0), true);
  yield* out;
}

/** A layer uncompressed, with its size known before the first byte is written (a tar header needs it). */
async function uncompressedLayer(layout: ImageLayout, desc: Descriptor, diffId: string): Promise<{ size: number; content: Buffer | AsyncIterable<Buffer> }> {
  const kind = layerKind(desc);
  if (kind === 'none') {
    if (desc.digest !== diffId) throw fail(`layer ${desc.digest}: uncompressed, but the config's diffID is ${diffId}`);
    return { size: desc.size, content: verifiedBlob(layout, desc) };
  }
  const d = new Digester('sha256');
  const kept: Buffer[] = [];
  let keep = true;
  for await (const c of inflate(layout, desc, kind)) {
    d.update(c);
    if (keep) { kept.push(c); if (d.size > KEEP_IN_MEMORY) { keep = false; kept.length = 0; } }
  }
  if (d.digest() !== diffId) throw fail(`layer ${desc.digest} inflates to ${d.digest()}, but the config's diffID is ${diffId}`);
  const size = d.size;
  if (keep) return { size, content: Buffer.concat(kept) };
  return {
    size,
    content: (async function* () {
      const again = new Digester('sha256');
      for await (const c of inflate(layout, desc, kind)) { again.update(c); yield c; }
      if (again.digest() !== diffId) throw fail(`layer ${desc.digest} inflated differently the second time`);
    })(),
  };
}

function layerKind(desc: Descriptor): 'gzip' | 'zstd' | 'none' {
  if (desc.mediaType === 'application/vnd.docker.image.rootfs.diff.tar') return 'none';
  const kind = layerCompression(desc.mediaType);
  if (kind === undefined) throw fail(`layer ${desc.digest} has media type ${desc.mediaType}, which berth cannot save`);
  return kind;
}

interface StoredImage { image: SaveImage; manifest: ImageManifest; config: ImageConfig; configBytes: Buffer; manifestBytes: Buffer }

async function readStored(layout: ImageLayout, image: SaveImage): Promise<StoredImage> {
  const manifestBytes = await layout.readBlob(image.manifest.digest, { maxSize: 4 * 1024 * 1024 });
  const manifest = validateManifest(JSON.parse(manifestBytes.toString('utf8')), `manifest ${image.manifest.digest}`);
  const configBytes = await layout.readBlob(manifest.config.digest, { maxSize: 4 * 1024 * 1024 });
  const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
  if (!Array.isArray(config.rootfs?.diff_ids) || config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw fail(`config ${manifest.config.digest}: its diff_ids do not match the manifest's ${manifest.layers.length} layers`);
  }
  return { image, manifest, config, configBytes, manifestBytes };
}

export async function saveImages(opts: SaveOptions, out: ArchiveOutput): Promise<void> {
  const layout = new ImageLayout(opts.imageStore);
  const progress = opts.progress ?? (() => {});
  const stored: StoredImage[] = [];
  for (const image of opts.images) stored.push(await readStored(layout, image));
  switch (opts.format) {
    case 'docker-archive': return writeDockerArchive(layout, stored, out, progress);
    case 'docker-dir': return writeDockerDir(layout, stored[0]!, opts.compress ?? false, out, progress);
    default: return writeOciLayout(layout, stored[0]!, opts.uncompressed, out, progress);
  }
}

async function writeDockerArchive(layout: ImageLayout, images: StoredImage[], out: ArchiveOutput, progress: (l: string) => void): Promise<void> {
  const written = new Set<string>();
  const entries: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> = [];
  for (const img of images) {
    const layers: string[] = [];
    for (const [i, desc] of img.manifest.layers.entries()) {
      const diffId = img.config.rootfs.diff_ids[i]!;
      const name = `${parseDigest(diffId).encoded}.tar`;
      layers.push(name);
      if (written.has(name)) continue;
      written.add(name);
      progress(`Copying blob ${diffId}`);
      const { size, content } = await uncompressedLayer(layout, desc, diffId);
      await out.file(name, size, content);
    }
    const configName = `${parseDigest(img.manifest.config.digest).encoded}.json`;
    if (!written.has(configName)) {
      written.add(configName);
      progress(`Copying config ${img.manifest.config.digest}`);
      await out.file(configName, img.configBytes.length, img.configBytes);
    }
    entries.push({ Config: configName, RepoTags: img.image.names, Layers: layers });
  }
  progress('Writing manifest to image destination');
  const manifest = Buffer.from(JSON.stringify(entries));
  await out.file('manifest.json', manifest.length, manifest);
  await out.finish();
}

async function writeDockerDir(layout: ImageLayout, img: StoredImage, compress: boolean, out: ArchiveOutput, progress: (l: string) => void): Promise<void> {
  const version = Buffer.from('Directory Transport Version: 1.1\n');
  await out.file('version', version.length, version);
  const layers: Descriptor[] = [];
  let scratch: string | undefined;
  try {
    for (const desc of img.manifest.layers) {
      const kind = layerKind(desc);
      if (kind === 'zstd') throw fail(`layer ${desc.digest} is zstd-compressed, which a v2s2 manifest (docker-dir) cannot describe: save as oci-dir or oci-archive`);
      if (kind === 'none' && compress) {
        scratch ??= mkdtempSync(join(tmpdir(), 'berth-save-'));
        const gz = await gzipToFile(layout, desc, join(scratch, parseDigest(desc.digest).encoded));
        progress(`Copying blob ${gz.digest}`);
        await out.file(parseDigest(gz.digest).encoded, gz.size, fileChunks(gz.path));
        rmSync(gz.path, { force: true });
        layers.push({ mediaType: MediaType.DockerLayerGzip, digest: gz.digest, size: gz.size });
        continue;
      }
      progress(`Copying blob ${desc.digest}`);
      await out.file(parseDigest(desc.digest).encoded, desc.size, verifiedBlob(layout, desc));
      layers.push({ mediaType: kind === 'gzip' ? MediaType.DockerLayerGzip : 'application/vnd.docker.image.rootfs.diff.tar', digest: desc.digest, size: desc.size });
    }
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
  progress(`Copying config ${img.manifest.config.digest}`);
  await out.file(parseDigest(img.manifest.config.digest).encoded, img.configBytes.length, img.configBytes);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.DockerManifest,
    config: { mediaType: MediaType.DockerConfig, digest: img.manifest.config.digest, size: img.configBytes.length },
    layers,
  }));
  progress('Writing manifest to image destination');
  await out.file('manifest.json', manifest.length, manifest);
  await out.finish();
}

async function writeOciLayout(layout: ImageLayout, img: StoredImage, uncompressed: boolean, out: ArchiveOutput, progress: (l: string) => void): Promise<void> {
  const layoutFile = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await out.file('oci-layout', layoutFile.length, layoutFile);
  await out.dir('blobs');
  await out.dir('blobs/sha256');
  const blobName = (digest: string) => { const p = parseDigest(digest); return `blobs/${p.algorithm}/${p.encoded}`; };
  let scratch: string | undefined;
  try {
    const layers: Descriptor[] = [];
    let changed = false;
    for (const desc of img.manifest.layers) {
      // podman compresses what its storage holds uncompressed unless --uncompressed; berth's store keeps pulled layers compressed as they came.
      if (layerKind(desc) === 'none' && !uncompressed) {
        scratch ??= mkdtempSync(join(tmpdir(), 'berth-save-'));
        const gz = await gzipToFile(layout, desc, join(scratch, parseDigest(desc.digest).encoded));
        progress(`Copying blob ${gz.digest}`);
        await out.file(blobName(gz.digest), gz.size, fileChunks(gz.path));
        rmSync(gz.path, { force: true });
        const { annotations, ...rest } = desc;
        layers.push({ ...rest, mediaType: desc.mediaType === MediaType.OciLayer ? MediaType.OciLayerGzip : MediaType.DockerLayerGzip, digest: gz.digest, size: gz.size, ...(annotations ? { annotations } : {}) });
        changed = true;
        continue;
      }
      progress(`Copying blob ${desc.digest}`);
      await out.file(blobName(desc.digest), desc.size, verifiedBlob(layout, desc));
      layers.push(desc);
    }
    progress(`Copying config ${img.manifest.config.digest}`);
    await out.file(blobName(img.manifest.config.digest), img.configBytes.length, img.configBytes);
    const manifestBytes = changed ? Buffer.from(JSON.stringify({ ...img.manifest, layers })) : img.manifestBytes;
    const manifestDigest = changed ? digestOf(manifestBytes) : img.image.manifest.digest;
    progress('Writing manifest to image destination');
    await out.file(blobName(manifestDigest), manifestBytes.length, manifestBytes);
    const entry: Descriptor = {
      mediaType: img.manifest.mediaType ?? img.image.manifest.mediaType, digest: manifestDigest, size: manifestBytes.length,
      ...(img.image.names[0] ? { annotations: { [RefNameAnnotation]: img.image.names[0] } } : {}),
    };
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [entry] }));
    await out.file('index.json', index.length, index);
    await out.finish();
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

async function gzipToFile(layout: ImageLayout, desc: Descriptor, path: string): Promise<{ path: string; digest: string; size: number }> {
  const fd = openSync(path, 'w', 0o600);
  const d = new Digester('sha256');
  try {
    const z = createGzip({ chunkSize: CHUNK });
    const feed = (async () => {
      for await (const c of verifiedBlob(layout, desc)) if (!z.write(c)) await new Promise((ok) => z.once('drain', ok));
      z.end();
    })();
    feed.catch((err: unknown) => z.destroy(err as Error));
    for await (const c of z) {
      d.update(c as Buffer);
      writeAllSync(fd, c as Buffer);
    }
    await feed;
  } finally {
    closeSync(fd);
  }
  return { path, digest: d.digest(), size: d.size };
}

async function* fileChunks(path: string): AsyncGenerator<Buffer> {
  for await (const c of createReadStream(path, { highWaterMark: CHUNK })) yield c as Buffer;
}

function writeAllSync(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/** Bytes out: a file descriptor (written synchronously, it is a local file) or a stream (stdout). */
export interface ByteSink { write(buf: Buffer): Promise<void> }

export function fdSink(fd: number): ByteSink {
  return { write: async (buf) => writeAllSync(fd, buf) };
}

export function streamSink(stream: NodeJS.WritableStream): ByteSink {
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  stream.on('error', (err: Error) => { failure = err; wake?.(); });
  const check = () => { if (failure) throw fail(`writing the archive: ${failure.message} (did the reader of the pipe go away?)`); };
  return {
    write: async (buf) => {
      check();
      // A reader that closed the pipe shows up as an error, never as 'drain': wait for either.
      if (!stream.write(buf)) {
        await new Promise<void>((ok) => { wake = ok; stream.once('drain', ok); });
        wake = undefined;
      }
      check();
    },
  };
}

/** The archive as a tar stream: ustar headers (PAX past ustar's limits), mode 0444, uid 0, mtime 0 as podman writes them. */
export function tarOutput(sink: ByteSink): ArchiveOutput {
  const pad = (n: number) => (512 - (n % 512)) % 512;
  return {
    dir: (path) => sink.write(encodeHeader({ name: `${path}/`, type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 })),
    file: async (path, size, content) => {
      await sink.write(encodeHeader({ name: path, type: 'file', mode: 0o444, uid: 0, gid: 0, size, mtime: 0 }));
      let n = 0;
      if (Buffer.isBuffer(content)) { await sink.write(content); n = content.length; } else {
        for await (const c of content) {
          n += c.length;
          if (n > size) break;
          await sink.write(c);
        }
      }
      if (n !== size) throw fail(`${path}: ${n} bytes where ${size} were announced (the store changed during the save?)`);
      if (pad(size) > 0) await sink.write(Buffer.alloc(pad(size)));
    },
    finish: () => sink.write(Buffer.alloc(1024)),
  };
}

/** The archive as files under `root` (oci-dir, docker-dir). */
export function dirOutput(root: string): ArchiveOutput {
  return {
    dir: async (path) => { mkdirSync(join(root, path), { recursive: true }); },
    file: async (path, size, content) => {
      const full = join(root, path);
      mkdirSync(dirname(full), { recursive: true });
      const fd = openSync(full, 'wx', 0o644);
      let n = 0;
      try {
        if (Buffer.isBuffer(content)) { writeAllSync(fd, content); n = content.length; } else {
          for await (const c of content) { writeAllSync(fd, c); n += c.length; }
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      if (n !== size) throw fail(`${path}: ${n} bytes where ${size} were expected`);
    },
    finish: async () => {},
  };
}

/**
 * Write an archive file atomically: a temp file next to FILE, renamed over it
 * only when complete and fsynced; removed on any failure, so FILE is either
 * the old one or the whole new archive.
 */
export async function withAtomicFile(target: string, fn: (out: ArchiveOutput) => Promise<void>): Promise<void> {
  const tmp = join(dirname(target), `.${basename(target)}.berth-save-${randomBytes(4).toString('hex')}`);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o644);
  } catch (err) {
    throw fail(`creating ${target}: ${(err as Error).message}`);
  }
  try {
    await fn(tarOutput(fdSink(fd)));
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, target);
    // The rename is durable only once the directory holding it is on disk.
    await fsyncDir(dirname(target));
  } catch (err) {
    if (fd >= 0) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** The same for a directory: built beside DIR and renamed to it (DIR must not exist, or be empty). */
export async function withAtomicDir(target: string, fn: (out: ArchiveOutput) => Promise<void>): Promise<void> {
  try {
    if (statSync(target).isDirectory()) {
      if (readdirSync(target).length > 0) throw fail(`${target} exists and is not empty: give a new directory for -o`);
    } else {
      throw fail(`${target} exists and is not a directory: oci-dir and docker-dir write a directory`);
    }
  } catch (err) {
    if (err instanceof EngineError) throw err;
  }
  const tmp = join(dirname(target), `.${basename(target)}.berth-save-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(tmp, { mode: 0o755 });
  } catch (err) {
    throw fail(`creating ${tmp}: ${(err as Error).message}`);
  }
  try {
    await fn(dirOutput(tmp));
    await fsyncTree(tmp);
    // rename(2) replaces an empty directory, so an empty DIR made beforehand is fine.
    renameSync(tmp, target);
    await fsyncDir(dirname(target));
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** The directories of a tree just written (its files are fsynced as they are written), deepest first. */
async function fsyncTree(dir: string): Promise<void> {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) await fsyncTree(join(dir, e.name));
  await fsyncDir(dir);
}
