import { BerthError } from '@berth/cli-kit';

/**
 * berth's exit codes are podman's (DESIGN.md): 125 when berth itself fails
 * (a missing container, a bad flag), 126 when the container's command exists
 * but cannot be run, 127 when it is not found; otherwise the container's own
 * status. Scripts depend on them: the guide's Makefile treats 125 from
 * `stop` as "no such container".
 */
export const ExitCode = { engine: 125, cannotInvoke: 126, notFound: 127 } as const;

export class EngineError extends BerthError {
  constructor(code: string, message: string, opts: { exitCode?: number; cause?: unknown } = {}) {
    super(code, message, { exitCode: opts.exitCode ?? ExitCode.engine, cause: opts.cause });
    this.name = 'EngineError';
  }
}

/** podman's wording, so scripts that grep for it keep working. */
export function noSuchContainer(nameOrId: string): EngineError {
  return new EngineError('E_NO_CONTAINER', `no container with name or ID "${nameOrId}" found: no such container`);
}

export function noSuchImage(nameOrId: string): EngineError {
  return new EngineError('E_NO_IMAGE', `${nameOrId}: image not known`);
}
