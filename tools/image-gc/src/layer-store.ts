import { lstat, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError, log } from '@berth/cli-kit';
import { isDigest } from '@berth/digest';
import type { LayerFacts, SnapshotFacts } from '@berth/gc';
import { Snapshotter, type SnapshotInfo } from '@berth/snapshots';

/**
 * The layer store and snapshotter of berth-store (libs/snapshots), as facts
 * for the GC rules. berth-store keeps extracted image layers as committed
 * snapshots named by their chainID (labelled berth.layer.diffID), containers'
 * rootfs as active snapshots, and everything in ROOT/snapshots/metadata.json.
 * Here a committed snapshot named by a chainID is a *layer* (an image config
 * reaches it through its diff_ids); every other snapshot is a *snapshot*, and
 * one prepared from an image (label berth.image.manifest) refers to that
 * image: a container keeps its image.
 */
export interface LayerStoreView {
  layers: LayerFacts[];
  snapshots: SnapshotFacts[];
  /** directories under ROOT/snapshots no metadata points at (a crash between metadata and rm) */
  orphans(): Promise<string[]>;
  /** bytes a snapshot's own directory holds (walked only for what is removed) */
  usage(name: string): Promise<number>;
  removeLayer(chainId: string): Promise<boolean>;
  removeSnapshot(key: string): Promise<boolean>;
  /** remove the orphan directories, under the snapshotter's lock (a commit renames its directory in before it writes the metadata, under that lock) */
  removeOrphans(): Promise<number>;
  /** manifest digests of the images active snapshots and views were prepared from (containers' images) */
  imagesInUse(): Set<string>;
  /** temp dirs of unpacks whose process died */
  cleanTemp(): Promise<number>;
}

function isLayer(name: string, info: SnapshotInfo): boolean {
  return info.kind === 'committed' && isDigest(name);
}

/** The manifest digest of the image a snapshot was prepared from (berth-store's berth.image.manifest label). */
function imageOf(info: SnapshotInfo): string | undefined {
  const label = info.labels?.['berth.image.manifest'];
  if (!label) return undefined;
  try {
    const desc = JSON.parse(label) as { digest?: unknown };
    return typeof desc.digest === 'string' && isDigest(desc.digest) ? desc.digest : undefined;
  } catch {
    return undefined;
  }
}

export async function readLayerStore(dataRoot: string): Promise<LayerStoreView> {
  const snapshotter = new Snapshotter(dataRoot);
  let exists = true;
  try { await stat(snapshotter.root); } catch { exists = false; }
  const remove = async (name: string): Promise<boolean> => {
    try {
      await snapshotter.remove(name);
      return true;
    } catch (err) {
      // Re-checked by the snapshotter under its lock: a child prepared since
      // we read the metadata (a container started on this layer) keeps it.
      if (err instanceof BerthError && (err.code === 'E_SNAPSHOT_IN_USE' || err.code === 'E_NO_SNAPSHOT')) {
        log.debug(`kept snapshot ${name}: ${err.message}`);
        return false;
      }
      throw err;
    }
  };
  if (!exists) {
    return { layers: [], snapshots: [], orphans: async () => [], usage: async () => 0, removeLayer: remove, removeSnapshot: remove, removeOrphans: async () => 0, imagesInUse: () => new Set(), cleanTemp: async () => 0 };
  }
  const meta = await snapshotter.read();
  const layers: LayerFacts[] = [];
  const snapshots: SnapshotFacts[] = [];
  const layerNames = new Set(Object.entries(meta.snapshots).filter(([n, i]) => isLayer(n, i)).map(([n]) => n));
  for (const [name, info] of Object.entries(meta.snapshots)) {
    const created = Date.parse(info.created);
    const mtimeMs = Number.isNaN(created) ? Date.now() : created;
    const size = 0;
    if (layerNames.has(name)) {
      layers.push({ chainId: name, ...(info.parent ? { parent: info.parent } : {}), size, mtimeMs });
      continue;
    }
    const parentIsLayer = info.parent !== undefined && layerNames.has(info.parent);
    const image = imageOf(info);
    snapshots.push({
      key: name, kind: info.kind, size, mtimeMs,
      ...(image ? { image } : {}),
      ...(info.parent && !parentIsLayer ? { parent: info.parent } : {}),
      ...(parentIsLayer ? { layers: [info.parent!] } : {}),
    });
  }
  return {
    layers, snapshots,
    orphans: () => snapshotter.orphans(),
    usage: async (name) => {
      const info = meta.snapshots[name];
      return info ? dirSize(snapshotter.dir(info)) : 0;
    },
    removeLayer: remove,
    removeSnapshot: remove,
    removeOrphans: () => snapshotter.update(async () => {
      const dirs = await snapshotter.orphans();
      for (const d of dirs) await rm(d, { recursive: true, force: true });
      return dirs.length;
    }),
    imagesInUse: () => new Set(snapshots.filter((x) => x.kind !== 'committed' && x.image).map((x) => x.image!)),
    cleanTemp: () => snapshotter.cleanup(),
  };
}

/** Bytes in blocks under a directory (hardlinks once): what removing it gives back. */
async function dirSize(dir: string): Promise<number> {
  const seen = new Set<string>();
  let size = 0;
  const walk = async (p: string): Promise<void> => {
    let st;
    try { st = await lstat(p); } catch { return; }
    const k = `${st.dev}:${st.ino}`;
    if (seen.has(k)) return;
    seen.add(k);
    size += st.blocks * 512;
    if (st.isDirectory()) {
      let names: string[] = [];
      try { names = await readdir(p); } catch { return; }
      for (const n of names) await walk(join(p, n));
    }
  };
  await walk(dir);
  return size;
}
