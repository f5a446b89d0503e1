import { Builtins, Cli, Command, Option, UsageError, type BaseContext, type CommandClass } from 'clipanion';
import * as t from 'typanion';
import { BerthError } from './errors.ts';
import { log, type LogFormat } from './log.ts';
import { defaultDataRoot, isRoot, makePrivateRoot } from './paths.ts';

/**
 * The base of every berth command. A subclass implements `perform()` and
 * returns the JSON document for stdout (or undefined when it prints nothing);
 * the base does the rest: --root, --log-format, --debug, --explain, writing the
 * document, and turning errors into stderr lines and exit codes.
 */
export abstract class BerthCommand<C extends BaseContext = BaseContext> extends Command<C> {
  root = Option.String('--root', {
    description: 'Storage root (default /var/lib/berth as root, $XDG_DATA_HOME/berth otherwise; env BERTH_ROOT)',
  });

  logFormat = Option.String('--log-format', 'text', {
    description: 'Format of the logs on stderr: text or json',
    validator: t.isEnum(['text', 'json'] as const),
  });

  debug = Option.Boolean('--debug', false, { description: 'Log debug messages' });

  explainFlag = Option.Boolean('--explain', false, {
    description: 'Say what this command does in kernel and spec terms, and do nothing',
  });

  /** What the command does, in kernel and spec words; printed by --explain. */
  static explain = '';

  /** The storage root this invocation uses. */
  get dataRoot(): string {
    return this.root ?? defaultDataRoot();
  }

  abstract perform(): Promise<unknown>;

  /** Set when perform() threw; runMain reports it on stderr (clipanion would use stdout). */
  failure: unknown = undefined;

  override async catch(error: unknown): Promise<void> {
    this.failure = error;
  }

  /** Apply the logging flags; a tool with flags of its own before the verb (berth-runtime) overrides this. */
  protected configure(): void {
    log.configure({ format: this.logFormat as LogFormat, level: this.debug ? 'debug' : 'info' });
  }

  override async execute(): Promise<number> {
    this.configure();
    if (this.explainFlag) {
      const text = (this.constructor as typeof BerthCommand).explain;
      this.context.stdout.write((text || 'No explanation is written for this command yet.').trim() + '\n');
      return 0;
    }
    // An ordinary user's default store is created private before anything goes in it.
    if (!isRoot() && this.root === undefined && !process.env.BERTH_ROOT) makePrivateRoot(defaultDataRoot());
    const doc = await this.perform();
    if (doc !== undefined) writeDocument(this.context.stdout, doc);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  }
}

export function writeDocument(out: NodeJS.WritableStream | { write(s: string): unknown }, doc: unknown): void {
  out.write(JSON.stringify(doc, null, 2) + '\n');
}

export interface MainOptions {
  binaryName: string;
  binaryLabel: string;
  binaryVersion?: string;
}

/**
 * Parse argv and run the selected command. clipanion would print errors on
 * stdout; here they go to stderr, so stdout stays clean JSON. Exit codes:
 * 0 ok, 1 operation failed, 2 usage error.
 */
export async function runMain(
  commands: CommandClass<BaseContext>[],
  opts: MainOptions,
  argv: string[] = process.argv.slice(2),
): Promise<never> {
  const cli = new Cli({
    binaryName: opts.binaryName,
    binaryLabel: opts.binaryLabel,
    binaryVersion: opts.binaryVersion ?? '0.1.0',
    enableCapture: false,
    enableColors: process.stdout.isTTY === true,
  });
  for (const c of commands) cli.register(c);
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  const context = { ...Cli.defaultContext };
  let command: Command<BaseContext>;
  try {
    command = cli.process(argv, context);
  } catch (err) {
    process.stderr.write(cli.error(err as Error, { colored: false }));
    return flushAndExit(2);
  }
  // cli.run with a processed command handles --help and wires command.cli;
  // failures come back through BerthCommand.catch, not clipanion's stdout.
  let code = await cli.run(command, context);
  const failure = command instanceof BerthCommand ? command.failure : undefined;
  if (failure !== undefined) code = reportError(failure, cli, command);
  return flushAndExit(code);
}

export function reportError(err: unknown, cli?: Cli<BaseContext>, command?: Command<BaseContext>): number {
  if (err instanceof UsageError) {
    process.stderr.write(cli ? cli.error(err, { colored: false, command }) : `Usage Error: ${err.message}\n`);
    return 2;
  }
  if (err instanceof BerthError) {
    log.error(err.message, log.format === 'json' ? { code: err.code } : undefined);
    if (log.level === 'debug' && err.cause) log.debug(`caused by: ${String((err.cause as Error)?.stack ?? err.cause)}`);
    return err.exitCode;
  }
  const e = err as Error;
  log.error(e?.message ?? String(err));
  if (log.level === 'debug' && e?.stack) log.debug(e.stack);
  return 1;
}

/** Flush stdout/stderr before exiting so a piped JSON document is never cut. */
export function flushAndExit(code: number): Promise<never> {
  return new Promise(() => {
    let pending = 2;
    const done = () => { if (--pending === 0) process.exit(code); };
    process.stdout.write('', done);
    process.stderr.write('', done);
  });
}

export { Command, Option, UsageError, t };
