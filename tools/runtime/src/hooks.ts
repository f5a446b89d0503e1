/**
 * OCI hooks (config.md#posix-platform-hooks): each runs with the container's
 * state JSON on stdin, its own args/env, and its timeout; a failing prestart,
 * createRuntime or createContainer hook fails the create, as runc does.
 */
import { spawnSync } from 'node:child_process';
import { BerthError, log } from '@berth/cli-kit';
import type { ContainerState, Hook, Hooks } from '@berth/oci-spec';

export function runHooks(hooks: Hooks | undefined, phase: keyof Hooks, state: ContainerState, opts: { warnOnly?: boolean } = {}): void {
  for (const [i, hook] of (hooks?.[phase] ?? []).entries()) {
    try {
      runHook(hook, state);
    } catch (err) {
      const msg = `${phase} hook #${i} (${hook.path}): ${(err as Error).message}`;
      if (opts.warnOnly) log.warn(msg);
      else throw new BerthError('E_HOOK', msg);
    }
  }
}

function runHook(hook: Hook, state: ContainerState): void {
  const args = hook.args ?? [hook.path];
  const r = spawnSync(hook.path, args.slice(1), {
    argv0: args[0] ?? hook.path,
    env: Object.fromEntries((hook.env ?? []).map((e) => { const i = e.indexOf('='); return [e.slice(0, i), e.slice(i + 1)]; })),
    input: JSON.stringify(state),
    timeout: hook.timeout !== undefined ? hook.timeout * 1000 : undefined,
    encoding: 'utf8',
  });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new Error(code === 'ETIMEDOUT' ? `timed out after ${hook.timeout}s` : String(code ?? r.error.message));
  }
  if (r.signal) throw new Error(`killed by ${r.signal}${hook.timeout !== undefined ? ` (timeout ${hook.timeout}s)` : ''}`);
  if (r.status !== 0) throw new Error(`exit status ${r.status}, stdout: ${r.stdout.trim()}, stderr: ${r.stderr.trim()}`);
}
