import { runMain } from '@berth/cli-kit';
import { BuildCommand } from './commands/build.ts';
import { PushCommand } from './commands/push.ts';
import { TagCommand } from './commands/tag.ts';

void runMain([BuildCommand, TagCommand, PushCommand], { binaryName: 'berth-build', binaryLabel: 'berth-build: build images from a Containerfile, tag and push them' });
