import { runMain } from '@berth/cli-kit';
import { BundleCommand } from './commands/bundle.ts';

await runMain([BundleCommand], { binaryName: 'berth-bundle', binaryLabel: 'berth-bundle: generate an OCI runtime bundle from a rootfs and an image config' });
