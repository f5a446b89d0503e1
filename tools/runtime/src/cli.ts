import { runMain } from '@berth/cli-kit';
import { parseGlobals } from './globals.ts';
import { CreateCommand } from './commands/create.ts';
import { DeleteCommand } from './commands/delete.ts';
import { ExecCommand } from './commands/exec.ts';
import { FeaturesCommand } from './commands/features.ts';
import { KillCommand } from './commands/kill.ts';
import { ListCommand } from './commands/list.ts';
import { PauseCommand, ResumeCommand } from './commands/pause.ts';
import { PsCommand } from './commands/ps.ts';
import { RunCommand } from './commands/run.ts';
import { SpecCommand } from './commands/spec.ts';
import { StartCommand } from './commands/start.ts';
import { StateCommand } from './commands/state.ts';

const argv = parseGlobals(process.argv.slice(2));

const all = [CreateCommand, StartCommand, StateCommand, KillCommand, DeleteCommand, RunCommand, ExecCommand, ListCommand,
  PsCommand, SpecCommand, FeaturesCommand, PauseCommand, ResumeCommand];

// clipanion compiles one state machine over every registered command's
// options, which costs more than the rest of a `start` or `state`: register
// only the command the verb names (all of them for help and unknown verbs).
const verb = argv[0];
const one = all.find((c) => c.paths?.some((p) => p[0] === verb));

void runMain(one ? [one] : all, { binaryName: 'berth-runtime', binaryLabel: 'berth-runtime: an OCI runtime with runc\'s command line' }, argv);
