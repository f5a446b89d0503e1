import { Command, Option } from '@berth/cli-kit';
import { EngineError, followLog, isRunning, logSize, mustFindRecord, paths, readLog, readRecord, type LogLine } from '@berth/engine';
import { EngineCommand, shq } from '../base.ts';

export class LogsCommand extends EngineCommand {
  static override paths = [['logs']];
  static override usage = Command.Usage({
    description: 'Show a container\'s output',
    details: 'Reads ROOT/containers/ID/ctr.log, which the monitor (conmon) writes in the k8s-file format: stdout lines go to stdout, stderr lines to stderr.',
    examples: [['The last 10 lines, then follow', '$0 logs --tail 10 -f web']],
  });
  follow = Option.Boolean('-f,--follow', false, { description: 'Keep printing new output until the container stops' });
  tail = Option.String('--tail', { description: 'Only the last N lines' });
  timestamps = Option.Boolean('-t,--timestamps', false, { description: 'Prefix each line with its time' });
  container = Option.String({ name: 'CONTAINER' });

  override explainPipeline(): string {
    const rec = mustFindRecord(this.env, this.container);
    return `cat ${shq(paths.log(this.env, rec.id))}   # k8s-file: TIME STREAM F|P TEXT, written by conmon`;
  }

  async perform(): Promise<number | undefined> {
    const rec = mustFindRecord(this.env, this.container);
    const file = paths.log(this.env, rec.id);
    const tail = this.tail === undefined ? undefined : Number(this.tail);
    if (tail !== undefined && !(Number.isInteger(tail))) throw new EngineError('E_USAGE', `--tail ${this.tail}: not a number of lines`);
    const emit = (l: LogLine) => {
      const text = (this.timestamps ? `${l.time} ` : '') + l.text + '\n';
      (l.stream === 'stderr' ? process.stderr : process.stdout).write(text);
    };
    const start = logSize(file);
    let lines = readLog(file);
    if (tail !== undefined && tail >= 0) lines = lines.slice(Math.max(0, lines.length - tail));
    for (const l of lines) emit(l);
    if (this.follow) {
      await followLog(file, start, emit, () => {
        const now = readRecord(this.env, rec.id);
        return now !== undefined && isRunning(now);
      });
    }
    return undefined;
  }
}
