import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { BerthError } from './errors.ts';
import { dirname, join } from 'node:path';

/**
 * Where berth keeps its data, as DESIGN.md says: /var/lib/berth and /run/berth
 * for root; $XDG_DATA_HOME/berth and $XDG_RUNTIME_DIR/berth for everyone else.
 * --root / BERTH_ROOT override the data root.
 */
export function isRoot(): boolean {
  return typeof process.geteuid === 'function' && process.geteuid() === 0;
}

export function defaultDataRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BERTH_ROOT) return env.BERTH_ROOT;
  if (isRoot()) return '/var/lib/berth';
  const base = env.XDG_DATA_HOME || join(env.HOME ?? '/tmp', '.local', 'share');
  return join(base, 'berth');
}

export function defaultRunRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BERTH_RUN_ROOT) return env.BERTH_RUN_ROOT;
  if (isRoot()) return '/run/berth';
  const base = env.XDG_RUNTIME_DIR || join('/tmp', `berth-run-${process.getuid?.() ?? 'user'}`);
  return join(base, 'berth');
}

/** The OCI image layout inside a data root. */
export function imageStorePath(dataRoot: string): string {
  return join(dataRoot, 'images');
}

/**
 * An ordinary user's data root is private (0700, as podman keeps
 * ~/.local/share/containers): another user must not read their images or
 * touch their containers. Made before anything is written into it; a root
 * left group- or world-readable (by an older berth, or a umask) is tightened
 * to 0700, and one that belongs to somebody else (a /tmp/berth-run-UID made
 * by another user first) is refused rather than written into.
 */
export function makePrivateRoot(dir: string): void {
  mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
  try {
    mkdirSync(dir, { mode: 0o700 });
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  const uid = process.geteuid?.() ?? st.uid;
  if (!st.isDirectory() || st.uid !== uid) {
    throw new BerthError('E_ROOT_OWNER', `${dir}: ${st.isDirectory() ? `belongs to uid ${st.uid}` : 'is not a directory'}, not to you (uid ${uid}); berth keeps your containers and images only in a directory of your own: remove it, or point BERTH_ROOT / XDG_RUNTIME_DIR elsewhere`);
  }
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}
