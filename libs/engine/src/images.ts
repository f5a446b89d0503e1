import { ImageLayout } from '@berth/content';
import {
  hostPlatform, manifestKind, normalizeReference, platformMatches, validateConfig, validateIndex, validateManifest,
  RefNameAnnotation, type Descriptor, type ImageConfig, type ImageManifest,
} from '@berth/oci-spec';
import { EngineError } from './errors.ts';
import { paths, type EngineEnv } from './paths.ts';
import { listRecords } from './records.ts';

/**
 * Images as podman lists them. The IMAGE ID is the config digest (podman's
 * and Docker's image id); a name is an index.json ref name of ROOT/images,
 * the OCI layout berth-pull writes and skopeo, umoci and berth-gc read.
 */
export interface ImageSummary {
  /** Full config digest hex (the image id). */
  id: string;
  manifest: Descriptor;
  names: string[];
  created?: string;
  size: number;
  labels: Record<string, string>;
  config: ImageConfig;
  /** The manifest's layer descriptors, bottom first. */
  layers: Descriptor[];
}

export function splitRef(ref: string | undefined): { repository: string; tag: string } {
  if (!ref) return { repository: '<none>', tag: '<none>' };
  const at = ref.indexOf('@');
  const base = at >= 0 ? ref.slice(0, at) : ref;
  const colon = base.lastIndexOf(':');
  if (colon > base.lastIndexOf('/')) return { repository: base.slice(0, colon), tag: base.slice(colon + 1) };
  return { repository: base, tag: at >= 0 ? '<none>' : 'latest' };
}

/** The names a user may type for an image: as given, normalised as berth-pull records it, with :latest. */
export function candidateNames(name: string): string[] {
  const out = [name];
  try { out.push(normalizeReference(name)); } catch { /* not a reference: maybe an id prefix */ }
  const tagged = name.includes(':') || name.includes('@') ? name : `${name}:latest`;
  if (tagged !== name) out.push(tagged);
  // podman's local names: what `berth build -t web` and `berth tag` store as localhost/web:latest.
  if (!name.includes('/') || !name.split('/')[0]!.match(/[.:]|^localhost$/)) out.push(`localhost/${tagged}`);
  return [...new Set(out)];
}

/** An index.json entry read down to its manifest and config (an index resolved to this host's platform). */
async function readImage(layout: ImageLayout, desc: Descriptor): Promise<{ manifest: Descriptor; doc: ImageManifest; config: ImageConfig } | undefined> {
  if (manifestKind(desc.mediaType) === 'index') {
    const index = validateIndex(await layout.readJsonBlob(desc.digest, 'index'), `index ${desc.digest}`);
    const want = hostPlatform();
    const pick = index.manifests.find((m) => manifestKind(m.mediaType) === 'manifest' && platformMatches(m.platform, want));
    if (!pick) return undefined;
    desc = pick;
  }
  const doc = validateManifest(await layout.readJsonBlob(desc.digest, 'manifest'), `manifest ${desc.digest}`);
  const config = validateConfig(await layout.readJsonBlob(doc.config.digest, 'config'), `config ${doc.config.digest}`);
  return { manifest: desc, doc, config };
}

export async function listImages(env: EngineEnv): Promise<ImageSummary[]> {
  const layout = new ImageLayout(paths.images(env));
  if (!(await layout.exists())) return [];
  const byId = new Map<string, ImageSummary>();
  for (const entry of await layout.list()) {
    let img: Awaited<ReturnType<typeof readImage>>;
    try { img = await readImage(layout, entry.descriptor); } catch { continue; }
    if (!img) continue;
    const id = img.doc.config.digest.slice(7);
    const have = byId.get(id);
    if (have) {
      if (entry.ref && !have.names.includes(entry.ref)) have.names.push(entry.ref);
      continue;
    }
    byId.set(id, {
      id, manifest: img.manifest, names: entry.ref ? [entry.ref] : [],
      created: img.config.created,
      size: img.doc.config.size + img.doc.layers.reduce((n, l) => n + l.size, 0),
      labels: img.config.config?.Labels ?? {},
      config: img.config,
      layers: img.doc.layers,
    });
  }
  return [...byId.values()];
}

