import { runMain } from '@berth/cli-kit';

await runMain([], { binaryName: 'berth-pod', binaryLabel: 'berth-pod' });
