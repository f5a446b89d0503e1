import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_BERTH_RUNTIME_ROOT } from '@berth/audit';
import { defaultDataRoot, defaultRunRoot } from '@berth/cli-kit';
import { engineEnv } from '@berth/engine/paths';
import { listRecords } from '@berth/engine/records';

/**
 * The runtime state roots to search: the ones given with --runtime-root
 * first, then berth-runtime's default as berth-runtime itself picks it
 * (BERTH_RUNTIME_ROOT; for an ordinary user $XDG_RUNTIME_DIR/berth/runtime,
 * or /tmp/berth-run-UID/berth/runtime without it; else /run/berth/runtime),
 * then the roots the berth front gives each runtime binary it runs
 * (RUNROOT/runtimes/NAME, named after the binary: berth-runtime, runc), so
 * `berth-audit inspect` finds the caller's own `berth run` containers.
 */
export function runtimeRoots(given: string[]): string[] {
  const env = process.env;
  const rootless = typeof process.geteuid === 'function' && process.geteuid() !== 0;
  const runtimeBase = env.XDG_RUNTIME_DIR || join('/tmp', `berth-run-${process.geteuid?.() ?? 0}`);
  const berthDefault = env.BERTH_RUNTIME_ROOT ?? (rootless ? join(runtimeBase, 'berth', 'runtime') : DEFAULT_BERTH_RUNTIME_ROOT);
  const engineRoots = join(defaultRunRoot(), 'runtimes');
  let engineDefaults: string[] = [];
  try {
    engineDefaults = readdirSync(engineRoots, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(engineRoots, d.name));
  } catch { /* no berth front state here: nothing to add */ }
  return [...new Set([...given, berthDefault, ...engineDefaults])];
}

/**
 * A berth container name turned into the container id the runtime knows,
 * with the runtime root to look in first. Anything that is not a name of the
 * caller's berth containers is returned as it was (an id, a prefix, a pid).
 */
export function byFrontName(target: string, given: string[], dataRoot = defaultDataRoot()): { target: string; roots: string[]; name?: string } {
  // The berth front's records (DATAROOT/containers/ID/container.json), as `berth ps -a` reads them.
  const named = /^\d+$/.test(target) ? undefined : listRecords(engineEnv({ root: dataRoot })).find((c) => c.name === target);
  if (!named) return { target, roots: runtimeRoots(given) };
  return { target: named.id, roots: [...new Set([named.runtimeRoot, ...runtimeRoots(given)])], name: named.name };
}
