import { runMain } from '@berth/cli-kit';
import { GcCommand } from './commands/gc.ts';

await runMain([GcCommand], { binaryName: 'berth-gc', binaryLabel: 'berth-gc: garbage collection of images, layers and snapshots that nothing uses' });
