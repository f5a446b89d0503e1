/** Signal names and numbers as kill(1) and runc accept them: TERM, SIGTERM, 15. */
import { constants } from 'node:os';
import { BerthUsageError } from '@berth/cli-kit';

export function parseSignal(value: string): number {
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    if (n > 0 && n <= 64) return n;
  } else {
    const name = (value.toUpperCase().startsWith('SIG') ? value.toUpperCase() : 'SIG' + value.toUpperCase()) as keyof typeof constants.signals;
    const n = constants.signals[name];
    if (n !== undefined) return n;
  }
  throw new BerthUsageError(`invalid signal "${value}"`);
}

export function signalName(n: number): string | undefined {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0];
}
