/**
 * Container state under --root: ROOT/ID/state.json (written atomically: temp
 * file, fsync, rename) and ROOT/ID/exec.fifo while the container is created
 * but not started. The status is not stored but derived, as runc does: the
 * init process gone (or its pid reused: the start time differs) -> stopped;
 * paused flag -> paused; fifo present -> created; else running.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/cli-kit';
import { OCI_RUNTIME_VERSION, type ContainerState, type RuntimeSpec } from '@berth/oci-spec';
import { globals } from './globals.ts';
import { isRootlessCaller, makePrivateStateRoot } from './rootless-state.ts';

export interface ContainerRecord {
  ociVersion: string;
  id: string;
  /** Host pid of the container's init process. */
  pid: number;
  /** Field 22 of /proc/PID/stat when the init started: tells a reused pid apart. */
  pidStartTime: string;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  config: RuntimeSpec;
  /** The cgroup path given to @berth/cgroups. */
  cgroupsPath: string;
  paused?: boolean;
  /** Set when the container went through `start` (or `run`). */
  started?: boolean;
  annotations?: Record<string, string>;
}

export type Status = ContainerState['status'];

const ID_RE = /^[\w+.-]+$/;

export function checkId(id: string): void {
  if (!ID_RE.test(id) || id === '.' || id === '..') {
    throw new BerthError('E_ID', `invalid container id "${id}": use letters, digits, '_', '+', '-' and '.'`);
  }
}

export function containerDir(id: string): string {
  return join(globals.root, id);
}

export function fifoPath(id: string): string {
  return join(containerDir(id), 'exec.fifo');
}

export function stateFile(id: string): string {
  return join(containerDir(id), 'state.json');
}

/** Make the container's directory; fails when one with this id exists. */
export function claimId(id: string): string {
  checkId(id);
  // An ordinary user's state root is private: no other user may list, kill or delete.
  if (isRootlessCaller()) makePrivateStateRoot(globals.root);
  mkdirSync(globals.root, { recursive: true, mode: 0o711 });
  const dir = containerDir(id);
  try {
    mkdirSync(dir, { mode: 0o711 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new BerthError('E_EXISTS', `container with id exists: ${id}`);
    throw err;
  }
  return dir;
}

let tmpSeq = 0;

export function writeFileAtomicSync(path: string, data: string): void {
  // pid + sequence is unique among live writers (no node:crypto: loading it
  // costs every command a few milliseconds of start-up).
  const tmp = `${path}.tmp-${process.pid}-${++tmpSeq}`;
  const fd = openSync(tmp, 'wx', 0o600);
  // No fsync (runc does none either): the rename is what makes the write
  // atomic for a concurrent reader; durability across a crash buys nothing
  // for state about processes a reboot ends. An fsync cost 3.5 ms (up to
  // 13 ms) per write on this host's ext4, and create, start and a pid file
  // each write once.
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function saveRecord(rec: ContainerRecord): void {
  writeFileAtomicSync(stateFile(rec.id), JSON.stringify(rec));
}

/** The record of container `id`, or a runc-worded error when there is none. */
export function loadRecord(id: string): ContainerRecord {
  checkId(id);
  let text: string;
  try {
    text = readFileSync(stateFile(id), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BerthError('E_NOT_EXIST', `container "${id}" does not exist`);
    throw err;
  }
  let rec: ContainerRecord;
  try {
    rec = JSON.parse(text) as ContainerRecord;
  } catch {
    throw new BerthError('E_STATE', `${stateFile(id)}: not a berth-runtime state file (another runtime's --root?)`);
  }
  if (typeof rec.pid !== 'number' || typeof rec.pidStartTime !== 'string' || typeof rec.config !== 'object') {
    throw new BerthError('E_STATE', `${stateFile(id)}: not a berth-runtime state file (another runtime's --root?)`);
  }
  return rec;
}

export function tryLoadRecord(id: string): ContainerRecord | undefined {
  try {
    return loadRecord(id);
  } catch {
    return undefined;
  }
}

export function listIds(): string[] {
  try {
    return readdirSync(globals.root, { withFileTypes: true }).filter((d) => d.isDirectory() && ID_RE.test(d.name)).map((d) => d.name).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Field 22 (starttime) and field 3 (state letter) of /proc/PID/stat, or undefined if there is no such process. */
export function procStat(pid: number): { startTime: string; state: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0]!, startTime: rest[19]! };
}

export function isAlive(rec: Pick<ContainerRecord, 'pid' | 'pidStartTime'>): boolean {
  if (rec.pid <= 0) return false;
  const st = procStat(rec.pid);
  return st !== undefined && st.startTime === rec.pidStartTime && st.state !== 'Z' && st.state !== 'X';
}

export function statusOf(rec: ContainerRecord): Status {
  if (!isAlive(rec)) return 'stopped';
  if (rec.paused) return 'paused';
  if (existsSync(fifoPath(rec.id))) return 'created';
  return 'running';
}

export function ociState(rec: ContainerRecord): ContainerState & { rootfs?: string; created?: string; owner?: string } {
  const status = statusOf(rec);
  return {
    ociVersion: OCI_RUNTIME_VERSION,
    id: rec.id,
    pid: status === 'stopped' ? 0 : rec.pid,
    status,
    bundle: rec.bundle,
    rootfs: rec.rootfs,
    created: rec.created,
    owner: rec.owner,
    ...(rec.config.annotations ? { annotations: rec.config.annotations } : {}),
  };
}

export function removeContainerDir(id: string): void {
  rmSync(containerDir(id), { recursive: true, force: true });
}
