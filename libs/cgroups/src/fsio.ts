/**
 * Reading and writing cgroup control files. Each write is one write(2) of the
 * whole value on a file opened without O_CREAT: a control file the kernel does
 * not offer is an error (ENOENT) here, never a regular file quietly created.
 * Errors name the value, the file and the errno, as crun's do.
 */
import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';
import { BerthError } from '@berth/cli-kit';

/** Called with every control-file write, in order; tests and --debug use it. */
export type WriteTrace = (file: string, value: string) => void;

function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ?? (e instanceof Error ? e.message : String(err));
}

export class CgroupFileError extends BerthError {
  readonly errno: string;
  readonly file: string;
  constructor(message: string, file: string, errno: string, cause: unknown) {
    super('E_CGROUP', message, { cause });
    this.name = 'CgroupFileError';
    this.file = file;
    this.errno = errno;
  }
}

export function writeControl(file: string, value: string, trace?: WriteTrace): void {
  trace?.(file, value);
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_TRUNC);
  } catch (err) {
    throw new CgroupFileError(`cgroup: write ${value} to ${file}: ${errCode(err)}`, file, errCode(err), err);
  }
  try {
    writeSync(fd, value);
  } catch (err) {
    throw new CgroupFileError(`cgroup: write ${value} to ${file}: ${errCode(err)}`, file, errCode(err), err);
  } finally {
    closeSync(fd);
  }
}

export function readControl(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new CgroupFileError(`cgroup: read ${file}: ${errCode(err)}`, file, errCode(err), err);
  }
}

/** Read a control file, or undefined when the kernel does not offer it. */
export function readControlIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CgroupFileError(`cgroup: read ${file}: ${errCode(err)}`, file, errCode(err), err);
  }
}

/** "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control). */
export function parseFlatKeyed(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** "max" or a number, as pids.max, memory.max and friends print it. */
export function parseLimit(text: string | undefined): number | null {
  if (text === undefined || text === 'max' || text === '') return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}
