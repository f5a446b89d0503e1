import { stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError, imageStorePath, isErrno, log } from '@berth/cli-kit';
import { ImageLayout, listLeases, pidAlive, withFileLock, withLeaseLock } from '@berth/content';
import { idOf, kindOf, mark, planCollection, selectForUntag, type ImageFacts, type Selection } from '@berth/gc';
import { RefNameAnnotation } from '@berth/oci-spec';
import { imageFacts, indexEntries, removeBlob, scanBlobs, staleTemps, type BlobCache, type IndexEntry } from './image-store.ts';
import { readLayerStore } from './layer-store.ts';

export interface GcOptions {
  /** the berth data root (ROOT/images is the image store) */
  root: string;
  dryRun: boolean;
  selection: Omit<Selection, 'inUse'>;
  /** content younger than this is never swept (a write in flight) */
  graceMs: number;
  /** temp files of writes older than this are stale */
  tempMaxAgeMs: number;
}

export interface GcReport {
  kind: 'gc-report';
  root: string;
  dryRun: boolean;
  untagged: string[];
  blobsRemoved: number;
  layersRemoved: number;
  snapshotsRemoved: number;
  tempFilesRemoved: number;
  bytesReclaimed: number;
}

function entryName(e: IndexEntry): string {
  return e.ref ?? e.digest;
}

/** An index.json entry is its name and the digest it points to. */
function entryKey(e: IndexEntry): string {
  return `${e.ref ?? ''}@${e.digest}`;
}

/**
 * One GC run:
 * 1. select the images the filters match and untag them (index.json is
 *    rewritten atomically under its lock, before any blob goes, so the index
 *    never names a missing blob);
 * 2. under the lease lock and the index lock, read the index, the leases and
 *    the stores, mark, and remove the garbage referrers first;
 * 3. remove stale temp files of dead writes.
 */
