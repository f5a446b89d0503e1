import { inBerthUserNamespace, reexecInUserNamespace, reportError, rootlessPlan, runMain } from '@berth/cli-kit';
import { GcCommand } from './commands/gc.ts';

// Rootless: unpacked layers hold files owned by the user's subordinate range,
// which only the user's namespace may remove; sweep from inside it, as
// berth-store unpacks from inside it.
const args = process.argv.slice(2);
if (!inBerthUserNamespace() && !args.some((a) => a === '-h' || a === '--help' || a === '--version')) {
  try {
    const plan = rootlessPlan();
    if (plan) reexecInUserNamespace(plan);
  } catch (err) {
    process.exit(reportError(err));
  }
}

void runMain([GcCommand], { binaryName: 'berth-gc', binaryLabel: 'berth-gc: garbage collection of images, layers and snapshots that nothing uses' });
