import { BerthError, Command, Option } from '@berth/cli-kit';
import { RuntimeCommand } from '../command.ts';
import { signalContainer } from '../main-process.ts';
import { parseSignal } from '../signals.ts';
import { loadRecord, statusOf } from '../state.ts';

export class KillCommand extends RuntimeCommand {
  static override paths = [['kill']];
  static override usage = Command.Usage({
    description: 'Send a signal to the container\'s init (default SIGTERM)',
    examples: [['Stop politely', 'berth-runtime kill web1'], ['Kill every process', 'berth-runtime kill --all web1 KILL']],
  });
  static override explain = 'kill: kill(2) on the init\'s host pid, or with --all on every pid in the container\'s cgroup.';

  id = Option.String({ required: true });
  signal = Option.String({ required: false });
  all = Option.Boolean('-a,--all', false, { description: 'Signal every process of the container' });

  async perform(): Promise<undefined> {
    const rec = loadRecord(this.id);
    const signal = parseSignal(this.signal ?? 'SIGTERM');
    if (statusOf(rec) === 'stopped' && !this.all) throw new BerthError('E_STATE', 'container not running');
    signalContainer(rec, signal, this.all);
    return undefined;
  }
}
