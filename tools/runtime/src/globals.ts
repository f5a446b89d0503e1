/**
 * runc's global flags come before the subcommand (`berth-runtime --root DIR
 * --log FILE --log-format json create ...`). cli.ts pre-parses them into this
 * object and hands the rest of argv to clipanion.
 */
import { appendFileSync } from 'node:fs';
import { log } from '@berth/cli-kit';
import { defaultStateRoot } from './rootless-state.ts';

export interface GlobalOptions {
  root: string;
  logFile?: string;
  logFormat: 'text' | 'json';
  debug: boolean;
  systemdCgroup: boolean;
  rootless?: string;
}

export const DEFAULT_ROOT = '/run/berth/runtime';

export const globals: GlobalOptions = {
  root: process.env.BERTH_RUNTIME_ROOT ?? defaultStateRoot(),
  logFormat: 'text',
  debug: false,
  systemdCgroup: false,
};

const valued = new Set(['--root', '--log', '--log-format', '--criu', '--rootless']);
const boolean = new Set(['--debug', '--systemd-cgroup']);

/** Split argv into the global flags (before the first non-flag word) and the rest. */
export function parseGlobals(argv: string[]): string[] {
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) break;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (boolean.has(name)) {
      if (name === '--debug') globals.debug = true;
      else globals.systemdCgroup = true;
      i++;
      continue;
    }
    if (!valued.has(name)) break;
    const value = eq > 0 ? arg.slice(eq + 1) : argv[i + 1];
    if (value === undefined) break;
    i += eq > 0 ? 1 : 2;
    if (name === '--root') globals.root = value;
    else if (name === '--log') globals.logFile = value;
    else if (name === '--log-format') globals.logFormat = value === 'json' ? 'json' : 'text';
    else if (name === '--rootless') globals.rootless = value;
  }
  log.configure({ format: globals.logFormat, level: globals.debug ? 'debug' : 'info' });
  if (globals.logFile) {
    const file = globals.logFile;
    // containerd's shim reads the last error line of this file; stderr gets it too.
    log.configure({ write: (line) => { try { appendFileSync(file, line); } catch { /* the log file is best effort */ } process.stderr.write(line); } });
  }
  return argv.slice(i);
}
