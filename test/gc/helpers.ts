import { readdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { ImageLayout, acquireLease } from '@berth/content';
import { MediaType, manifestKind, type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest } from '@berth/oci-spec';
import { buildLayer, sha256, type BuiltLayer, type LayerEntry } from '../helpers/images.ts';

/** Read every blob a tagged image reaches, verifying each against its digest (readBlob does). */
export async function verifyImage(layoutDir: string, ref: string, listed?: Array<{ ref: string | undefined; descriptor: Descriptor }>): Promise<string[]> {
  const layout = new ImageLayout(layoutDir);
  const hit = (listed ?? await layout.list()).find((e) => e.ref === ref);
  if (!hit) throw new Error(`${ref} is not tagged in ${layoutDir}`);
  const seen: string[] = [];
  const visit = async (digest: string, mediaType: string | undefined): Promise<void> => {
    seen.push(digest);
    const doc = await layout.readJsonBlob(digest, ref) as ImageManifest & ImageIndex;
    if (manifestKind(doc.mediaType ?? mediaType) === 'index') {
      for (const m of doc.manifests) await visit(m.digest, m.mediaType);
      return;
    }
    await layout.readJsonBlob(doc.config.digest, 'config');
    seen.push(doc.config.digest);
    for (const l of doc.layers) { await layout.readBlob(l.digest); seen.push(l.digest); }
  };
  await visit(hit.descriptor.digest, hit.descriptor.mediaType);
  return seen;
}

/** Verify every image index.json names; returns their refs. */
export async function verifyAll(layoutDir: string): Promise<string[]> {
  const listed = await new ImageLayout(layoutDir).list();
  const refs = listed.map((e) => e.ref).filter((r): r is string => r !== undefined);
  for (const ref of refs) await verifyImage(layoutDir, ref, listed);
  return refs;
}

export function blobNames(layoutDir: string): string[] {
  return readdirSync(join(layoutDir, 'blobs', 'sha256')).sort();
}

/** Set every blob's mtime into the past, so the grace period does not protect it. */
export function ageBlobs(layoutDir: string, agoMs = 3_600_000): void {
  const t = new Date(Date.now() - agoMs);
  for (const b of blobNames(layoutDir)) utimesSync(join(layoutDir, 'blobs', 'sha256', b), t, t);
}

/** A small synthetic layer, one file, distinct per `name`. */
export function smallLayer(name: string, bytes = 64): Promise<BuiltLayer> {
  const entries: LayerEntry[] = [{ path: `data/${name}`, content: name.padEnd(bytes, '.') }];
  return buildLayer(entries, 'gzip');
}

/**
 * Write an image the way a pull does it under the lease protocol: every
 * digest is known first, a lease on all of them is taken before any
 * existence check, blobs are written (or found), the tag lands last, and the
 * lease is released after the tag.
 */
export async function leasedWrite(dataRoot: string, ref: string, layers: BuiltLayer[], labels: Record<string, string> = {}): Promise<void> {
  const layout = await new ImageLayout(join(dataRoot, 'images')).init();
  const config: ImageConfig = {
    created: new Date().toISOString(), architecture: 'amd64', os: 'linux',
    config: { Cmd: ['/bin/sh'], Labels: labels },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const manifest: ImageManifest = {
    schemaVersion: 2, mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: sha256(configBytes), size: configBytes.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const lease = await acquireLease(dataRoot, [
    { type: 'blob', id: sha256(manifestBytes) }, { type: 'blob', id: sha256(configBytes) },
    ...layers.map((l) => ({ type: 'blob' as const, id: l.digest })),
  ], { ttlMs: 60_000 });
  try {
    for (const l of layers) await layout.writeBlob(l.blob, l.mediaType);
    await layout.writeBlob(configBytes, MediaType.OciConfig);
    const desc = await layout.writeBlob(manifestBytes, MediaType.OciManifest);
    await layout.tag(ref, desc);
  } finally {
    await lease.release();
  }
}

