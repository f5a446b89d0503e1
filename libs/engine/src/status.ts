import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeSpec } from '@berth/oci-spec';
import { readExitFile } from './monitor.ts';
import type { EngineEnv } from './paths.ts';
import { processAlive } from './proc.ts';
import type { ContainerRecord } from './records.ts';
import { OciRuntime } from './runtime.ts';

/** What a container's state is, read from its record and /proc only: no runtime call, so `ps` stays cheap. */
export function runtimeFor(_env: EngineEnv, rec: Pick<ContainerRecord, 'runtime' | 'runtimeRoot'>): OciRuntime {
  return new OciRuntime(rec.runtime, rec.runtimeRoot);
}

export function readSpec(bundle: string): RuntimeSpec {
  return JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as RuntimeSpec;
}

/** Is the container's process alive? The record's pid with its start time says so without asking the runtime. */
export function isRunning(rec: ContainerRecord): boolean {
  return rec.state.status === 'running' && processAlive(rec.state.pid, rec.state.pidStartTime);
}

/**
 * The status a user should see: a record that says running whose process is
 * gone has exited; a live one that `berth pause` froze is paused (podman's
 * states: created, running, paused, exited).
 */
export function observedStatus(env: EngineEnv, rec: ContainerRecord): { status: 'created' | 'running' | 'paused' | 'exited'; exitCode?: number } {
  if (rec.state.status === 'running') {
    if (isRunning(rec)) return { status: rec.state.paused ? 'paused' : 'running' };
    return { status: 'exited', exitCode: readExitFile(env, rec.id) ?? rec.state.exitCode };
  }
  return { status: rec.state.status, exitCode: rec.state.exitCode };
}

