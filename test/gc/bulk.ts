import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MediaType, RefNameAnnotation, type Descriptor, type ImageConfig, type ImageManifest } from '@berth/oci-spec';
import { sha256, tarOf, compressLayer, type BuiltLayer } from '../helpers/images.ts';

/**
 * A store of many small images, written straight into an OCI image layout
 * (blob files and one index.json, no per-blob fsync: test and benchmark setup
 * only). Image i has a base layer shared by its group of `share` images, a
 * layer of its own, and the label batch=even|odd, so a filter selects half.
 */
export interface BulkOptions { count: number; bases?: number; refPrefix?: string }

export interface BulkImage { ref: string; manifest: Descriptor; batch: 'even' | 'odd' }

export async function writeBulkStore(layoutDir: string, opts: BulkOptions): Promise<BulkImage[]> {
  const blobDir = join(layoutDir, 'blobs', 'sha256');
  mkdirSync(blobDir, { recursive: true });
  mkdirSync(join(layoutDir, 'ingest'), { recursive: true });
  writeFileSync(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const put = (bytes: Buffer | string): string => {
    const digest = sha256(bytes);
    writeFileSync(join(blobDir, digest.slice(7)), bytes);
    return digest;
  };
  const baseCount = opts.bases ?? Math.max(1, Math.ceil(opts.count / 10));
  const bases: BuiltLayer[] = [];
  for (let b = 0; b < baseCount; b++) {
    const l = compressLayer(await tarOf([{ path: 'etc/', type: 'dir' }, { path: 'etc/base', content: `base ${b}\n`.repeat(64) }]), 'gzip');
    put(l.blob);
    bases.push(l);
  }
  const out: BulkImage[] = [];
  const index: Descriptor[] = [];
  for (let i = 0; i < opts.count; i++) {
    const base = bases[i % baseCount]!;
    const own = compressLayer(await tarOf([{ path: 'app/', type: 'dir' }, { path: `app/${i}`, content: `image ${i}\n` }]), 'gzip');
    put(own.blob);
    const batch = i % 2 === 0 ? 'even' : 'odd';
    const config: ImageConfig = {
      created: '2024-01-01T00:00:00Z', architecture: 'amd64', os: 'linux',
      config: { Cmd: ['/bin/sh'], Labels: { batch } },
      rootfs: { type: 'layers', diff_ids: [base.diffId, own.diffId] },
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const manifest: ImageManifest = {
      schemaVersion: 2, mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: put(configBytes), size: configBytes.length },
      layers: [base, own].map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const desc: Descriptor = { mediaType: MediaType.OciManifest, digest: put(manifestBytes), size: manifestBytes.length };
    const ref = `localhost/${opts.refPrefix ?? 'bulk'}/img-${i}:v1`;
    index.push({ ...desc, annotations: { [RefNameAnnotation]: ref } });
    out.push({ ref, manifest: desc, batch });
  }
  writeFileSync(join(layoutDir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: index }));
  return out;
}
