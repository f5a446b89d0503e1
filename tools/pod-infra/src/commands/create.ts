import { Command, Option } from '@berth/cli-kit';
import { createPod } from '@berth/pod';
import { PodCommand } from './common.ts';

export class CreateCommand extends PodCommand {
  static override paths = [['create']];

  static override usage = Command.Usage({
    description: 'Create a pod: shared namespaces, a CNI network attachment and published ports',
    details: `
      Creates the pod's network, IPC and UTS namespaces (bind-mounted under RUNROOT/pods/ID/ns, no process needed), sets the pod's hostname, attaches the network namespace to a CNI network (the default \`berth\` network: bridge berth0, 10.89.0.0/24, masquerade, portmap, firewall) and maps the published ports. Prints the pod document that \`berth-bundle --pod\` reads. As an ordinary user a detached catatonit in a user namespace mapping the user's subordinate range holds the namespaces, and the document names its /proc/PID/ns files, \`user\` included; the network is \`slirp4netns\` (the default: tap0 10.0.2.100/24 in the pod, published ports forwarded by slirp4netns on the host; needs /dev/net/tun openable by the user), \`none\` or \`host\`.
    `,
    examples: [
      ['Create the guide\'s WordPress pod', 'berth-pod create --name wp_pod --publish 8080:80'],
      ['A pod reachable only from this host', 'berth-pod create --name web -p 127.0.0.1:8080:80'],
      ['A pod without network, sharing a PID namespace too', 'berth-pod create --name batch --network none --share net,ipc,uts,pid'],
      ['As an ordinary user: slirp4netns, port 8080 forwarded', 'berth-pod create --name site -p 8080:80'],
    ],
  });

  static override explain = `
create: unshare(1) --net=FILE --ipc=FILE --uts=FILE makes three namespaces and bind-mounts their /proc/PID/ns files, which keeps them alive without a process (namespaces(7)); inside, sethostname(2) names the pod and loopback goes up. With --share pid, catatonit -P runs as PID 1 of a new PID namespace, because a PID namespace dies with its init. Then, as a CNI runtime (CNI spec 1.0), berth-pod execs each plugin of the network's conflist in order with CNI_COMMAND=ADD, CNI_NETNS=the net file, CNI_IFNAME=eth0 and the plugin config on stdin, each one's result passed to the next as prevResult: bridge makes a veth pair into berth0 and host-local assigns the address, portmap adds DNAT rules for --publish (with route_localnet so 127.0.0.1 works), firewall opens FORWARD. The last result is cached for CHECK and DEL. Rootless: bind mounts need root, so unshare --user --map-root-user --map-users=START,1,COUNT --map-groups=... --net --ipc --uts [--pid --fork] catatonit -P keeps the namespaces alive instead, user namespace first so its root (the user) owns the others; rm kills it. Rootless --network slirp4netns: slirp4netns(1) enters the holder's user and network namespaces, opens /dev/net/tun and makes tap0 there (10.0.2.100/24, route via 10.0.2.2, DNS 10.0.2.3), then relays the tap's packets through the user's own sockets on the host; each --publish is an add_hostfwd request on its API socket (a listening socket of the user's, forwarded to 10.0.2.100:PORT).`;

  name = Option.String('--name', { description: 'Pod name (unique; default pod_<short id>)' });
  publish = Option.Array('--publish,-p', { description: 'Publish a port: [HOSTIP:]HOSTPORT:PORT[/tcp|udp], repeatable' });
  network = Option.String('--network', { description: 'bridge (root\'s default), slirp4netns (an ordinary user\'s default), none, host, or the name of a network in --cni-config-dir' });
  share = Option.String('--share', { description: 'Namespaces to share, comma-separated: net,ipc,uts (default) and pid' });
  hostname = Option.String('--hostname', { description: 'The pod\'s hostname (default: the pod name)' });

  async perform(): Promise<unknown> {
    return createPod({
      ...this.env,
      ...(this.name !== undefined ? { name: this.name } : {}),
      publish: this.publish ?? [],
      ...(this.network !== undefined ? { network: this.network } : {}),
      ...(this.share !== undefined ? { share: [this.share] } : {}),
      ...(this.hostname !== undefined ? { hostname: this.hostname } : {}),
    });
  }
}
