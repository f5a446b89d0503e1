import { dirname } from 'node:path';
import { BerthError, Progress, formatBytes, log } from '@berth/cli-kit';
import { ImageLayout, acquireLease, type BlobWriter, type Lease } from '@berth/content';
import { Digester, digestOf, parseDigest, shortId } from '@berth/digest';
import {
  MediaType, formatPlatform, formatReference, indexMediaTypes, layerCompression, manifestKind, manifestMediaTypes,
  parseJsonDocument, platformMatches, schema1MediaTypes, validateConfig, validateIndex, validateManifest,
  type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest, type ImageReference, type Platform,
} from '@berth/oci-spec';
import { RegistryClient, type BlobSink, type Credentials } from '@berth/registry';

/**
 * The pull, in the order the distribution spec's "pull" workflow goes:
 * resolve the reference to a manifest (through an index if the registry has
 * one), fetch the config and layers the manifest names, then record the
 * reference. Order matters for a crash-safe store: blobs first, the manifest
 * (and index) blobs next, the name in index.json last, so index.json never
 * names something whose blobs are not all there and verified.
 */
export interface PullOptions {
  reference: ImageReference;
  /** ROOT/images */
  store: string;
  platform: Platform;
  /** Did the user ask for this platform (--platform), or is it the host's? */
  platformExplicit: boolean;
  insecure: boolean;
  /** --cert-dir; else the registry's certs.d directory, if any (@berth/registry certs.ts). */
  certDir?: string;
  credentials: Credentials | undefined;
  /** Blobs fetched at once (default 6, as podman's max-parallel-downloads). */
  concurrency?: number;
  /**
   * Where the bytes come from when that is not the reference itself: a
   * mirror or a rewritten location from registries.conf. The image keeps
   * the reference's name in the store.
   */
  source?: { registry: string; repository: string };
}

export interface ImageDocument {
  kind: 'image';
  reference: string;
  store: string;
  manifest: Descriptor;
  config: Descriptor;
  platform: Platform;
  layers: Descriptor[];
}

/** The spec's manifest size limit that berth enforces: 4 MiB. */
export const MaxManifestSize = 4 * 1024 * 1024;
/** Image configs are read into memory to be checked; bound them too. */
const MaxConfigSize = 16 * 1024 * 1024;

const acceptedTypes: readonly string[] = [
  MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest,
  // Accepted so that an old image is named as schema1 and refused clearly,
  // rather than as an unexpected 404 or conversion.
  ...schema1MediaTypes,
];

interface FetchedManifest { bytes: Buffer; mediaType: string; digest: string; doc: unknown }

