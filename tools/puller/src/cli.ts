import { runMain } from '@berth/cli-kit';
import { PullCommand } from './commands/pull.ts';

void runMain([PullCommand], { binaryName: 'berth-pull', binaryLabel: 'berth-pull: pull an image from a registry into an OCI image layout' });
