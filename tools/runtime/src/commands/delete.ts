import { BerthError, Command, Option } from '@berth/cli-kit';
import { RuntimeCommand } from '../command.ts';
import { destroyContainer } from '../main-process.ts';
import { loadRecord, statusOf } from '../state.ts';

export class DeleteCommand extends RuntimeCommand {
  static override paths = [['delete']];
  static override usage = Command.Usage({
    description: 'Delete a stopped (or, with --force, any) container',
    examples: [['Delete', 'berth-runtime delete web1'], ['Kill and delete', 'berth-runtime delete -f web1']],
  });
  static override explain = 'delete: SIGKILLs what is left (with --force), removes the cgroup, runs poststop hooks and removes ROOT/ID.';

  id = Option.String({ required: true });
  force = Option.Boolean('-f,--force', false, { description: 'Kill the container if it runs' });

  async perform(): Promise<undefined> {
    let rec;
    try {
      rec = loadRecord(this.id);
    } catch (err) {
      if (this.force && err instanceof BerthError && err.code === 'E_NOT_EXIST') return undefined;
      throw err;
    }
    const status = statusOf(rec);
    // A created container has not run anything yet: runc deletes it without --force.
    if (status !== 'stopped' && status !== 'created' && !this.force) {
      throw new BerthError('E_STATE', `cannot delete container ${this.id} that is not stopped: ${status}`);
    }
    await destroyContainer(rec);
    return undefined;
  }
}
