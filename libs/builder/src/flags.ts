import { BerthUsageError } from '@berth/cli-kit';

/** `key=value` flags (--build-arg, --label) into a map. A bare --build-arg KEY takes its value from the environment, as podman does. */
export function keyValueFlags(list: readonly string[], flag: string, fromEnv: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    if (i === 0) throw new BerthUsageError(`${flag} "${item}": the name before "=" is empty`);
    if (i < 0) {
      if (!fromEnv) { out[item] = ''; continue; }
      const v = process.env[item];
      if (v !== undefined) out[item] = v;
      continue;
    }
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

/** A podman-style boolean flag: `--flag`, `--flag=true|false`; `fallback` when absent. */
export function booleanFlag(value: string | boolean | undefined, flag: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new BerthUsageError(`${flag} takes true or false, not "${String(value)}"`);
}

/** --pull, --pull=always|missing|never|true|false (podman build's spellings). */
export function pullFlag(value: string | boolean | undefined): 'always' | 'missing' | 'never' {
  if (value === undefined || value === 'missing') return 'missing';
  if (value === true || value === 'true' || value === 'always') return 'always';
  if (value === 'never' || value === 'false' || value === false) return 'never';
  throw new BerthUsageError(`--pull takes always, missing or never, not "${String(value)}"`);
}

export function networkFlag(value: string): 'host' | 'none' {
  if (value === 'host' || value === 'none') return value;
  throw new BerthUsageError(`--network takes host or none for a build, not "${value}"`);
}
