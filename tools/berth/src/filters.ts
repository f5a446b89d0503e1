import { EngineError } from '@berth/engine';

/**
 * podman's `--filter KEY=VALUE` and `--label KEY=VALUE` flags as the volume
 * and network verbs read them: one parser, one label rule, one way to
 * combine several filters.
 */

/** `--label`/`-o` values: KEY=VALUE, or KEY alone for an empty value. */
export function parseKeyValues(values: readonly string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of values) {
    const i = l.indexOf('=');
    const key = i < 0 ? l : l.slice(0, i);
    if (key === '') throw new EngineError('E_USAGE', `${flag} ${JSON.stringify(l)}: needs a key (KEY[=VALUE])`);
    out[key] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

/** `label=KEY` (the key is there) or `label=KEY=VALUE` (with that value). */
export function labelMatches(labels: Record<string, string> | undefined, expr: string): boolean {
  const j = expr.indexOf('=');
  const k = j < 0 ? expr : expr.slice(0, j);
  return labels !== undefined && k in labels && (j < 0 || labels[k] === expr.slice(j + 1));
}

/** `name=REGEX`, refused by name when it is not one. */
export function nameRegex(value: string): RegExp {
  try {
    return new RegExp(value);
  } catch {
    throw new EngineError('E_USAGE', `--filter name=${value}: not a regular expression`);
  }
}

/** `dangling=true|false|1|0`: whether unused objects are wanted. */
export function danglingWanted(value: string): boolean {
  if (!['true', 'false', '1', '0'].includes(value)) throw new EngineError('E_USAGE', `--filter dangling=${value}: true or false`);
  return value === 'true' || value === '1';
}

/**
 * The `--filter` flags of one command as one test. Each KEY=VALUE becomes a
 * test through `make`; podman's rule combines them: the same key twice
 * matches either value, different keys must all match. A key not in
 * `allowed` is refused, naming the WHAT filters there are.
 */
export function combineFilters<A extends unknown[]>(
  exprs: readonly string[], allowed: readonly string[], what: string,
  make: (key: string, value: string) => (...args: A) => boolean,
): (...args: A) => boolean {
  const byKey = new Map<string, Array<(...args: A) => boolean>>();
  for (const expr of exprs) {
    const i = expr.indexOf('=');
    const key = i < 0 ? expr : expr.slice(0, i);
    if (i < 0 || !allowed.includes(key)) throw new EngineError('E_USAGE', `${JSON.stringify(key)} is an invalid ${what} filter: berth takes ${allowed.map((a) => `${a}=`).join(', ')}`);
    byKey.set(key, [...(byKey.get(key) ?? []), make(key, expr.slice(i + 1))]);
  }
  return (...args) => [...byKey.values()].every((same) => same.some((test) => test(...args)));
}
