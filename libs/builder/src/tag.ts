import { imageStorePath, log } from '@berth/cli-kit';
import { ImageLayout } from '@berth/content';
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
