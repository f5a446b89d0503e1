import { lstatSync, readlinkSync, statSync } from 'node:fs';
import { EngineError, ExitCode } from './errors.ts';

/**
 * podman's 126/127: before the runtime is asked to run a command, look for it
 * in the container's rootfs the way execve would find it through PATH, with
 * symlinks resolved inside the rootfs (an absolute link target is relative to
 * the container's /, never the host's). A runtime reports a missing command
 * as a generic create failure; checking here gives the user podman's codes.
 */
function resolveInRoot(roots: string[], path: string): string | undefined {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  let hops = 0;
  let host = roots[0]!;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '..') { done.pop(); continue; }
    const rel = [...done, part].join('/');
    // The first layer that has the name wins, as in an overlay (top layer first).
    let st;
    for (const root of roots) {
      try { st = lstatSync(`${root}/${rel}`); host = `${root}/${rel}`; break; } catch { st = undefined; }
    }
    if (!st) return undefined;
    if (st.isSymbolicLink()) {
      if (++hops > 40) return undefined;
      const target = readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      parts.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
      continue;
    }
    done.push(part);
  }
  return done.length === 0 ? roots[0]! : host;
}

/**
 * `rootfs` is the mounted root, or the layers of an overlay not mounted here
 * (a rootless bundle's), upper first; the lookup then follows overlayfs's
 * rule that the topmost layer holding a name wins (whiteouts aside).
 */
export function checkExecutable(rootfs: string | string[], args: string[], env: string[]): void {
  const roots = typeof rootfs === 'string' ? [rootfs] : rootfs;
  const cmd = args[0];
  if (cmd === undefined || cmd === '') throw new EngineError('E_NO_COMMAND', 'no command specified', { exitCode: ExitCode.engine });
  const pathVar = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  const candidates = cmd.includes('/') ? [cmd.startsWith('/') ? cmd : `/${cmd}`] : pathVar.split(':').filter((d) => d !== '').map((d) => `${d}/${cmd}`);
  let found: string | undefined;
  for (const c of candidates) {
    const host = resolveInRoot(roots, c);
    if (host === undefined) continue;
    const st = statSync(host, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) {
      if (cmd.includes('/')) throw new EngineError('E_CANNOT_INVOKE', `${cmd}: is a directory: OCI permission denied`, { exitCode: ExitCode.cannotInvoke });
      continue;
    }
    found = host;
    if (st.mode & 0o111) return;
  }
  if (found !== undefined) throw new EngineError('E_CANNOT_INVOKE', `${cmd}: permission denied: OCI permission denied`, { exitCode: ExitCode.cannotInvoke });
  throw new EngineError('E_NOT_FOUND', `${cmd}: executable file not found in $PATH: No such file or directory: OCI runtime attempted to invoke a command that was not found`, { exitCode: ExitCode.notFound });
}
