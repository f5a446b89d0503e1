import { Builtins, Cli, UsageError, type BaseContext, type CommandClass } from 'clipanion';
import { BerthCommand, BerthError, flushAndExit, log } from '@berth/cli-kit';
import { splitArgv } from './argv.ts';
import { EngineCommand } from './base.ts';

/**
 * berth's main: like cli-kit's runMain, but with podman's exit codes. Every
 * failure of berth itself, a bad flag included, exits 125; an error that
 * carries its own code (126/127 from the engine) keeps it; a container's
 * status is returned by the command. Errors read as podman's: `Error: ...`.
 */
export async function runBerth(commandsFor: (verb: string | undefined) => Promise<CommandClass<BaseContext>[]>, argv: string[] = process.argv.slice(2)): Promise<never> {
  const cli = new Cli({ binaryName: 'berth', binaryLabel: 'berth', binaryVersion: '0.1.0', enableCapture: false, enableColors: false });
  const split = splitArgv(argv);
  let args = [...split.path, ...split.globals, ...split.args];
  // No verb: the overview, also after global flags (`berth --root DIR --help`).
  const bare = split.path.length === 0 ? split.args : undefined;
  if (bare !== undefined && (bare.length === 0 || (bare.length === 1 && (bare[0] === '--help' || bare[0] === '-h')))) {
    // The verb list without building clipanion's parser for every verb (half of a start).
    process.stdout.write(overview(await commandsFor(undefined)));
    return flushAndExit(0);
  }
  if (bare !== undefined && bare.length === 1 && (bare[0] === '--version' || bare[0] === '-v')) {
    process.stdout.write('berth version 0.1.0\n');
    return flushAndExit(0);
  }
  // clipanion's parser walks a state machine built from every registered
  // option of every command: with all of berth's verbs that alone costs
  // ~200 ms of CPU and garbage. Registering only the verb typed keeps a
  // command's start near bare node; --help and unknown verbs get them all.
  // Only the command module of the verb typed is loaded (command-table.ts); every one for an unknown verb.
  const commands = await commandsFor(split.path.length > 0 ? split.path.join(' ') : undefined);
  const matching = commands.filter((c) => (c.paths ?? []).some((p) => p.length > 0 && p.every((w, i) => args[i] === w)));
  if (matching.length === 0 && split.path.length > 0 && (split.args.includes('--help') || split.args.includes('-h'))) {
    // `berth pod --help`: the group's verbs.
    const group = commands.filter((c) => (c.paths ?? []).some((p) => split.path.every((w, i) => p[i] === w)));
    if (group.length > 0) {
      process.stdout.write(overview(group));
      return flushAndExit(0);
    }
  }
  if (matching.length === 0 && split.path.length > 0) {
    // podman's words for a verb it does not have, rather than clipanion's list of every usage.
    process.stderr.write(`Error: unrecognized command \`berth ${split.path.join(' ')}\`\nTry 'berth --help' for more information\n`);
    return flushAndExit(125);
  }
  for (const c of matching.length > 0 ? matching : commands) cli.register(c);
  if (matching.length > 0 && !matching.some((c) => c.prototype instanceof EngineCommand)) {
    // The builder's verbs (build, tag, push) know --root but not the engine's own globals.
    const kept: string[] = [];
    for (let i = 0; i < split.globals.length; i++) {
      const g = split.globals[i]!;
      const name = g.split('=')[0]!;
      if (name === '--root' || name === '--debug' || name === '--log-format') kept.push(g, ...(g.includes('=') || name === '--debug' ? [] : [split.globals[++i]!]));
      else if (!g.includes('=') && name !== '--debug') i++;
    }
    args = [...split.path, ...kept, ...split.args];
  }
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  const context = { ...Cli.defaultContext };
  let code: number;
  try {
    const command = cli.process(args, context);
    code = await cli.run(command, context);
    // BerthCommand (EngineCommand, and the builder's build/tag/push) keeps a failure for us to report.
    const failure = command instanceof BerthCommand ? command.failure : undefined;
    if (failure !== undefined) code = report(failure);
  } catch (err) {
    code = report(err);
  }
  return flushAndExit(code);
}

function overview(commands: CommandClass<BaseContext>[]): string {
  const rows = commands
    .filter((c) => c.usage !== undefined)
    .map((c) => [`berth ${c.paths![0]!.join(' ')}`, c.usage!.description ?? '']);
  const width = Math.max(...rows.map((r) => r[0]!.length));
  return [
    'berth - podman\'s everyday commands, composed of the berth stages', '',
    'Usage: berth [--root DIR] [--runroot DIR] [--runtime NAME|PATH] COMMAND [OPTIONS]', '',
    ...rows.map(([a, b]) => `  ${a!.padEnd(width)}  ${b}`), '',
    'Every command takes --help for its flags and --explain for the stage pipeline it stands for.', '',
  ].join('\n');
}

function report(err: unknown): number {
  if (err instanceof UsageError || (err as Error)?.name === 'UnknownSyntaxError' || (err as Error)?.name === 'AmbiguousSyntaxError') {
    process.stderr.write(`Error: ${(err as Error).message.split('\n')[0]}\nSee 'berth --help'.\n`);
    return 125;
  }
  const e = err as Error;
  process.stderr.write(`Error: ${e?.message ?? String(err)}\n`);
  if (log.level === 'debug' && e?.stack) log.debug(e.stack);
  if (err instanceof BerthError) return err.exitCode === 1 || err.exitCode === 2 ? 125 : err.exitCode;
  return 125;
}
