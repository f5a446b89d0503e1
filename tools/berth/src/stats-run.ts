/**
 * What `berth stats` does, loaded only when it runs (stats.ts holds the
 * command's flags): the samples, and podman's table, template and JSON forms.
 */
import { detectCgroupMode } from '@berth/cgroups';
import {
  EngineError, findRecord, isRootlessCaller, isRunning, listRecords, noSuchContainer, observedStatus, type ContainerRecord,
} from '@berth/engine';
import { isTemplate, renderTemplate, tabwriter } from './format.ts';
import {
  bytesSizeGo, checkOwnCgroup, goDuration, humanSizeGo, percent, sampleContainer, zeroStats, type ContainerStats,
} from './stats-sample.ts';
import type { StatsCommand } from './commands/stats.ts';

/** podman stats' columns, in its order, with the template field each one shows. */
const DEFAULT_COLUMNS: Array<[string, string]> = [
  ['ID', 'ID'], ['NAME', 'Name'], ['CPU %', 'CPUPerc'], ['MEM USAGE / LIMIT', 'MemUsage'], ['MEM %', 'MemPerc'],
  ['NET IO', 'NetIO'], ['BLOCK IO', 'BlockIO'], ['PIDS', 'PIDS'], ['CPU TIME', 'UpTime'], ['AVG CPU %', 'AVGCPU'],
];

/** Headers podman gives template fields whose name does not split into words. */
const HEADERS: Record<string, string> = {
  id: 'ID', containerid: 'ID', cpuperc: 'CPU %', cpu: 'CPU %', memusage: 'MEM USAGE / LIMIT', memusagebytes: 'MEM USAGE / LIMIT',
  memperc: 'MEM %', netio: 'NET IO', blockio: 'BLOCK IO', pids: 'PIDS', uptime: 'CPU TIME', up: 'CPU TIME', avgcpu: 'AVG CPU %',
};

function header(field: string): string {
  return HEADERS[field.toLowerCase()] ?? field.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2').toUpperCase();
}

/**
 * The fields a Go template sees, as podman's stats wrapper has them: the raw
 * define.ContainerStats numbers (CPU, CPUNano, MemLimit, NetInput, PIDs, ...)
 * and, shadowing some of them, the formatted forms (MemUsage, MemPerc,
 * CPUPerc, NetIO, BlockIO, PIDS, UpTime, AVGCPU).
 */
function templateFields(s: ContainerStats, noTrunc: boolean): Record<string, unknown> {
  const { DataPoints: _points, ...raw } = s;
  return {
    ...raw,
    ContainerStats: raw,
    ID: noTrunc ? s.ContainerID : s.ContainerID.slice(0, 12),
    CPUPerc: percent(s.CPU),
    AVGCPU: percent(s.AvgCPU),
    MemPerc: percent(s.MemPerc),
    MemUsage: `${humanSizeGo(s.MemUsage)} / ${humanSizeGo(s.MemLimit)}`,
    MemUsageBytes: `${bytesSizeGo(s.MemUsage)} / ${bytesSizeGo(s.MemLimit)}`,
    NetIO: `${humanSizeGo(s.NetInput)} / ${humanSizeGo(s.NetOutput)}`,
    BlockIO: `${humanSizeGo(s.BlockInput)} / ${humanSizeGo(s.BlockOutput)}`,
    PIDS: String(s.PIDs),
    PerCPU: `[${s.PerCPU.join(' ')}]`,
    UpTime: goDuration(s.CPUNano),
    Up: goDuration(s.CPUNano),
  };
}

/** podman's --format json document: every value a string, as podman prints them. */
function jsonDoc(s: ContainerStats, noTrunc: boolean): Record<string, string> {
  const f = templateFields(s, noTrunc);
  return {
    id: f.ID as string, name: s.Name, cpu_time: f.UpTime as string, cpu_percent: f.CPUPerc as string, avg_cpu: f.AVGCPU as string,
    mem_usage: f.MemUsage as string, mem_percent: f.MemPerc as string, net_io: f.NetIO as string, block_io: f.BlockIO as string,
    pids: f.PIDS as string,
  };
}

