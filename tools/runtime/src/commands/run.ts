import { Command, Option, log, t } from '@berth/cli-kit';
import { RuntimeCommand } from '../command.ts';
import { createContainer, destroyContainer, forwardSignals, startContainer, waitExit } from '../main-process.ts';
import type { NotifyListener } from '../notify.ts';
import { loadRecord } from '../state.ts';

export class RunCommand extends RuntimeCommand {
  static override paths = [['run']];
  static override usage = Command.Usage({
    description: 'Create, start, wait for and delete a container; exits with the container\'s status',
    examples: [['Run in the foreground', 'berth-runtime run --bundle /tmp/bundle c1'], ['Run detached', 'berth-runtime run -d -b /tmp/bundle c1']],
  });
  static override explain = 'run: create + start; without --detach it forwards signals to the init, waits for it, deletes the container and exits with its status (128+N for a signal: 137 after SIGKILL or an OOM kill).';

  id = Option.String({ required: true });
  bundle = Option.String('-b,--bundle', '.', { description: 'Path to the bundle (default: the current directory)' });
  detach = Option.Boolean('-d,--detach', false, { description: 'Do not wait for the container' });
  pidFile = Option.String('--pid-file', { description: 'Write the init process pid to this file' });
  consoleSocket = Option.String('--console-socket', { description: 'Unix socket that receives the pty master (SCM_RIGHTS)' });
  preserveFds = Option.String('--preserve-fds', '0', { description: 'Pass this many extra fds (3..) into the container', validator: t.isNumber() });
  noPivot = Option.Boolean('--no-pivot', false, { description: 'Use MS_MOVE + chroot instead of pivot_root' });
  keep = Option.Boolean('--keep', false, { description: 'Do not delete the container after it exits' });
  noNewKeyring = Option.Boolean('--no-new-keyring', false, { description: 'Accepted for runc compatibility' });

  async perform(): Promise<undefined> {
    const { record, launcher } = await createContainer({
      id: this.id, bundle: this.bundle, pidFile: this.pidFile, consoleSocket: this.consoleSocket,
      preserveFds: this.preserveFds, noPivot: this.noPivot, foreground: !this.detach,
    });
    const stopForwarding = forwardSignals(record.pid);
    let notify: NotifyListener | undefined;
    try {
      notify = startContainer(this.id).notify;
    } catch (err) {
      await destroyContainer(loadRecord(this.id));
      throw err;
    }
    log.debug(`t=${Math.round(performance.now())}ms since node start: started`);
    // With NOTIFY_SOCKET, READY=1 is relayed while the container runs; a
    // detached run returns once it came (or the container ended), as `start` does.
    const ready = notify?.relayReady(record).finally(() => notify.close());
    if (this.detach) {
      await ready;
      return undefined;
    }
    // In the foreground a failed relay must not stop the wait and the delete.
    const relayed = ready?.catch((err: Error) => log.warn(`NOTIFY_SOCKET: ${err.message}`));
    const code = await waitExit(launcher, record.pid);
    await relayed;
    log.debug(`t=${Math.round(performance.now())}ms: container exited`);
    stopForwarding();
    if (!this.keep) await destroyContainer(loadRecord(this.id));
    log.debug(`t=${Math.round(performance.now())}ms: deleted`);
    process.exitCode = code;
    return undefined;
  }
}
