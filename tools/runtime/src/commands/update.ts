import { readFileSync } from 'node:fs';
import { BerthError, BerthUsageError, Command, Option } from '@berth/cli-kit';
import { validateResources } from '@berth/cgroups';
import type { LinuxResources } from '@berth/oci-spec';
import { RuntimeCommand } from '../command.ts';
import { containerCgroup } from '../cgroup.ts';
import { loadRecord, saveRecord, statusOf } from '../state.ts';

/** A byte count with runc's optional unit suffix (k, m, g, t; binary multiples), or -1 for unlimited. */
export function parseBytes(flag: string, value: string): number {
  const m = /^(-1|\d+)([kmgt]?)b?$/i.exec(value.trim());
  if (!m) throw new BerthUsageError(`${flag} ${value}: want a byte count such as 268435456, 256m or 1g`);
  const units: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return m[1] === '-1' ? -1 : Number(m[1]) * units[m[2]!.toLowerCase()]!;
}

function parseInteger(flag: string, value: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new BerthUsageError(`${flag} ${value}: want an integer`);
  return Number(value);
}

export class UpdateCommand extends RuntimeCommand {
  static override paths = [['update']];
  static override usage = Command.Usage({
    description: 'Change the resource limits of a running container',
    details: 'Flags as runc\'s; or -r FILE (or -) with a linux.resources JSON object. Only what is given changes.',
    examples: [
      ['Memory and pids', 'berth-runtime update --memory 256m --pids-limit 100 web1'],
      ['From JSON on stdin', 'echo \'{"cpu":{"quota":50000,"period":100000}}\' | berth-runtime update -r - web1'],
    ],
  });
  static override explain = 'update: writes the given linux.resources (config-linux.md#control-groups) to the container\'s cgroup files through @berth/cgroups (memory.limit_in_bytes or memory.max, cpu.cfs_quota_us or cpu.max, pids.max, ...), and keeps them in the container\'s state.';

  id = Option.String({ required: true });
  resources = Option.String('-r,--resources', { description: 'A JSON file with linux.resources ("-" for stdin)' });
  memory = Option.String('--memory', { description: 'Memory limit in bytes (units k, m, g)' });
  memoryReservation = Option.String('--memory-reservation', { description: 'Memory soft limit in bytes' });
  memorySwap = Option.String('--memory-swap', { description: 'Memory plus swap limit in bytes (-1: unlimited)' });
  cpuShares = Option.String('--cpu-share', { description: 'CPU shares (relative weight)' });
  cpuQuota = Option.String('--cpu-quota', { description: 'CPU CFS quota in microseconds per period' });
  cpuPeriod = Option.String('--cpu-period', { description: 'CPU CFS period in microseconds' });
  cpusetCpus = Option.String('--cpuset-cpus', { description: 'CPUs the container may use (0-3, 0,1)' });
  cpusetMems = Option.String('--cpuset-mems', { description: 'Memory nodes the container may use' });
  pidsLimit = Option.String('--pids-limit', { description: 'Maximum number of pids (-1 or 0: unlimited)' });
  blkioWeight = Option.String('--blkio-weight', { description: 'Block IO weight (10-1000)' });

  async perform(): Promise<undefined> {
    const rec = loadRecord(this.id);
    const status = statusOf(rec);
    if (status === 'stopped') throw new BerthError('E_STATE', `container ${this.id} is not running`);
    const r = this.resources !== undefined ? this.fromJson(this.resources) : {};
    const mem = (k: 'limit' | 'reservation' | 'swap', v: string | undefined, flag: string) => {
      if (v !== undefined) r.memory = { ...r.memory, [k]: parseBytes(flag, v) };
    };
    mem('limit', this.memory, '--memory');
    mem('reservation', this.memoryReservation, '--memory-reservation');
    mem('swap', this.memorySwap, '--memory-swap');
    const cpu = (k: 'shares' | 'quota' | 'period', v: string | undefined, flag: string) => {
      if (v !== undefined) r.cpu = { ...r.cpu, [k]: parseInteger(flag, v) };
    };
    cpu('shares', this.cpuShares, '--cpu-share');
    cpu('quota', this.cpuQuota, '--cpu-quota');
    cpu('period', this.cpuPeriod, '--cpu-period');
    if (this.cpusetCpus !== undefined) r.cpu = { ...r.cpu, cpus: this.cpusetCpus };
    if (this.cpusetMems !== undefined) r.cpu = { ...r.cpu, mems: this.cpusetMems };
    if (this.pidsLimit !== undefined) {
      const n = parseInteger('--pids-limit', this.pidsLimit);
      r.pids = { limit: n <= 0 ? -1 : n };
    }
    if (this.blkioWeight !== undefined) r.blockIO = { ...r.blockIO, weight: parseInteger('--blkio-weight', this.blkioWeight) };
    if (Object.keys(r).length === 0) throw new BerthUsageError('update: give at least one resource flag or --resources');
    validateResources(r);
    containerCgroup(rec.cgroupsPath, rec.id).apply(r);
    // Kept in the state, so a later update or `events --stats` starts from what is in force.
    const linux = rec.config.linux ?? {};
    const old = linux.resources ?? {};
    linux.resources = {
      ...old, ...r,
      ...(r.memory ? { memory: { ...old.memory, ...r.memory } } : {}),
      ...(r.cpu ? { cpu: { ...old.cpu, ...r.cpu } } : {}),
      ...(r.blockIO ? { blockIO: { ...old.blockIO, ...r.blockIO } } : {}),
    };
    rec.config.linux = linux;
    saveRecord(rec);
    return undefined;
  }

  private fromJson(file: string): LinuxResources {
    let text: string;
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (err) {
      throw new BerthError('E_RESOURCES', `--resources ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new BerthError('E_RESOURCES', `--resources ${file}: not JSON: ${(err as Error).message}`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new BerthError('E_RESOURCES', `--resources ${file}: want a linux.resources object`);
    return doc as LinuxResources;
  }
}
