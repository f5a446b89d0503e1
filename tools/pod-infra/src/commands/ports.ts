import { Command, Option } from '@berth/cli-kit';
import { podPorts } from '@berth/pod';
import { PodCommand } from './common.ts';

export class PortsCommand extends PodCommand {
  static override paths = [['ports'], ['port']];

  static override usage = Command.Usage({
    description: 'List a pod\'s published ports',
    details: 'Each port as podman port prints it (`80/tcp -> 0.0.0.0:8080`) and as fields.',
    examples: [['Ports of a pod', 'berth-pod ports wp_pod']],
  });

  static override explain = 'ports: the port mappings the pod handed to the portmap plugin through the portMappings capability (runtimeConfig).';

  pod = Option.String({ name: 'POD' });

  async perform(): Promise<unknown> {
    return podPorts(this.pod, this.env);
  }
}
