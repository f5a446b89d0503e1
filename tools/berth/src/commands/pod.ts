import { Command, Option } from '@berth/cli-kit';
import { EngineError, isRunning, listRecords, type ContainerRecord } from '@berth/engine';
import { EngineCommand, lifecycle, shq } from '../base.ts';
import { ago, table } from '../format.ts';

type PodLib = typeof import('@berth/pod');
const podLib = (): Promise<PodLib> => import('@berth/pod');

function podMembers(all: ContainerRecord[], podId: string): ContainerRecord[] {
  return all.filter((r) => r.pod?.id === podId);
}

export class PodCreateCommand extends EngineCommand {
  static override paths = [['pod', 'create']];
  static override usage = Command.Usage({
    description: 'Create a pod: shared network, IPC and UTS namespaces with published ports',
    details: 'berth-pod in-process. As root: namespaces held by bind-mounted namespace files, a CNI bridge network (berth0), ports forwarded by the portmap plugin. As an ordinary user: a catatonit holder in its own user namespace keeps the namespaces, and the default network is slirp4netns (tap0 10.0.2.100/24 in the pod, ports forwarded by slirp4netns on the host), which needs /dev/net/tun openable by the user. Prints the pod id.',
    examples: [['The guide\'s pod', '$0 pod create --name wp_pod --publish 8080:80'], ['A pod without network, as an ordinary user without /dev/net/tun', '$0 pod create --name batch --network none']],
  });
  name = Option.String('-n,--name', { description: 'Pod name' });
  publish = Option.Array('-p,--publish', [], { description: '[HOSTIP:]HOSTPORT:PORT[/tcp|udp]' });
  network = Option.String('--network', { description: 'bridge (root\'s default), slirp4netns (an ordinary user\'s default), none, host, or a conflist network name' });
  share = Option.String('--share', { description: 'Namespaces to share: net,ipc,uts[,pid]' });
  hostname = Option.String('--hostname', { description: 'The pod\'s hostname' });
  infra = Option.String('--infra', { tolerateBoolean: true, description: 'Accepted for podman compatibility (berth pods need no infra container)' });
  override explainPipeline(): string {
    const how = this.env.rootless
      ? 'unshare --user --net --ipc --uts catatonit -P holds the namespaces; slirp4netns --configure --api-socket makes tap0 in them and add_hostfwd publishes each port'
      : 'unshare --net --ipc --uts onto namespace files, CNI ADD (bridge, portmap)';
    return `berth-pod --run-root ${shq(this.env.runRoot)} create${this.name ? ` --name ${shq(this.name)}` : ''}${this.network ? ` --network ${shq(this.network)}` : ''}${this.publish.map((p) => ` --publish ${shq(p)}`).join('')}   # ${how}`;
  }
  async perform(): Promise<number | undefined> {
    const { createPod } = await podLib();
    const doc = await createPod({
      name: this.name, publish: this.publish, network: this.network, runRoot: this.env.runRoot,
      share: this.share === undefined ? undefined : this.share.split(',').filter((s) => s !== ''), hostname: this.hostname,
    });
    this.out(doc.id);
    return undefined;
  }
}

export class PodListCommand extends EngineCommand {
  static override paths = [['pod', 'list'], ['pod', 'ps'], ['pod', 'ls']];
  static override explain = 'berth-pod list   # RUNROOT/pods/*/pod.json; a member runs while its runtime state.json pid does';
  static override usage = Command.Usage({ description: 'List pods' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'Print only pod ids' });
  noTrunc = Option.Boolean('--no-trunc', false, { description: 'Full ids' });
  format = Option.String('--format', { description: 'json, or table (default)' });
  async perform(): Promise<number | undefined> {
    const { listPods } = await podLib();
    const all = listRecords(this.env);
    // A pod that `run -p` made for one container is that container's network, not a pod the user made.
    const implicit = new Set(all.filter((r) => r.pod?.implicit).map((r) => r.pod!.id));
    const pods = (await listPods({ runRoot: this.env.runRoot })).filter((p) => !implicit.has(p.id));
    if (this.format === 'json') {
      this.out(JSON.stringify(pods.map((p) => ({
        Id: p.id, Name: p.name, Status: p.status, Created: p.created, InfraId: '', Networks: p.networkName ? [p.networkName] : [],
        Containers: podMembers(all, p.id).map((c) => ({ Id: c.id, Names: c.name })), NumberOfContainers: p.containers.length,
      })), null, 2));
      return undefined;
    }
    const id = (s: string) => (this.noTrunc ? s : s.slice(0, 12));
    if (this.quiet) { if (pods.length) this.out(pods.map((p) => id(p.id)).join('\n')); return undefined; }
    this.out(table(['POD ID', 'NAME', 'STATUS', 'CREATED', 'INFRA ID', '# OF CONTAINERS'],
      pods.map((p) => [id(p.id), p.name, p.status, ago(p.created), '', String(p.containers.length)])));
    return undefined;
  }
}

