import { realpathSync } from 'node:fs';
import { BerthCommand, Option, log } from '@berth/cli-kit';
import { engineEnv, isRootlessCaller, makePrivateRoots, paths, resolveRuntimePath, rootlessEnv, type EngineEnv } from '@berth/engine';

/**
 * The base of every berth verb. On top of cli-kit's --root, --log-format,
 * --debug and --explain: --runroot (the tmpfs state root, podman's flag) and
 * --runtime (the OCI runtime binary). Output is for people, as podman's is:
 * tables and ids, JSON only with --format json. perform() returns the exit
 * code (a container's status for run, exec, wait) or undefined for 0.
 */
export abstract class EngineCommand extends BerthCommand {
  runRootFlag = Option.String('--runroot', { description: 'Runtime state root (default /run/berth; env BERTH_RUN_ROOT)' });
  runtimeFlag = Option.String('--runtime', { description: 'OCI runtime binary: berth-runtime (default), runc, crun, or a path (env BERTH_RUNTIME)' });
  logLevel = Option.String('--log-level', { description: 'debug, info, warn or error' });

  private envCache: EngineEnv | undefined;

  get env(): EngineEnv {
    if (this.envCache) return this.envCache;
    // An ordinary user: private roots, and storage steps through the user's namespace (@berth/engine's rootless.ts).
    const rootless = isRootlessCaller() ? rootlessEnv([process.execPath, ...process.execArgv, this.self()]) : undefined;
    this.envCache = engineEnv({ root: this.root, runRoot: this.runRootFlag, runtime: this.runtimeFlag, rootless });
    if (rootless) makePrivateRoots(this.envCache);
    return this.envCache;
  }

  /** This berth's launcher, for the monitor's exit command and the storage steps. */
  self(): string {
    return process.argv[1] ? realpathSync(process.argv[1]) : 'berth';
  }

  /** The runtime binary's absolute path, and the --root berth gives it. */
  runtime(): { path: string; root: string } {
    const path = resolveRuntimePath(this.env.runtime, process.argv[1]);
    return { path, root: paths.runtimeRoot(this.env, path) };
  }

  /**
   * The command conmon runs when the container exits: this same berth with
   * the same roots, so cleanup finds the records this invocation wrote.
   */
  exitCommand(id: string): string[] {
    return [process.execPath, this.self(), 'container', 'cleanup', '--root', this.env.dataRoot, '--runroot', this.env.runRoot, id];
  }

  out(text: string): void {
    this.context.stdout.write(text.endsWith('\n') || text === '' ? text : text + '\n');
  }

  /** The stage pipeline this invocation stands for, for --explain; verbs override it. */
  explainPipeline(): string {
    return (this.constructor as typeof BerthCommand).explain.trim() || 'No explanation is written for this command yet.';
  }

  override async execute(): Promise<number> {
    const level = this.logLevel === 'debug' || this.debug ? 'debug' : this.logLevel === 'warn' || this.logLevel === 'error' ? this.logLevel : 'info';
    log.configure({ format: this.logFormat === 'json' ? 'json' : 'text', level });
    if (this.explainFlag) {
      this.out(this.explainPipeline());
      return 0;
    }
    const code = await this.perform();
    return typeof code === 'number' ? code : 0;
  }

  abstract override perform(): Promise<number | undefined>;
}

/** The lifecycle half of the engine, loaded only by verbs that change containers. */
export const lifecycle = () => import('@berth/engine/lifecycle');

/** Quote an argument for a shell command line a user can copy. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * podman's way with several targets: each in turn, going on after one
 * fails; an earlier failure is printed when a later one replaces it, and
 * the last is returned for the command to report (undefined: none failed).
 */
export async function eachTarget<T>(targets: Iterable<T>, fn: (target: T) => Promise<void>): Promise<unknown> {
  let failure: unknown;
  for (const t of targets) {
    try {
      await fn(t);
    } catch (err) {
      if (failure !== undefined) process.stderr.write(`Error: ${(failure as Error).message}\n`);
      failure = err;
    }
  }
  return failure;
}

/**
 * The exit of podman's `volume rm` and `network rm`: 1 when the last failure
 * was a missing object, 2 when it was one in use (printed here, since berth's
 * error reporting turns 1 and 2 into 125); any other failure is thrown.
 */
export function removalExit(failure: unknown, codes: { missing: string; inUse: string }): number | undefined {
  if (failure === undefined) return undefined;
  const code = (failure as { code?: string }).code;
  const exit = code === codes.missing ? 1 : code === codes.inUse ? 2 : undefined;
  if (exit === undefined) throw failure;
  process.stderr.write(`Error: ${(failure as Error).message}\n`);
  return exit;
}
