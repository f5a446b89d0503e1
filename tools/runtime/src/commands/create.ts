import { Command, Option, t } from '@berth/cli-kit';
import { RuntimeCommand } from '../command.ts';
import { createContainer } from '../main-process.ts';

export class CreateCommand extends RuntimeCommand {
  static override paths = [['create']];
  static override usage = Command.Usage({
    description: 'Create a container from an OCI bundle; its process waits for `start`',
    details: 'Reads BUNDLE/config.json, builds the namespaces, rootfs, cgroup and process, and leaves the init waiting on ROOT/ID/exec.fifo. Like `runc create`.',
    examples: [['Create a container', 'berth-runtime create --bundle /tmp/bundle web1']],
  });
  static override explain = `create: util-linux unshare/nsenter put the init stage into new (or joined) user and pid
namespaces, then Node unshares mount/uts/ipc/net/cgroup, writes the id maps (from the runtime side),
joins the cgroup, mounts config.json's mounts, makes /dev, pivot_root(2)s into the rootfs, applies
masked/read-only paths, hostname, sysctls and rlimits, and blocks opening exec.fifo for writing.`;

  id = Option.String({ required: true });
  bundle = Option.String('-b,--bundle', '.', { description: 'Path to the bundle (default: the current directory)' });
  pidFile = Option.String('--pid-file', { description: 'Write the init process pid to this file' });
  consoleSocket = Option.String('--console-socket', { description: 'Unix socket that receives the pty master (SCM_RIGHTS)' });
  preserveFds = Option.String('--preserve-fds', '0', { description: 'Pass this many extra fds (3..) into the container', validator: t.isNumber() });
  noPivot = Option.Boolean('--no-pivot', false, { description: 'Use MS_MOVE + chroot instead of pivot_root (only for ramfs roots)' });
  noNewKeyring = Option.Boolean('--no-new-keyring', false, { description: 'Accepted for runc compatibility (no session keyring is made)' });

  async perform(): Promise<undefined> {
    await createContainer({
      id: this.id, bundle: this.bundle, pidFile: this.pidFile, consoleSocket: this.consoleSocket,
      preserveFds: this.preserveFds, noPivot: this.noPivot, foreground: false,
    });
    return undefined;
  }
}
