import { Command, Option } from '@berth/cli-kit';
import { checkPodNetwork, inspectPod } from '@berth/pod';
import { PodCommand } from './common.ts';

export class CheckCommand extends PodCommand {
  static override paths = [['check']];

  static override usage = Command.Usage({
    description: 'Ask the CNI plugins whether the pod\'s network is still as ADD left it',
    details: 'Runs CHECK for each plugin of the pod\'s network, with the cached ADD result. Exit 1 with the plugin\'s error when something is missing (a deleted veth, a flushed chain). Prints `{"kind":"podCheck","name","id","network"}` when all plugins agree.',
    examples: [['Check a pod', 'berth-pod check wp_pod']],
  });

  static override explain = 'check: execs each plugin of the network\'s conflist in order with CNI_COMMAND=CHECK and the cached ADD result as prevResult (CNI spec 1.0, section 3); bridge verifies the veth and addresses, portmap and firewall their iptables rules.';

  pod = Option.String({ name: 'POD' });

  async perform(): Promise<unknown> {
    await checkPodNetwork(this.pod, this.env);
    const doc = await inspectPod(this.pod, this.env);
    return { kind: 'podCheck', name: doc.name, id: doc.id, network: doc.networkName ?? doc.network };
  }
}
