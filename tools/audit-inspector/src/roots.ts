import { join } from 'node:path';
import { DEFAULT_BERTH_RUNTIME_ROOT } from '@berth/audit';

/**
 * The runtime state roots to search: the ones given with --runtime-root
 * first, then berth-runtime's default (BERTH_RUNTIME_ROOT, or
 * $XDG_RUNTIME_DIR/berth/runtime rootless, else /run/berth/runtime, as
 * berth-runtime itself picks it).
 */
export function runtimeRoots(given: string[]): string[] {
  const env = process.env;
  const berthDefault = env.BERTH_RUNTIME_ROOT
    ?? (typeof process.geteuid === 'function' && process.geteuid() !== 0 && env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'berth', 'runtime') : DEFAULT_BERTH_RUNTIME_ROOT);
  return [...new Set([...given, berthDefault])];
}
