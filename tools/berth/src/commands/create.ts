import { Command, OBJECT_NAME_RE, Option, log, tlsVerifyFlag } from '@berth/cli-kit';
import {
  EngineError, mark, paths, readRecord, splitMountFlags, volumePaths,
  type ContainerRecord, type RestartPolicy, type SplitMountFlags,
} from '@berth/engine';
import type { ResolvedImage } from '@berth/snapshots';
import { bundleOptionsFromFlags } from '@berth/bundle-generator/flags';
import type { BundleOptions } from '@berth/bundle-generator/spec';
import { EngineCommand, lifecycle, shq } from '../base.ts';
import { pullImage } from '../pull-image.ts';

export function parseRestart(value: string): RestartPolicy {
  if (value === 'no' || value === '') return { name: 'no' };
  if (value === 'always' || value === 'unless-stopped') return { name: 'always' };
  const m = /^on-failure(?::(\d+))?$/.exec(value);
  if (m) return { name: 'on-failure', maxRetries: m[1] === undefined ? 0 : Number(m[1]) };
  throw new EngineError('E_USAGE', `invalid restart policy "${value}": expected no, always, unless-stopped or on-failure[:N]`);
}

/** podman's `slirp4netns[:OPTIONS]`: a pod's network (the engine makes one), not a namespace for the bundle. */
export function isSlirpNetwork(network: string | undefined): network is string {
  return network === 'slirp4netns' || network?.startsWith('slirp4netns:') === true;
}

/**
 * A --network the engine answers with a pod of the container's own rather
 * than berth-bundle with a namespace: slirp4netns, `bridge` (the default CNI
 * network) or a network's name (`berth network create NAME`). none, host and
 * ns:PATH stay the bundle's.
 */
export function isPodNetwork(network: string | undefined): network is string {
  if (network === undefined || OTHER_MODES.has(network)) return false;
  return isSlirpNetwork(network) || OBJECT_NAME_RE.test(network);
}

/**
 * podman's network modes that are not a pod's (none, host; and those berth
 * does not have, which berth-bundle refuses by name). No network may be
 * called one of them (@berth/cni's NETWORK_MODES, checked by network create).
 */
const OTHER_MODES = new Set(['none', 'host', 'private', 'pasta', 'container', 'ns', 'default']);

/** The flags `create` and `run` share: podman's, passed on to the bundle stage. */
export abstract class ContainerCreateCommand extends EngineCommand {
  name = Option.String('--name', { description: 'Name of the container (default: a generated one)' });
  publish = Option.Array('-p,--publish', [], { description: 'Publish a port: [HOSTIP:]HOSTPORT:PORT[/tcp|udp]' });
  env_ = Option.Array('-e,--env', [], { description: 'Set an environment variable: KEY=VALUE, or KEY to pass yours' });
  envFile = Option.Array('--env-file', [], { description: 'Read KEY=VALUE lines from a file' });
  volume = Option.Array('-v,--volume', [], { description: 'A volume NAME:DST[:ro,nocopy,...] (made on first use), an anonymous volume DST, or a bind mount /SRC:DST[:ro|rw,...]' });
  mount = Option.Array('--mount', [], { description: 'type=volume[,source=NAME],target=[,ro], type=bind,source=,target=[,ro] or type=tmpfs,target=' });
  tmpfs = Option.Array('--tmpfs', [], { description: 'Mount a tmpfs: DST[:OPTIONS]' });
  workdir = Option.String('-w,--workdir', { description: 'Working directory inside the container' });
  user = Option.String('-u,--user', { description: 'USER[:GROUP], names or ids' });
  entrypoint = Option.String('--entrypoint', { description: 'Override the image Entrypoint' });
  pod = Option.String('--pod', { description: 'Run in this pod (name or id): share its network, IPC and UTS namespaces' });
  restart = Option.String('--restart', 'no', { description: 'no, always, or on-failure[:N]' });
  rm = Option.Boolean('--rm', false, { description: 'Remove the container when it exits' });
  interactive = Option.Boolean('-i,--interactive', false, { description: 'Keep stdin open' });
  tty = Option.Boolean('-t,--tty', false, { description: 'Give the container a terminal' });
  hostname = Option.String('--hostname', { description: 'Container hostname' });
  label = Option.Array('-l,--label', [], { description: 'Set a label KEY=VALUE on the container' });
  readOnly = Option.Boolean('--read-only', false, { description: 'Mount the rootfs read-only' });
  capAdd = Option.Array('--cap-add', [], { description: 'Add capabilities' });
  capDrop = Option.Array('--cap-drop', [], { description: 'Drop capabilities' });
  privileged = Option.Boolean('--privileged', false, { description: 'All capabilities, no seccomp, no masked paths' });
  securityOpt = Option.Array('--security-opt', [], { description: 'no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json' });
  memory = Option.String('-m,--memory', { description: 'Memory limit, e.g. 512m' });
  cpus = Option.String('--cpus', { description: 'CPU quota in CPUs, e.g. 1.5' });
  pidsLimit = Option.String('--pids-limit', { description: 'Maximum number of tasks' });
  ulimit = Option.Array('--ulimit', [], { description: 'NAME=SOFT[:HARD]' });
  sysctl = Option.Array('--sysctl', [], { description: 'Namespaced sysctl KEY=VALUE' });
  network = Option.String('--network,--net', { description: 'none (default without -p), host, ns:PATH, bridge or a network NAME (berth network create; root), or slirp4netns[:allow_host_loopback=true,mtu=N] (an ordinary user\'s private network; the default with -p)' });
  init = Option.Boolean('--init', false, { description: 'Run an init as PID 1 that reaps zombies and forwards signals' });
  stopTimeout = Option.String('--stop-timeout', { description: 'Seconds stop waits before SIGKILL (default 10)' });
  tlsVerify = Option.String('--tls-verify', { tolerateBoolean: true, description: 'Require HTTPS when pulling (default true)' });
  pull = Option.String('--pull', 'missing', { description: 'missing (default), always or never' });

