import { readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runMain } from '@berth/cli-kit';
import { berthRuntimeVersionText } from '@berth/oci-spec';
import { parseGlobals } from './globals.ts';

const argv = parseGlobals(process.argv.slice(2));

type Loader = () => Promise<Parameters<typeof runMain>[0][number]>;

// Each verb's command class is loaded on demand: in the bundle the other
// verbs' modules are then never evaluated. clipanion compiles one state machine over every
// registered command's options, which costs more than the rest of a `start` or
// `state`: register only the command the verb names (all of them for help and
// unknown verbs).
const commands: Record<string, Loader> = {
  create: async () => (await import('./commands/create.ts')).CreateCommand,
  start: async () => (await import('./commands/start.ts')).StartCommand,
  state: async () => (await import('./commands/state.ts')).StateCommand,
  kill: async () => (await import('./commands/kill.ts')).KillCommand,
  delete: async () => (await import('./commands/delete.ts')).DeleteCommand,
  run: async () => (await import('./commands/run.ts')).RunCommand,
  exec: async () => (await import('./commands/exec.ts')).ExecCommand,
  list: async () => (await import('./commands/list.ts')).ListCommand,
  ps: async () => (await import('./commands/ps.ts')).PsCommand,
  spec: async () => (await import('./commands/spec.ts')).SpecCommand,
  features: async () => (await import('./commands/features.ts')).FeaturesCommand,
  pause: async () => (await import('./commands/pause.ts')).PauseCommand,
  resume: async () => (await import('./commands/pause.ts')).ResumeCommand,
  update: async () => (await import('./commands/update.ts')).UpdateCommand,
  events: async () => (await import('./commands/events.ts')).EventsCommand,
};
commands.ls = commands.list!;

/** This launcher's package.json version (tools/runtime/package.json beside bin/ and dist/). */
function ownVersion(): string {
  try {
    const dir = dirname(dirname(realpathSync(process.argv[1] ?? '')));
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.1.0';
  } catch {
    return '0.1.0';
  }
}

async function main(): Promise<void> {
  const verb = argv[0];
  if (argv.length === 1 && (verb === '--version' || verb === '-v')) {
    // runc's answer, without loading a single verb.
    process.stdout.write(`${berthRuntimeVersionText(ownVersion())}\n`);
    return;
  }
  const one = verb !== undefined && Object.hasOwn(commands, verb) ? commands[verb] : undefined;
  const selected = one ? [await one()] : [...new Set(await Promise.all(Object.values(commands).map((load) => load())))];
  await runMain(selected, { binaryName: 'berth-runtime', binaryLabel: 'berth-runtime: an OCI runtime with runc\'s command line' }, argv);
}

void main();
