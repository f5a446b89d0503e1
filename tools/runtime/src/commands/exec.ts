import { readFileSync } from 'node:fs';
import { BerthError, BerthUsageError, Command, Option, t } from '@berth/cli-kit';
import { validateRuntimeSpec, type Process } from '@berth/oci-spec';
import { RuntimeCommand } from '../command.ts';
import { execProcess, forwardSignals, waitExit } from '../main-process.ts';
import { loadRecord } from '../state.ts';

export class ExecCommand extends RuntimeCommand {
  static override paths = [['exec']];
  static override usage = Command.Usage({
    description: 'Run a new process inside a running container',
    examples: [['A shell command', 'berth-runtime exec web1 -- sh -c "ps"'], ['From a process.json', 'berth-runtime exec --process p.json web1']],
  });
  static override explain = 'exec: nsenter joins the container\'s user and pid namespaces, the Node stage joins net/ipc/uts/cgroup and (after unshare(CLONE_FS)) the mount namespace with setns(2), moves into the container\'s cgroup, applies the process\'s user, caps, rlimits, no_new_privs and the container\'s seccomp profile, and execs.';

  id = Option.String({ required: true });
  command = Option.Proxy();
  processFile = Option.String('-p,--process', { description: 'A process.json (config.md#process) describing the process' });
  detach = Option.Boolean('-d,--detach', false, { description: 'Do not wait for the process' });
  tty = Option.Boolean('-t,--tty', false, { description: 'Give the process a terminal' });
  pidFile = Option.String('--pid-file', { description: 'Write the process pid to this file' });
  consoleSocket = Option.String('--console-socket', { description: 'Unix socket that receives the pty master' });
  env = Option.Array('-e,--env', [], { description: 'Add an environment variable (NAME=value)' });
  cwd = Option.String('--cwd', { description: 'Working directory inside the container' });
  user = Option.String('-u,--user', { description: 'UID[:GID] to run as' });
  additionalGids = Option.Array('-g,--additional-gids', [], { description: 'Additional group ids' });
  caps = Option.Array('-c,--cap', [], { description: 'Add a capability to the bounding, effective, permitted and ambient sets' });
  noNewPrivs = Option.Boolean('--no-new-privs', false, { description: 'Set no_new_privs' });
  preserveFds = Option.String('--preserve-fds', '0', { description: 'Pass this many extra fds (3..)', validator: t.isNumber() });

  async perform(): Promise<undefined> {
    const rec = loadRecord(this.id);
    const proc = this.buildProcess(rec.config.process);
    const { launcher, pid } = await execProcess(rec, {
      process: proc, detach: this.detach, pidFile: this.pidFile, consoleSocket: this.consoleSocket, preserveFds: this.preserveFds,
    });
    if (this.detach) return undefined;
    const stop = forwardSignals(pid);
    process.exitCode = await waitExit(launcher, pid);
    stop();
    return undefined;
  }

  private buildProcess(base: Process | undefined): Process {
    if (this.processFile) {
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(this.processFile, 'utf8'));
      } catch (err) {
        throw new BerthError('E_PROCESS', `${this.processFile}: ${(err as Error).message}`);
      }
      try {
        return validateRuntimeSpec({ ociVersion: '1.0.2', process: raw }).process!;
      } catch (err) {
        throw new BerthError('E_PROCESS', `${this.processFile}: ${(err as Error).message}`);
      }
    }
    if (this.command.length === 0) throw new BerthUsageError('exec: give a command after the container id, or --process');
    const proc: Process = structuredClone(base ?? { user: { uid: 0, gid: 0 }, cwd: '/' });
    proc.args = this.command[0] === '--' ? this.command.slice(1) : this.command;
    proc.terminal = this.tty;
    delete proc.consoleSize;
    if (this.cwd) proc.cwd = this.cwd;
    if (this.env.length) proc.env = [...(proc.env ?? []).filter((e) => !this.env.some((n) => n.split('=')[0] === e.split('=')[0])), ...this.env];
    if (this.user) {
      const [u, g] = this.user.split(':');
      if (!/^\d+$/.test(u ?? '') || (g !== undefined && !/^\d+$/.test(g))) throw new BerthUsageError(`--user ${this.user}: want UID[:GID] as numbers`);
      proc.user = { ...proc.user, uid: Number(u), gid: g === undefined ? proc.user.gid : Number(g) };
    }
    if (this.additionalGids.length) proc.user.additionalGids = this.additionalGids.map(Number);
    if (this.caps.length) {
      const c = proc.capabilities ?? {};
      for (const set of ['bounding', 'effective', 'permitted', 'ambient', 'inheritable'] as const) {
        c[set] = [...new Set([...(c[set] ?? []), ...this.caps.map((x) => x.toUpperCase())])];
      }
      proc.capabilities = c;
    }
    if (this.noNewPrivs) proc.noNewPrivileges = true;
    return proc;
  }
}