  args = Option.Rest({ name: 'IMAGE [COMMAND [ARG...]]' });

  get imageArg(): string {
    const image = this.args[0];
    if (image === undefined) throw new EngineError('E_USAGE', `"${this.verb}" requires at least 1 arg(s), only received 0`);
    return image;
  }

  abstract get verb(): string;

  /** -v and --mount with the volumes split off (the engine makes them); host paths go on to berth-bundle. */
  mountFlags(): SplitMountFlags {
    return (this.mountFlagsCache ??= splitMountFlags(this.volume, this.mount));
  }
  private mountFlagsCache: SplitMountFlags | undefined;

  bundleOptions(): BundleOptions {
    const { volume, mount } = this.mountFlags();
    return bundleOptionsFromFlags({
      env: this.env_, envFile: this.envFile, extraEnv: this.tty ? ['TERM=xterm'] : [],
      entrypoint: this.entrypoint, workdir: this.workdir, user: this.user,
      volume, mount, tmpfs: this.tmpfs, readOnly: this.readOnly, hostname: this.hostname,
      capAdd: this.capAdd, capDrop: this.capDrop, privileged: this.privileged, securityOpt: this.securityOpt,
      memory: this.memory, cpus: this.cpus, pidsLimit: this.pidsLimit, ulimit: this.ulimit, sysctl: this.sysctl,
      network: isPodNetwork(this.network) ? undefined : this.network, init: this.init,
    }, this.args.slice(1));
  }

  labels(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const l of this.label) {
      const i = l.indexOf('=');
      out[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
    }
    return out;
  }

  /** The image from the store, pulled first when missing (podman's --pull=missing). */
  async image(): Promise<ResolvedImage> {
    if (!['missing', 'always', 'never'].includes(this.pull)) throw new EngineError('E_USAGE', `--pull ${this.pull}: expected missing, always or never`);
    let image = this.pull === 'always' ? undefined : await (await lifecycle()).resolveForRun(this.env, this.imageArg);
    if (!image) {
      if (this.pull === 'never') throw new EngineError('E_NO_IMAGE', `${this.imageArg}: image not known`);
      // A short name may have become another registry's name (registries.conf): look up what was stored.
      const pulled = await pullImage(this.env, this.imageArg, { tlsVerify: tlsVerifyFlag(this.tlsVerify), quiet: false });
      image = await (await lifecycle()).resolveForRun(this.env, pulled.reference);
      if (!image) throw new EngineError('E_NO_IMAGE', `${this.imageArg}: image not known after the pull`);
    }
    return image;
  }

