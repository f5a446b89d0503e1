/**
 * What `podman stats` reads beyond Cgroup.stats(): block I/O (v1 blkio,
 * v2 io.stat), per-CPU time (v1 cpuacct.usage_percpu), and the cgroup a
 * running process is in, for a caller that has a pid rather than the
 * cgroupsPath the runtime was given (any runtime, any path).
 *
 * Files (Documentation/admin-guide/cgroup-v1/blkio-controller.rst,
 * cgroup-v2.rst "IO Interface Files"):
 * - v1 `blkio.throttle.io_service_bytes_recursive`: "MAJ:MIN Read N" lines,
 *   counted at the throttling layer for every device, whatever the I/O
 *   scheduler; `blkio.bfq.io_service_bytes_recursive` only counts devices
 *   that use BFQ, and `blkio.io_service_bytes_recursive` is CFQ's (gone
 *   since 5.0). The first file that exists is read, so nothing is counted twice.
 * - v2 `io.stat`: "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device.
 */
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { BerthError } from '@berth/cli-kit';
import { openCgroup, type Cgroup } from './cgroup.ts';
import { readControlIfExists } from './fsio.ts';
import { DEFAULT_CGROUP_ROOT, detectCgroupMode, parseProcCgroup, type CgroupMode } from './hierarchy.ts';

export interface BlockIoStats {
  readBytes: number;
  writeBytes: number;
}

const V1_BLKIO_FILES = ['blkio.throttle.io_service_bytes_recursive', 'blkio.bfq.io_service_bytes_recursive', 'blkio.io_service_bytes_recursive'];

/** Sum the "MAJ:MIN Read N" / "MAJ:MIN Write N" lines (the "Total" line is skipped). */
export function parseV1ServiceBytes(text: string): BlockIoStats {
  const out: BlockIoStats = { readBytes: 0, writeBytes: 0 };
  for (const line of text.split('\n')) {
    const [dev, op, value] = line.trim().split(/\s+/);
    if (!dev || !/^\d+:\d+$/.test(dev) || value === undefined || !/^\d+$/.test(value)) continue;
    if (op === 'Read') out.readBytes += Number(value);
    else if (op === 'Write') out.writeBytes += Number(value);
  }
  return out;
}

/** Sum rbytes= and wbytes= over the devices of a v2 io.stat. */
export function parseIoStat(text: string): BlockIoStats {
  const out: BlockIoStats = { readBytes: 0, writeBytes: 0 };
  for (const line of text.split('\n')) {
    for (const field of line.trim().split(/\s+/).slice(1)) {
      const [k, v] = field.split('=');
      if (v === undefined || !/^\d+$/.test(v)) continue;
      if (k === 'rbytes') out.readBytes += Number(v);
      else if (k === 'wbytes') out.writeBytes += Number(v);
    }
  }
  return out;
}

/** Bytes read from and written to block devices by the cgroup; undefined when no blkio/io controller is there. */
export function blockIoStats(cg: Cgroup): BlockIoStats | undefined {
  if (cg.mode !== 'v2') {
    const dir = cg.dirs.find((d) => d.version === 1 && d.controllers.includes('blkio'))?.dir;
    if (dir !== undefined) {
      for (const file of V1_BLKIO_FILES) {
        const text = readControlIfExists(posix.join(dir, file));
        if (text !== undefined) return parseV1ServiceBytes(text);
      }
      return undefined;
    }
  }
  // v2, or a hybrid host whose unified hierarchy took io.
  const unified = cg.dirs.find((d) => d.version === 2)?.dir;
  if (unified === undefined) return undefined;
  const text = readControlIfExists(posix.join(unified, 'io.stat'));
  return text === undefined ? undefined : parseIoStat(text);
}

/** Nanoseconds of CPU time per CPU (v1 cpuacct.usage_percpu); v2 has no such file. */
export function perCpuUsage(cg: Cgroup): number[] | undefined {
  if (cg.mode === 'v2') return undefined;
  const dir = cg.dirs.find((d) => d.version === 1 && d.controllers.includes('cpuacct'))?.dir;
  const text = dir === undefined ? undefined : readControlIfExists(posix.join(dir, 'cpuacct.usage_percpu'));
  return text === undefined ? undefined : text.split(/\s+/).filter((v) => /^\d+$/.test(v)).map(Number);
}

export interface ProcessCgroupOptions {
  /** Where the hierarchies are mounted (tests: a temp dir). */
  root?: string;
  mode?: CgroupMode;
  /** Where /proc is (tests: a temp dir holding PID/cgroup). */
  procRoot?: string;
}

/** Hierarchies whose path names the process's cgroup best: the ones stats read, then any. */
const PREFERRED_V1 = ['memory', 'cpuacct', 'pids', 'cpu', 'blkio'];

/**
 * The cgroup a running process is in, read from /proc/PID/cgroup: the
 * cgroup2 path on a v2 host, else the path in the memory hierarchy (the
 * runtimes berth can use place a container at the same path in every
 * hierarchy). A process in a root cgroup has no cgroup of its own to count,
 * which is an error naming the pid.
 */
export function processCgroup(pid: number, opts: ProcessCgroupOptions = {}): Cgroup {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new BerthError('E_CGROUP', `cgroup: ${pid} is not a process id`);
  const root = opts.root ?? DEFAULT_CGROUP_ROOT;
  const mode = opts.mode ?? detectCgroupMode(root);
  const file = posix.join(opts.procRoot ?? '/proc', String(pid), 'cgroup');
  let entries: Map<string, string>;
  try {
    entries = parseProcCgroup(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new BerthError('E_CGROUP', `cgroup: read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`, { cause: err });
  }
  let path: string | undefined;
  if (mode === 'v2') {
    path = entries.get('');
  } else {
    const keys = [...entries.keys()].filter((k) => k !== '');
    const controllersOf = (k: string) => k.split(',');
    for (const want of PREFERRED_V1) {
      const key = keys.find((k) => controllersOf(k).includes(want));
      if (key !== undefined) { path = entries.get(key); break; }
    }
    path ??= keys.map((k) => entries.get(k)).find((p) => p !== undefined);
  }
  if (path === undefined) throw new BerthError('E_CGROUP', `cgroup: ${file} names no ${mode === 'v2' ? 'cgroup2' : 'v1'} cgroup`);
  if (path === '/' || path === '') throw new BerthError('E_CGROUP', `cgroup: process ${pid} is in the root cgroup (${file}): it has no cgroup of its own`);
  return openCgroup({ path, id: posix.basename(path), root, mode });
}
