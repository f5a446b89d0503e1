import { runMain } from '@berth/cli-kit';
import { UnpackCommand } from './commands/unpack.ts';
import { PrepareCommand } from './commands/prepare.ts';
import { MountsCommand, MountCommand, UnmountCommand } from './commands/mounts.ts';
import { CommitCommand, RemoveCommand, ListCommand, UsageCommand } from './commands/snapshots.ts';
import { DiffCommand } from './commands/diff.ts';

await runMain(
  [UnpackCommand, PrepareCommand, MountsCommand, MountCommand, UnmountCommand, CommitCommand, RemoveCommand, ListCommand, UsageCommand, DiffCommand],
  { binaryName: 'berth-store', binaryLabel: 'berth-store: the layer store and overlayfs snapshotter' },
);
