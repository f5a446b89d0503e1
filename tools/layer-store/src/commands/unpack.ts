import { BerthCommand, Command, Option, log } from '@berth/cli-kit';
import { shortId } from '@berth/digest';
import { unpackImage } from '@berth/snapshots';
import { imageArgument, openStores } from '../common.ts';

export class UnpackCommand extends BerthCommand {
  static override paths = [['unpack']];
  static override usage = Command.Usage({
    description: 'Extract every layer of an image into the layer store (idempotent)',
    details: `
      Each layer becomes a committed snapshot named by its chainID, extracted once and shared by every image that has it. The uncompressed stream is hashed while it is extracted and must match the config's diffID; only then is the layer renamed into place. Two unpacks at once are safe: each layer is locked by its chainID.
    `,
    examples: [
      ['Unpack an image from the store', '$0 unpack docker.io/library/busybox:latest'],
      ['Unpack what berth-pull just pulled', 'berth-pull busybox | $0 unpack -'],
    ],
  });
  static override explain = `
An image is a stack of layers, each a tar of changes (image-spec layer.md).
berth-store unpack reads the manifest and config from ROOT/images, computes
the chainID of each layer (config.md#layer-chainid) and, for each chainID not
in the store yet, streams the blob through gunzip/zstd into a tar reader that
creates files with plain syscalls (open/write, mknod, symlink, link, lchown,
chmod, lsetxattr, utimes) into ROOT/snapshots/tmp/. The bytes are hashed on
the way; a layer whose sha256 differs from its diffID is discarded. Whiteouts
(.wh.NAME, .wh..wh..opq) become overlayfs whiteouts (0/0 char devices,
trusted.overlay.opaque=y). The finished directory is renamed to
ROOT/snapshots/<id>/fs and recorded in ROOT/snapshots/metadata.json.
`;

  image = Option.String({ name: 'IMAGE|-' });

  async perform(): Promise<unknown> {
    const stores = openStores(this.dataRoot);
    const image = await imageArgument(stores, this.image);
    const started = Date.now();
    const layers = await unpackImage(stores.snapshotter, stores.layout, image, {
      onLayer: (l) => log.info(`${l.unpacked ? 'unpacked' : 'already present'}: layer ${shortId(l.digest)} (chainID ${shortId(l.chainID)})`),
    });
    log.debug(`unpack took ${Date.now() - started} ms`);
    return {
      kind: 'layers',
      root: stores.dataRoot,
      store: stores.layout.root,
      image: { reference: image.reference, manifest: image.manifest, config: image.config },
      chainID: layers.length > 0 ? layers[layers.length - 1]!.chainID : undefined,
      layers,
    };
  }
}
