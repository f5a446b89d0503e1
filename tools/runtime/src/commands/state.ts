import { Command, Option } from '@berth/cli-kit';
import { RuntimeCommand } from '../command.ts';
import { loadRecord, ociState } from '../state.ts';

export class StateCommand extends RuntimeCommand {
  static override paths = [['state']];
  static override usage = Command.Usage({
    description: 'Print the OCI state of a container (runtime.md#state)',
    examples: [['State', 'berth-runtime state web1']],
  });
  static override explain = 'state: reads ROOT/ID/state.json and derives the status: stopped when the init pid is gone (or reused), created while exec.fifo exists, else running (or paused).';

  id = Option.String({ required: true });

  async perform(): Promise<unknown> {
    return ociState(loadRecord(this.id));
  }
}
