import { readFileSync, statSync } from 'node:fs';
import { totalmem } from 'node:os';
import { blockIoStats, perCpuUsage, processCgroup } from '@berth/cgroups';
import { EngineError, isRunning, type ContainerRecord } from '@berth/engine';

/**
 * One sample of a container's usage, with the field names of podman's
 * define.ContainerStats (what `--format '{{.CPUNano}}'` and friends name).
 * Everything comes from the kernel: the container's cgroup (found through
 * /proc/PID/cgroup of its init, so it does not matter which runtime placed
 * it), and /proc/PID/net/dev, which shows the interfaces of the init's
 * network namespace.
 */
export interface ContainerStats {
  ContainerID: string;
  Name: string;
  /** CPU % over the interval since the previous sample (the first: since the container started). */
  CPU: number;
  /** The mean of the CPU % samples taken so far. */
  AvgCPU: number;
  /** How many samples AvgCPU averages. */
  DataPoints: number;
  CPUNano: number;
  CPUSystemNano: number;
  /** When the sample was taken, ns since the epoch. */
  SystemNano: number;
  PerCPU: number[];
  MemUsage: number;
  MemLimit: number;
  MemPerc: number;
  NetInput: number;
  NetOutput: number;
  BlockInput: number;
  BlockOutput: number;
  PIDs: number;
  /** Same as CPUNano (podman's name for the CPU time, shown as a duration). */
  Duration: number;
}

/** A stopped container's row: podman 4.3 prints zeros for it, not an error. */
export function zeroStats(rec: ContainerRecord): ContainerStats {
  return {
    ContainerID: rec.id, Name: rec.name, CPU: 0, AvgCPU: 0, DataPoints: 0, CPUNano: 0, CPUSystemNano: 0, SystemNano: 0, PerCPU: [],
    MemUsage: 0, MemLimit: 0, MemPerc: 0, NetInput: 0, NetOutput: 0, BlockInput: 0, BlockOutput: 0, PIDs: 0, Duration: 0,
  };
}

function nowNano(): number {
  // ms resolution is plenty for intervals of a second or more; a float of ns since 1970 keeps ~0.25 µs.
  return (performance.timeOrigin + performance.now()) * 1e6;
}

function sameNetNamespace(pid: number): boolean {
  try {
    return statSync(`/proc/${pid}/ns/net`).ino === statSync('/proc/self/ns/net').ino;
  } catch {
    return false;
  }
}

/**
 * Bytes received and sent on every interface of the process's network
 * namespace except loopback (traffic between processes of one container or
 * pod is not network I/O). A container on the host's network has no
 * namespace of its own: podman reports 0 for it, so does berth.
 */
