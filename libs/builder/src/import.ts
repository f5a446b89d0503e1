import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { applyLayerFile, detectCompression, type Compression } from '@berth/archive';
import { BerthError, imageStorePath, log } from '@berth/cli-kit';
import { acquireLease, fsyncDir, ImageLayout, type Lease } from '@berth/content';
import { Digester, digestOf } from '@berth/digest';
import { MediaType, type Descriptor, type ImageConfig, type ImageManifest, type Platform } from '@berth/oci-spec';
import { Snapshotter } from '@berth/snapshots';
import { applyChanges, parseChanges } from './commit-image.ts';
import { localReference } from './names.ts';
import { nameImage } from './tag.ts';

/**
 * `podman import`: a tarball of a root filesystem (plain, gzip or zstd)
 * becomes a one-layer image.
 *
 * Nothing is visible before everything is known good:
 *   1. the bytes are staged under ROOT/images/ingest while they are hashed
 *      (the layer's digest) and fsynced;
 *   2. they are unpacked into a private directory under ROOT/snapshots/tmp
 *      by the store's own extractor (@berth/archive's applyLayer), which
 *      hashes the tar (the diffID) and refuses what berth-store refuses in a
 *      pulled layer: absolute names, `..`, writes through a symlink the same
 *      archive planted, hard links to what it does not hold — so a hostile
 *      tarball costs two temp files and nothing else;
 *   3. under a lease naming every blob and the layer, the staged file is
 *      renamed into blobs/, the unpacked tree becomes the committed snapshot
 *      of its chainID (so `berth run` unpacks nothing), config and manifest
 *      are written, and the name goes into index.json last.
 *
 * The config is podman's, field for field: created (the file's mtime, or
 * now for stdin), architecture, os, the --change edits, one diffID and one
 * history entry `/bin/sh -c #(nop) ADD file:<diffID> in /` with the
 * message; keys in the order podman writes them, so the same file imported
 * by both gets the same image id.
 */
export interface ImportOptions {
  /** The storage root (ROOT/images, ROOT/snapshots). */
  dataRoot: string;
  input: NodeJS.ReadableStream;
  /** The file name for messages, or "stdin". */
  source: string;
  /** RFC 3339 with nanoseconds, as Go prints it: the config's and the history entry's time. */
  created: string;
  changes: string[];
  message?: string;
  /** REFERENCE, normalized as podman does (web → localhost/web:latest); none leaves the image unnamed. */
  name?: string;
  platform: Platform;
  progress?: (line: string) => void;
}

export interface ImportedImage {
  kind: 'image';
  reference: string | undefined;
  /** The image id: the config digest. */
  id: string;
  manifest: Descriptor;
  layer: Descriptor & { diffID: string };
}

/** The image config's fields in the order of the OCI image-spec's Go types, the order podman writes. */
const CONFIG_ORDER = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'ArgsEscaped'];

/** Go's time.RFC3339Nano: UTC, the fraction without trailing zeros, none when zero. */
export function rfc3339Nano(epochNs: bigint): string {
  const sec = epochNs / 1_000_000_000n;
  const ns = epochNs % 1_000_000_000n;
  const base = new Date(Number(sec) * 1000).toISOString().slice(0, 19);
  const frac = ns === 0n ? '' : `.${ns.toString().padStart(9, '0').replace(/0+$/, '')}`;
  return `${base}${frac}Z`;
}

/** bzip2 and xz, which podman reads and berth's layer store does not. */
function unsupportedCompression(head: Buffer): string | undefined {
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return undefined;
}

const layerMediaType: Record<Compression, string> = { none: MediaType.OciLayer, gzip: MediaType.OciLayerGzip, zstd: MediaType.OciLayerZstd };

interface Staged { path: string; digest: string; size: number; compression: Compression }

/** Step 1: the input into a file of the ingest area, hashed and fsynced on the way. */
async function stage(input: NodeJS.ReadableStream, dir: string, source: string): Promise<Staged> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `import-${process.pid}-${randomBytes(4).toString('hex')}`);
  // 0644 as every blob: it becomes one by rename.
  const fd = openSync(path, 'wx', 0o644);
  const digester = new Digester('sha256');
  let head = Buffer.alloc(0);
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      if (head.length < 8) head = Buffer.concat([head, chunk.subarray(0, 8 - head.length)]);
      digester.update(chunk);
      let off = 0;
      while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
    }
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw new BerthError('E_IMPORT', `reading ${source}: ${(err as Error).message}`, { cause: err });
  }
  closeSync(fd);
  const fail = (why: string): never => {
    rmSync(path, { force: true });
    throw new BerthError('E_IMPORT', `importing ${source}: ${why}`);
  };
  if (digester.size === 0) fail('the input is empty: no tarball to import');
  const other = unsupportedCompression(head);
  if (other) fail(`it is ${other}-compressed, which berth does not read; decompress it first (e.g. ${other === 'xz' ? 'xz' : 'bzip2'} -dc FILE | berth import - NAME) or recompress it with gzip or zstd`);
  const compression = detectCompression(head);
  if (compression === 'none' && digester.size < 512) fail(`it is ${digester.size} bytes, too short to be a tar archive (a tar is made of 512-byte blocks)`);
  return { path, digest: digester.digest(), size: digester.size, compression };
}

