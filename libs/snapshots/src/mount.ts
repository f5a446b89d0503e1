import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { BerthError } from '@berth/cli-kit';

/**
 * A mount as data, the way containerd's snapshotters hand them out: the
 * snapshotter says what to mount, someone else (berth-bundle, berth-store
 * mount) performs it. `target` is relative to the directory given to
 * mountAll; absent means that directory itself.
 */
export interface Mount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

/**
 * mount(2) copies its data argument into a single page: overlay options longer
 * than that fail with EINVAL. Past this length the lower/upper/work paths are
 * made relative to their common parent, and mount(8) runs with that parent as
 * its cwd (the kernel resolves relative overlay paths against the caller's cwd).
 */
const PAGE_LIMIT = 4000;

/** Perform `mounts` in order onto `target` (each mount's own target is below it). */
export async function mountAll(mounts: Mount[], target: string): Promise<void> {
  const done: string[] = [];
  try {
    for (const m of mounts) {
      const where = m.target ? join(target, m.target) : target;
      await mountOne(m, resolve(where));
      done.push(resolve(where));
    }
  } catch (err) {
    // Leave nothing half-mounted: undo what this call already did, newest first.
    for (const where of done.reverse()) await unmountAll(where).catch(() => {});
    throw err;
  }
}

async function mountOne(m: Mount, where: string): Promise<void> {
  if (m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind')) {
    const flags = m.options.filter((o) => o !== 'bind' && o !== 'rbind');
    const recursive = m.options.includes('rbind');
    // mount(8) applies ro to a bind with a second MS_REMOUNT|MS_BIND call:
    // the kernel ignores MS_RDONLY on the first bind.
    const opts = [recursive ? 'rbind' : 'bind', ...flags].join(',');
    await run('mount', ['--no-canonicalize', '-o', opts, m.source, where], undefined, `mount bind ${m.source} on ${where}`);
    return;
  }
  let options = m.options;
  let cwd: string | undefined;
  if (options.join(',').length > PAGE_LIMIT) ({ options, cwd } = relativeOverlayOptions(options));
  if (options.join(',').length > PAGE_LIMIT) {
    throw new BerthError('E_MOUNT', `mount ${m.type} on ${where}: the options are ${options.join(',').length} bytes even with paths relative to ${cwd}, over the ${PAGE_LIMIT}-byte page mount(2) accepts; use shorter layer directory names`);
  }
  const args = ['--no-canonicalize', '-t', m.type, '-o', options.join(','), m.source, where];
  await run('mount', args, cwd, `mount ${m.type} on ${where}`);
}

/** Rewrite lowerdir/upperdir/workdir paths relative to their common parent. */
export function relativeOverlayOptions(options: string[]): { options: string[]; cwd: string } {
  const pathKeys = ['lowerdir', 'upperdir', 'workdir'];
  const paths: string[] = [];
  for (const o of options) {
    const [key, value] = splitOption(o);
    if (value !== undefined && pathKeys.includes(key)) paths.push(...value.split(':'));
  }
  const abs = paths.filter((p) => isAbsolute(p));
  if (abs.length === 0) return { options, cwd: process.cwd() };
  let common = dirname(abs[0]!);
  for (const p of abs) while (common !== sep && !(p + sep).startsWith(common === sep ? sep : common + sep)) common = dirname(common);
  const rewritten = options.map((o) => {
    const [key, value] = splitOption(o);
    if (value === undefined || !pathKeys.includes(key)) return o;
    return `${key}=${value.split(':').map((p) => (isAbsolute(p) ? relative(common, p) || '.' : p)).join(':')}`;
  });
  return { options: rewritten, cwd: common };
}

function splitOption(o: string): [string, string | undefined] {
  const i = o.indexOf('=');
  return i < 0 ? [o, undefined] : [o.slice(0, i), o.slice(i + 1)];
}

/**
 * Unmount everything at and below `target` (an rbind brings submounts, a
 * target may be mounted over more than once). Does nothing when nothing is
 * mounted there, so cleanup paths can call it unconditionally.
 */
export async function unmountAll(target: string): Promise<void> {
  const where = resolve(target);
  for (let i = 0; i < 64; i++) {
    const points = (await mountPoints()).filter((p) => p === where || p.startsWith(where + '/'));
    if (points.length === 0) return;
    // Deepest first: a parent mount is busy while a submount sits on it.
    points.sort((a, b) => b.length - a.length);
    await run('umount', ['--no-canonicalize', points[0]!], undefined, `umount ${points[0]}`);
  }
  throw new BerthError('E_UNMOUNT', `umount ${where}: still mounted after 64 unmounts`);
}

/** Is something mounted exactly at `path`? */
export async function isMountPoint(path: string): Promise<boolean> {
  return (await mountPoints()).includes(resolve(path));
}

/** Mount points of this mount namespace, from /proc/self/mountinfo (field 5, octal escapes decoded). */
export async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length > 4) out.push(f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

function run(cmd: string, args: string[], cwd: string | undefined, what: string): Promise<void> {
  return new Promise((resolveRun, reject) => {
    execFile(cmd, args, { cwd, encoding: 'utf8' }, (err, _stdout, stderr) => {
      if (!err) return resolveRun();
      const why = (stderr || err.message).trim().replace(/^(u?mount): /, '');
      reject(new BerthError('E_MOUNT', `${what}: ${why}`, { cause: err }));
    });
  });
}
