import { imageStorePath, log } from '@berth/cli-kit';
import { ImageLayout } from '@berth/content';
import type { Descriptor, ImageConfig, Platform } from '@berth/oci-spec';
import { findImage, localReference } from './names.ts';
import type { TagResult } from './types.ts';

/**
 * `podman tag SRC DEST...`: more names for one manifest. In an OCI image
 * layout a name is an entry of index.json carrying the
 * org.opencontainers.image.ref.name annotation, so a tag is one atomic
 * rewrite of index.json; no blob is copied. Every name is checked before the
 * first is written, so a bad name leaves the store as it was.
 */
export async function tagImage(dataRoot: string, source: string, targets: string[]): Promise<TagResult> {
  const layout = new ImageLayout(imageStorePath(dataRoot));
  const names = targets.map((t) => localReference(t));
  const hit = await findImage(layout, source);
  const { annotations: _drop, ...desc } = hit.descriptor;
  for (const name of names) {
    await layout.tag(name, desc);
    log.debug(`tagged ${hit.descriptor.digest} as ${name}`);
  }
  return { kind: 'tag', store: layout.root, source: hit.ref ?? hit.descriptor.digest, manifest: desc, tags: names };
}

/**
 * The last step of build, commit and import: point names at a manifest whose
 * blobs are all written. The index entry carries the config's platform. Each
 * name is an entry of index.json (`beforeTag` runs before each, for build's
 * COMMIT lines); with no name the manifest still gets an unnamed entry, or
 * nothing would keep it (podman lists it as <none>).
 */
export async function nameImage(
  layout: ImageLayout, manifest: Descriptor, config: ImageConfig, names: readonly string[], beforeTag: (name: string) => void = () => {},
): Promise<{ desc: Descriptor; platform: Platform }> {
  const platform: Platform = { architecture: config.architecture, os: config.os, ...(config.variant ? { variant: config.variant } : {}) };
  const desc: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, platform };
  for (const name of names) {
    beforeTag(name);
    await layout.tag(name, desc);
  }
  if (names.length === 0) {
    await layout.updateIndex((index) => (index.manifests.some((m) => m.digest === desc.digest) ? index : { ...index, manifests: [...index.manifests, desc] }));
  }
  return { desc, platform };
}
