import { inBerthUserNamespace, reexecInUserNamespace, reportError, rootlessPlan, runMain } from '@berth/cli-kit';
import { UnpackCommand } from './commands/unpack.ts';
import { PrepareCommand } from './commands/prepare.ts';
import { MountsCommand, MountCommand, UnmountCommand } from './commands/mounts.ts';
import { CommitCommand, RemoveCommand, ListCommand, UsageCommand } from './commands/snapshots.ts';
import { DiffCommand } from './commands/diff.ts';

// Rootless: layers are unpacked (and removed) inside the user's namespace, so
// the owners an image gives its files land in the user's subordinate range
// instead of being dropped. Help needs no namespace.
const args = process.argv.slice(2);
if (!inBerthUserNamespace() && args.length > 0 && !args.some((a) => a === '-h' || a === '--help' || a === '--version')) {
  try {
    const plan = rootlessPlan();
    if (plan) reexecInUserNamespace(plan);
  } catch (err) {
    process.exit(reportError(err));
  }
}

void runMain(
  [UnpackCommand, PrepareCommand, MountsCommand, MountCommand, UnmountCommand, CommitCommand, RemoveCommand, ListCommand, UsageCommand, DiffCommand],
  { binaryName: 'berth-store', binaryLabel: 'berth-store: the layer store and overlayfs snapshotter' },
);
