import { log } from '@berth/cli-kit';
import { readFileSync } from 'node:fs';

/**
 * Field 22 of /proc/PID/stat: when the process started, in clock ticks since
 * boot. A pid plus its start time names one process for good; a pid alone may
 * have been reused by the time someone asks.
 */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

export function processAlive(pid: number | undefined, startTime?: string): boolean {
  if (pid === undefined || pid <= 0) return false;
  const now = procStartTime(pid);
  if (now === undefined) return false;
  if (startTime !== undefined && now !== startTime) return false;
  // A zombie has exited: its status is only waiting to be collected.
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return state.slice(state.lastIndexOf(')') + 2, state.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Resident memory of a process in KiB (VmRSS), for the monitor's footprint. */
export function residentKiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** --debug shows where a command's time goes: each step with the ms since the process started. */
export function mark(what: string): void {
  if (log.level === 'debug') log.debug(`${what} at ${Math.round(performance.now())} ms`);
}
