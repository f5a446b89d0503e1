import { runMain } from '@berth/cli-kit';
import { EventsCommand } from './commands/events.ts';
import { InspectCommand } from './commands/inspect.ts';
import { RulesCommand, UnwatchCommand, WatchCommand } from './commands/watch.ts';

void runMain([InspectCommand, EventsCommand, WatchCommand, UnwatchCommand, RulesCommand], {
  binaryName: 'berth-audit',
  binaryLabel: 'berth-audit: what the kernel says about a container, and who started it',
});
