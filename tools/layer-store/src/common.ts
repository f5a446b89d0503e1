import { BerthError, imageStorePath, readStdinDocument } from '@berth/cli-kit';
import { ImageLayout } from '@berth/content';
import type { Descriptor } from '@berth/oci-spec';
import { resolveImage, Snapshotter, type ImageDocument, type Mount, type ResolvedImage } from '@berth/snapshots';

export interface Stores {
  dataRoot: string;
  layout: ImageLayout;
  snapshotter: Snapshotter;
}

export function openStores(dataRoot: string): Stores {
  return { dataRoot, layout: new ImageLayout(imageStorePath(dataRoot)), snapshotter: new Snapshotter(dataRoot) };
}

/** IMAGE as typed (reference, id prefix) or `-`: berth-pull's document on stdin. */
export async function imageArgument(stores: Stores, arg: string): Promise<ResolvedImage> {
  if (!(await stores.layout.exists())) throw new BerthError('E_NO_STORE', `no image store at ${stores.layout.root}: pull an image first (berth-pull)`);
  if (arg !== '-') return resolveImage(stores.layout, arg);
  const doc = (await readStdinDocument('image')) as unknown as ImageDocument;
  if (typeof doc.manifest !== 'object' || doc.manifest === null || typeof doc.manifest.digest !== 'string') {
    throw new BerthError('E_INPUT', 'the image document on stdin has no "manifest" descriptor');
  }
  if (doc.store !== undefined && doc.store !== stores.layout.root) {
    throw new BerthError('E_INPUT', `the image on stdin lives in ${doc.store}, but this berth-store uses ${stores.layout.root}: pass --root to match`);
  }
  return resolveImage(stores.layout, doc);
}

/** The image a snapshot was prepared from, kept in its labels so `mounts` can say it again. */
export function imageLabels(image: ResolvedImage): Record<string, string> {
  return {
    'berth.image.reference': image.reference ?? '',
    'berth.image.manifest': JSON.stringify(image.manifest),
    'berth.image.config': JSON.stringify(image.config),
  };
}

export interface RootfsDocument {
  kind: 'rootfs';
  snapshot: string;
  snapshotKind: string;
  root: string;
  store: string;
  mounts: Mount[];
  image?: { reference: string | undefined; manifest: Descriptor; config: Descriptor };
  whiteouts: 'chardev' | 'xattr';
}

export async function rootfsDocument(stores: Stores, key: string): Promise<RootfsDocument> {
  const info = await stores.snapshotter.stat(key);
  const mounts = await stores.snapshotter.mounts(key);
  const labels = info.labels ?? {};
  const doc: RootfsDocument = {
    kind: 'rootfs',
    snapshot: key,
    snapshotKind: info.kind,
    root: stores.dataRoot,
    store: stores.layout.root,
    mounts,
    whiteouts: mounts.some((m) => m.options.includes('userxattr')) ? 'xattr' : 'chardev',
  };
  if (labels['berth.image.manifest']) {
    doc.image = {
      reference: labels['berth.image.reference'] || undefined,
      manifest: JSON.parse(labels['berth.image.manifest']) as Descriptor,
      config: JSON.parse(labels['berth.image.config']!) as Descriptor,
    };
  }
  return doc;
}
