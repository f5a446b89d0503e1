import { Command, Option } from '@berth/cli-kit';
import { detectCgroupMode } from '@berth/cgroups';
import {
  EngineError, findRecord, isRootlessCaller, isRunning, listRecords, noSuchContainer, observedStatus, type ContainerRecord,
} from '@berth/engine';
import { EngineCommand, shq } from '../base.ts';
import { isTemplate, renderTemplate } from '../format.ts';
import {
  bytesSizeGo, checkOwnCgroup, goDuration, humanSizeGo, percent, sampleContainer, zeroStats, type ContainerStats,
} from '../stats-sample.ts';

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

/** podman's tabwriter (minwidth 12, padding 2): every cell but the last padded to its column. */
function tabwriter(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(12, ...rows.map((r) => (r[i] ?? '').length + 2)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('').trimEnd()).join('\n') + '\n';
}

/**
 * `berth stats [CONTAINER...]`: what podman stats shows, read from the
 * kernel each interval. A container's cgroup (the one its init is in, from
 * /proc/PID/cgroup, through @berth/cgroups: v1, hybrid or v2) gives CPU time
 * (cpuacct.usage / cpu.stat usage_usec), memory (usage_in_bytes and the
 * limit / memory.current and memory.max), block I/O (blkio / io.stat) and
 * the task count (pids.current); /proc/PID/net/dev gives the bytes of the
 * container's network namespace.
 */
export class StatsCommand extends EngineCommand {
  static override paths = [['stats'], ['container', 'stats']];
  static override explain = `
# berth stats reads the kernel's counters, no runtime call:
cat /proc/PID/cgroup                                   # the container's cgroup (PID: its init)
cat /sys/fs/cgroup/cpuacct/CG/cpuacct.usage            # CPU ns; CPU % = delta / wall-clock delta (cgroup v2: cpu.stat usage_usec)
cat /sys/fs/cgroup/memory/CG/memory.usage_in_bytes /sys/fs/cgroup/memory/CG/memory.limit_in_bytes   # v2: memory.current, memory.max
cat /sys/fs/cgroup/blkio/CG/blkio.throttle.io_service_bytes_recursive                              # v2: io.stat
cat /sys/fs/cgroup/pids/CG/pids.current
cat /proc/PID/net/dev                                  # the container's network namespace, lo left out
`;
  static override usage = Command.Usage({
    description: 'Show the resource usage of containers (podman stats)',
    details: 'CPU % is the cgroup\'s CPU time over the wall-clock time since the previous sample (the first sample: since the container started), 100% being one CPU. Without -a only running containers are shown; a stopped container named on the command line shows zeros, as podman 4.3 prints it. Streams every --interval seconds until interrupted, unless --no-stream.',
    examples: [
      ['One sample of every running container', '$0 stats --no-stream'],
      ['As JSON', '$0 stats --no-stream --format json web1'],
      ['Chosen columns', '$0 stats --no-stream --format "table {{.Name}} {{.CPUPerc}} {{.MemUsage}}"'],
    ],
  });
  all = Option.Boolean('-a,--all', false, { description: 'Show all containers (stopped ones with zeros); default only running ones' });
  latest = Option.Boolean('-l,--latest', false, { description: 'Only the newest container' });
  noStream = Option.Boolean('--no-stream', false, { description: 'One sample, then exit' });
  noReset = Option.Boolean('--no-reset', false, { description: 'Do not clear the terminal between samples' });
  noTrunc = Option.Boolean('--no-trunc', false, { description: 'Do not truncate ids' });
  interval = Option.String('-i,--interval', '5', { description: 'Seconds between samples (default 5)' });
  format = Option.String('--format', { description: 'json, table (default), or a Go template such as "table {{.Name}} {{.CPUPerc}}"' });
  containers = Option.Rest({ name: 'CONTAINER' });

  override explainPipeline(): string {
    return (StatsCommand.explain.trim() + (this.containers.length > 0 ? `\n# for ${this.containers.map(shq).join(' ')}` : ''));
  }

