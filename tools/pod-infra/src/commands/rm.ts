import { Command, Option } from '@berth/cli-kit';
import { removePod } from '@berth/pod';
import { PodCommand } from './common.ts';

export class RmCommand extends PodCommand {
  static override paths = [['rm']];

  static override usage = Command.Usage({
    description: 'Remove pods: CNI DEL, the namespaces, the record',
    details: 'Refuses a pod with a running container unless --force, which kills them (SIGKILL) first. Prints `{"kind":"podRemoval","removed":[{"name","id"}]}`.',
    examples: [['Remove a pod', 'berth-pod rm wp_pod'], ['Remove it with its running containers', 'berth-pod rm --force wp_pod']],
  });

  static override explain = 'rm: runs the network\'s plugins with CNI_COMMAND=DEL in reverse order with the cached ADD result as prevResult (portmap drops its DNAT chain, bridge deletes the veth, host-local frees the address), stops the PID namespace holder, umount2(MNT_DETACH)s the namespace files so the kernel frees the namespaces, and removes RUNROOT/pods/ID. A rootless pod: SIGKILL to slirp4netns (its host ports close) and its API socket removed, then SIGKILL to the namespace holder, whose namespaces end with it.';

  force = Option.Boolean('--force,-f', false, { description: 'Remove even when containers run: kill them first' });
  pods = Option.Rest({ required: 1, name: 'POD' });

  async perform(): Promise<unknown> {
    const removed: { name: string; id: string }[] = [];
    for (const p of this.pods) {
      const doc = await removePod(p, { ...this.env, force: this.force });
      removed.push({ name: doc.name, id: doc.id });
    }
    return { kind: 'podRemoval', removed };
  }
}