export async function runStats(cmd: StatsCommand): Promise<number | undefined> {
  // podman's own refusal: a v1 (or hybrid) hierarchy is root's; an ordinary
  // user's containers have no cgroup of their own there to count.
  if (isRootlessCaller() && detectCgroupMode() !== 'v2') {
    throw new EngineError('E_ROOTLESS_CGROUP', 'stats is not supported in rootless mode without cgroups v2');
  }
  const chosen = [cmd.all, cmd.latest, cmd.containers.length > 0].filter(Boolean).length;
  if (chosen > 1) throw new EngineError('E_USAGE', '--all, --latest and containers cannot be used together');
  if (!/^\d+$/.test(cmd.interval) || Number(cmd.interval) < 1) {
    throw new EngineError('E_USAGE', `--interval ${cmd.interval}: the interval is a whole number of seconds, at least 1`);
  }
  const intervalMs = Number(cmd.interval) * 1000;
  const format = cmd.format;
  if (format !== undefined && format !== 'json' && format !== 'table' && !isTemplate(format.replace(/^table\s+/, ''))) {
    throw new EngineError('E_USAGE', `--format ${format}: berth supports json, table, and Go templates such as "{{.Name}} {{.CPUPerc}}"`);
  }

  const previous = new Map<string, ContainerStats>();
  let stopping = false;
  let wake: (() => void) | undefined;
  const stop = () => { stopping = true; wake?.(); };
  // A stream ends on Ctrl-C, SIGTERM, or a reader that went away (`| head`); each is a normal end.
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  cmd.context.stdout.on('error', stop);
  try {
    for (let round = 0; ; round++) {
      const recs = select(cmd);
      const samples = recs.map((rec) => {
        const s = sample(rec, previous.get(rec.id));
        previous.set(rec.id, s);
        return s;
      });
      print(cmd, samples, !cmd.noStream);
      if (cmd.noStream || stopping) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => { clearTimeout(timer); resolve(); };
      });
      wake = undefined;
      if (stopping) break;
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    cmd.context.stdout.off('error', stop);
  }
  return undefined;
}

/** The containers of this round: named ones (any state), the newest, all, or the running ones. */
function select(cmd: StatsCommand): ContainerRecord[] {
  if (cmd.containers.length > 0) {
    return cmd.containers.map((name) => {
      const rec = findRecord(cmd.env, name);
      if (!rec) throw new EngineError('E_NO_CONTAINER', `unable to get list of containers: unable to look up container ${name}: ${noSuchContainer(name).message}`);
      return rec;
    });
  }
  const recs = listRecords(cmd.env);
  if (cmd.latest) return recs.slice(-1);
  if (cmd.all) return recs;
  return recs.filter((r) => observedStatus(cmd.env, r).status === 'running');
}

function sample(rec: ContainerRecord, prev: ContainerStats | undefined): ContainerStats {
  if (!isRunning(rec)) return zeroStats(rec);
  checkOwnCgroup(rec);
  try {
    return sampleContainer(rec, prev);
  } catch (err) {
    // It exited between the liveness check and the reads: a stopped container's row.
    if (!isRunning(rec)) return zeroStats(rec);
    throw err;
  }
}

function print(cmd: StatsCommand, samples: ContainerStats[], streaming: boolean): void {
  const format = cmd.format;
  if (format === 'json') {
    const docs = samples.map((s) => jsonDoc(s, cmd.noTrunc));
    // A stream is NDJSON (one array per sample, one line each); one sample is podman's indented array.
    cmd.out(streaming ? JSON.stringify(docs) : JSON.stringify(docs, null, 1));
    return;
  }
  const fields = samples.map((s) => templateFields(s, cmd.noTrunc));
  if (format !== undefined && format !== 'table') {
    const table = /^table\s+/.test(format);
    const template = format.replace(/^table\s+/, '');
    const names = [...template.matchAll(/\{\{\s*\.([A-Za-z0-9_.]*)\s*\}\}/g)].map((m) => m[1]!);
    const onlyFields = template.replace(/\{\{\s*\.[A-Za-z0-9_.]*\s*\}\}/g, '').replace(/\\t/g, '').trim() === '';
    if (table && onlyFields) {
      cmd.out(tabwriter([names.map(header), ...fields.map((f) => names.map((n) => renderTemplate(`{{.${n}}}`, f)))]));
      return;
    }
    const lines = fields.map((f) => renderTemplate(template, f));
    if (table) lines.unshift(template.replace(/\{\{\s*\.([A-Za-z0-9_.]*)\s*\}\}/g, (_m, n: string) => header(n)));
    cmd.out(lines.join('\n'));
    return;
  }
  // podman clears the screen before each table of a stream, so it redraws in place.
  if (streaming && !cmd.noReset) cmd.context.stdout.write('\x1b[2J\x1b[1;1H');
  cmd.out(tabwriter([DEFAULT_COLUMNS.map(([h]) => h), ...fields.map((f) => DEFAULT_COLUMNS.map(([, key]) => String(f[key])))]));
}
