import { runMain } from '@berth/cli-kit';

await runMain([], { binaryName: 'berth', binaryLabel: 'berth' });
