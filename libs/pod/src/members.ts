/**
 * Container membership. A pod records which containers joined it and where
 * their OCI runtime keeps its state; whether a member runs is read from that
 * state, never stored: ROOT/ID/state.json holds the init pid and its start
 * time (berth-runtime: pid + pidStartTime; runc: init_process_pid +
 * init_process_start), and the container runs while that process does.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot } from '@berth/cli-kit';
import { processAlive } from './namespaces.ts';

/** berth-runtime's default state root (runc's is /run/runc). */
export const DEFAULT_RUNTIME_ROOT = '/run/berth/runtime';

/** berth-runtime's default state root for this caller: an ordinary user's is $XDG_RUNTIME_DIR/berth/runtime, else /tmp/berth-run-UID/berth/runtime. */
export function defaultRuntimeRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (isRoot()) return DEFAULT_RUNTIME_ROOT;
  return join(env.XDG_RUNTIME_DIR || join('/tmp', `berth-run-${process.getuid?.() ?? 'user'}`), 'berth', 'runtime');
}

export interface PodMember {
  id: string;
  /** The OCI runtime's --root for this container. */
  runtimeRoot: string;
}

export type MemberStatus = 'running' | 'stopped' | 'unknown';

export interface MemberState { status: MemberStatus; pid?: number; startTime?: string }

export function memberState(m: PodMember): MemberState {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(readFileSync(join(m.runtimeRoot, m.id, 'state.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    // No state: the runtime deleted the container (or never created it).
    return { status: 'unknown' };
  }
  const pid = typeof doc.pid === 'number' ? doc.pid : typeof doc.init_process_pid === 'number' ? doc.init_process_pid : undefined;
  const start = doc.pidStartTime ?? doc.init_process_start;
  const startTime = start === undefined ? undefined : String(start);
  if (pid === undefined || pid <= 0) return { status: 'stopped' };
  return { status: processAlive(pid, startTime) ? 'running' : 'stopped', pid, startTime };
}