export class PodInspectCommand extends EngineCommand {
  static override paths = [['pod', 'inspect']];
  static override explain = 'berth-pod inspect POD';
  static override usage = Command.Usage({ description: 'Show a pod as JSON' });
  pod = Option.String({ name: 'POD' });
  async perform(): Promise<number | undefined> {
    const { inspectPod } = await podLib();
    const p = await inspectPod(this.pod, { runRoot: this.env.runRoot }).catch((err: unknown) => { throw new EngineError('E_NO_POD', `no such pod ${this.pod}`, { cause: err }); });
    const members = podMembers(listRecords(this.env), p.id);
    this.out(JSON.stringify({
      Id: p.id, Name: p.name, Created: p.created, State: p.status, Hostname: p.hostname ?? '', SharedNamespaces: p.share,
      NumContainers: p.containers.length, Containers: members.map((c) => ({ Id: c.id, Name: c.name })),
      InfraConfig: {
        PortBindings: p.ports, Networks: p.networkName ? [p.networkName] : [], NetworkMode: p.network,
        ...(p.slirp4netns ? { Slirp4netns: { Pid: p.slirp4netns.pid, APISocket: p.slirp4netns.apiSocket, Device: p.slirp4netns.device, MTU: p.slirp4netns.mtu, AllowHostLoopback: p.slirp4netns.allowHostLoopback, Running: p.slirp4netns.running } } : {}),
      },
      IP: p.ip, Namespaces: p.namespaces,
    }, null, 2));
    return undefined;
  }
}

abstract class PodsVerb extends EngineCommand {
  pods = Option.Rest({ name: 'POD', required: 1 });
  async resolvePod(nameOrId: string): Promise<{ id: string; name: string }> {
    const { inspectPod } = await podLib();
    try {
      const p = await inspectPod(nameOrId, { runRoot: this.env.runRoot });
      return { id: p.id, name: p.name };
    } catch (err) {
      throw new EngineError('E_NO_POD', `no pod with name or ID ${nameOrId} found: no such pod`, { cause: err });
    }
  }
}

export class PodStartCommand extends PodsVerb {
  static override paths = [['pod', 'start']];
  static override usage = Command.Usage({ description: 'Start every container of pods' });
  async perform(): Promise<number | undefined> {
    for (const n of this.pods) {
      const pod = await this.resolvePod(n);
      for (const c of podMembers(listRecords(this.env), pod.id)) await (await lifecycle()).startContainer(this.env, c.id, this.exitCommand(c.id));
      this.out(pod.id);
    }
    return undefined;
  }
}

export class PodStopCommand extends PodsVerb {
  static override paths = [['pod', 'stop']];
  static override usage = Command.Usage({ description: 'Stop every container of pods' });
  time = Option.String('-t,--time', { description: 'Seconds to wait before SIGKILL' });
  async perform(): Promise<number | undefined> {
    for (const n of this.pods) {
      const pod = await this.resolvePod(n);
      const timeout = this.time === undefined ? undefined : Number(this.time);
      const { stopContainer } = await lifecycle();
      await Promise.all(podMembers(listRecords(this.env), pod.id).map((c) => stopContainer(this.env, c.id, timeout, this.exitCommand(c.id))));
      this.out(pod.id);
    }
    return undefined;
  }
}

export class PodRmCommand extends PodsVerb {
  static override paths = [['pod', 'rm']];
  static override usage = Command.Usage({
    description: 'Remove pods',
    details: 'Removes the pod\'s containers too; running ones only with -f. CNI DEL, then the namespace files and the pod record go.',
  });
  force = Option.Boolean('-f,--force', false, { description: 'Remove the pod\'s containers, running or not' });
  override explainPipeline(): string {
    return this.pods.map((p) => `berth rm -f $(berth ps -aq --filter pod=${shq(p)})\nberth-pod rm ${shq(p)}   # CNI DEL, unmount namespace files`).join('\n');
  }
  async perform(): Promise<number | undefined> {
    const { removePod } = await podLib();
    for (const n of this.pods) {
      const pod = await this.resolvePod(n);
      const members = podMembers(listRecords(this.env), pod.id);
      const running = members.filter((m) => isRunning(m));
      if (!this.force && running.length > 0) {
        throw new EngineError('E_POD_RUNNING', `not all containers could be removed from pod ${pod.id}: ${running.map((m) => m.name).join(', ')} running: stop them first or use -f`);
      }
      for (const c of members) await (await lifecycle()).removeContainer(this.env, c.id, { force: true });
      await removePod(pod.id, { force: this.force, runRoot: this.env.runRoot });
      this.out(pod.id);
    }
    return undefined;
  }
}
