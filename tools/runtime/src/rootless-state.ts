/**
 * Where an ordinary user's berth-runtime keeps container state (see
 * rootless.ts for the rest of rootless berth-runtime). Kept apart and free of
 * heavy imports: every command resolves its --root default at start-up.
 */
import { lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/cli-kit';

export function isRootlessCaller(): boolean {
  return typeof process.geteuid === 'function' && process.geteuid() !== 0;
}

/** The default state root: runc's /run/runc becomes $XDG_RUNTIME_DIR/runc for a user; ours likewise. */
export function defaultStateRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (!isRootlessCaller()) return '/run/berth/runtime';
  const base = env.XDG_RUNTIME_DIR || join('/tmp', `berth-run-${process.geteuid!()}`);
  return join(base, 'berth', 'runtime');
}

/**
 * Make a rootless state root private. A /tmp/berth-run-UID another user made
 * first (or a symlink planted there) would let them read or swap our state:
 * refuse anything not a directory of ours with no group or other access.
 */
export function makePrivateStateRoot(root: string): void {
  if (!isRootlessCaller()) return;
  mkdirSync(root, { recursive: true, mode: 0o700 });
  // A --root the user named is theirs to arrange.
  if (root !== defaultStateRoot()) return;
  const uid = process.geteuid!();
  const tmpBase = /^\/tmp\/berth-run-\d+/.exec(root)?.[0];
  for (const dir of tmpBase ? [tmpBase, root] : [root]) {
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
      throw new BerthError('E_STATE', `state directory ${dir} must be a directory owned by uid ${uid} with mode 0700 (it is ${st.isSymbolicLink() ? 'a symlink' : `mode ${(st.mode & 0o777).toString(8)}, owner ${st.uid}`}); remove it or pass --root`);
    }
  }
}

