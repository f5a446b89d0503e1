import { Command, Option } from '@berth/cli-kit';
import { EngineCommand, shq } from '../base.ts';

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
    // The samplers (and @berth/cgroups) load only when stats runs, not with every berth start.
    return (await import('../stats-run.ts')).runStats(this);
  }
}
