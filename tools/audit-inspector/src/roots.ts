import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_BERTH_RUNTIME_ROOT } from '@berth/audit';
import { defaultDataRoot, defaultRunRoot } from '@berth/cli-kit';

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

/** A container the berth front made: its name and where its runtime keeps the state. */
export interface FrontContainer {
  id: string;
  name: string;
  runtimeRoot: string;
}

/**
 * The berth front's containers (DATAROOT/containers/ID/container.json, as
 * `berth ps -a` reads them), so a user can give `berth-audit` the name they
 * gave `berth run --name`. Only the fields berth-audit needs are read; a
 * record that is being written or is unreadable is skipped.
 */
export function frontContainers(dataRoot = defaultDataRoot()): FrontContainer[] {
  const dir = join(dataRoot, 'containers');
  let ids: string[];
  try {
    ids = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
  const out: FrontContainer[] = [];
  for (const id of ids) {
    try {
      const rec = JSON.parse(readFileSync(join(dir, id, 'container.json'), 'utf8')) as Partial<FrontContainer>;
      if (typeof rec.name === 'string' && typeof rec.runtimeRoot === 'string' && rec.id === id) out.push({ id, name: rec.name, runtimeRoot: rec.runtimeRoot });
    } catch { /* not a container record (yet): skip it */ }
  }
  return out;
}

/**
 * A berth container name turned into the container id the runtime knows,
 * with the runtime root to look in first. Anything that is not a name of the
 * caller's berth containers is returned as it was (an id, a prefix, a pid).
 */
export function byFrontName(target: string, given: string[], dataRoot = defaultDataRoot()): { target: string; roots: string[]; name?: string } {
  const named = /^\d+$/.test(target) ? undefined : frontContainers(dataRoot).find((c) => c.name === target);
  if (!named) return { target, roots: runtimeRoots(given) };
  return { target: named.id, roots: [...new Set([named.runtimeRoot, ...runtimeRoots(given)])], name: named.name };
}