export async function pullImage(opts: PullOptions): Promise<ImageDocument> {
  const ref = opts.reference;
  const fullRef = formatReference(ref);
  const layout = await new ImageLayout(opts.store).init();
  // Temp files of pulls that were killed (kill -9, power loss) are removed
  // once untouched for an hour; a live pull keeps writing, so its files stay fresh.
  await layout.cleanIngest();
  const src: ImageReference = opts.source ? { ...ref, registry: opts.source.registry, repository: opts.source.repository } : ref;
  const client = new RegistryClient({ registry: src.registry, insecure: opts.insecure, certDir: opts.certDir, credentials: opts.credentials });
  if (opts.credentials) log.debug(`using credentials from ${opts.credentials.source}`);
  // --debug shows where the time goes: process start, API check, manifests, blobs, store.
  const t0 = performance.now();
  const mark = (what: string) => log.debug(`${what} at ${Math.round(performance.now())} ms since process start (${Math.round(performance.now() - t0)} ms into the pull)`);
  let lease: Lease | undefined;
  try {
    await client.ping();
    mark('API check done');

    // 1. Resolve the reference: by digest when one is given (the tag of
    // name:tag@digest is only a label, as in podman), else by tag.
    const top = await fetchManifest(client, src, ref.digest ?? ref.tag!, undefined);
    let index: { fetched: FetchedManifest; doc: ImageIndex } | undefined;
    let manifestDesc: Descriptor;
    let fetched: FetchedManifest;
    if (manifestKind(top.mediaType) === 'index') {
      const doc = validateIndex(top.doc, `index ${fullRef}`);
      index = { fetched: top, doc };
      const entry = pickPlatform(doc, opts.platform, fullRef);
      log.debug(`index ${shortId(top.digest)} -> ${formatPlatform(entry.platform!)} manifest ${shortId(entry.digest)}`);
      fetched = await fetchManifest(client, src, entry.digest, entry);
      if (manifestKind(fetched.mediaType) !== 'manifest') {
        throw new BerthError('E_MANIFEST', `index ${fullRef} entry ${entry.digest} is a ${fetched.mediaType}, not an image manifest (nested indexes are not supported)`);
      }
      manifestDesc = { mediaType: fetched.mediaType, digest: fetched.digest, size: fetched.bytes.length, platform: entry.platform };
    } else {
      fetched = top;
      manifestDesc = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length };
    }
    const manifest = validateManifest(fetched.doc, `manifest ${fullRef}`);
    checkLayers(manifest, fullRef);
    mark('manifest fetched');

    // A lease on every blob of this image, taken before the store is asked
    // which blobs it already has: berth-gc treats leases as roots, so a blob
    // this pull reuses cannot be swept between that check and the tag.
    const blobs = [manifestDesc, manifest.config, ...manifest.layers, ...(index ? [{ digest: index.fetched.digest }] : [])];
    lease = await acquireLease(dirname(opts.store), blobs.map((d) => ({ type: 'blob' as const, id: d.digest })));

    // 2. Fetch the config and layers (at most `concurrency` at once). The
    // config is checked as an image config before anything is recorded.
    const progress = new Progress();
    let config: ImageConfig | undefined;
    await fetchBlobs(client, layout, src.repository, manifest, progress, opts.concurrency ?? 6, async (bytes) => {
      config = validateConfig(parseJsonDocument(bytes, `image config ${manifest.config.digest}`), `image config ${manifest.config.digest}`);
      if (config.rootfs.diff_ids.length !== manifest.layers.length) {
        throw new BerthError('E_MANIFEST', `manifest ${fullRef} has ${manifest.layers.length} layers but its config lists ${config.rootfs.diff_ids.length} diff_ids`);
      }
    });
    mark('blobs fetched and verified');
    const platform: Platform = manifestDesc.platform ?? platformOf(config!);
    if (!manifestDesc.platform) {
      manifestDesc.platform = platform;
      if (!platformMatches(platform, opts.platform)) {
        const msg = `image ${fullRef} is for ${formatPlatform(platform)}, not ${formatPlatform(opts.platform)}`;
        if (opts.platformExplicit) throw new BerthError('E_PLATFORM', `${msg} (it is a single-platform image)`);
        log.warn(msg);
      }
    }

    // 3. Manifest (and index) blobs, then the name: see the comment at the top.
    await layout.writeBlob(fetched.bytes, manifestDesc.mediaType);
    if (index) await layout.writeBlob(index.fetched.bytes, index.fetched.mediaType);
    await layout.tag(fullRef, manifestDesc);
    mark('index.json updated');
    log.info(`pulled ${fullRef} (${formatPlatform(platform)}) into ${opts.store}: manifest ${shortId(manifestDesc.digest)}, ${manifest.layers.length} layer(s)`);
    return {
      kind: 'image',
      reference: fullRef,
      store: opts.store,
      manifest: { ...manifestDesc, annotations: { 'org.opencontainers.image.ref.name': fullRef } },
      config: manifest.config,
      platform,
      layers: manifest.layers,
    };
  } finally {
    await lease?.release();
    await client.close();
  }
}

/** Fetch a manifest or index, check its digest, and refuse what berth cannot use. */
async function fetchManifest(client: RegistryClient, ref: ImageReference, reference: string, expected: Descriptor | undefined): Promise<FetchedManifest> {
  const name = `${ref.registry}/${ref.repository}${reference.includes(':') ? '@' : ':'}${reference}`;
  const res = await client.getManifest(ref.repository, reference, { accept: acceptedTypes, maxSize: MaxManifestSize });
  const bytes = res.bytes;
  const byDigest = reference.includes(':');
  const algorithm = byDigest ? parseDigest(reference).algorithm : 'sha256';
  const digest = digestOf(bytes, algorithm);
  if (byDigest && digest !== reference) {
    throw new BerthError('E_DIGEST_MISMATCH', `manifest ${name}: the registry sent content that hashes to ${digest}, not ${reference}; refused`);
  }
  if (expected && bytes.length !== expected.size) {
    throw new BerthError('E_MANIFEST', `manifest ${name}: the registry sent ${bytes.length} bytes, the index declares ${expected.size}; refused`);
  }
  if (!byDigest && res.dockerContentDigest && /^sha256:[a-f0-9]{64}$/.test(res.dockerContentDigest) && res.dockerContentDigest !== digest) {
    throw new BerthError('E_DIGEST_MISMATCH', `manifest ${name}: the registry says its digest is ${res.dockerContentDigest} but the content hashes to ${digest}; refused`);
  }
  if (res.contentType === 'text/html') {
    const head = bytes.subarray(0, 60).toString('utf8').replace(/\s+/g, ' ');
    throw new BerthError('E_MANIFEST', `manifest ${name}: the registry sent an HTML page, not a manifest ("${head}...")`);
  }
  const doc = parseJsonDocument(bytes, `manifest ${name}`);
  const mediaType = detectMediaType(res.contentType, doc, name);
  return { bytes, mediaType, digest, doc };
}

