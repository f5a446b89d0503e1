import { mkdir, rm, open, unlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { createGzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { applyLayerFile, diffTar } from '@berth/archive';
import { BerthError, log } from '@berth/cli-kit';
import { ImageLayout, withFileLock } from '@berth/content';
import { chainIds, Digester, shortId } from '@berth/digest';
import { MediaType, type Descriptor } from '@berth/oci-spec';
import type { ResolvedImage } from './image.ts';
import { Snapshotter } from './snapshotter.ts';

export interface UnpackedLayer {
  digest: string;
  diffID: string;
  chainID: string;
  snapshot: string;
  /** false when the layer was already there */
  unpacked: boolean;
}

/**
 * Make sure every layer of `image` is a committed snapshot named by its
 * chainID (config.md#layer-chainid).
 *
 * Layers may be extracted concurrently (`parallel`; each into its own temp
 * directory: a layer's content does not depend on the layers below it), but
 * they are committed strictly bottom-up,
 * because a snapshot's parent must exist first. Each layer is extracted and
 * committed under a lock of its own chainID, so two unpacks of images sharing
 * a base extract it once and the second waits, then finds it done. Waiting
 * only ever points down the chain, so the locks cannot deadlock.
 */
export async function unpackImage(snapshotter: Snapshotter, layout: ImageLayout, image: ResolvedImage, opts: { onLayer?: (l: UnpackedLayer) => void; parallel?: number } = {}): Promise<UnpackedLayer[]> {
  await snapshotter.init();
  await snapshotter.cleanup();
  const chain = chainIds(image.diffIds);
  const lockDir = join(snapshotter.root, 'locks');
  await mkdir(lockDir, { recursive: true });
  // Sequential by default: on the 2-core machine measured (bench/store.sh) one
  // inflate stream overlapping the main thread's syscalls was fastest, and
  // 2-3 streams were 10-30% slower. BERTH_UNPACK_PARALLEL raises it.
  const limit = Math.max(1, Math.min(availableParallelism() * 2, opts.parallel ?? (Number(process.env.BERTH_UNPACK_PARALLEL) || 1)));
  const slots = new Semaphore(limit);
  const committed: Array<Promise<UnpackedLayer>> = [];
  for (let i = 0; i < image.layers.length; i++) {
    const layer = image.layers[i]!;
    const chainID = chain[i]!;
    const parent = i > 0 ? chain[i - 1] : undefined;
    const below = i > 0 ? committed[i - 1]! : Promise.resolve(undefined);
    const result = (unpacked: boolean): UnpackedLayer => ({ digest: layer.digest, diffID: image.diffIds[i]!, chainID, snapshot: chainID, unpacked });
    committed.push((async () => {
      if (await snapshotter.exists(chainID)) { await below; return result(false); }
      return withFileLock(join(lockDir, `${chainID.replace(':', '-')}.lock`), async () => {
        // Someone else may have finished it while we waited for the lock.
        if (await snapshotter.exists(chainID)) { await below; return result(false); }
        const tmp = await slots.run(() => extract(snapshotter, layout, layer, image.diffIds[i]!, chainID));
        try {
          await below;
          await commit(snapshotter, tmp, chainID, parent);
        } catch (err) {
          await rm(tmp.dir, { recursive: true, force: true }).catch(() => {});
          throw err;
        }
        return result(true);
      }, { timeoutMs: 60 * 60 * 1000 });
    })());
  }
  // Report in order; a failure in any layer fails the unpack (after the others settled).
  const settled = await Promise.allSettled(committed);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const out = settled.map((r) => (r as PromiseFulfilledResult<UnpackedLayer>).value);
  for (const l of out) opts.onLayer?.(l);
  return out;
}

class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

interface Extracted { dir: string; whiteoutFormat: 'chardev' | 'xattr'; digest: string; diffId: string }

async function extract(snapshotter: Snapshotter, layout: ImageLayout, layer: Descriptor, diffId: string, chainID: string): Promise<Extracted> {
  if (!(await layout.hasBlob(layer.digest))) {
    throw new BerthError('E_BLOB_UNKNOWN', `layer ${layer.digest} is not in the image store ${layout.root}: pull the image again`);
  }
  const tmp = await snapshotter.tempDir(`extract-${shortId(chainID)}`);
  try {
    const started = Date.now();
    // Read, inflate and hash on a worker thread while this one writes files.
    const res = await applyLayerFile(layout.blobPath(layer.digest), join(tmp, 'fs'), { mediaType: layer.mediaType, diffId, label: `layer ${layer.digest}` });
    log.debug(`applied layer ${shortId(layer.digest)}`, { entries: res.entries, bytes: res.size, ms: Date.now() - started });
    return { dir: tmp, whiteoutFormat: res.whiteoutFormat, digest: layer.digest, diffId };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
}

/** Only now, with the diffID matched and the parent committed, does the layer become a snapshot. */
async function commit(snapshotter: Snapshotter, x: Extracted, chainID: string, parent: string | undefined): Promise<void> {
  await snapshotter.commitDirectory(x.dir, chainID, parent, {
    labels: { 'berth.layer.digest': x.digest, 'berth.layer.diffID': x.diffId },
    ...(x.whiteoutFormat === 'xattr' ? { whiteouts: 'xattr' as const } : {}),
  });
}

export interface DiffResult {
  mediaType: string;
  digest: string;
  diffID: string;
  size: number;
}

/**
 * The changes of an active snapshot as a layer blob in the image store: the
 * upper directory walked into a tar, gzip-compressed, both hashed on the way
 * (digest of the blob, diffID of the tar), then ingested and verified.
 */
export async function diffSnapshot(snapshotter: Snapshotter, layout: ImageLayout, key: string, opts: { compression?: 'gzip' | 'none' } = {}): Promise<DiffResult> {
  const info = await snapshotter.stat(key);
  if (info.kind !== 'active') throw new BerthError('E_SNAPSHOT_KIND', `snapshot "${key}" is ${info.kind}: diff takes an active snapshot`);
  await layout.init();
  const compression = opts.compression ?? 'gzip';
  const tarDigest = new Digester('sha256');
  const blobDigest = new Digester('sha256');
  const tmp = join(layout.ingestDir, `diff-${process.pid}-${Date.now()}`);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    const tar = Readable.from((async function* () {
      for await (const chunk of diffTar(snapshotter.fsDir(info))) {
        tarDigest.update(chunk);
        yield chunk;
      }
    })());
    const sink = async (src: AsyncIterable<Buffer>): Promise<void> => {
      for await (const chunk of src) {
        blobDigest.update(chunk);
        await fh.write(chunk);
      }
    };
    if (compression === 'gzip') await pipeline(tar, createGzip({ level: 6 }), sink);
    else await pipeline(tar, sink);
    await fh.close();
    const digest = blobDigest.digest();
    const writer = await layout.ingest({ digest, size: blobDigest.size });
    try {
      for await (const chunk of createReadStream(tmp) as AsyncIterable<Buffer>) await writer.write(chunk);
      await writer.commit();
    } catch (err) {
      await writer.abort();
      throw err;
    }
    return { mediaType: compression === 'gzip' ? MediaType.OciLayerGzip : MediaType.OciLayer, digest, diffID: tarDigest.digest(), size: blobDigest.size };
  } finally {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
  }
}
