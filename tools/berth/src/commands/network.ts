import { Command, Option, log } from '@berth/cli-kit';
import { EngineError, isRunning, listRecords, type ContainerRecord } from '@berth/engine';
import { EngineCommand, eachTarget, lifecycle, removalExit, shq } from '../base.ts';
import { confirm, isTemplate, renderTemplate, tabwriter } from '../format.ts';
import { combineFilters, danglingWanted, labelMatches, nameRegex, parseKeyValues } from '../filters.ts';

/**
 * `berth network ...`: podman's networks with its CNI backend
 * (podman-network(1)). A network is one NAME.conflist in
 * /etc/berth/cni/net.d (the bridge plugin with a bridge device of its own,
 * host-local with the subnet, portmap, firewall), plus the built-in default
 * `berth` (berth0, 10.89.0.0/24). A pod, or a container run with
 * `--network NAME` (which gets a pod of its own), is attached to it by CNI
 * ADD; these verbs only read and write the files, and rm also takes away
 * the bridge the plugin left and the lease directory. @berth/cni's
 * network-store.ts and @berth/pod's network-use.ts do the work.
 */

type PodLib = typeof import('@berth/pod');
const podLib = (): Promise<PodLib> => import('@berth/pod');
type StoredNetwork = import('@berth/pod').StoredNetwork;
type NetworkInfo = import('@berth/pod').NetworkInfo;

/** What an ordinary user is told by the verbs that change networks. */
const ROOTLESS_REFUSAL = 'CNI networks change the host\'s network (a bridge, iptables rules) and need root: run this as root; an ordinary user\'s containers and pods get a private network from slirp4netns (--network slirp4netns, the default with -p) or use --network none|host';

/** The fields podman's templates see (Go names), so `{{.Name}}`, `{{.ID}}`, `{{.NetworkInterface}}` work. */
function templateView(n: NetworkInfo, noTrunc = true): Record<string, unknown> {
  return {
    Name: n.name, ID: noTrunc ? n.id : n.id.slice(0, 12), Driver: n.driver, NetworkInterface: n.network_interface, Created: n.created,
    Subnets: n.subnets ?? [], IPv6Enabled: n.ipv6_enabled, Internal: n.internal, DNSEnabled: n.dns_enabled,
    Labels: n.labels ?? {}, Options: n.options ?? {}, IPAMOptions: n.ipam_options,
  };
}

/** `--filter KEY=VALUE` of ls and prune, combined as podman does (filters.ts). */
function networkFilters(exprs: readonly string[], allowed: readonly string[]): (n: StoredNetwork, used: () => boolean) => boolean {
  return combineFilters<[StoredNetwork, () => boolean]>(exprs, allowed, 'network', (key, value) => {
    switch (key) {
      case 'name': { const re = nameRegex(value); return (n) => re.test(n.info.name); }
      case 'id': return (n) => n.info.id.startsWith(value);
      case 'driver': return (n) => n.info.driver === value;
      case 'label': return (n) => labelMatches(n.info.labels, value);
      case 'label!': return (n) => !labelMatches(n.info.labels, value);
      case 'dangling': { const want = danglingWanted(value); return (_n, used) => !used() === want; }
      default: throw new EngineError('E_USAGE', `${JSON.stringify(key)} is an invalid network filter`);
    }
  });
}

/** Who uses a network: pods of this run root on it, their containers, and veths on its bridge that none of them accounts for. */
interface NetworkUsers {
  pods: { id: string; name: string }[];
  containers: ContainerRecord[];
  /** Interfaces on the bridge beyond one per pod of ours: pods of another run root or another engine. */
  foreign: number;
}

async function networkUsers(runRoot: string, n: StoredNetwork, records?: ContainerRecord[]): Promise<NetworkUsers> {
  const { podsOnNetwork, bridgePorts } = await podLib();
  const pods = await podsOnNetwork(n.info.name, { runRoot });
  const ids = new Set(pods.map((p) => p.id));
  const containers = (records ?? []).filter((r) => r.pod !== undefined && ids.has(r.pod.id));
  return { pods, containers, foreign: Math.max(0, bridgePorts(n.bridge).length - pods.length) };
}

function noSuchNetwork(name: string): EngineError {
  return new EngineError('E_NO_NETWORK', `unable to find network with name or ID ${name}: network not found`);
}

