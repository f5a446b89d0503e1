import { BerthCommand, Command, Option, t } from '@berth/cli-kit';
import { diffSnapshot } from '@berth/snapshots';
import { openStores } from '../common.ts';

export class DiffCommand extends BerthCommand {
  static override paths = [['diff']];
  static override usage = Command.Usage({
    description: 'Write the changes of an active snapshot as a layer blob into the image store',
    details: `
      The layer is a tar of what the snapshot changed against its parent, deletions as whiteouts (.wh.NAME, .wh..wh..opq), gzip-compressed unless --compression none. It is written into ROOT/images as a verified blob; its digest and diffID are printed.
    `,
    examples: [['Diff ctr1', '$0 diff ctr1']],
  });
  static override explain = `
On overlayfs the upper directory of an active snapshot is exactly its
changes: new and modified files, 0/0 character devices for deleted names,
trusted.overlay.opaque=y on directories that replaced a lower one. diff walks
it in sorted order and writes the OCI layer form (image-spec layer.md,
"Whiteouts"), hashing the tar (diffID) and the compressed blob (digest), then
ingests the blob into the OCI image layout (verified, fsynced, renamed).
`;
  key = Option.String({ name: 'KEY' });
  compression = Option.String('--compression', 'gzip', { description: 'gzip or none', validator: t.isEnum(['gzip', 'none'] as const) });
  async perform(): Promise<unknown> {
    const stores = openStores(this.dataRoot);
    const res = await diffSnapshot(stores.snapshotter, stores.layout, this.key, { compression: this.compression as 'gzip' | 'none' });
    return { kind: 'layer', snapshot: this.key, store: stores.layout.root, ...res };
  }
}
