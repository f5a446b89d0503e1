import { Command, Option } from '@berth/cli-kit';
import { RuntimeCommand } from '../command.ts';
import { startContainer } from '../main-process.ts';

export class StartCommand extends RuntimeCommand {
  static override paths = [['start']];
  static override usage = Command.Usage({
    description: 'Start a created container: run its process',
    examples: [['Start', 'berth-runtime start web1']],
  });
  static override explain = 'start: opens ROOT/ID/exec.fifo for reading, which releases the init stage blocked opening it for writing; the init drops privileges, loads seccomp and calls execve(2). With NOTIFY_SOCKET (and a container created with it), start returns once the container sent READY=1, which it forwards to that socket with MAINPID, as runc does.';

  id = Option.String({ required: true });

  async perform(): Promise<undefined> {
    const { record, notify } = startContainer(this.id);
    if (notify) {
      try {
        await notify.relayReady(record);
      } finally {
        notify.close();
      }
    }
    return undefined;
  }
}