export class NetworkCreateCommand extends EngineCommand {
  static override paths = [['network', 'create']];
  static override usage = Command.Usage({
    description: 'Create a bridge network (a CNI conflist)',
    details: `
      Writes NAME.conflist into /etc/berth/cni/net.d, as podman's CNI backend writes /etc/cni/net.d/NAME.conflist: the bridge plugin with a bridge device of its own (berth1, berth2, ...; the kernel device appears when the first container attaches), host-local leasing addresses from the subnet (leases on tmpfs, /run/berth/cni/networks/NAME), portmap for -p and the firewall plugin. Without NAME the network is called berthN, the lowest N free. Without --subnet it gets the first 10.89.N.0/24 (N from 1) that no other network and no route of this host overlaps; a --subnet that overlaps either is refused. The gateway is the subnet's first address unless --gateway.

      --internal: the bridge gets no address on the host, no masquerade and no default route is given to containers, so they reach only the other containers of the network (podman's --internal). Containers join with \`berth run --network NAME\` or \`berth pod create --network NAME\`. Root only.
    `,
    examples: [
      ['A network with a free subnet, named berthN', '$0 network create'],
      ['A named one with a chosen subnet', '$0 network create --subnet 10.90.1.0/24 --gateway 10.90.1.254 --label app=web webnet'],
      ['No way out of the subnet', '$0 network create --internal backend'],
    ],
  });
  subnet = Option.String('--subnet', { description: 'IPv4 subnet in CIDR form (default: a free 10.89.N.0/24)' });
  gateway = Option.String('--gateway', { description: 'Gateway address inside the subnet (default: its first address)' });
  ipRange = Option.String('--ip-range', { description: 'Lease container addresses only from this CIDR inside the subnet' });
  internal = Option.Boolean('--internal', false, { description: 'No masquerade, no default route: containers reach only their network' });
  label = Option.Array('--label', [], { description: 'Set a label KEY=VALUE' });
  driver = Option.String('-d,--driver', 'bridge', { description: 'bridge (the only driver)' });
  ipamDriver = Option.String('--ipam-driver', { description: 'host-local (the only IPAM driver)' });
  opt = Option.Array('-o,--opt', [], { description: 'Driver option: mtu=N' });
  ipv6 = Option.Boolean('--ipv6', false, { description: 'Refused: berth networks are IPv4 only' });
  disableDns = Option.Boolean('--disable-dns', false, { description: 'Accepted: berth runs no DNS plugin, so DNS is always off (dns_enabled false)' });
  name = Option.String({ name: 'NAME', required: false });

  private options() {
    return {
      ...(this.name !== undefined ? { name: this.name } : {}), ...(this.subnet !== undefined ? { subnet: this.subnet } : {}),
      ...(this.gateway !== undefined ? { gateway: this.gateway } : {}), ...(this.ipRange !== undefined ? { ipRange: this.ipRange } : {}),
      internal: this.internal, labels: parseKeyValues(this.label, '--label'), driver: this.driver,
      ...(this.ipamDriver !== undefined ? { ipamDriver: this.ipamDriver } : {}), options: parseKeyValues(this.opt, '-o'), ipv6: this.ipv6,
    };
  }

  /** --explain shows the conflist this create would write, planned against the host as it is now (nothing is written). */
  override async execute(): Promise<number> {
    if (!this.explainFlag) return super.execute();
    const { planNetwork } = await podLib();
    let text: string;
    try {
      const plan = planNetwork(this.options());
      text = [
        `# berth network create is one file, written whole (nothing changes on the host until a container attaches):`,
        `cat > ${shq(plan.file.replace(/([^/]+)$/, '.$1.tmp'))} <<'EOF'`,
        JSON.stringify(plan.doc, null, 2),
        'EOF',
        `mv ${shq(plan.file.replace(/([^/]+)$/, '.$1.tmp'))} ${shq(plan.file)}   # rename(2): a pod sees the whole network or none`,
        `# the first attachment (berth run --network ${plan.name} ... / berth pod create --network ${plan.name}) runs CNI ADD: the bridge plugin makes the bridge device, host-local leases an address`,
      ].join('\n');
    } catch (err) {
      text = `# berth network create would refuse: ${(err as Error).message}`;
    }
    this.out(text);
    return 0;
  }

