import { chainIds } from '@berth/digest';
import { RefGraph, collect, node, type NodeId } from './graph.ts';

/**
 * The facts a GC run reads from the stores, as plain data, and the rules that
 * turn them into a reference graph and its roots. The I/O that gathers the
 * facts lives in berth-gc; the rules live here, where they are tested on
 * strings.
 */
export interface BlobFacts {
  digest: string;
  size: number;
  mtimeMs: number;
  /** digests this blob refers to: an index's manifests, a manifest's config, layers and subject */
  refs: string[];
  /** rootfs.diff_ids when the blob is an image config (they name the layers of the layer store) */
  diffIds?: string[];
}

export interface LayerFacts {
  /** the chainID the layer store keys an extracted layer by */
  chainId: string;
  /** the chainID of the layer below, absent for a base layer */
  parent?: string;
  size: number;
  mtimeMs: number;
}

export interface SnapshotFacts {
  key: string;
  kind: 'active' | 'view' | 'committed';
  parent?: string;
  size: number;
  mtimeMs: number;
  /** the chainID whose unpacked form this committed snapshot is (the image refers to it) */
  chainId?: string;
  /** extracted layers this snapshot's mounts read from */
  layers?: string[];
  /** digest of the manifest of the image this snapshot was prepared from (a container's image) */
  image?: string;
}

export interface LeaseFacts {
  id: string;
  resources: Array<{ type: 'blob' | 'layer' | 'snapshot' | 'image'; id: string }>;
}

export interface StoreFacts {
  /** index.json entries (after untagging): each is a root */
  entries: Array<{ ref?: string; digest: string }>;
  blobs: BlobFacts[];
  layers: LayerFacts[];
  snapshots: SnapshotFacts[];
  /** live leases only (expired or dead-owner leases are not roots) */
  leases: LeaseFacts[];
  /** time of the run and the grace period: content younger than that is a root */
  now: number;
  graceMs: number;
}

export interface GcPlan {
  graph: RefGraph;
  roots: NodeId[];
  marked: Set<string>;
  /** nodes to remove, in a safe order (referrers first) */
  garbage: string[];
  /** size in bytes of each node that has one */
  sizes: Map<string, number>;
}

export function entryNode(e: { ref?: string; digest: string }): NodeId {
  return node('image', e.ref ?? `@${e.digest}`);
}

function safeChainIds(diffIds: string[]): string[] {
  try { return chainIds(diffIds); } catch { return []; }
}

/**
 * Edges: image -> manifest or index blob -> manifests -> config and layer
 * blobs; config -> the chainIDs of its diff_ids (the extracted layers an
 * unpack made from it); layer -> parent layer; committed snapshot of a chainID
 * <- that layer; snapshot -> parent snapshot and the layers it mounts.
 * A snapshot prepared from an image refers to that image's manifest, so a
 * container keeps its image's blobs even once the image is untagged.
 * Roots: index.json entries, live leases, active and view snapshots (a
 * container's rootfs), and anything younger than the grace period (a pull
 * writes blobs first and tags last; until the tag lands only its age
 * protects what it wrote).
 */
export function planCollection(f: StoreFacts): GcPlan {
  const g = new RefGraph();
  const sizes = new Map<string, number>();
  const roots: NodeId[] = [];
  const young = (mtimeMs: number) => f.now - mtimeMs < f.graceMs;

  const entryByRef = new Map<string, NodeId>();
  for (const e of f.entries) {
    const n = entryNode(e);
    g.link(n, node('blob', e.digest));
    roots.push(n);
    if (e.ref) entryByRef.set(e.ref, n);
  }
  for (const b of f.blobs) {
    const n = node('blob', b.digest);
    g.add(n);
    sizes.set(n, b.size);
    for (const r of b.refs) g.link(n, node('blob', r));
    if (b.diffIds) for (const c of safeChainIds(b.diffIds)) g.link(n, node('layer', c));
    if (young(b.mtimeMs)) roots.push(n);
  }
  for (const l of f.layers) {
    const n = node('layer', l.chainId);
    g.add(n);
    sizes.set(n, l.size);
    if (l.parent) g.link(n, node('layer', l.parent));
    if (young(l.mtimeMs)) roots.push(n);
  }
  for (const s of f.snapshots) {
    const n = node('snapshot', s.key);
    g.add(n);
    sizes.set(n, s.size);
    if (s.parent) g.link(n, node('snapshot', s.parent));
    for (const l of s.layers ?? []) g.link(n, node('layer', l));
    if (s.image) g.link(n, node('blob', s.image));
    if (s.chainId && s.kind === 'committed') g.link(node('layer', s.chainId), n);
    if (s.kind !== 'committed' || young(s.mtimeMs)) roots.push(n);
  }
  for (const l of f.leases) {
    const n = node('lease', l.id);
    roots.push(n);
    for (const r of l.resources) {
      if (r.type === 'image') {
        // An image lease names a ref or a manifest digest.
        g.link(n, entryByRef.get(r.id) ?? node('blob', r.id));
      } else {
        g.link(n, node(r.type, r.id));
      }
    }
  }
  const { marked, garbage } = collect(g, roots);
  // Only what exists can be removed: a lease or a snapshot may name content
  // that is not (or not yet) there; edges made such names nodes.
  const exists = new Set<string>();
  for (const b of f.blobs) exists.add(node('blob', b.digest));
  for (const l of f.layers) exists.add(node('layer', l.chainId));
  for (const s of f.snapshots) exists.add(node('snapshot', s.key));
  return { graph: g, roots, marked, garbage: garbage.filter((n) => exists.has(n)), sizes };
}
