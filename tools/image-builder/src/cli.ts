import { runMain } from '@berth/cli-kit';

await runMain([], { binaryName: 'berth-build', binaryLabel: 'berth-build' });
