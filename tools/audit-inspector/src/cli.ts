import { runMain } from '@berth/cli-kit';

await runMain([], { binaryName: 'berth-audit', binaryLabel: 'berth-audit' });
