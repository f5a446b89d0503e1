import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { ImageLayout } from '@berth/content';
import { MediaType, RefNameAnnotation, type Descriptor, type ImageConfig, type Platform } from '@berth/oci-spec';

/**
 * Test images, built by the tests themselves (no internet): a busybox image
 * from Debian's busybox-static, and synthetic layers with every kind of tar
 * entry. Written into an OCI image layout, which skopeo can then push to the
 * test registry.
 */
export interface LayerEntry {
  path: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';
  content?: string | Uint8Array;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  mtime?: Date;
  xattrs?: Record<string, string>;
  devmajor?: number;
  devminor?: number;
}

export type Compression = 'gzip' | 'none' | 'zstd';

export interface BuiltLayer { blob: Buffer; digest: string; diffId: string; mediaType: string; size: number }

const typeMap = { file: 'file', dir: 'directory', symlink: 'symlink', hardlink: 'link', char: 'character-device', block: 'block-device', fifo: 'fifo' } as const;

export async function tarOf(entries: LayerEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    p.on('data', (c: unknown) => chunks.push(c as Buffer));
    p.on('end', () => resolve());
    p.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? (e.content !== undefined ? 'file' : 'dir');
    const pax: Record<string, string> = {};
    for (const [k, v] of Object.entries(e.xattrs ?? {})) pax[`SCHILY.xattr.${k}`] = v;
    const header = {
      name: e.path,
      type: typeMap[type],
      mode: e.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? new Date('2024-01-01T00:00:00Z'),
      linkname: e.linkname,
      devmajor: e.devmajor,
      devminor: e.devminor,
      pax: Object.keys(pax).length > 0 ? pax : undefined,
    };
    await new Promise<void>((resolve, reject) => {
      if (type === 'file') p.entry(header, Buffer.from(e.content ?? ''), (err) => (err ? reject(err) : resolve()));
      else p.entry(header, (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function buildLayer(entries: LayerEntry[], compression: Compression = 'gzip'): Promise<BuiltLayer> {
  const tar = await tarOf(entries);
  return compressLayer(tar, compression);
}

export function compressLayer(tar: Buffer, compression: Compression = 'gzip', format: 'oci' | 'docker' = 'oci'): BuiltLayer {
  const diffId = sha256(tar);
  let blob: Buffer;
  let mediaType: string;
  if (compression === 'gzip') {
    blob = gzipSync(tar, { level: 1 });
    mediaType = format === 'docker' ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip;
  } else if (compression === 'zstd') {
    blob = execFileSync('zstd', ['-q', '-c', '-3'], { input: tar, maxBuffer: 1 << 30 });
    mediaType = MediaType.OciLayerZstd;
  } else {
    blob = tar;
    mediaType = MediaType.OciLayer;
  }
  return { blob, digest: sha256(blob), diffId, mediaType, size: blob.length };
}

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The busybox-static binary plus its applet symlinks and a minimal /etc. */
export function busyboxEntries(): LayerEntry[] {
  const bin = '/bin/busybox';
  if (!existsSync(bin)) throw new Error('busybox-static is not installed (apt-get install busybox-static)');
  const entries: LayerEntry[] = [
    { path: 'bin/', type: 'dir' },
    { path: 'bin/busybox', content: readFileSync(bin), mode: 0o755 },
    { path: 'sbin/', type: 'dir' },
    { path: 'usr/', type: 'dir' },
    { path: 'usr/bin/', type: 'dir' },
    { path: 'usr/sbin/', type: 'dir' },
    { path: 'etc/', type: 'dir' },
    { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\ntux:x:1000:1000:tux:/home/tux:/bin/sh\n' },
    { path: 'etc/group', content: 'root:x:0:\ndaemon:x:1:\nwheel:x:10:tux\naudio:x:29:tux\nnogroup:x:65534:\ntux:x:1000:\n' },
    { path: 'etc/os-release', content: 'NAME="berth busybox"\nID=busybox\nPRETTY_NAME="berth test image (busybox)"\n' },
    { path: 'root/', type: 'dir', mode: 0o700 },
    { path: 'home/', type: 'dir' },
    { path: 'home/tux/', type: 'dir', uid: 1000, gid: 1000 },
    { path: 'tmp/', type: 'dir', mode: 0o1777 },
    { path: 'var/', type: 'dir' },
    { path: 'var/www/', type: 'dir' },
    { path: 'proc/', type: 'dir' },
    { path: 'sys/', type: 'dir' },
    { path: 'dev/', type: 'dir' },
  ];
  const applets = execFileSync(bin, ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) {
    if (a === 'bin/busybox') continue;
    const dir = a.split('/').slice(0, -1).join('/');
    // Relative targets keep the links valid wherever the rootfs is mounted.
    const up = dir.split('/').map(() => '..').join('/');
    entries.push({ path: a, type: 'symlink', linkname: `${up}/bin/busybox` });
  }
  return entries;
}

export interface ImageSpec {
  layers: Array<LayerEntry[] | BuiltLayer>;
  config?: ImageConfig['config'];
  platform?: Platform;
  compression?: Compression;
  format?: 'oci' | 'docker';
  labels?: Record<string, string>;
  created?: string;
}

export interface WrittenImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  diffIds: string[];
}

/** Write an image (config, layers, manifest) into an OCI layout; tag it when ref is given. */
export async function writeImage(layoutDir: string, ref: string | undefined, spec: ImageSpec): Promise<WrittenImage> {
  const layout = await new ImageLayout(layoutDir).init();
  const format = spec.format ?? 'oci';
  const built: BuiltLayer[] = [];
  for (const l of spec.layers) {
    if (Array.isArray(l)) {
      const tar = await tarOf(l);
      built.push(compressLayer(tar, spec.compression ?? 'gzip', format));
    } else built.push(l);
  }
  const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
  const config: ImageConfig = {
    created: spec.created ?? '2024-01-01T00:00:00Z',
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'], ...spec.config, ...(spec.labels ? { Labels: { ...spec.config?.Labels, ...spec.labels } } : {}) },
    rootfs: { type: 'layers', diff_ids: built.map((b) => b.diffId) },
    history: built.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'berth test image builder' })),
  };
  const configDesc = await layout.writeBlob(JSON.stringify(config), format === 'docker' ? MediaType.DockerConfig : MediaType.OciConfig);
  const layers: Descriptor[] = [];
  for (const b of built) {
    layers.push(await layout.writeBlob(b.blob, b.mediaType));
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: format === 'docker' ? MediaType.DockerManifest : MediaType.OciManifest,
    config: configDesc,
    layers,
  };
  const manifestDesc = await layout.writeBlob(JSON.stringify(manifest), manifest.mediaType, { platform });
  if (ref) await layout.tag(ref, manifestDesc);
  return { manifest: manifestDesc, config: configDesc, layers, diffIds: built.map((b) => b.diffId) };
}

/** Write an index over several images (a multi-platform image) and tag it. */
export async function writeIndex(layoutDir: string, ref: string, images: WrittenImage[], format: 'oci' | 'docker' = 'oci'): Promise<Descriptor> {
  const layout = await new ImageLayout(layoutDir).init();
  const index = {
    schemaVersion: 2,
    mediaType: format === 'docker' ? MediaType.DockerManifestList : MediaType.OciIndex,
    manifests: images.map((i) => i.manifest),
  };
  const desc = await layout.writeBlob(JSON.stringify(index), index.mediaType);
  await layout.tag(ref, desc);
  return desc;
}

/** The busybox test image: one layer, Cmd sh. */
export async function writeBusyboxImage(layoutDir: string, ref = 'busybox:latest', extra: Partial<ImageSpec> = {}): Promise<WrittenImage> {
  return writeImage(layoutDir, ref, { layers: [busyboxEntries()], ...extra });
}

export { RefNameAnnotation };