/** The media type from Content-Type, or from the document when the registry says only application/json. */
function detectMediaType(contentType: string | undefined, doc: unknown, name: string): string {
  const body = (typeof doc === 'object' && doc !== null ? doc : {}) as { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown; config?: unknown; layers?: unknown };
  const known = (t: unknown): t is string => typeof t === 'string' && manifestKind(t) !== 'unknown';
  let mediaType: string | undefined;
  if (body.schemaVersion === 1) mediaType = MediaType.DockerManifestV1Signed;
  else if (known(contentType)) mediaType = contentType;
  else if (known(body.mediaType)) mediaType = body.mediaType;
  else if (typeof body.mediaType === 'string') mediaType = body.mediaType;
  else if (Array.isArray(body.manifests)) mediaType = MediaType.OciIndex;
  else if (body.config !== undefined && Array.isArray(body.layers)) mediaType = MediaType.OciManifest;
  else mediaType = contentType;
  const kind = manifestKind(mediaType);
  if (kind === 'schema1') {
    throw new BerthError('E_MANIFEST_SCHEMA1', `manifest ${name} is a Docker schema1 manifest (${mediaType}), which berth does not pull: it is deprecated and unsigned content; push the image again with a current tool (schema2 or OCI)`);
  }
  if (kind === 'unknown') {
    throw new BerthError('E_MANIFEST_TYPE', `manifest ${name} has media type ${mediaType ?? '(none)'}, which is not an image manifest or index berth knows (${[...manifestMediaTypes, ...indexMediaTypes].join(', ')})`);
  }
  if (known(contentType) && typeof body.mediaType === 'string' && body.mediaType !== contentType) {
    throw new BerthError('E_MANIFEST_TYPE', `manifest ${name}: the registry says ${contentType} but the document says ${body.mediaType}; refused`);
  }
  return mediaType!;
}

function pickPlatform(index: ImageIndex, want: Platform, name: string): Descriptor {
  const entries = index.manifests.filter((m) => manifestMediaTypes.includes(m.mediaType) || indexMediaTypes.includes(m.mediaType));
  const hit = entries.find((m) => platformMatches(m.platform, want));
  if (hit) return hit;
  const have = entries.map((m) => (m.platform ? formatPlatform(m.platform) : 'no platform')).join(', ');
  throw new BerthError('E_PLATFORM', `index ${name} has no image for ${formatPlatform(want)} (it has: ${have || 'nothing'}); choose one with --platform`);
}

function platformOf(config: ImageConfig): Platform {
  return { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
}

function checkLayers(manifest: ImageManifest, name: string): void {
  manifest.layers.forEach((l, i) => {
    if (layerCompression(l.mediaType) === undefined) {
      throw new BerthError('E_LAYER_TYPE', `manifest ${name} layer ${i} (${l.digest}) has media type ${l.mediaType}, which berth cannot unpack`);
    }
  });
}

/**
 * A blob download into the store's ingest area. Network chunks (16-64 KiB)
 * are copied into one reused 1 MiB buffer and written a MiB at a time: one
 * write and one thread-pool round trip per MiB instead of per chunk, and no
 * fresh allocation per write (the profile showed Buffer.concat's page faults
 * and GC costing more than the hashing). The buffer can be reused because
 * writes are awaited one after the other. restart() starts a fresh temp file.
 */
class IngestSink implements BlobSink {
  private static readonly bufferSize = 1024 * 1024;
  private readonly buffer = Buffer.allocUnsafe(IngestSink.bufferSize);
  private pendingBytes = 0;

  private constructor(private readonly layout: ImageLayout, private readonly desc: Descriptor, private writer: BlobWriter) {}

  static async open(layout: ImageLayout, desc: Descriptor): Promise<IngestSink> {
    return new IngestSink(layout, desc, await layout.ingest({ digest: desc.digest, size: desc.size }));
  }

  /** Bytes accepted, including those not yet flushed: the offset a resume asks for. */
  get written(): number { return this.writer.written + this.pendingBytes; }

  async write(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(chunk.length - offset, IngestSink.bufferSize - this.pendingBytes);
      this.buffer.set(chunk.subarray(offset, offset + n), this.pendingBytes);
      this.pendingBytes += n;
      offset += n;
      if (this.pendingBytes === IngestSink.bufferSize) await this.flush();
    }
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const n = this.pendingBytes;
    // The writer counts the bytes as soon as the write starts; stop counting
    // them here at the same moment, so `written` never counts them twice.
    this.pendingBytes = 0;
    await this.writer.write(this.buffer.subarray(0, n));
  }

  async restart(): Promise<void> {
    this.pendingBytes = 0;
    await this.writer.abort();
    this.writer = await this.layout.ingest({ digest: this.desc.digest, size: this.desc.size });
  }

  async commit(): Promise<void> {
    await this.flush();
    await this.writer.commit();
  }

  async abort(): Promise<void> {
    this.pendingBytes = 0;
    await this.writer.abort();
  }
}

