import { lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { walkUpper } from '@berth/archive';
import { ImageLayout } from '@berth/content';
import { resolveImage, Snapshotter, unpackImage, type SnapshotInfo } from '@berth/snapshots';
import { EngineError } from './errors.ts';
import type { ImageSummary } from './images.ts';
import { paths, type EngineEnv } from './paths.ts';
import type { ContainerRecord } from './records.ts';

/**
 * `berth diff`: what a container's writable layer (or an image's top layer)
 * changed against the layers below it, in podman's words and by podman's
 * rules (podman-diff(1), containers/storage's overlay changes):
 *
 * - every name in the upper directory is a change, in walk order (sorted,
 *   parents first); a whiteout is `D` of the name it deletes, an opaque
 *   directory is `D` of the directory (its new children follow as changes
 *   of their own);
 * - a name that some lower layer also has is `C`, else `A`; a directory in
 *   both whose size, mode and mtime are equal is no change (overlayfs copied
 *   it up only to reach something below it);
 * - an `A` or a `D` marks every ancestor directory not listed yet as `C`,
 *   root-most first, just before itself;
 * - what the runtime and the engine make in every container (/dev, /proc,
 *   /sys, /run, /etc/hosts, /etc/hostname, /etc/resolv.conf, ...) is left
 *   out: RUNTIME_PATHS.
 *
 * The upper directory is read by @berth/archive's walkUpper, the walk
 * berth commit's layer comes from, so diff lists what commit would write.
 */
export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  kind: ChangeKind;
  /** Absolute inside the container: "/etc/passwd". */
  path: string;
}

/** Exactly these paths never show in podman's diff; their children do. */
export const RUNTIME_PATHS: ReadonlySet<string> = new Set([
  '/dev', '/proc', '/sys', '/run', '/run/.containerenv', '/run/notify', '/run/secrets',
  '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/etc/mtab',
]);

/**
 * The changes of `upper` over `lowers` (layer directories, top-most first).
 *
 * A lower layer is looked at only through directories that are real
 * directories in it: podman stat()s FILE in each layer, which follows a
 * symlink a layer holds, even one to an absolute host path; here a name
 * below a symlink does not exist in that layer, and a symlink is a name like
 * any other. The answer differs from podman's only for such layers.
 */
export async function layerChanges(upper: string, lowers: string[]): Promise<Change[]> {
  const out: Change[] = [];
  const listed = new Set<string>();
  // For each directory of the upper: the same directory in each lower layer that has it as a real directory.
  const lowerDirs = new Map<string, string[]>([['', realDirs(lowers)]]);
  for await (const e of walkUpper(upper)) {
    const slash = e.rel.lastIndexOf('/');
    const parentRel = slash < 0 ? '' : e.rel.slice(0, slash);
    const name = slash < 0 ? e.rel : e.rel.slice(slash + 1);
    const path = `/${e.rel}`;
    const below = (lowerDirs.get(parentRel) ?? []).map((d) => join(d, name));
    const isDir = e.st.isDirectory();
    if (isDir) lowerDirs.set(e.rel, realDirs(below));
    let kind: ChangeKind;
    if (e.kind === 'whiteout' || e.kind === 'opaque') kind = 'D';
    else {
      const lower = firstExisting(below);
      if (!lower) kind = 'A';
      else if (isDir && lower.st.isDirectory() && sameDirectory(e.path, lower.path)) continue;
      else kind = 'C';
    }
    if (isDir) listed.add(path);
    if (kind !== 'C') {
      // The parents of an added or deleted name are changed directories, root-most first.
      const parts = e.rel.split('/').slice(0, -1);
      for (let i = 1; i <= parts.length; i++) {
        const dir = `/${parts.slice(0, i).join('/')}`;
        if (listed.has(dir)) continue;
        listed.add(dir);
        out.push({ kind: 'C', path: dir });
      }
    }
    out.push({ kind, path });
  }
  return out.filter((c) => !RUNTIME_PATHS.has(c.path));
}

/** Layers are read with synchronous lstat: a few microseconds each, where an async one waits for the thread pool. */
function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function realDirs(candidates: string[]): string[] {
  return candidates.filter((c) => lstatOrUndefined(c)?.isDirectory());
}

function firstExisting(candidates: string[]): { path: string; st: Stats } | undefined {
  for (const path of candidates) {
    const st = lstatOrUndefined(path);
    if (st) return { path, st };
  }
  return undefined;
}

/**
 * podman's test for a directory overlayfs only copied up: same size, mode
 * and mtime; times equal to the nanosecond, or in the same second when
 * either has no fraction (a time that came out of a tar).
 */
function sameDirectory(upper: string, lower: string): boolean {
  const a = lstatSync(upper, { bigint: true });
  const b = lstatSync(lower, { bigint: true });
  if (a.size !== b.size || a.mode !== b.mode) return false;
  if (a.mtimeNs === b.mtimeNs) return true;
  const sec = 1_000_000_000n;
  return a.mtimeNs / sec === b.mtimeNs / sec && (a.mtimeNs % sec === 0n || b.mtimeNs % sec === 0n);
}

function layerDirs(snapshotter: Snapshotter, chain: SnapshotInfo[]): string[] {
  return chain.map((s) => snapshotter.fsDir(s));
}

/** A container's changes: its active snapshot's upper directory over its image's layers. */
export async function containerChanges(env: EngineEnv, rec: ContainerRecord): Promise<Change[]> {
  const snapshotter = new Snapshotter(env.dataRoot);
  const meta = await snapshotter.read();
  const info = meta.snapshots[rec.snapshot];
  if (!info) throw new EngineError('E_NO_SNAPSHOT', `container ${rec.name}: its rootfs snapshot "${rec.snapshot}" is missing from ${snapshotter.root}`);
  return layerChanges(snapshotter.fsDir(info), layerDirs(snapshotter, snapshotter.chain(meta, info.parent)));
}

/**
 * An image's changes: its top layer against the layers below it, as podman
 * shows them (an image of one layer: everything is added). The layers are
 * unpacked first if no container has needed them yet, as `berth run` would.
 */
export async function imageChanges(env: EngineEnv, image: ImageSummary): Promise<Change[]> {
  if (image.layers.length === 0) return [];
  const layout = new ImageLayout(paths.images(env));
  const resolved = await resolveImage(layout, { kind: 'image', manifest: image.manifest });
  const snapshotter = new Snapshotter(env.dataRoot);
  const top = (await unpackImage(snapshotter, layout, resolved)).at(-1)!;
  const meta = await snapshotter.read();
  const info = meta.snapshots[top.chainID];
  if (!info) throw new EngineError('E_NO_SNAPSHOT', `image ${image.id.slice(0, 12)}: its top layer ${top.chainID} was unpacked but is not in ${snapshotter.root} (removed by berth-gc meanwhile?); run the command again`);
  return layerChanges(snapshotter.fsDir(info), layerDirs(snapshotter, snapshotter.chain(meta, info.parent)));
}

/** podman's --format json: the three lists, each left out when empty, indented as podman indents. */
export function changesJson(changes: Change[]): string {
  const doc: { changed?: string[]; added?: string[]; deleted?: string[] } = {};
  for (const [key, kind] of [['changed', 'C'], ['added', 'A'], ['deleted', 'D']] as const) {
    const list = changes.filter((c) => c.kind === kind).map((c) => c.path);
    if (list.length > 0) doc[key] = list;
  }
  return JSON.stringify(doc, null, 5);
}

/** The text form: one `K /path` line each. */
export function changesText(changes: Change[]): string {
  return changes.map((c) => `${c.kind} ${c.path}`).join('\n');
}
