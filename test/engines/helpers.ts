/**
 * What the engine suites share: the busybox test image in an OCI layout,
 * berth-runtime's launcher as the path an engine executes, and a bounded
 * synchronous runner for the engines' CLIs.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants as fsConstants, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeBusyboxImage } from '../helpers/images.ts';
import { binPath } from '../helpers/run.ts';

/**
 * The path an engine is given as its runtime: the launcher itself (a node
 * shebang script), the way a user would pass "$(command -v berth-runtime)".
 */
export function berthRuntimePath(): string {
  const bin = binPath('berth-runtime');
  accessSync(bin, fsConstants.X_OK);
  return bin;
}

/** busybox:latest (sh, echo, sleep, cat, tty ...) written into an OCI layout at `layout`. */
export async function busyboxLayout(layout: string): Promise<string> {
  await writeBusyboxImage(layout, 'busybox:latest', { config: { Cmd: ['sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] } });
  return layout;
}

export interface Outcome { code: number; stdout: string; stderr: string }

export function sh(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Outcome {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 90_000, env: opts.env ?? process.env,
    stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  if (r.error) throw r.error;
  return { code: r.status ?? (r.signal ? 128 : -1), stdout: r.stdout, stderr: r.stderr };
}

/** A command line run under a pseudo-terminal (util-linux script), for `-it`: the engine sees a tty on its stdin. */
export function underPty(argv: string[], timeoutMs = 90_000): Outcome {
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  // When its own stdin ends, script(1) types one end-of-file character into
  // the session, which the engine passes on; the container's terminal echoes
  // it as "^@" wherever its output happens to be at that moment (runc's too).
  // That echo is the harness's, not the engine's, so it is taken out.
  const r = sh('script', ['-qec', quoted, '/dev/null'], { timeoutMs });
  return { ...r, stdout: r.stdout.replace(/\^@/g, '') };
}

/** Remove a cgroup subtree the test made (every v1 controller and the unified hierarchy), deepest first. */
export function removeCgroupTree(path: string): void {
  const roots = readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c));
  for (const root of roots) {
    const top = join(root, path);
    const dirs: string[] = [];
    const walk = (d: string) => {
      let entries;
      try {
        entries = readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      dirs.push(d);
      for (const e of entries) if (e.isDirectory()) walk(join(d, e.name));
    };
    walk(top);
    for (const d of dirs.reverse()) {
      try {
        rmdirSync(d);
      } catch {
        // Still in use: the assertions of the suite say what stayed.
      }
    }
  }
}

/** Poll until `check` holds (bounded). */
export async function waitFor(check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}
