import { isAbsolute, resolve } from 'node:path';
import { EngineError } from './errors.ts';
import { validateVolumeName } from './volume-store.ts';

/**
 * `-v` and `--mount` as podman reads them when volumes are involved. A `-v`
 * source that starts with `/` (or `.`, a path relative to the caller's
 * directory) is a host path, bind-mounted by berth-bundle as before;
 * anything else is a volume name, and `-v /dst` alone is an anonymous
 * volume. `--mount type=volume` is the long form of the same. Volumes are
 * split off here, before any work, so a bad name or option is refused with
 * nothing made; the engine turns them into bind mounts of ROOT/volumes/NAME/_data.
 */
export interface VolumeMountRequest {
  /** Undefined: an anonymous volume, named with 64 random hex digits at create. */
  name?: string;
  destination: string;
  readOnly: boolean;
  /** nosuid/nodev/noexec (and their opposites) as given. */
  flags: string[];
  propagation: string;
  /** Copy the image's content at the destination into a new, empty volume (podman's copy-up; `nocopy` turns it off). */
  copy: boolean;
}

/** What `inspect` shows in Mounts and what `volume rm` checks: podman's MountPoint fields. */
export interface ContainerMount {
  type: 'volume' | 'bind';
  /** The volume's name (volumes only). */
  name?: string;
  anonymous?: boolean;
  source: string;
  destination: string;
  /** podman's Options column: the flags, then nosuid/nodev for volumes, then rbind. */
  options: string[];
  rw: boolean;
  propagation: string;
}

export interface SplitMountFlags {
  /** -v values for berth-bundle (host paths; relative ones made absolute). */
  volume: string[];
  /** --mount values for berth-bundle (bind, tmpfs). */
  mount: string[];
  volumes: VolumeMountRequest[];
}

const PROPAGATION = ['shared', 'slave', 'private', 'rshared', 'rslave', 'rprivate', 'unbindable', 'runbindable'];
const FLAGS = ['nosuid', 'suid', 'nodev', 'dev', 'noexec', 'exec'];

/** Split -v and --mount into what berth-bundle mounts (host paths, tmpfs) and the volumes the engine provides. */
export function splitMountFlags(volume: readonly string[], mount: readonly string[], cwd = process.cwd()): SplitMountFlags {
  const out: SplitMountFlags = { volume: [], mount: [], volumes: [] };
  for (const v of volume) {
    const parts = v.split(':');
    if (parts.length > 3) usage('-v', v, `incorrect volume format, should be [host-dir:]ctr-dir[:option]`);
    if (parts.length === 1) {
      out.volumes.push(volumeRequest('-v', v, undefined, parts[0]!, undefined));
      continue;
    }
    const [source, destination, opts] = parts as [string, string, string | undefined];
    if (source.startsWith('/')) { out.volume.push(v); continue; }
    if (source.startsWith('.')) { out.volume.push([resolve(cwd, source), destination, ...(opts !== undefined ? [opts] : [])].join(':')); continue; }
    out.volumes.push(volumeRequest('-v', v, source, destination, opts));
  }
  for (const m of mount) {
    const fields = m.split(',').map((f) => f.trim());
    if (!fields.includes('type=volume')) { out.mount.push(m); continue; }
    out.volumes.push(mountRequest(m, fields));
  }
  return out;
}

function usage(flag: string, value: string, why: string): never {
  throw new EngineError('E_USAGE', `${flag} ${value}: ${why}`);
}