  async perform(): Promise<number | undefined> {
    if (this.env.rootless) throw new EngineError('E_ROOTLESS', `network create: ${ROOTLESS_REFUSAL}`);
    const { createNetwork } = await podLib();
    const n = await createNetwork(this.options());
    this.out(n.info.name);
    return undefined;
  }
}

export class NetworkLsCommand extends EngineCommand {
  static override paths = [['network', 'ls'], ['network', 'list']];
  static override explain = 'cat /etc/berth/cni/net.d/*.conflist   # and the built-in default network berth (bridge berth0, 10.89.0.0/24)';
  static override usage = Command.Usage({
    description: 'List networks',
    details: 'The built-in default network (berth) and every *.conflist in /etc/berth/cni/net.d, sorted by name, with podman\'s columns (NETWORK ID, NAME, DRIVER). Filters: name=REGEX, id=PREFIX, driver=, label=KEY[=VALUE], label!=KEY[=VALUE], dangling=true|false (no pod of this run root and nothing on its bridge). The same key twice matches either value; different keys must all match.',
    examples: [['Only names', '$0 network ls -q'], ['As JSON (podman\'s inspect documents)', '$0 network ls --format json'], ['A template', '$0 network ls --format "{{.Name}} {{.NetworkInterface}}"']],
  });
  filter = Option.Array('-f,--filter', [], { description: 'name=, id=, driver=, label=, label!=, dangling=' });
  format = Option.String('--format', { description: 'json, or a Go template such as {{.Name}}' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'Print only network names' });
  noTrunc = Option.Boolean('--no-trunc', false, { description: 'Full network ids' });
  noHeading = Option.Boolean('-n,--noheading', false, { description: 'No header line' });

  async perform(): Promise<number | undefined> {
    const { listNetworks } = await podLib();
    const match = networkFilters(this.filter, ['name', 'id', 'driver', 'label', 'label!', 'dangling']);
    const all = listNetworks();
    // Who uses a network is read only when dangling= asks (the container records and a pod listing per network).
    const used = new Map<string, boolean>();
    if (this.filter.some((f) => f.startsWith('dangling='))) {
      const records = listRecords(this.env);
      for (const n of all) {
        const u = await networkUsers(this.env.runRoot, n, records);
        used.set(n.info.name, u.pods.length + u.foreign > 0);
      }
    }
    const nets = all.filter((n) => match(n, () => used.get(n.info.name) === true));
    if (this.format === 'json') { this.out(JSON.stringify(nets.map((n) => n.info), null, 2)); return undefined; }
    if (this.quiet) { if (nets.length) this.out(nets.map((n) => n.info.name).join('\n')); return undefined; }
    if (this.format !== undefined && this.format !== 'table') {
      const template = this.format.replace(/^table\s+/, '');
      if (!isTemplate(template)) throw new EngineError('E_USAGE', `--format ${this.format}: berth supports json and Go templates such as {{.Name}}`);
      const lines = nets.map((n) => renderTemplate(template, templateView(n.info, this.noTrunc)));
      if (lines.length > 0) this.out(lines.join('\n'));
      return undefined;
    }
    const rows = nets.map((n) => [this.noTrunc ? n.info.id : n.info.id.slice(0, 12), n.info.name, n.info.driver]);
    const table = this.noHeading ? rows : [['NETWORK ID', 'NAME', 'DRIVER'], ...rows];
    if (table.length > 0) this.out(tabwriter(table));
    return undefined;
  }
}

export class NetworkInspectCommand extends EngineCommand {
  static override paths = [['network', 'inspect']];
  static override explain = 'cat /etc/berth/cni/net.d/NAME.conflist   # shown as podman\'s document; the default network is built in';
  static override usage = Command.Usage({
    description: 'Show networks as JSON (an array, as podman prints it)',
    details: 'podman 4\'s keys: name, id (sha256 of the name, as podman\'s CNI backend), driver, network_interface (the bridge device), created (the conflist\'s mtime), subnets [{subnet, gateway, lease_range}], ipv6_enabled, internal, dns_enabled (always false: no DNS plugin), labels, options (mtu), ipam_options. A NAME is a name, an id or a unique id prefix; the ones found are printed, then a missing one fails the command (125).',
    examples: [['One field', '$0 network inspect --format "{{.NetworkInterface}}" webnet']],
  });
  format = Option.String('-f,--format', { description: 'json (default), or a Go template such as {{.Subnets}}' });
  names = Option.Rest({ name: 'NETWORK', required: 1 });