  async createFromFlags(): Promise<ContainerRecord> {
    // Parse every flag before any work: a bad flag leaves nothing behind.
    const options = this.bundleOptions();
    const restart = parseRestart(this.restart);
    if (this.rm && restart.name !== 'no') throw new EngineError('E_USAGE', 'the --rm option conflicts with --restart, when the restartPolicy is not "" and "no"');
    const stopTimeout = this.stopTimeout === undefined ? undefined : Number(this.stopTimeout);
    if (stopTimeout !== undefined && !(Number.isInteger(stopTimeout) && stopTimeout >= 0)) throw new EngineError('E_USAGE', `--stop-timeout ${this.stopTimeout}: not a number of seconds`);
    // A CNI network that does not exist is told before a pull or any storage work.
    if (isPodNetwork(this.network) && !isSlirpNetwork(this.network) && this.network !== 'bridge' && !this.env.rootless) {
      const { findStoredNetwork } = await import('@berth/pod');
      if (!findStoredNetwork(this.network)) throw new EngineError('E_NO_NETWORK', `unable to find network with name or ID ${this.network}: network not found (berth network ls lists them)`);
    }
    mark('flags parsed');
    const image = await this.image();
    mark('image resolved');
    const rt = this.runtime();
    return (await lifecycle()).createContainer(this.env, rt.path, rt.root, {
      image, name: this.name, options, pod: this.pod, publish: this.publish, restart, autoRemove: this.rm,
      ...(isPodNetwork(this.network) ? { network: this.network } : {}),
      tty: this.tty, interactive: this.interactive, labels: this.labels(), stopTimeout, volumes: this.mountFlags().volumes,
    });
  }

  override explainPipeline(): string {
    const R = this.env.dataRoot;
    const rt = (() => { try { return this.runtime(); } catch { return { path: this.env.runtime, root: `${this.env.runRoot}/runtimes/${this.env.runtime}` }; } })();
    const id = this.name ?? 'ID';
    const flags: string[] = [];
    for (const e of this.env_) flags.push('-e', e);
    for (const f of this.envFile) flags.push('--env-file', f);
    let split: SplitMountFlags | undefined;
    try { split = this.mountFlags(); } catch { split = undefined; }
    for (const v of split?.volume ?? this.volume) flags.push('-v', v);
    for (const v of split?.volumes ?? []) flags.push('-v', `${volumePaths.data(this.env, v.name ?? 'ANON')}:${v.destination}${v.readOnly ? ':ro' : ''}`);
    if (this.workdir) flags.push('-w', this.workdir);
    if (this.user) flags.push('-u', this.user);
    if (this.entrypoint !== undefined) flags.push('--entrypoint', this.entrypoint);
    if (this.hostname) flags.push('--hostname', this.hostname);
    if (this.memory) flags.push('--memory', this.memory);
    const ownNetwork = this.publish.length > 0 || isPodNetwork(this.network);
    if (this.network && !isPodNetwork(this.network)) flags.push('--network', this.network);
    if (this.pod || ownNetwork) flags.push('--pod', 'pod.json');
    const img = this.args[0] ?? 'IMAGE';
    const cmd = this.args.slice(1);
    const bundle = `${paths.bundle(this.env, id)}`;
    const lines = [
      `# berth ${this.verb} is these stages (ID is the container's 64-hex id; ${id} here):`,
      `berth-pull --root ${shq(R)} ${shq(img)} > image.json              # skipped when the image is already in ${shq(R)}/images`,
      `berth-store --root ${shq(R)} prepare ${shq(id)} --image - < image.json > rootfs.json   # unpack layers once, overlay snapshot on top`,
    ];
    for (const v of split?.volumes ?? []) {
      lines.push(v.name
        ? `berth --root ${shq(R)} volume create ${shq(v.name)}   # only when missing (made on first use); the image's ${v.destination} is copied into it after the bundle`
        : `berth --root ${shq(R)} volume create   # an anonymous volume for ${v.destination}: a 64-hex name (ANON below)`);
    }
    if (this.pod) lines.push(`berth-pod inspect ${shq(this.pod)} > pod.json                 # the pod's namespace files`);
    else if (ownNetwork && this.env.rootless) lines.push(`berth-pod create --share net --network ${shq(this.network ?? 'slirp4netns')} ${this.publish.map((p) => `--publish ${shq(p)}`).join(' ')} > pod.json   # catatonit holds a user+net namespace; slirp4netns gives it tap0 (10.0.2.100/24) and forwards the ports (add_hostfwd)`);
    else if (ownNetwork) lines.push(`berth-pod create --share net${this.network ? ` --network ${shq(this.network)}` : ''} ${this.publish.map((p) => `--publish ${shq(p)}`).join(' ')} > pod.json   # a network namespace attached to the CNI network (an address from its subnet), the ports forwarded`);
    lines.push(`berth-bundle --root ${shq(R)} --name ${shq(id)} --bundle-dir ${shq(bundle)} ${flags.map(shq).join(' ')}${flags.length ? ' ' : ''}rootfs.json${cmd.length ? ' -- ' + cmd.map(shq).join(' ') : ''}   # config.json + mounted rootfs`);
    if (this.verb === 'create') {
      lines.push('# (create stops here; `berth start` runs the two steps below)');
    }
    const runtimeCall = `${shq(rt.path)} --root ${shq(rt.root)}`;
    const detached = this.verb !== 'run' || (this as unknown as { detach?: boolean }).detach === true;
    if (detached) {
      lines.push(`conmon --api-version 1 -c ${shq(id)} -u ${shq(id)} -r ${shq(rt.path)} --runtime-arg --root --runtime-arg ${shq(rt.root)} -b ${shq(bundle)} -p pidfile --exit-dir ${shq(this.env.runRoot)}/exits -l k8s-file:${shq(paths.log(this.env, id))} --exit-command berth --exit-command-arg container --exit-command-arg cleanup --exit-command-arg ${shq(id)}   # monitor: runs \`runtime create\`, keeps the log and the exit code`);
      lines.push(`${runtimeCall} start ${shq(id)}`);
    } else {
      lines.push(`${runtimeCall} run --bundle ${shq(bundle)} ${shq(id)}   # foreground: exits with the container's status`);
    }
    return lines.join('\n');
  }
}