function volumeRequest(flag: string, value: string, name: string | undefined, destination: string, opts: string | undefined): VolumeMountRequest {
  if (name !== undefined) {
    try {
      validateVolumeName(name);
    } catch (err) {
      usage(flag, value, `${(err as Error).message} (a host path starts with / or .)`);
    }
  }
  if (!isAbsolute(destination)) usage(flag, value, `invalid container path ${JSON.stringify(destination)}, must be an absolute path`);
  const req: VolumeMountRequest = { ...(name !== undefined ? { name } : {}), destination, readOnly: false, flags: [], propagation: 'rprivate', copy: true };
  let mode: string | undefined;
  for (const o of opts ? opts.split(',') : []) {
    if (o === 'ro' || o === 'rw') {
      if (mode) usage(flag, value, 'ro/rw given twice');
      mode = o;
      req.readOnly = o === 'ro';
    } else if (PROPAGATION.includes(o)) req.propagation = o;
    else if (FLAGS.includes(o)) req.flags.push(o);
    else if (o === 'copy' || o === 'nocopy') req.copy = o === 'copy';
    else if (o === 'z' || o === 'Z') continue;
    else if (o === 'U' || o === 'idmap' || o.startsWith('idmap=')) usage(flag, value, `option "${o}" (chown or idmap the volume for the container) is not supported by berth`);
    else usage(flag, value, `unknown option "${o}" (ro, rw, nocopy, a propagation such as rslave, nosuid, nodev, noexec)`);
  }
  return req;
}

/** --mount type=volume[,source=NAME],target=/dst[,ro|readonly[=true|false]][,nocopy]. */
function mountRequest(value: string, fields: string[]): VolumeMountRequest {
  let name: string | undefined;
  let target: string | undefined;
  let readOnly = false;
  let copy = true;
  const bool = (k: string, v: string | undefined): boolean => {
    if (v === undefined || v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    usage('--mount', value, `${k} takes true or false`);
  };
  for (const f of fields) {
    if (f === '') continue;
    const i = f.indexOf('=');
    const k = i < 0 ? f : f.slice(0, i);
    const v = i < 0 ? undefined : f.slice(i + 1);
    if (k === 'type') continue;
    if (k === 'source' || k === 'src') name = v;
    else if (k === 'target' || k === 'destination' || k === 'dst' || k === 'dest') target = v;
    else if (k === 'ro' || k === 'readonly') readOnly = bool(k, v);
    else if (k === 'nocopy' || k === 'volume-nocopy') copy = !bool(k, v);
    else usage('--mount', value, `unknown field "${k}" for a volume (type=volume,source=NAME,target=/dst[,ro][,nocopy])`);
  }
  if (target === undefined) usage('--mount', value, 'needs target=/dst');
  const req = volumeRequest('--mount', value, name === '' ? undefined : name, target, readOnly ? 'ro' : undefined);
  req.copy = copy;
  return req;
}

/**
 * The mount options the runtime gets for a volume: podman's nosuid and nodev
 * unless the user asked for suid or dev, the propagation, ro last.
 */
export function volumeBindOptions(req: VolumeMountRequest): { spec: string[]; shown: string[] } {
  const shown = [...req.flags];
  if (!req.flags.includes('suid') && !shown.includes('nosuid')) shown.push('nosuid');
  if (!req.flags.includes('dev') && !shown.includes('nodev')) shown.push('nodev');
  return { spec: ['rbind', ...shown, req.propagation, ...(req.readOnly ? ['ro'] : [])], shown: [...shown, 'rbind'] };
}

/** A bind mount from -v/--mount as inspect's Mounts shows it (its flags, then rbind or bind). */
export function bindMountShown(m: { source?: string; destination: string; options?: string[] }): ContainerMount {
  const opts = m.options ?? [];
  const propagation = opts.find((o) => PROPAGATION.includes(o)) ?? 'rprivate';
  return {
    type: 'bind', source: m.source ?? '', destination: m.destination,
    options: [...opts.filter((o) => FLAGS.includes(o)), opts.includes('bind') ? 'bind' : 'rbind'],
    rw: !opts.includes('ro'), propagation,
  };
}

/**
 * User mounts in the order podman gives the runtime: by the depth of the
 * destination, so `-v /host:/a/b` still shows over a volume on `/a` whatever
 * the order typed (Array.prototype.sort is stable: equal depths keep theirs).
 */
export function sortByDepth<T extends { destination: string }>(mounts: T[]): T[] {
  const depth = (d: string) => d.split('/').filter((c) => c !== '' && c !== '.').length;
  return [...mounts].sort((a, b) => depth(a.destination) - depth(b.destination));
}
