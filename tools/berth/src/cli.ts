import { commandsFor } from './command-table.ts';
import { runBerth } from './main.ts';

await runBerth(commandsFor);
