import { Command, Option } from '@berth/cli-kit';
import { EngineError, isRunning, mustFindRecord, runtimeFor } from '@berth/engine';
import { EngineCommand, shq } from '../base.ts';

/**
 * podman top's format descriptors (podman-top(1)) that ps(1) shows the same
 * way, with the ps keyword each one is.
 */
const descriptors: Record<string, string> = {
  user: 'user', ruser: 'ruser', group: 'group', rgroup: 'rgroup', pid: 'pid', ppid: 'ppid', pcpu: 'pcpu',
  etime: 'etime', time: 'time', tty: 'tty', comm: 'comm', args: 'args', vsz: 'vsz', rss: 'rss', nice: 'nice',
  stime: 'stime', state: 'stat', uid: 'uid', gid: 'gid', label: 'label',
};

/** podman top's default columns. */
const defaults = ['user', 'pid', 'ppid', 'pcpu', 'etime', 'tty', 'time', 'args'];

/**
 * `berth top CONTAINER [DESCRIPTOR...|ps options]`: the container's
 * processes, through the OCI runtime's `ps` (the pids in the container's
 * cgroup, shown by ps(1)), so it works the same under berth-runtime and runc.
 * The runtime finds its lines by the PID column, so one is always asked for
 * and dropped again when the user did not name it.
 */
export class TopCommand extends EngineCommand {
  static override paths = [['top'], ['container', 'top']];
  static override usage = Command.Usage({
    description: 'Show the processes of a running container',
    details: `DESCRIPTORs are podman top's: ${Object.keys(descriptors).join(', ')} (default: ${defaults.join(' ')}). Arguments starting with "-" are ps(1) options, passed on as they are (they must show a PID column).`,
    examples: [['Default columns', '$0 top web1'], ['Some columns', '$0 top web1 pid comm'], ['ps options', '$0 top web1 -o pid,rss,args']],
  });
  container = Option.String({ name: 'CONTAINER' });
  // Descriptors or ps(1) options, all of what follows the container (options included).
  args = Option.Proxy({ name: 'DESCRIPTOR' });

  override explainPipeline(): string {
    return `RUNTIME --root RUNTIME_ROOT ps ID -o pid,...   # the pids in the container's cgroup, through ps(1) (${shq(this.container)})`;
  }

  async perform(): Promise<number | undefined> {
    const rec = mustFindRecord(this.env, this.container);
    if (!isRunning(rec)) throw new EngineError('E_NOT_RUNNING', `top can only be used on running containers: ${rec.name} is not running`);
    let psArgs: string[];
    let dropPid = false;
    if (this.args.length > 0 && this.args[0]!.startsWith('-')) {
      psArgs = this.args;
    } else {
      const wanted = this.args.length > 0 ? this.args.flatMap((a) => a.split(',')).filter(Boolean) : defaults;
      const unknown = wanted.filter((d) => !Object.hasOwn(descriptors, d));
      if (unknown.length > 0) throw new EngineError('E_USAGE', `unknown top descriptor ${unknown.map((d) => `"${d}"`).join(', ')}: use ${Object.keys(descriptors).join(', ')}, or ps(1) options starting with "-"`);
      dropPid = !wanted.includes('pid');
      psArgs = ['-o', [...(dropPid ? ['pid'] : []), ...wanted.map((d) => descriptors[d]!)].join(',')];
    }
    const r = await runtimeFor(this.env, rec).call('ps', [rec.id, ...psArgs]);
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    for (const line of lines) this.out(dropPid ? line.replace(/^\s*\S+\s?/, '') : line);
    return undefined;
  }
}
