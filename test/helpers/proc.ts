import { readFileSync } from 'node:fs';

/**
 * A process that exists and is not a zombie: a zombie listens on nothing and
 * holds no namespace, and a PID 1 that does not reap leaves those behind.
 */
export function liveProcess(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