/** The config is small and must be checked before it is stored: keep it in memory, hashed as it comes. */
class MemorySink implements BlobSink {
  private chunks: Buffer[] = [];
  private digester: Digester;
  constructor(private readonly desc: Descriptor) { this.digester = new Digester(parseDigest(desc.digest).algorithm); }
  get written(): number { return this.digester.size; }
  async write(chunk: Uint8Array): Promise<void> {
    if (this.digester.size + chunk.length > this.desc.size) {
      throw new BerthError('E_BLOB_SIZE', `blob ${this.desc.digest} is larger than the ${this.desc.size} bytes its descriptor declares`);
    }
    this.digester.update(chunk);
    this.chunks.push(Buffer.from(chunk));
  }
  async restart(): Promise<void> { this.chunks = []; this.digester = new Digester(parseDigest(this.desc.digest).algorithm); }
  verified(): Buffer {
    if (this.digester.size !== this.desc.size) throw new BerthError('E_BLOB_SIZE', `blob ${this.desc.digest}: got ${this.digester.size} bytes, its descriptor declares ${this.desc.size}`);
    const actual = this.digester.digest();
    if (actual !== this.desc.digest) throw new BerthError('E_DIGEST_MISMATCH', `blob ${this.desc.digest}: content hashes to ${actual}; discarded`);
    return Buffer.concat(this.chunks);
  }
}

/**
 * Download the config and the layers that are not in the store yet, a
 * bounded number at once. The first failure cancels the others, and every
 * task removes its temp file before the pull reports the error, so a failed
 * pull leaves no unverified bytes behind.
 */
async function fetchBlobs(
  client: RegistryClient, layout: ImageLayout, repository: string, manifest: ImageManifest, progress: Progress,
  concurrency: number, checkConfig: (bytes: Buffer) => Promise<void>,
): Promise<void> {
  if (manifest.config.size > MaxConfigSize) {
    throw new BerthError('E_BLOB_SIZE', `image config ${manifest.config.digest} declares ${manifest.config.size} bytes, over the ${MaxConfigSize}-byte limit`);
  }
  const abort = new AbortController();
  // Ctrl-C or a TERM cancels the downloads, so each task removes its temp
  // file before the process exits with the error.
  const onSignal = (signal: NodeJS.Signals) => abort.abort(new BerthError('E_INTERRUPTED', `pull interrupted by ${signal}; nothing was recorded`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const tasks: Array<() => Promise<void>> = [];
  tasks.push(async () => {
    const desc = manifest.config;
    const sink = new MemorySink(desc);
    if (await layout.hasBlob(desc.digest, desc.size)) {
      await checkConfig(await layout.readBlob(desc.digest, { maxSize: MaxConfigSize }));
      return;
    }
    await client.downloadBlob(repository, desc, sink, { signal: abort.signal });
    const bytes = sink.verified();
    await checkConfig(bytes);
    await layout.writeBlob(bytes, desc.mediaType);
  });
  const seen = new Set<string>();
  manifest.layers.forEach((desc, i) => {
    // The same blob can appear twice in one manifest; fetch it once.
    if (seen.has(desc.digest)) return;
    seen.add(desc.digest);
    tasks.push(async () => {
      const label = `layer ${i + 1}/${manifest.layers.length} ${shortId(desc.digest)}`;
      if (await layout.hasBlob(desc.digest, desc.size)) {
        log.debug(`${label}: already in the store`);
        return;
      }
      const sink = await IngestSink.open(layout, desc);
      progress.start(desc.digest, label, desc.size);
      try {
        const started = performance.now();
        await client.downloadBlob(repository, desc, sink, { signal: abort.signal, onProgress: (n) => progress.update(desc.digest, n) });
        const downloaded = performance.now();
        await sink.commit();
        log.debug(`${label}: downloaded in ${Math.round(downloaded - started)} ms, committed (fsync, rename) in ${Math.round(performance.now() - downloaded)} ms`);
      } catch (err) {
        await sink.abort();
        throw err;
      }
      progress.finish(desc.digest, `${formatBytes(desc.size)} verified`);
    });
  });

  let failure: unknown;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length && failure === undefined) {
      const task = tasks[next++]!;
      try {
        await task();
      } catch (err) {
        if (failure === undefined) {
          failure = err;
          abort.abort(new BerthError('E_ABORTED', 'pull aborted: another blob failed'));
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (failure !== undefined) throw abort.signal.reason instanceof BerthError && abort.signal.reason.code === 'E_INTERRUPTED' ? abort.signal.reason : failure;
}
