import { basename, join } from 'node:path';
import { defaultDataRoot, defaultRunRoot, imageStorePath } from '@berth/cli-kit';
import type { RootlessEnv } from './rootless.ts';

/**
 * Where the engine keeps things. Two roots, as podman has (--root and
 * --runroot): the data root survives a reboot (records, logs, bundles, the
 * image store, snapshots); the run root is tmpfs state that a reboot wipes
 * (runtime state, monitor pid files, exit files, pods). `ps -a` reads only
 * the data root, so it still lists what existed after the run root is gone.
 */
export interface EngineEnv {
  dataRoot: string;
  runRoot: string;
  /** The OCI runtime binary (berth-runtime, runc, crun). */
  runtime: string;
  /** Set for an ordinary user: how storage steps reach the user's namespace (rootless.ts). */
  rootless?: RootlessEnv;
}

export function engineEnv(opts: { root?: string; runRoot?: string; runtime?: string; rootless?: RootlessEnv } = {}): EngineEnv {
  return {
    dataRoot: opts.root ?? defaultDataRoot(),
    runRoot: opts.runRoot ?? defaultRunRoot(),
    runtime: opts.runtime ?? process.env.BERTH_RUNTIME ?? 'berth-runtime',
    ...(opts.rootless ? { rootless: opts.rootless } : {}),
  };
}

export const paths = {
  images: (env: EngineEnv) => imageStorePath(env.dataRoot),
  containers: (env: EngineEnv) => join(env.dataRoot, 'containers'),
  container: (env: EngineEnv, id: string) => join(env.dataRoot, 'containers', id),
  record: (env: EngineEnv, id: string) => join(env.dataRoot, 'containers', id, 'container.json'),
  bundle: (env: EngineEnv, id: string) => join(env.dataRoot, 'containers', id, 'bundle'),
  log: (env: EngineEnv, id: string) => join(env.dataRoot, 'containers', id, 'ctr.log'),
  namesLock: (env: EngineEnv) => join(env.dataRoot, 'containers', '.names.lock'),
  containerLock: (env: EngineEnv, id: string) => join(env.dataRoot, 'containers', id, '.lock'),
  /** Per-container tmpfs state: the monitor's pid file, the init pid file. */
  runDir: (env: EngineEnv, id: string) => join(env.runRoot, 'containers', id),
  exits: (env: EngineEnv) => join(env.runRoot, 'exits'),
  exitFile: (env: EngineEnv, id: string) => join(env.runRoot, 'exits', id),
  /**
   * One --root per runtime binary: runc, crun and berth-runtime each keep
   * their own state format, so they must never share a directory.
   */
  runtimeRoot: (env: EngineEnv, runtime: string) => join(env.runRoot, 'runtimes', basename(runtime)),
};
