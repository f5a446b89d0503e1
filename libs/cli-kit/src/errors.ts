/**
 * Errors with a stable code. Every failure a user can meet is a BerthError:
 * the message names what was wrong (the call, the path, the digest), the code
 * is stable for scripts, and the exit code follows DESIGN.md (1 = the operation
 * failed, 2 = usage). User mistakes on the command line are clipanion
 * UsageErrors and exit 2.
 */
export class BerthError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, opts: { exitCode?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BerthError';
    this.code = code;
    this.exitCode = opts.exitCode ?? 1;
  }
}

/** A usage error raised from inside a command (a flag with a bad value). Exit 2. */
export class BerthUsageError extends BerthError {
  constructor(message: string) {
    super('E_USAGE', message, { exitCode: 2 });
    this.name = 'BerthUsageError';
  }
}

/** Describe a system error the way crun does: `mount overlay on /b/rootfs: EPERM`. */
export function sysErrorMessage(call: string, path: string | undefined, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const what = e?.code ?? (e instanceof Error ? e.message : String(err));
  return path === undefined ? `${call}: ${what}` : `${call} ${path}: ${what}`;
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}