/** Build the config podman would build; --change edits applied, ONBUILD left out as the OCI format has no place for it. */
function importConfig(opts: ImportOptions, diffID: string): ImageConfig {
  const config: ImageConfig = {
    created: opts.created,
    architecture: opts.platform.architecture,
    ...(opts.platform.variant ? { variant: opts.platform.variant } : {}),
    os: opts.platform.os,
    config: {},
    rootfs: { type: 'layers', diff_ids: [diffID] },
    history: [{
      created: opts.created,
      created_by: `/bin/sh -c #(nop) ADD file:${diffID.slice('sha256:'.length)} in /`,
      comment: opts.message ?? 'imported from tarball',
    }],
  };
  applyChanges(config, opts.changes);
  const cfg = config.config as Record<string, unknown>;
  if (cfg.OnBuild !== undefined) {
    log.warn('ONBUILD is not part of the OCI image format and is left out');
    delete cfg.OnBuild;
  }
  const ordered: Record<string, unknown> = {};
  for (const k of CONFIG_ORDER) if (cfg[k] !== undefined) ordered[k] = cfg[k];
  for (const k of Object.keys(cfg)) if (!(k in ordered)) ordered[k] = cfg[k];
  config.config = ordered as ImageConfig['config'];
  return config;
}

export async function importTarball(opts: ImportOptions): Promise<ImportedImage> {
  // Everything a user typed is checked before a byte is read.
  parseChanges(opts.changes);
  const name = opts.name !== undefined ? localReference(opts.name) : undefined;
  const progress = opts.progress ?? (() => {});
  const layout = new ImageLayout(imageStorePath(opts.dataRoot));
  const snapshotter = new Snapshotter(opts.dataRoot);
  progress('Getting image source signatures');
  const staged = await stage(opts.input, layout.ingestDir, opts.source);
  let extracted: string | undefined;
  let lease: Lease | undefined;
  try {
    const mediaType = layerMediaType[staged.compression];
    progress(`Copying blob ${staged.digest}`);
    // Step 2: the store's extractor is the judge of what a layer may hold.
    await snapshotter.cleanup();
    extracted = await snapshotter.tempDir('import');
    const applied = await applyLayerFile(staged.path, join(extracted, 'fs'), { mediaType, label: `importing ${opts.source}` });
    const diffID = applied.diffId;
    // One layer: its chainID is its diffID (image-spec config.md#layer-chainid).
    const chainID = diffID;
    const layerDesc: Descriptor = { mediaType, digest: staged.digest, size: staged.size };
    const config = importConfig(opts, diffID);
    const configBytes = Buffer.from(JSON.stringify(config));
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: digestOf(configBytes), size: configBytes.length },
      layers: [layerDesc],
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = digestOf(manifestBytes);
    // Step 3. The lease first, then the existence checks: berth-gc either sees the lease or has already swept.
    lease = await acquireLease(opts.dataRoot, [
      ...[staged.digest, manifest.config.digest, manifestDigest].map((id) => ({ type: 'blob' as const, id })),
      { type: 'layer' as const, id: chainID },
    ]);
    await layout.init();
    if (await layout.hasBlob(staged.digest, staged.size)) unlinkSync(staged.path);
    else {
      const final = layout.blobPath(staged.digest);
      mkdirSync(join(final, '..'), { recursive: true });
      renameSync(staged.path, final);
      await fsyncDir(join(final, '..'));
    }
    if (await snapshotter.exists(chainID)) rmSync(extracted, { recursive: true, force: true });
    else {
      await snapshotter.commitDirectory(extracted, chainID, undefined, {
        labels: { 'berth.layer.digest': staged.digest, 'berth.layer.diffID': diffID },
        ...(applied.whiteoutFormat === 'xattr' ? { whiteouts: 'xattr' as const } : {}),
      });
    }
    extracted = undefined;
    progress(`Copying config ${manifest.config.digest}`);
    await layout.writeBlob(configBytes, MediaType.OciConfig);
    const manifestDesc = await layout.writeBlob(manifestBytes, MediaType.OciManifest);
    progress('Writing manifest to image destination');
    const { desc } = await nameImage(layout, manifestDesc, config, name !== undefined ? [name] : []);
    return { kind: 'image', reference: name, id: manifest.config.digest, manifest: desc, layer: { ...layerDesc, diffID } };
  } finally {
    rmSync(staged.path, { force: true });
    if (extracted !== undefined) rmSync(extracted, { recursive: true, force: true });
    await lease?.release().catch(() => {});
  }
}