  async perform(): Promise<number | undefined> {
    // podman's own refusal: a v1 (or hybrid) hierarchy is root's; an ordinary
    // user's containers have no cgroup of their own there to count.
    if (isRootlessCaller() && detectCgroupMode() !== 'v2') {
      throw new EngineError('E_ROOTLESS_CGROUP', 'stats is not supported in rootless mode without cgroups v2');
    }
    const chosen = [this.all, this.latest, this.containers.length > 0].filter(Boolean).length;
    if (chosen > 1) throw new EngineError('E_USAGE', '--all, --latest and containers cannot be used together');
    if (!/^\d+$/.test(this.interval) || Number(this.interval) < 1) {
      throw new EngineError('E_USAGE', `--interval ${this.interval}: the interval is a whole number of seconds, at least 1`);
    }
    const intervalMs = Number(this.interval) * 1000;
    const format = this.format;
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
    this.context.stdout.on('error', stop);
    try {
      for (let round = 0; ; round++) {
        const recs = this.select();
        const samples = recs.map((rec) => {
          const s = this.sample(rec, previous.get(rec.id));
          previous.set(rec.id, s);
          return s;
        });
        this.print(samples, !this.noStream);
        if (this.noStream || stopping) break;
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
      this.context.stdout.off('error', stop);
    }
    return undefined;
  }

  /** The containers of this round: named ones (any state), the newest, all, or the running ones. */
  private select(): ContainerRecord[] {
    if (this.containers.length > 0) {
      return this.containers.map((name) => {
        const rec = findRecord(this.env, name);
        if (!rec) throw new EngineError('E_NO_CONTAINER', `unable to get list of containers: unable to look up container ${name}: ${noSuchContainer(name).message}`);
        return rec;
      });
    }
    const recs = listRecords(this.env);
    if (this.latest) return recs.slice(-1);
    if (this.all) return recs;
    return recs.filter((r) => observedStatus(this.env, r).status === 'running');
  }

  private sample(rec: ContainerRecord, prev: ContainerStats | undefined): ContainerStats {
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

  private print(samples: ContainerStats[], streaming: boolean): void {
    const format = this.format;
    if (format === 'json') {
      const docs = samples.map((s) => jsonDoc(s, this.noTrunc));
      // A stream is NDJSON (one array per sample, one line each); one sample is podman's indented array.
      this.out(streaming ? JSON.stringify(docs) : JSON.stringify(docs, null, 1));
      return;
    }
    const fields = samples.map((s) => templateFields(s, this.noTrunc));
    if (format !== undefined && format !== 'table') {
      const table = /^table\s+/.test(format);
      const template = format.replace(/^table\s+/, '');
      const names = [...template.matchAll(/\{\{\s*\.([A-Za-z0-9_.]*)\s*\}\}/g)].map((m) => m[1]!);
      const onlyFields = template.replace(/\{\{\s*\.[A-Za-z0-9_.]*\s*\}\}/g, '').replace(/\\t/g, '').trim() === '';
      if (table && onlyFields) {
        this.out(tabwriter([names.map(header), ...fields.map((f) => names.map((n) => renderTemplate(`{{.${n}}}`, f)))]));
        return;
      }
      const lines = fields.map((f) => renderTemplate(template, f));
      if (table) lines.unshift(template.replace(/\{\{\s*\.([A-Za-z0-9_.]*)\s*\}\}/g, (_m, n: string) => header(n)));
      this.out(lines.join('\n'));
      return;
    }
    // podman clears the screen before each table of a stream, so it redraws in place.
    if (streaming && !this.noReset) this.context.stdout.write('\x1b[2J\x1b[1;1H');
    this.out(tabwriter([DEFAULT_COLUMNS.map(([h]) => h), ...fields.map((f) => DEFAULT_COLUMNS.map(([, key]) => String(f[key])))]));
  }
}
