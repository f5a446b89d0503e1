import { Command, Option } from '@berth/cli-kit';
import { attachContainer, defaultRuntimeRoot, detachContainer } from '@berth/pod';
import { PodCommand } from './common.ts';

export class JoinCommand extends PodCommand {
  static override paths = [['join']];

  static override usage = Command.Usage({
    description: 'Record that a container runs in a pod (so rm and list know it)',
    details: 'The engine front does this for `berth run --pod`; by hand, run it after `berth-runtime create`. The runtime root tells where the container\'s state.json is.',
    examples: [['Record a berth-runtime container', 'berth-pod join wp_pod web1 --runtime-root /run/berth/runtime']],
  });

  static override explain = 'join: adds {id, runtimeRoot} to the pod record; whether it runs is read from ROOT/ID/state.json each time.';

  pod = Option.String({ name: 'POD' });
  container = Option.String({ name: 'CONTAINER' });
  runtimeRoot = Option.String('--runtime-root', defaultRuntimeRoot(), { description: 'The OCI runtime\'s --root (berth-runtime: /run/berth/runtime, or $XDG_RUNTIME_DIR/berth/runtime for an ordinary user; runc: /run/runc)' });

  async perform(): Promise<unknown> {
    return attachContainer(this.pod, this.container, this.runtimeRoot, this.env);
  }
}

export class LeaveCommand extends PodCommand {
  static override paths = [['leave']];

  static override usage = Command.Usage({
    description: 'Forget a container of a pod (after it was deleted)',
    examples: [['Forget a container', 'berth-pod leave wp_pod web1']],
  });

  static override explain = 'leave: removes the container from the pod record.';

  pod = Option.String({ name: 'POD' });
  container = Option.String({ name: 'CONTAINER' });

  async perform(): Promise<unknown> {
    return detachContainer(this.pod, this.container, this.env);
  }
}
