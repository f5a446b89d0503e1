import { BerthError, Command, Option } from '@berth/cli-kit';
import { RuntimeCommand } from '../command.ts';
import { containerCgroup } from '../cgroup.ts';
import { loadRecord, saveRecord, statusOf } from '../state.ts';

export class PauseCommand extends RuntimeCommand {
  static override paths = [['pause']];
  static override usage = Command.Usage({ description: 'Freeze every process of a running container', examples: [['Pause', 'berth-runtime pause web1']] });
  static override explain = 'pause: the cgroup freezer (v1 freezer.state FROZEN, v2 cgroup.freeze 1).';

  id = Option.String({ required: true });

  async perform(): Promise<undefined> {
    const rec = loadRecord(this.id);
    const status = statusOf(rec);
    if (status !== 'running') throw new BerthError('E_STATE', `container not running (${status})`);
    await containerCgroup(rec.cgroupsPath, rec.id).freeze();
    rec.paused = true;
    saveRecord(rec);
    return undefined;
  }
}

export class ResumeCommand extends RuntimeCommand {
  static override paths = [['resume']];
  static override usage = Command.Usage({ description: 'Thaw a paused container', examples: [['Resume', 'berth-runtime resume web1']] });
  static override explain = 'resume: the cgroup freezer (v1 freezer.state THAWED, v2 cgroup.freeze 0).';

  id = Option.String({ required: true });

  async perform(): Promise<undefined> {
    const rec = loadRecord(this.id);
    if (statusOf(rec) !== 'paused') throw new BerthError('E_STATE', 'container not paused');
    await containerCgroup(rec.cgroupsPath, rec.id).thaw();
    rec.paused = false;
    saveRecord(rec);
    return undefined;
  }
}