export class CreateCommand extends ContainerCreateCommand {
  static override paths = [['create']];
  static override usage = Command.Usage({
    description: 'Create a container from an image without starting it',
    details: 'Pulls the image when missing, unpacks it onto an overlay snapshot, writes the OCI bundle and records the container. `berth start` runs it. Prints the container id.',
    examples: [['Create a named container', '$0 create --name web -e A=1 busybox httpd -f']],
  });
  get verb(): string { return 'create'; }
  async perform(): Promise<number | undefined> {
    const rec = await this.createFromFlags();
    this.out(rec.id);
    return undefined;
  }
}

export class RunCommand extends ContainerCreateCommand {
  static override paths = [['run']];
  static override usage = Command.Usage({
    description: 'Run a command in a new container',
    details: `
      create + start. With -d the container runs under its monitor (conmon) and outlives berth; its output goes to a log file (\`berth logs\`). Without -d berth runs it in the foreground and exits with its status. Exit codes as podman: 125 berth's own errors, 126 the command cannot be invoked, 127 it is not found.
    `,
    examples: [
      ['A web server in the background, port 8080 published', '$0 run -d --name web -p 8080:80 IMAGE'],
      ['A one-off command, removed afterwards', '$0 run --rm busybox echo hi'],
      ['An interactive shell', '$0 run -it busybox sh'],
      ['Join a pod and restart on exit', '$0 run -d --pod wp_pod --restart=always --name wp_db IMAGE'],
    ],
  });
  detach = Option.Boolean('-d,--detach', false, { description: 'Run in the background and print the container id' });
  get verb(): string { return 'run'; }

  async perform(): Promise<number | undefined> {
    const rec = await this.createFromFlags();
    if (this.detach) {
      try {
        await (await lifecycle()).startContainer(this.env, rec.id, this.exitCommand(rec.id));
      } catch (err) {
        if (this.rm) await (await lifecycle()).removeContainer(this.env, rec.id, { force: true }).catch(() => {});
        throw err;
      }
      this.out(rec.id);
      return undefined;
    }
    let code: number;
    try {
      code = await (await lifecycle()).runForeground(this.env, rec.id, { tty: this.tty, interactive: this.interactive });
    } catch (err) {
      if (this.rm) await (await lifecycle()).removeContainer(this.env, rec.id, { force: true }).catch(() => {});
      throw err;
    }
    if (this.rm && readRecord(this.env, rec.id)) {
      await (await lifecycle()).removeContainer(this.env, rec.id, { force: true }).catch((e: unknown) => log.warn(`removing ${rec.name}: ${(e as Error).message}`));
    }
    return code;
  }
}
