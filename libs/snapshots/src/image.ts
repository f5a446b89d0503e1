import { BerthError } from '@berth/cli-kit';
import { ImageLayout } from '@berth/content';
import {
  hostPlatform, manifestKind, normalizeReference, platformMatches, validateConfig, validateIndex, validateManifest,
  type Descriptor, type ImageConfig, type ImageManifest,
} from '@berth/oci-spec';

/** An image in the store, read and checked: what unpack and prepare need. */
export interface ResolvedImage {
  reference: string | undefined;
  store: string;
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  diffIds: string[];
  manifestDoc: ImageManifest;
  configDoc: ImageConfig;
}

/** What berth-pull prints and `-` reads from stdin. */
export interface ImageDocument {
  kind: 'image';
  reference?: string;
  store?: string;
  manifest: Descriptor;
  config?: Descriptor;
  layers?: Descriptor[];
}

/**
 * The names a user may type for an image, most specific first: as given,
 * then normalized the way berth-pull records it (docker.io/library/busybox:latest).
 */
export function candidateNames(name: string): string[] {
  const out = [name];
  try { out.push(normalizeReference(name)); } catch { /* not a reference: maybe an id prefix */ }
  if (!name.includes(':') && !name.includes('@')) out.push(`${name}:latest`);
  return [...new Set(out)];
}

/** Find an image by reference, id prefix, or a stage document, and read its manifest and config. */
export async function resolveImage(layout: ImageLayout, what: string | ImageDocument): Promise<ResolvedImage> {
  let reference: string | undefined;
  let desc: Descriptor;
  if (typeof what === 'string') {
    const hit = await layout.resolve(what, candidateNames(what));
    if (!hit) throw new BerthError('E_NO_IMAGE', `image "${what}" is not in the image store ${layout.root} (tried ${candidateNames(what).join(', ')})`);
    reference = hit.ref;
    desc = hit.descriptor;
  } else {
    reference = what.reference;
    desc = what.manifest;
  }
  if (manifestKind(desc.mediaType) === 'index') {
    const index = validateIndex(await layout.readJsonBlob(desc.digest, 'index'), `index ${desc.digest}`);
    const want = hostPlatform();
    const pick = index.manifests.find((m) => manifestKind(m.mediaType) === 'manifest' && platformMatches(m.platform, want));
    if (!pick) throw new BerthError('E_NO_PLATFORM', `image ${reference ?? desc.digest} has no manifest for ${want.os}/${want.architecture}`);
    desc = pick;
  }
  const manifestDoc = validateManifest(await layout.readJsonBlob(desc.digest, 'manifest'), `manifest ${desc.digest}`);
  const configDoc = validateConfig(await layout.readJsonBlob(manifestDoc.config.digest, 'config'), `config ${manifestDoc.config.digest}`);
  const diffIds = configDoc.rootfs.diff_ids;
  if (diffIds.length !== manifestDoc.layers.length) {
    throw new BerthError('E_MANIFEST', `image ${reference ?? desc.digest}: the manifest has ${manifestDoc.layers.length} layers but the config lists ${diffIds.length} diffIDs`);
  }
  return {
    reference, store: layout.root, manifest: desc, config: manifestDoc.config, layers: manifestDoc.layers, diffIds, manifestDoc, configDoc,
  };
}
