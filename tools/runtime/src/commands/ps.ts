import { execFileSync } from 'node:child_process';
import { Command, Option, t } from '@berth/cli-kit';
import { RuntimeCommand } from '../command.ts';
import { containerPids } from '../main-process.ts';
import { loadRecord } from '../state.ts';

export class PsCommand extends RuntimeCommand {
  static override paths = [['ps']];
  static override usage = Command.Usage({
    description: 'List the processes of a container (ps -ef filtered to its cgroup)',
    examples: [['Table', 'berth-runtime ps web1'], ['Pids as JSON', 'berth-runtime ps --format json web1']],
  });
  static override explain = 'ps: the pids in the container\'s cgroup (cgroup.procs), shown through ps(1) or as a JSON array.';

  format = Option.String('-f,--format', 'table', { validator: t.isEnum(['table', 'json'] as const), description: 'table or json' });
  id = Option.String({ required: true });
  // Everything after the id goes to ps(1), options included, as with runc
  // (`ps ID -o pid,args`); a leading `--` is dropped.
  psArgs = Option.Proxy();

  async perform(): Promise<undefined> {
    const pids = containerPids(loadRecord(this.id));
    if (this.format === 'json') {
      this.context.stdout.write(JSON.stringify(pids) + '\n');
      return undefined;
    }
    const args = this.psArgs[0] === '--' ? this.psArgs.slice(1) : this.psArgs;
    const out = execFileSync('ps', args.length ? args : ['-ef'], { encoding: 'utf8' }).split('\n');
    const header = out[0] ?? '';
    const pidCol = header.trim().split(/\s+/).indexOf('PID');
    const keep = new Set(pids.map(String));
    const lines = out.slice(1).filter((l) => l.trim() && keep.has(l.trim().split(/\s+/)[pidCol] ?? ''));
    this.context.stdout.write([header, ...lines].join('\n') + '\n');
    return undefined;
  }
}
