import { BerthCommand, Command, Option } from '@berth/cli-kit';
import { openStores } from '../common.ts';

export class CommitCommand extends BerthCommand {
  static override paths = [['commit']];
  static override usage = Command.Usage({
    description: 'Turn the active snapshot KEY into the committed snapshot NAME',
    examples: [['Commit ctr1 as mylayer', '$0 commit mylayer ctr1']],
  });
  static override explain = `
containerd's Commit: the upper directory of KEY becomes a read-only layer
named NAME, usable as --parent of new snapshots. Unmount KEY first: the
overlay must not keep writing into a layer others build on.
`;
  name = Option.String({ name: 'NAME' });
  key = Option.String({ name: 'KEY' });
  async perform(): Promise<unknown> {
    const { kind, ...info } = await openStores(this.dataRoot).snapshotter.commit(this.name, this.key);
    return { kind: 'snapshot', name: this.name, snapshotKind: kind, ...info };
  }
}

export class RemoveCommand extends BerthCommand {
  static override paths = [['remove'], ['rm']];
  static override usage = Command.Usage({
    description: 'Remove a snapshot (refused while other snapshots build on it)',
    examples: [['Remove ctr1', '$0 remove ctr1']],
  });
  static override explain = `
containerd's Remove: the metadata entry goes first (atomically), then the
directory. A snapshot that is the parent of another is refused.
`;
  key = Option.String({ name: 'KEY|NAME' });
  async perform(): Promise<unknown> {
    const info = await openStores(this.dataRoot).snapshotter.remove(this.key);
    return { kind: 'removed', snapshot: this.key, id: info.id, snapshotKind: info.kind };
  }
}

export class ListCommand extends BerthCommand {
  static override paths = [['list'], ['ls']];
  static override usage = Command.Usage({
    description: 'List the snapshots (layers are committed snapshots named by chainID)',
    examples: [['List', '$0 list']],
  });
  static override explain = `
containerd's Walk over ROOT/snapshots/metadata.json: every snapshot with its
kind, parent and directory id.
`;
  async perform(): Promise<unknown> {
    const s = openStores(this.dataRoot).snapshotter;
    return { kind: 'snapshots', root: s.root, snapshots: await s.list() };
  }
}

export class UsageCommand extends BerthCommand {
  static override paths = [['usage']];
  static override usage = Command.Usage({
    description: 'Disk use of a snapshot itself (parents excluded): bytes and inodes',
    examples: [['Usage of ctr1', '$0 usage ctr1']],
  });
  static override explain = `
containerd's Usage: walks the snapshot's own directory (the upper directory
of an active snapshot, the layer of a committed one) and sums allocated
blocks (st_blocks * 512) and inodes; hardlinked inodes count once.
`;
  key = Option.String({ name: 'KEY' });
  async perform(): Promise<unknown> {
    const u = await openStores(this.dataRoot).snapshotter.usage(this.key);
    return { kind: 'usage', snapshot: this.key, ...u };
  }
}
