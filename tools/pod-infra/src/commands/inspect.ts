import { Command, Option } from '@berth/cli-kit';
import { inspectPod } from '@berth/pod';
import { PodCommand } from './common.ts';

export class InspectCommand extends PodCommand {
  static override paths = [['inspect']];

  static override usage = Command.Usage({
    description: 'Show a pod: its document, status and member containers',
    examples: [['Inspect by name', 'berth-pod inspect wp_pod'], ['By short id', 'berth-pod inspect 100e138a29bd']],
  });

  static override explain = 'inspect: reads RUNROOT/pods/ID/pod.json (a name, a full id or a unique id prefix selects it) and each member\'s OCI runtime state.';

  pod = Option.String({ name: 'POD' });

  async perform(): Promise<unknown> {
    return inspectPod(this.pod, this.env);
  }
}
