import { BerthError } from '@berth/cli-kit';
import type { ImageLayout } from '@berth/content';
import { formatReference, localReference, parseReference, type Descriptor } from '@berth/oci-spec';

export { localReference };

/** What a user may type for an image in the store, most specific first. */
export function storeCandidates(name: string): string[] {
  const out = [name];
  try { out.push(localReference(name)); } catch { /* an id prefix, not a name */ }
  try { out.push(formatReference(parseReference(name))); } catch { /* idem */ }
  if (!name.includes(':') && !name.includes('@')) out.push(`${name}:latest`);
  return [...new Set(out)];
}

/** Find an image in the store by name or id prefix, or say clearly that it is not there. */
export async function findImage(layout: ImageLayout, name: string): Promise<{ ref: string | undefined; descriptor: Descriptor }> {
  if (!(await layout.exists())) throw new BerthError('E_NO_IMAGE', `image "${name}" not known: there is no image store at ${layout.root} yet`);
  const candidates = storeCandidates(name);
  const hit = await layout.resolve(name, candidates);
  if (!hit) throw new BerthError('E_NO_IMAGE', `image "${name}" is not in the image store ${layout.root} (tried ${candidates.join(', ')})`);
  return hit;
}
