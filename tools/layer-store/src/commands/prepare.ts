import { BerthCommand, BerthUsageError, Command, Option } from '@berth/cli-kit';
import { unpackImage } from '@berth/snapshots';
import { imageArgument, imageLabels, openStores, rootfsDocument } from '../common.ts';

export class PrepareCommand extends BerthCommand {
  static override paths = [['prepare']];
  static override usage = Command.Usage({
    description: 'Create an active snapshot (or a read-only view) on an image or a committed snapshot',
    details: `
      With --image the image is unpacked first (if needed) and its top layer is the parent. Prints {"kind":"rootfs", "mounts":[...]} — mounts as data, for berth-bundle or \`berth-store mount\` to perform.
    `,
    examples: [
      ['A writable rootfs for a container', '$0 prepare ctr1 --image docker.io/library/busybox:latest'],
      ['From berth-pull\'s output', 'berth-pull busybox | $0 prepare ctr1 --image -'],
      ['A read-only view of a committed snapshot', '$0 prepare v1 --parent mylayer --readonly'],
    ],
  });
  static override explain = `
containerd's Prepare/View: a new snapshot KEY whose parent is a committed
snapshot. An active snapshot gets ROOT/snapshots/<id>/fs (overlayfs upperdir)
and work (workdir); the lowerdirs are the parent chain, nearest first. A view
has no upper: one layer is a read-only bind mount, several an overlay with
only lowerdirs (read-only by construction). Nothing is mounted here.
`;

  key = Option.String({ name: 'KEY' });
  image = Option.String('--image', { description: 'Image reference, id prefix, or - for berth-pull\'s JSON on stdin' });
  parent = Option.String('--parent', { description: 'A committed snapshot to build on' });
  readonly = Option.Boolean('--readonly', false, { description: 'A view: read-only, cannot be committed' });

  async perform(): Promise<unknown> {
    if ((this.image === undefined) === (this.parent === undefined)) throw new BerthUsageError('prepare needs exactly one of --image REF|- or --parent NAME');
    const stores = openStores(this.dataRoot);
    let parent = this.parent;
    let labels: Record<string, string> | undefined;
    if (this.image !== undefined) {
      const image = await imageArgument(stores, this.image);
      const layers = await unpackImage(stores.snapshotter, stores.layout, image);
      parent = layers.length > 0 ? layers[layers.length - 1]!.chainID : undefined;
      labels = imageLabels(image);
    }
    await stores.snapshotter.prepare(this.key, parent, { readonly: this.readonly, labels });
    return rootfsDocument(stores, this.key);
  }
}