export function readNetDev(pid: number): { rx: number; tx: number } {
  if (sameNetNamespace(pid)) return { rx: 0, tx: 0 };
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/net/dev`, 'utf8');
  } catch {
    return { rx: 0, tx: 0 };
  }
  return parseNetDev(text);
}

/** /proc/net/dev: two header lines, then "IFACE: rx_bytes packets ... (8 rx fields) tx_bytes ...". */
export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const iface = line.slice(0, colon).trim();
    if (iface === 'lo') continue;
    const fields = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (fields.length < 9) continue;
    rx += fields[0]!;
    tx += fields[8]!;
  }
  return { rx, tx };
}

/**
 * Sample a running container. `prev` is this container's previous sample
 * in this stream: CPU % is the cgroup's CPU time over the wall time between
 * the two (podman's calculateCPUPercent), so 100% is one whole CPU. The
 * first sample has no previous one and measures from the container's start,
 * as podman 4.3 does (its CPU % then equals its AVG CPU %).
 */
export function sampleContainer(rec: ContainerRecord, prev?: ContainerStats): ContainerStats {
  const pid = rec.state.pid;
  if (!isRunning(rec) || pid === undefined) return zeroStats(rec);
  const cg = processCgroup(pid);
  const s = cg.stats();
  const systemNano = nowNano();
  const cpuNano = s.cpu?.usageNs ?? 0;
  const startedNano = Date.parse(rec.state.startedAt ?? rec.created) * 1e6;
  const prevCpu = prev && prev.SystemNano > 0 ? prev.CPUNano : 0;
  const prevSystem = prev && prev.SystemNano > 0 ? prev.SystemNano : startedNano;
  const cpuDelta = cpuNano - prevCpu;
  const systemDelta = systemNano - prevSystem;
  const cpu = cpuDelta > 0 && systemDelta > 0 ? (cpuDelta / systemDelta) * 100 : 0;
  const points = prev?.DataPoints ?? 0;
  const avg = ((prev?.AvgCPU ?? 0) * points + cpu) / (points + 1);
  // The limit the container can really reach: the cgroup's, or the host's memory when that is lower or there is none.
  const host = totalmem();
  const limit = s.memory?.limit == null || s.memory.limit > host ? host : s.memory.limit;
  const usage = s.memory?.usage ?? 0;
  const net = readNetDev(pid);
  const blk = blockIoStats(cg);
  const pids = s.pids?.current ?? cg.pids().length;
  return {
    ContainerID: rec.id, Name: rec.name, CPU: cpu, AvgCPU: avg, DataPoints: points + 1,
    CPUNano: cpuNano, CPUSystemNano: s.cpu?.systemNs ?? 0, SystemNano: systemNano, PerCPU: perCpuUsage(cg) ?? [],
    MemUsage: usage, MemLimit: limit, MemPerc: limit > 0 ? (usage / limit) * 100 : 0,
    NetInput: net.rx, NetOutput: net.tx, BlockInput: blk?.readBytes ?? 0, BlockOutput: blk?.writeBytes ?? 0,
    PIDs: pids, Duration: cpuNano,
  };
}

/**
 * A container that runs in its monitor's cgroup has none of its own (an
 * ordinary user's runtime without a delegated cgroup): its counters would
 * be those of the user's session, so they are refused by name.
 */
export function checkOwnCgroup(rec: ContainerRecord): void {
  const pid = rec.state.pid;
  const monitor = rec.state.monitorPid;
  if (pid === undefined || monitor === undefined || !isRunning(rec)) return;
  let mine: string;
  let theirs: string;
  try {
    mine = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    theirs = readFileSync(`/proc/${monitor}/cgroup`, 'utf8');
  } catch {
    return;
  }
  if (mine === theirs) {
    throw new EngineError('E_NO_CGROUP', `container ${rec.name} has no cgroup of its own (it shares its monitor's: ${mine.trim().split('\n')[0]}): the runtime could not create one, so there are no counters to show`);
  }
}

// podman prints sizes and durations with Go libraries; these give the same text.

const DECIMAL = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

/** Go's %.4g: four significant digits, trailing zeros dropped. */
function g4(n: number): string {
  const s = n.toPrecision(4);
  return s.includes('e') ? String(Number(s)) : s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

function scaled(n: number, base: number, units: string[]): string {
  let v = n;
  let i = 0;
  while (v >= base && i < units.length - 1) { v /= base; i++; }
  return `${g4(v)}${units[i]}`;
}

/** go-units HumanSizeWithPrecision(n, 4): "249.9kB", "67.11MB", "0B". */
export function humanSizeGo(n: number): string {
  return scaled(n, 1000, DECIMAL);
}

/** go-units BytesSize: "244KiB", "64MiB". */
export function bytesSizeGo(n: number): string {
  return scaled(n, 1024, BINARY);
}

function frac(whole: bigint, rest: bigint, digits: number): string {
  const f = rest.toString().padStart(digits, '0').replace(/0+$/, '');
  return f === '' ? whole.toString() : `${whole}.${f}`;
}

/** Go's time.Duration String: "0s", "76.774464ms", "2.651656516s", "1m3.5s", "2h0m1s". */
export function goDuration(nanos: number): string {
  const ns = BigInt(Math.max(0, Math.round(nanos)));
  if (ns === 0n) return '0s';
  if (ns < 1000n) return `${ns}ns`;
  if (ns < 1_000_000n) return `${frac(ns / 1000n, ns % 1000n, 3)}µs`;
  if (ns < 1_000_000_000n) return `${frac(ns / 1_000_000n, ns % 1_000_000n, 6)}ms`;
  const h = ns / 3_600_000_000_000n;
  const m = (ns / 60_000_000_000n) % 60n;
  const s = frac((ns / 1_000_000_000n) % 60n, ns % 1_000_000_000n, 9);
  if (h > 0n) return `${h}h${m}m${s}s`;
  if (m > 0n) return `${m}m${s}s`;
  return `${s}s`;
}

export function percent(n: number): string {
  return `${n.toFixed(2)}%`;
}
