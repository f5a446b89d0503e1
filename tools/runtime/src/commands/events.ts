import { BerthError, BerthUsageError, Command, Option } from '@berth/cli-kit';
import type { CgroupStats } from '@berth/cgroups';
import { RuntimeCommand } from '../command.ts';
import { containerCgroup } from '../cgroup.ts';
import { loadRecord, statusOf, type ContainerRecord } from '../state.ts';

/** runc's stats event data (libcontainer's types): the fields cgroup files give on this host. */
export function statsData(s: CgroupStats): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  if (s.cpu) {
    data.cpu = {
      usage: { total: s.cpu.usageNs ?? 0, kernel: s.cpu.systemNs ?? 0, user: s.cpu.userNs ?? 0 },
      throttling: { periods: s.cpu.periods ?? 0, throttledPeriods: s.cpu.throttledPeriods ?? 0, throttledTime: s.cpu.throttledNs ?? 0 },
    };
  }
  if (s.memory) {
    data.memory = {
      usage: { limit: s.memory.limit ?? 0, usage: s.memory.usage, max: s.memory.maxUsage ?? 0, failcnt: s.memory.failcnt ?? 0 },
      raw: s.memory.stat,
    };
  }
  if (s.pids) data.pids = { current: s.pids.current, limit: s.pids.limit ?? 0 };
  return data;
}

function parseInterval(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value);
  if (!m) throw new BerthUsageError(`--interval ${value}: want a duration such as 5s, 500ms or 1m`);
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
  if (ms < 10) throw new BerthUsageError(`--interval ${value}: at least 10ms`);
  return ms;
}

export class EventsCommand extends RuntimeCommand {
  static override paths = [['events']];
  static override usage = Command.Usage({
    description: 'Print the container\'s resource statistics and OOM events as JSON lines',
    examples: [['One snapshot', 'berth-runtime events --stats web1'], ['Every second', 'berth-runtime events --interval 1s web1']],
  });
  static override explain = 'events: reads the container\'s cgroup counters (cpuacct/cpu.stat, memory usage and limits, pids) and prints runc\'s {"type":"stats","id","data"} lines; an increase of the OOM kill count prints {"type":"oom","id"}. It stops when the container does.';

  id = Option.String({ required: true });
  stats = Option.Boolean('--stats', false, { description: 'Print one stats event and exit' });
  interval = Option.String('--interval', '5s', { description: 'Time between stats events (default 5s)' });

  async perform(): Promise<undefined> {
    const rec = loadRecord(this.id);
    if (statusOf(rec) === 'stopped') throw new BerthError('E_STATE', `container with id ${this.id} is not running`);
    const every = parseInterval(this.interval);
    const cgroup = containerCgroup(rec.cgroupsPath, rec.id);
    const emit = (doc: unknown) => this.context.stdout.write(JSON.stringify(doc) + '\n');
    if (this.stats) {
      emit({ type: 'stats', id: rec.id, data: statsData(cgroup.stats()) });
      return undefined;
    }
    let ooms = cgroup.stats().memory?.oomKills ?? 0;
    while (this.running(rec)) {
      const s = cgroup.stats();
      const now = s.memory?.oomKills ?? 0;
      if (now > ooms) emit({ type: 'oom', id: rec.id });
      ooms = now;
      emit({ type: 'stats', id: rec.id, data: statsData(s) });
      await new Promise((r) => setTimeout(r, every));
    }
    return undefined;
  }

  private running(rec: ContainerRecord): boolean {
    return statusOf(rec) !== 'stopped';
  }
}
