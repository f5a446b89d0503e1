import { BerthError } from '@berth/cli-kit';
import { layerCompression } from '@berth/oci-spec';

export type Compression = 'gzip' | 'zstd' | 'none';

/** Which compression a layer media type declares (OCI image-spec layer.md, and Docker's v2 types). */
export function compressionOf(mediaType: string): Compression {
  const c = layerCompression(mediaType);
  if (c === undefined) throw new BerthError('E_LAYER_FORMAT', `layer media type ${mediaType} is not a tar, tar+gzip or tar+zstd layer`);
  return c;
}

/** What the first bytes say: gzip 1f 8b, zstd frame 28 b5 2f fd; anything else is taken as a plain tar (its header checksum is checked later). */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}