/** podman images --filter: label=KEY[=VALUE], reference=PATTERN, dangling=true|false, id=PREFIX. */
export function imageFilter(expr: string): (img: ImageSummary) => boolean {
  const eq = expr.indexOf('=');
  if (eq < 0) throw new EngineError('E_USAGE', `invalid filter "${expr}": filters are KEY=VALUE (label=, reference=, dangling=, id=)`);
  const key = expr.slice(0, eq);
  const value = expr.slice(eq + 1);
  switch (key) {
    case 'label': {
      const i = value.indexOf('=');
      const k = i < 0 ? value : value.slice(0, i);
      const v = i < 0 ? undefined : value.slice(i + 1);
      return (img) => k in img.labels && (v === undefined || img.labels[k] === v);
    }
    case 'reference': {
      const re = new RegExp('^' + value.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*') + '$');
      return (img) => img.names.some((n) => re.test(n) || re.test(splitRef(n).repository) || re.test(n.split('/').pop()!) || re.test(splitRef(n.split('/').pop()).repository));
    }
    case 'dangling':
      if (value !== 'true' && value !== 'false') throw new EngineError('E_USAGE', `invalid filter "${expr}": dangling takes true or false`);
      return (img) => (img.names.length === 0) === (value === 'true');
    case 'id':
      return (img) => img.id.startsWith(value.replace(/^sha256:/, ''));
    default:
      throw new EngineError('E_USAGE', `invalid filter "${expr}": unknown key ${key} (label, reference, dangling, id)`);
  }
}

/** Find an image by name (as berth-pull normalises it too) or by a prefix of its id or manifest digest. */
export async function findImage(env: EngineEnv, nameOrId: string): Promise<ImageSummary | undefined> {
  const images = await listImages(env);
  const names = candidateNames(nameOrId);
  for (const n of names) {
    const hit = images.find((i) => i.names.includes(n));
    if (hit) return hit;
  }
  const hex = nameOrId.replace(/^sha256:/, '');
  if (/^[0-9a-f]{3,64}$/.test(hex)) {
    const hits = images.filter((i) => i.id.startsWith(hex) || i.manifest.digest.slice(7).startsWith(hex));
    if (hits.length === 1) return hits[0];
    if (hits.length > 1) throw new EngineError('E_AMBIGUOUS', `image id prefix ${hex} matches ${hits.length} images: give more characters`);
  }
  return undefined;
}

/**
 * rmi: drop the image's names from index.json. Removing the blobs is
 * berth-gc's job (a sweep right after). An image a container was created
 * from is refused unless forced (then the containers go first, by the caller).
 */
export async function untagImage(env: EngineEnv, img: ImageSummary, opts: { force: boolean; byName?: string }): Promise<{ untagged: string[]; users: string[] }> {
  const users = listRecords(env).filter((r) => r.image.id === img.id);
  if (users.length > 0 && !opts.force && (opts.byName === undefined || img.names.length <= 1)) {
    throw new EngineError('E_IMAGE_IN_USE', `image used by ${users[0]!.id}: image is in use by a container: consider listing external containers and force-removing image`);
  }
  const layout = new ImageLayout(paths.images(env));
  // rmi NAME on an image with several names only removes that name, as podman does.
  const names = opts.byName !== undefined && img.names.length > 1 && img.names.includes(opts.byName) ? [opts.byName] : img.names;
  const untagged: string[] = [];
  if (names.length === 0) {
    await layout.updateIndex((index) => ({ ...index, manifests: index.manifests.filter((d) => d.digest !== img.manifest.digest) }));
  }
  for (const n of names) if (await layout.untag(n)) untagged.push(n);
  return { untagged, users: users.map((u) => u.id) };
}

/**
 * podman untag: take names off an image without removing it. Each name is
 * matched as the user may type it (`web` is localhost/web:latest); one name
 * the image does not have fails the call before any is taken, and an image
 * left without names stays in index.json as an unnamed (dangling) entry, so
 * berth-gc keeps it until `image prune`. No names given: all of them.
 */
export async function untagNames(env: EngineEnv, img: ImageSummary, names: string[]): Promise<string[]> {
  const doomed = names.length === 0 ? [...img.names] : names.map((n) => {
    const hit = candidateNames(n).find((c) => img.names.includes(c));
    if (hit === undefined) throw new EngineError('E_NO_TAG', `${candidateNames(n).at(-1)}: tag not known`);
    return hit;
  });
  const layout = new ImageLayout(paths.images(env));
  // What each name pointed at when the image was read: a name retagged to another image since stays there.
  const seen = new Map((await layout.list()).filter((e) => e.ref !== undefined && doomed.includes(e.ref)).map((e) => [e.ref!, e.descriptor.digest]));
  await layout.updateIndex((index) => {
    const named = (d: Descriptor) => d.annotations?.[RefNameAnnotation];
    const taken = index.manifests.filter((d) => { const n = named(d); return n !== undefined && seen.get(n) === d.digest; });
    const manifests = index.manifests.filter((d) => !taken.includes(d));
    // The entry (a manifest, or the index a platform's manifest came from) stays, unnamed.
    const entry = taken[0];
    if (entry && !manifests.some((d) => d.digest === entry.digest)) {
      const { annotations, ...bare } = entry;
      const rest = Object.fromEntries(Object.entries(annotations ?? {}).filter(([k]) => k !== RefNameAnnotation));
      manifests.push(Object.keys(rest).length > 0 ? { ...bare, annotations: rest } : bare);
    }
    return { ...index, manifests };
  });
  return [...new Set(doomed)];
}
