import { BerthCommand, Command, Option } from '@berth/cli-kit';
import { mountAll, unmountAll } from '@berth/snapshots';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { openStores, rootfsDocument } from '../common.ts';

export class MountsCommand extends BerthCommand {
  static override paths = [['mounts']];
  static override usage = Command.Usage({
    description: 'Print the mounts of an active snapshot or view, as data',
    examples: [['Mounts of ctr1', '$0 mounts ctr1']],
  });
  static override explain = `
Prints the same {"kind":"rootfs"} document as prepare: the overlay (or bind)
mounts that make the snapshot's filesystem, for someone else to mount.
`;
  key = Option.String({ name: 'KEY' });
  async perform(): Promise<unknown> {
    return rootfsDocument(openStores(this.dataRoot), this.key);
  }
}

export class MountCommand extends BerthCommand {
  static override paths = [['mount']];
  static override usage = Command.Usage({
    description: 'Mount an active snapshot or view on a directory',
    examples: [['Mount ctr1 on /mnt/ctr1', '$0 mount ctr1 /mnt/ctr1']],
  });
  static override explain = `
Performs the snapshot's mounts with mount(8): mount -t overlay overlay
-o lowerdir=...,upperdir=...,workdir=... TARGET (or a bind mount). When the
options would not fit the 4 KiB page mount(2) takes, the paths are made
relative to ROOT/snapshots and mount runs there.
`;
  key = Option.String({ name: 'KEY' });
  target = Option.String({ name: 'TARGET' });
  async perform(): Promise<unknown> {
    const stores = openStores(this.dataRoot);
    const doc = await rootfsDocument(stores, this.key);
    const target = resolve(this.target);
    await mkdir(target, { recursive: true });
    await mountAll(doc.mounts, target);
    return { kind: 'mount', snapshot: this.key, target, mounts: doc.mounts };
  }
}

export class UnmountCommand extends BerthCommand {
  static override paths = [['unmount'], ['umount']];
  static override usage = Command.Usage({
    description: 'Unmount everything mounted at and below a directory',
    examples: [['Unmount /mnt/ctr1', '$0 unmount /mnt/ctr1']],
  });
  static override explain = `
umount(8) of TARGET and any submounts, deepest first, until
/proc/self/mountinfo shows nothing at TARGET. Nothing mounted is not an error.
`;
  target = Option.String({ name: 'TARGET' });
  async perform(): Promise<unknown> {
    const target = resolve(this.target);
    await unmountAll(target);
    return { kind: 'unmount', target };
  }
}
