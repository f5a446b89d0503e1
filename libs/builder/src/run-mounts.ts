import { posix } from 'node:path';
import { parseError } from './containerfile.ts';

/**
 * `RUN --mount=type=...` (the Dockerfile reference's RUN --mount, as podman
 * build 4.x takes it): filesystems a RUN step sees but its layer never holds.
 *
 * - `type=bind`: a file or directory of the build context (or of an earlier
 *   stage or an image, `from=`), read-only unless `rw` (then writes go to a
 *   throw-away copy);
 * - `type=cache`: a directory kept between builds under the data root,
 *   named by `id` (default: the target), for package and compiler caches;
 * - `type=tmpfs`: an empty tmpfs (`size=` in bytes, or with k/m/g).
 *
 * `type=secret` and `type=ssh` need build flags berth does not have yet, so
 * they are refused by name rather than mounted empty.
 */
export type RunMount =
  | { type: 'bind'; target: string; source: string; from?: string; readwrite: boolean }
  | { type: 'cache'; target: string; id: string; sharing: 'shared' | 'private' | 'locked'; mode: number; uid: number; gid: number; readonly: boolean }
  | { type: 'tmpfs'; target: string; size?: string };

const keys: Record<RunMount['type'], readonly string[]> = {
  bind: ['type', 'target', 'dst', 'destination', 'source', 'src', 'from', 'rw', 'readwrite', 'ro', 'readonly', 'relabel', 'z', 'Z'],
  cache: ['type', 'target', 'dst', 'destination', 'id', 'sharing', 'mode', 'uid', 'gid', 'ro', 'readonly'],
  tmpfs: ['type', 'target', 'dst', 'destination', 'size', 'tmpfs-size'],
};

function flag(value: string | undefined, what: string, where: string): boolean {
  if (value === undefined || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw parseError(where, `${what}=${value}: expected true or false`);
}

/** One `--mount=` value (variables already expanded); relative targets are taken from the step's working directory. */
export function parseRunMount(spec: string, cwd: string, where: string): RunMount {
  const fields = new Map<string, string | undefined>();
  for (const part of spec.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    if (fields.has(k)) throw parseError(where, `RUN --mount=${spec}: ${k} is given twice`);
    fields.set(k, eq < 0 ? undefined : part.slice(eq + 1));
  }
  const type = fields.get('type') ?? 'bind';
  if (type === 'secret' || type === 'ssh') throw parseError(where, `RUN --mount=type=${type} needs build flags (--secret, --ssh) berth build does not have`);
  if (type !== 'bind' && type !== 'cache' && type !== 'tmpfs') throw parseError(where, `RUN --mount=${spec}: type=${type} is not one of bind, cache, tmpfs`);
  for (const k of fields.keys()) {
    if (!keys[type].includes(k)) throw parseError(where, `RUN --mount=${spec}: type=${type} takes no option "${k}" (it takes ${keys[type].filter((o) => o !== 'type').join(', ')})`);
  }
  const rawTarget = fields.get('target') ?? fields.get('dst') ?? fields.get('destination');
  if (rawTarget === undefined || rawTarget === '') throw parseError(where, `RUN --mount=${spec}: target= is required`);
  const target = posix.resolve(cwd, rawTarget);
  if (target === '/') throw parseError(where, `RUN --mount=${spec}: the target cannot be /`);
  if (type === 'tmpfs') {
    const size = fields.get('size') ?? fields.get('tmpfs-size');
    if (size !== undefined && !/^\d+[kmg]?$/i.test(size)) throw parseError(where, `RUN --mount=${spec}: size=${size}: expected bytes, or a number with k, m or g`);
    return { type, target, ...(size !== undefined ? { size } : {}) };
  }
  const readonly = flag(fields.get('ro') ?? fields.get('readonly') ?? 'false', 'ro', where);
  if (type === 'bind') {
    const source = fields.get('source') ?? fields.get('src') ?? '.';
    const from = fields.get('from');
    const readwrite = flag(fields.get('rw') ?? fields.get('readwrite') ?? 'false', 'rw', where);
    if (readwrite && readonly) throw parseError(where, `RUN --mount=${spec}: rw and ro together`);
    return { type, target, source, readwrite, ...(from !== undefined ? { from } : {}) };
  }
  const sharing = fields.get('sharing') ?? 'shared';
  if (sharing !== 'shared' && sharing !== 'private' && sharing !== 'locked') throw parseError(where, `RUN --mount=${spec}: sharing=${sharing} is not one of shared, private, locked`);
  const num = (k: string, dflt: number, radix: number): number => {
    const v = fields.get(k);
    if (v === undefined) return dflt;
    if (!(radix === 8 ? /^[0-7]{1,4}$/ : /^\d+$/).test(v)) throw parseError(where, `RUN --mount=${spec}: ${k}=${v}: expected ${radix === 8 ? 'an octal mode like 0755' : 'a number'}`);
    return parseInt(v, radix);
  };
  return { type, target, id: fields.get('id') || target, sharing, mode: num('mode', 0o755, 8), uid: num('uid', 0, 10), gid: num('gid', 0, 10), readonly };
}
