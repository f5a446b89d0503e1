import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { OBJECT_NAME_RE } from '@berth/cli-kit';
import { withFileLock, writeFileAtomic } from '@berth/content';
import { EngineError, noSuchContainer } from './errors.ts';
import { paths, type EngineEnv } from './paths.ts';
import type { ContainerMount } from './volume-mounts.ts';

/**
 * A container as the engine remembers it: ROOT/containers/<id>/container.json.
 * It is the only place `ps -a` looks, so everything a user sees about a
 * stopped container (its name, image, command, exit code) is in here; what
 * only matters while it runs (runtime state, monitor pid) is in the run root.
 * Every write replaces the file atomically (temp, fsync, rename).
 */
export type ContainerStatus = 'created' | 'running' | 'exited';

export type RestartPolicy = { name: 'no' } | { name: 'always' } | { name: 'on-failure'; maxRetries: number };

export interface ContainerRecord {
  id: string;
  name: string;
  created: string;
  image: { reference?: string; id: string; manifest: string };
  /** The process args, as config.json has them. */
  command: string[];
  runtime: string;
  runtimeRoot: string;
  bundle: string;
  /** The snapshot key of the container's rootfs (= its id). */
  snapshot: string;
  /** implicit: made by `run -p` without --pod, removed with the container. */
  pod?: { id: string; name: string; implicit?: boolean };
  ports: string[];
  stopSignal: string;
  stopTimeout: number;
  restart: RestartPolicy;
  autoRemove: boolean;
  tty: boolean;
  interactive: boolean;
  labels: Record<string, string>;
  /** -v/--mount binds and volumes: inspect's Mounts, and what `volume rm` and `volume prune` count as in use. */
  mounts?: ContainerMount[];
  state: {
    status: ContainerStatus;
    pid?: number;
    /** /proc/PID/stat starttime: a pid that was reused is not our container. */
    pidStartTime?: string;
    monitorPid?: number;
    startedAt?: string;
    finishedAt?: string;
    exitCode?: number;
    restartCount: number;
    /** Set by stop: the exit is wanted, so --restart must not bring it back. */
    stoppedByUser?: boolean;
    /** The container runs in the foreground of a `berth run` (no monitor). */
    foreground?: boolean;
    /** Frozen by `berth pause` (the runtime's cgroup freezer) until `unpause`; only meaningful while running. */
    paused?: boolean;
  };
}

export function newContainerId(): string {
  return randomBytes(32).toString('hex');
}

/** podman's generated names are adjective_noun; ours are short and just as unique. */
const ADJECTIVES = ['brave', 'calm', 'eager', 'fair', 'gentle', 'happy', 'jolly', 'keen', 'lucid', 'merry', 'nimble', 'proud', 'quiet', 'swift', 'tidy', 'witty'];
const NOUNS = ['bell', 'cedar', 'delta', 'ember', 'fjord', 'grove', 'harbor', 'inlet', 'jetty', 'keel', 'lagoon', 'mast', 'pier', 'quay', 'reef', 'skiff'];
export function generateName(): string {
  const b = randomBytes(3);
  return `${ADJECTIVES[b[0]! % ADJECTIVES.length]}_${NOUNS[b[1]! % NOUNS.length]}${b[2]! % 100}`;
}


export function validateName(name: string): string {
  if (!OBJECT_NAME_RE.test(name) || name.length > 128) {
    throw new EngineError('E_NAME', `container name "${name}": names are letters, digits, '_', '.' and '-', starting with a letter or digit (regex ${OBJECT_NAME_RE.source})`);
  }
  return name;
}

export function readRecord(env: EngineEnv, id: string): ContainerRecord | undefined {
  try {
    return JSON.parse(readFileSync(paths.record(env, id), 'utf8')) as ContainerRecord;
  } catch {
    return undefined;
  }
}

export async function saveRecord(env: EngineEnv, rec: ContainerRecord): Promise<void> {
  await writeFileAtomic(paths.record(env, rec.id), JSON.stringify(rec, null, 2) + '\n');
}

/** Every container record, oldest first. */
export function listRecords(env: EngineEnv): ContainerRecord[] {
  let ids: string[];
  try { ids = readdirSync(paths.containers(env)).filter((d) => /^[0-9a-f]{64}$/.test(d)); } catch { return []; }
  return ids.map((id) => readRecord(env, id)).filter((r): r is ContainerRecord => r !== undefined)
    .sort((a, b) => a.created.localeCompare(b.created));
}

/** A name, a full id, or a unique id prefix (the 12-character short id included). */
export function findRecord(env: EngineEnv, nameOrId: string): ContainerRecord | undefined {
  if (/^[0-9a-f]{64}$/.test(nameOrId)) {
    const rec = readRecord(env, nameOrId);
    if (rec) return rec;
  }
  const all = listRecords(env);
  const byName = all.find((r) => r.name === nameOrId);
  if (byName) return byName;
  if (/^[0-9a-f]{1,64}$/.test(nameOrId)) {
    const hits = all.filter((r) => r.id.startsWith(nameOrId));
    if (hits.length === 1) return hits[0];
    if (hits.length > 1) throw new EngineError('E_AMBIGUOUS', `more than one result for container "${nameOrId}": give more characters of the id`);
  }
  return undefined;
}

export function mustFindRecord(env: EngineEnv, nameOrId: string): ContainerRecord {
  const rec = findRecord(env, nameOrId);
  if (!rec) throw noSuchContainer(nameOrId);
  return rec;
}

/**
 * Reserve a name and write the first record under one lock, so two `berth
 * create --name x` at once cannot both succeed: the second sees the first's
 * record when it gets the lock.
 */
export async function reserveRecord(env: EngineEnv, rec: ContainerRecord): Promise<void> {
  mkdirSync(paths.containers(env), { recursive: true, mode: 0o700 });
  await withFileLock(paths.namesLock(env), async () => {
    const clash = listRecords(env).find((r) => r.name === rec.name);
    if (clash) {
      throw new EngineError('E_NAME_IN_USE', `creating container storage: the container name "${rec.name}" is already in use by ${clash.id}. You have to remove that container to be able to reuse that name: that name is already in use`);
    }
    mkdirSync(paths.container(env, rec.id), { recursive: true, mode: 0o700 });
    await saveRecord(env, rec);
  });
}

/** Change a record under its own lock: a monitor's cleanup and a user's stop may meet. */
export async function updateRecord(env: EngineEnv, id: string, fn: (rec: ContainerRecord) => void | Promise<void>): Promise<ContainerRecord> {
  return withContainerLock(env, id, async () => {
    const rec = readRecord(env, id);
    if (!rec) throw noSuchContainer(id);
    await fn(rec);
    await saveRecord(env, rec);
    return rec;
  });
}

export async function withContainerLock<T>(env: EngineEnv, id: string, fn: () => Promise<T>): Promise<T> {
  return withFileLock(paths.containerLock(env, id), fn, { timeoutMs: 60_000 });
}

export async function deleteRecordDir(env: EngineEnv, id: string): Promise<void> {
  // The monitor's exit command (`container cleanup`) may still be writing into
  // the directory when rm -f removes it; rm retries ENOTEMPTY a few times.
  await rm(paths.container(env, id), { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
}