  async perform(): Promise<number | undefined> {
    if (this.format !== undefined && this.format !== 'json' && !isTemplate(this.format)) throw new EngineError('E_USAGE', `--format ${this.format}: berth supports json and Go templates such as {{.Name}}`);
    const { findStoredNetwork } = await podLib();
    const found: NetworkInfo[] = [];
    let missing: string | undefined;
    for (const name of this.names) {
      const n = findStoredNetwork(name);
      if (n) found.push(n.info);
      else missing ??= name;
    }
    if (this.format === undefined || this.format === 'json') this.out(JSON.stringify(found, null, 2));
    else for (const n of found) this.out(renderTemplate(this.format, templateView(n)));
    if (missing !== undefined) throw new EngineError('E_NO_NETWORK', `inspecting object: network ${missing}: unable to find network with name or ID ${missing}: network not found`);
    return undefined;
  }
}

export class NetworkRmCommand extends EngineCommand {
  static override paths = [['network', 'rm'], ['network', 'remove']];
  static override usage = Command.Usage({
    description: 'Remove networks',
    details: `
      A network a pod or container of this run root is attached to is refused (exit 2), as is one whose bridge has interfaces of pods berth does not know here (another --runroot, another engine). -f removes the containers (stopping running ones with their stop signal, then SIGKILL after -t seconds) and the pods on it first, as podman does. The default network cannot be removed (125); a missing network exits 1. Each network removed is printed; a failure does not stop the others.

      Then the conflist goes, then the bridge device the bridge plugin made (ip link delete, once nothing is attached) and host-local's lease directory, so nothing of the network stays on the host.
    `,
    examples: [['Two networks', '$0 network rm net1 net2'], ['In use: remove its containers and pods too', '$0 network rm -f webnet']],
  });
  force = Option.Boolean('-f,--force', false, { description: 'Remove the containers and pods on the network first' });
  time = Option.String('-t,--time', { description: 'Seconds to wait for a running container to stop before SIGKILL (default: its stop timeout)' });
  names = Option.Rest({ name: 'NETWORK', required: 1 });

  override explainPipeline(): string {
    return this.names.map((n) => [
      `grep -l '"networkName": "${n}"' ${shq(this.env.runRoot)}/pods/*/pod.json   # in use? refused, or (-f) berth rm -f each container of those pods, then berth pod rm -f each pod (CNI DEL)`,
      `rm /etc/berth/cni/net.d/${shq(n)}.conflist`,
      `ip link delete dev BRIDGE                  # the bridge the plugin made (berthN), once nothing is attached`,
      `rm -r /run/berth/cni/networks/${shq(n)}    # host-local's lock and last_reserved_ip, once no lease is left`,
    ].join('\n')).join('\n');
  }

  async perform(): Promise<number | undefined> {
    if (this.env.rootless) throw new EngineError('E_ROOTLESS', `network rm: ${ROOTLESS_REFUSAL}`);
    const timeout = this.time === undefined ? undefined : Number(this.time);
    if (timeout !== undefined && !(Number.isInteger(timeout) && timeout >= 0)) throw new EngineError('E_USAGE', `-t ${this.time}: not a number of seconds`);
    const failure = await eachTarget(this.names, async (name) => {
      await this.removeOne(name, timeout);
      this.out(name);
    });
    // podman's exit codes: 1 no such network, 2 in use.
    return removalExit(failure, { missing: 'E_NO_NETWORK', inUse: 'E_NETWORK_IN_USE' });
  }