export async function runGc(opts: GcOptions): Promise<GcReport> {
  try {
    await stat(opts.root);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new BerthError('E_NO_STORE', `no berth data root at ${opts.root} (stat: ENOENT)`);
    throw err;
  }
  const layout = new ImageLayout(imageStorePath(opts.root));
  const hasImages = await layout.exists();
  const report: GcReport = {
    kind: 'gc-report', root: opts.root, dryRun: opts.dryRun, untagged: [],
    blobsRemoved: 0, layersRemoved: 0, snapshotsRemoved: 0, tempFilesRemoved: 0, bytesReclaimed: 0,
  };

  const cache: BlobCache = new Map();
  // 1. Untag.
  let dryRunEntries: IndexEntry[] | undefined;
  const untag = async () => {
    const entries = indexEntries(await layout.readIndex());
    const blobs = new Map((await scanBlobs(layout, cache)).map((b) => [b.digest, b]));
    const leases = await listLeases(opts.root);
    // Images a lease names or a container (an active snapshot or view) was
    // made from are never untagged, as podman's prune spares images in use.
    const inUse = new Set(leases.flatMap((l) => l.resources.filter((r) => r.type === 'image').map((r) => r.id)));
    for (const d of (await readLayerStore(opts.root)).imagesInUse()) inUse.add(d);
    const chosen: ImageFacts[] = selectForUntag(imageFacts(entries, blobs), { ...opts.selection, inUse });
    const doomed = new Set(chosen.map((c) => entryKey(c)));
    if (opts.dryRun) {
      dryRunEntries = entries.filter((e) => !doomed.has(entryKey(e)));
      report.untagged = chosen.map(entryName);
    } else if (doomed.size > 0) {
      await layout.updateIndex((index) => {
        // Re-checked under the lock: an entry re-pointed since we looked (a
        // new pull of the same tag) is a different image and stays.
        const manifests = index.manifests.filter((d) => {
          const e: IndexEntry = { ref: d.annotations?.[RefNameAnnotation], digest: d.digest };
          const drop = doomed.has(entryKey(e));
          if (drop) report.untagged.push(entryName(e));
          return !drop;
        });
        return { ...index, manifests };
      });
    }
    for (const name of report.untagged) log.debug(`${opts.dryRun ? 'would untag' : 'untagged'} ${name}`);
    if (report.untagged.length > 0) log.info(`${opts.dryRun ? 'would untag' : 'untagged'} ${report.untagged.length} images`);
  };
  if (hasImages && (opts.selection.all || opts.selection.filters.length > 0)) {
    // Under the lease lock, so an image lease is either seen here or taken
    // after the untag.
    if (opts.dryRun) await untag();
    else await withLeaseLock(opts.root, untag);
  }

  // 2. Mark and sweep. The lease lock makes a lease either visible to this
  // run or taken after it; the index lock keeps tags from landing between
  // the mark and the last removal (a tag waits, then finds its blobs either
  // kept or gone, never half).
  const sweep = async () => {
    const entries = dryRunEntries ?? (hasImages ? indexEntries(await layout.readIndex()) : []);
    const blobs = hasImages ? await scanBlobs(layout, cache) : [];
    const leases = await listLeases(opts.root, { removeStale: !opts.dryRun });
    const layerStore = await readLayerStore(opts.root);
    const now = Date.now();
    const plan = planCollection({
      entries, blobs, layers: layerStore.layers, snapshots: layerStore.snapshots,
      leases: leases.map((l) => ({ id: l.id, resources: l.resources })), now, graceMs: opts.graceMs,
    });
    log.debug(`marked ${plan.marked.size} nodes from ${plan.roots.length} roots; ${plan.garbage.length} to remove`);
    if (plan.garbage.length > 0) log.info(`${opts.dryRun ? 'would remove' : 'removing'} ${plan.garbage.length} unreferenced objects`);
    // A node that turns out to be in use at removal time (touched since the
    // scan, or given a child snapshot) stays, and so does all it refers to:
    // removing its config or parent next would break it.
    const kept = new Set<string>();
    const keep = (n: string) => { for (const m of mark(plan.graph, [n])) kept.add(m); };
    for (const n of plan.garbage) {
      const kind = kindOf(n);
      const id = idOf(n);
      if (kept.has(n)) continue;
      if (!opts.dryRun) {
        if (kind === 'blob') {
          if (!(await removeBlob(layout, id, now - opts.graceMs))) { keep(n); continue; }
        } else if (kind === 'layer' || kind === 'snapshot') {
          const bytes = await layerStore.usage(id);
          if (!(await (kind === 'layer' ? layerStore.removeLayer(id) : layerStore.removeSnapshot(id)))) { keep(n); continue; }
          plan.sizes.set(n, bytes);
        } else continue;
      } else if (kind === 'layer' || kind === 'snapshot') plan.sizes.set(n, await layerStore.usage(id));
      if (kind === 'blob') report.blobsRemoved++;
      else if (kind === 'layer') report.layersRemoved++;
      else if (kind === 'snapshot') report.snapshotsRemoved++;
      report.bytesReclaimed += plan.sizes.get(n) ?? 0;
      log.debug(`${opts.dryRun ? 'would remove' : 'removed'} ${n}`);
    }
  };
  if (opts.dryRun) await sweep();
  else if (hasImages) await withLeaseLock(opts.root, () => withFileLock(join(layout.root, 'index.json.lock'), sweep));
  else await withLeaseLock(opts.root, sweep);

  // 3. Temp files of writes that died, and snapshot directories no metadata
  // names (a crash between the metadata write and the rm).
  const layerStore = await readLayerStore(opts.root);
  if (opts.dryRun) report.tempFilesRemoved += (await layerStore.orphans()).length;
  else report.tempFilesRemoved += (await layerStore.removeOrphans()) + (await layerStore.cleanTemp());
  if (hasImages) {
    for (const t of await staleTemps(layout, Date.now(), opts.tempMaxAgeMs, pidAlive)) {
      if (!opts.dryRun) {
        try { await unlink(t.path); } catch (err) { if (isErrno(err, 'ENOENT')) continue; throw err; }
      }
      report.tempFilesRemoved++;
      report.bytesReclaimed += t.size;
    }
  }
  return report;
}
