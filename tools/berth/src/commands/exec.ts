import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option, log } from '@berth/cli-kit';
import { EngineError, checkExecutable, isRunning, mustFindRecord, readSpec, runningRootfs, runtimeFor } from '@berth/engine';
import { EngineCommand, shq } from '../base.ts';

/** USER[:GROUP] to numeric uid:gid through the container's own /etc/passwd and /etc/group, as podman resolves it. */
function resolveUser(rootfs: string, spec: string): string {
  const [user, group] = spec.split(':') as [string, string | undefined];
  const read = (f: string) => { try { return readFileSync(join(rootfs, f), 'utf8').split('\n').map((l) => l.split(':')); } catch { return []; } };
  let uid: string;
  let gid: string | undefined;
  if (/^\d+$/.test(user)) {
    uid = user;
    gid = read('etc/passwd').find((f) => f[2] === user)?.[3];
  } else {
    const entry = read('etc/passwd').find((f) => f[0] === user);
    if (!entry) throw new EngineError('E_USER', `unable to find user ${user}: no matching entries in passwd file`);
    uid = entry[2]!;
    gid = entry[3];
  }
  if (group !== undefined) {
    if (/^\d+$/.test(group)) gid = group;
    else {
      const g = read('etc/group').find((f) => f[0] === group);
      if (!g) throw new EngineError('E_USER', `unable to find group ${group}: no matching entries in group file`);
      gid = g[2];
    }
  }
  return `${uid}:${gid ?? '0'}`;
}

export class ExecCommand extends EngineCommand {
  static override paths = [['exec']];
  static override usage = Command.Usage({
    description: 'Run a process in a running container',
    details: '`RUNTIME exec` joins the container\'s namespaces, cgroup and security settings. Exits with the process\'s status; 126/127 when the command cannot be invoked or is not found; 125 for berth\'s own errors.',
    examples: [['Read a file in the container', '$0 exec mypress cat /etc/os-release'], ['A shell', '$0 exec -it mypress sh']],
  });
  interactive = Option.Boolean('-i,--interactive', false, { description: 'Keep stdin open' });
  tty = Option.Boolean('-t,--tty', false, { description: 'Allocate a terminal' });
  detach = Option.Boolean('-d,--detach', false, { description: 'Run in the background' });
  env_ = Option.Array('-e,--env', [], { description: 'Set an environment variable' });
  workdir = Option.String('-w,--workdir', { description: 'Working directory' });
  user = Option.String('-u,--user', { description: 'USER[:GROUP]' });
  privileged = Option.Boolean('--privileged', false, { description: 'Accepted for podman compatibility' });
  args = Option.Rest({ name: 'CONTAINER COMMAND [ARG...]' });

  runtimeArgs(): { path: string; argv: string[] } {
    const [target, ...cmd] = this.args;
    if (target === undefined || cmd.length === 0) throw new EngineError('E_USAGE', 'exec requires the name or ID of a container and a command to run');
    const rec = mustFindRecord(this.env, target);
    const rt = runtimeFor(this.env, rec);
    const flags: string[] = [];
    if (this.tty) flags.push('--tty');
    if (this.detach) flags.push('--detach');
    for (const e of this.env_) {
      const v = e.includes('=') ? e : process.env[e] === undefined ? undefined : `${e}=${process.env[e]}`;
      if (v !== undefined) flags.push('--env', v);
    }
    if (this.tty) flags.push('--env', 'TERM=xterm');
    if (this.workdir) flags.push('--cwd', this.workdir);
    if (this.user) flags.push('--user', resolveUser(runningRootfs(join(rec.bundle, 'rootfs'), readSpec(rec.bundle), rec.state.pid), this.user));
    return { path: rt.path, argv: rt.argv('exec', ...flags, rec.id, ...cmd) };
  }

  override explainPipeline(): string {
    try {
      const { path, argv } = this.runtimeArgs();
      return `${[path, ...argv].map(shq).join(' ')}   # setns into the container's namespaces, then execve`;
    } catch (err) {
      return `RUNTIME --root RUNTIME_ROOT exec ID COMMAND   # (${(err as Error).message})`;
    }
  }

  async perform(): Promise<number | undefined> {
    const { path, argv } = this.runtimeArgs();
    const rec = mustFindRecord(this.env, this.args[0]!);
    if (!isRunning(rec)) throw new EngineError('E_STATE', `can only create exec sessions on running containers: container state improper`);
    // A frozen container would leave the new process frozen too (it joins the cgroup), and the runtimes refuse it.
    if (rec.state.paused) throw new EngineError('E_STATE', `can only create exec sessions on running containers: ${rec.name} is paused (berth unpause ${rec.name} first): container state improper`);
    const spec = readSpec(rec.bundle);
    const cmd = this.args.slice(1);
    const env = [...(spec.process?.env ?? []), ...this.env_];
    if (!cmd[0]!.includes('/') || cmd[0]!.startsWith('/')) checkExecutable(runningRootfs(join(rec.bundle, 'rootfs'), spec, rec.state.pid), cmd, env);
    if (this.detach) return this.execDetached(path, argv, rec.bundle);
    log.debug(`runtime: ${path} ${argv.join(' ')}`);
    const child = spawn(path, argv, { stdio: [this.interactive || this.tty ? 'inherit' : 'ignore', 'inherit', 'inherit'] });
    const forward = (sig: NodeJS.Signals) => { if (!this.tty || sig !== 'SIGINT') child.kill(sig); };
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, forward);
    return new Promise((resolve, reject) => {
      child.on('error', (err) => reject(new EngineError('E_RUNTIME', `run ${path}: ${err.message}`)));
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 9 : 1)));
    });
  }

  /**
   * `exec -d`: the runtime starts the process and returns, and the process
   * keeps the runtime's stdio. So the runtime gets /dev/null (as podman's
   * detached exec sessions write nowhere), not berth's stdout: a caller
   * reading berth's output through a pipe would otherwise wait for the
   * process to end. The runtime's own errors go to its --log file instead,
   * which both runc and berth-runtime write as JSON lines.
   */
  private async execDetached(path: string, argv: string[], bundle: string): Promise<number> {
    const logFile = join(bundle, `exec-${process.pid}-${Date.now()}.log.json`);
    const full = ['--log', logFile, '--log-format', 'json', ...argv];
    log.debug(`runtime: ${path} ${full.join(' ')}`);
    try {
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(path, full, { stdio: 'ignore' });
        child.on('error', (err) => reject(new EngineError('E_RUNTIME', `run ${path}: ${err.message}`)));
        child.on('close', (c, signal) => resolve(c ?? (signal ? 128 + 9 : 1)));
      });
      if (code !== 0) throw new EngineError('E_RUNTIME', `${path} exec --detach: ${runtimeLogError(logFile) ?? `exit status ${code}`}`);
      return 0;
    } finally {
      rmSync(logFile, { force: true });
    }
  }
}

/** The last error a runtime wrote to its JSON --log file ({"level":"error","msg":...} lines). */
function runtimeLogError(file: string): string | undefined {
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { return undefined; }
  let msg: string | undefined;
  for (const line of text.split('\n')) {
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if ((entry.level === 'error' || entry.level === 'fatal') && entry.msg) msg = entry.msg;
    } catch { /* not a JSON line */ }
  }
  return msg;
}
