import { runMain } from '@berth/cli-kit';
import { CheckCommand } from './commands/check.ts';
import { CreateCommand } from './commands/create.ts';
import { InspectCommand } from './commands/inspect.ts';
import { JoinCommand, LeaveCommand } from './commands/join.ts';
import { ListCommand } from './commands/list.ts';
import { PortsCommand } from './commands/ports.ts';
import { RmCommand } from './commands/rm.ts';

void runMain([CreateCommand, ListCommand, InspectCommand, RmCommand, PortsCommand, JoinCommand, LeaveCommand, CheckCommand], { binaryName: 'berth-pod', binaryLabel: 'berth-pod' });