  private async removeOne(name: string, timeout: number | undefined): Promise<void> {
    const lib = await podLib();
    const n = lib.findStoredNetwork(name);
    if (!n) throw noSuchNetwork(name);
    if (lib.isDefaultNetwork(n)) throw new EngineError('E_DEFAULT_NETWORK', `default network ${n.info.name} cannot be removed`);
    const users = await networkUsers(this.env.runRoot, n, listRecords(this.env));
    if (!this.force && (users.pods.length > 0 || users.foreign > 0)) {
      const who = [
        ...(users.containers.length > 0 ? [`containers ${users.containers.map((c) => c.name).join(', ')}`] : []),
        ...(users.pods.some((p) => !users.containers.some((c) => c.pod?.id === p.id)) ? [`pods ${users.pods.filter((p) => !users.containers.some((c) => c.pod?.id === p.id)).map((p) => p.name).join(', ')}`] : []),
        ...(users.foreign > 0 ? [`${users.foreign} interface(s) on bridge ${n.bridge} that no pod of this run root accounts for (another --runroot, or another engine)`] : []),
      ];
      throw new EngineError('E_NETWORK_IN_USE', `"${n.info.name}" has associated containers with it (${who.join('; ')}). Use -f to forcibly delete containers and pods: network is being used`);
    }
    if (this.force) {
      const engine = await lifecycle();
      for (const rec of users.containers) {
        if (isRunning(rec)) await engine.stopContainer(this.env, rec.id, timeout, this.exitCommand(rec.id));
        await engine.removeContainer(this.env, rec.id, { force: true });
      }
      // Pods left: the ones made with `pod create --network` (a container's own pod went with it).
      for (const p of await lib.podsOnNetwork(n.info.name, { runRoot: this.env.runRoot })) await lib.removePod(p.id, { force: true, runRoot: this.env.runRoot });
    }
    await lib.removeNetworkFile(n);
    for (const kept of lib.releaseNetwork(n, lib.listNetworks())) log.warn(`network ${n.info.name}: ${kept}`);
  }
}

export class NetworkExistsCommand extends EngineCommand {
  static override paths = [['network', 'exists']];
  static override explain = 'test -f /etc/berth/cni/net.d/NAME.conflist   # or NAME is the default network berth';
  static override usage = Command.Usage({
    description: 'Exit 0 when the network exists, 1 when it does not',
    examples: [['In a script', '$0 network exists webnet || $0 network create webnet']],
  });
  name = Option.String({ name: 'NETWORK' });
  async perform(): Promise<number | undefined> {
    const { findStoredNetwork } = await podLib();
    return findStoredNetwork(this.name) ? 0 : 1;
  }
}

export class NetworkPruneCommand extends EngineCommand {
  static override paths = [['network', 'prune']];
  static override explain = '# every network but the default that no pod of this run root uses and whose bridge has nothing attached: berth network rm NAME for each';
  static override usage = Command.Usage({
    description: 'Remove every network no container uses',
    details: 'The default network stays. A network is used when a pod or container of this run root is attached to it, or when its bridge has interfaces (pods of another run root, another engine). Asks first, as podman does, unless -f; the removed names are printed. Filters: label=KEY[=VALUE], label!=KEY[=VALUE].',
    examples: [['Without asking', '$0 network prune -f'], ['Only some', '$0 network prune -f --filter label=tmp']],
  });
  force = Option.Boolean('-f,--force', false, { description: 'Do not ask for confirmation' });
  filter = Option.Array('--filter', [], { description: 'label=KEY[=VALUE], label!=KEY[=VALUE]' });

  async perform(): Promise<number | undefined> {
    if (this.env.rootless) throw new EngineError('E_ROOTLESS', `network prune: ${ROOTLESS_REFUSAL}`);
    const lib = await podLib();
    const match = networkFilters(this.filter, ['label', 'label!']);
    const records = listRecords(this.env);
    const unused: StoredNetwork[] = [];
    for (const n of lib.listNetworks()) {
      if (lib.isDefaultNetwork(n) || !match(n, () => false)) continue;
      const u = await networkUsers(this.env.runRoot, n, records);
      if (u.pods.length === 0 && u.foreign === 0) unused.push(n);
    }
    if (!this.force) {
      process.stderr.write('WARNING! This will remove all networks not used by at least one container.\n');
      process.stderr.write(unused.map((n) => `${n.info.name}\n`).join(''));
      if (!(await confirm('Are you sure you want to continue? [y/N] '))) return undefined;
    }
    for (const n of unused) {
      await lib.removeNetworkFile(n);
      for (const kept of lib.releaseNetwork(n, lib.listNetworks())) log.warn(`network ${n.info.name}: ${kept}`);
      this.out(n.info.name);
    }
    return undefined;
  }
}
