import { Command, Option } from '@berth/cli-kit';
import { RuntimeCommand } from '../command.ts';
import { startContainer } from '../main-process.ts';

export class StartCommand extends RuntimeCommand {
  static override paths = [['start']];
  static override usage = Command.Usage({
    description: 'Start a created container: run its process',
    examples: [['Start', 'berth-runtime start web1']],
  });
  static override explain = 'start: opens ROOT/ID/exec.fifo for reading, which releases the init stage blocked opening it for writing; the init drops privileges, loads seccomp and calls execve(2).';

  id = Option.String({ required: true });

  async perform(): Promise<undefined> {
    startContainer(this.id);
    return undefined;
  }
}
