import { open, readFile, unlink, stat } from 'node:fs/promises';
import { BerthError } from '@berth/cli-kit';

/**
 * A lock file for the places where two writers meet (index.json). Node has no
 * flock, so the lock is a file created with O_EXCL that holds the owner's pid;
 * a lock whose owner is dead (kill -9 mid-write) is stale and is broken.
 */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let delay = 2;
  for (;;) {
    try {
      const fh = await open(lockPath, 'wx', 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (await isStale(lockPath)) {
        await unlink(lockPath).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) throw new BerthError('E_LOCKED', `timed out waiting for lock ${lockPath}`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 50);
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lockPath).catch(() => {});
  }
}

async function isStale(lockPath: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch {
    return false;
  }
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0) {
    // Being written right now, or garbage left by a crash: give it a moment.
    try {
      const st = await stat(lockPath);
      return Date.now() - st.mtimeMs > 5_000;
    } catch {
      return false;
    }
  }
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
