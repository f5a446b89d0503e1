import { Command, Option } from '@berth/cli-kit';
import { EngineError, findImage, findRecord, observedStatus, paths, readSpec, type ContainerRecord, type EngineEnv, type ImageSummary } from '@berth/engine';
import { EngineCommand } from '../base.ts';
import { isTemplate, renderTemplate } from '../format.ts';

export function inspectContainer(env: EngineEnv, r: ContainerRecord): Record<string, unknown> {
  const s = observedStatus(env, r);
  let spec: unknown;
  try { spec = readSpec(r.bundle); } catch { spec = undefined; }
  return {
    Id: r.id, Name: r.name, Created: r.created, Path: r.command[0] ?? '', Args: r.command.slice(1),
    State: {
      Status: s.status, Running: s.status === 'running', Paused: s.status === 'paused', Pid: s.status === 'running' || s.status === 'paused' ? r.state.pid ?? 0 : 0,
      ExitCode: s.exitCode ?? 0, StartedAt: r.state.startedAt ?? '', FinishedAt: r.state.finishedAt ?? '',
      ConmonPid: r.state.monitorPid ?? 0, Restarts: r.state.restartCount,
    },
    Image: r.image.id, ImageName: r.image.reference ?? '', ImageDigest: r.image.manifest,
    Pod: r.pod?.id ?? '', PodName: r.pod?.name ?? '',
    OCIRuntime: r.runtime, OCIRuntimeRoot: r.runtimeRoot, Bundle: r.bundle, LogPath: paths.log(env, r.id),
    RestartCount: r.state.restartCount,
    // podman's MountPoint: volumes (named and anonymous) and -v/--mount binds; tmpfs mounts are not listed, as in podman.
    Mounts: (r.mounts ?? []).map((m) => ({
      Type: m.type, ...(m.type === 'volume' ? { Name: m.name } : {}), Source: m.source, Destination: m.destination,
      Driver: m.type === 'volume' ? 'local' : '', Mode: '', Options: m.options, RW: m.rw, Propagation: m.propagation,
    })),
    HostConfig: { RestartPolicy: { Name: r.restart.name, MaximumRetryCount: r.restart.name === 'on-failure' ? r.restart.maxRetries : 0 }, AutoRemove: r.autoRemove, PortBindings: r.ports },
    Config: { Labels: r.labels, StopSignal: r.stopSignal, StopTimeout: r.stopTimeout, Tty: r.tty, OpenStdin: r.interactive },
    Spec: spec,
  };
}

/** podman's NetworkSettings with nothing attached (--network none or host, or a pod that is gone). */
const NO_NETWORK = {
  EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0,
  MacAddress: '', Bridge: '', SandboxID: '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0,
  Ports: {} as Record<string, Array<{ HostIp: string; HostPort: string }>>, SandboxKey: '',
};

/**
 * podman's NetworkSettings, from the pod whose network namespace the
 * container is in (its own one-container pod for -p/--network NAME, or the
 * pod it joined): the address the CNI ADD gave it, the gateway, the
 * published ports, the namespace file as SandboxKey, and one entry under
 * Networks for the CNI network, where scripts read
 * `{{.NetworkSettings.IPAddress}}`. The prefix length is the network's subnet's.
 */
export async function networkSettings(env: EngineEnv, r: ContainerRecord): Promise<typeof NO_NETWORK & { Networks?: Record<string, unknown> }> {
  if (!r.pod) return NO_NETWORK;
  const lib = await import('@berth/pod');
  let pod: Awaited<ReturnType<typeof lib.inspectPod>>;
  try {
    pod = await lib.inspectPod(r.pod.id, { runRoot: env.runRoot });
  } catch {
    return NO_NETWORK;
  }
  const Ports: typeof NO_NETWORK.Ports = {};
  for (const p of pod.ports) (Ports[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIP, HostPort: String(p.hostPort) });
  const subnet = pod.networkName === undefined ? undefined : lib.findStoredNetwork(pod.networkName)?.info.subnets?.[0]?.subnet;
  const endpoint = {
    EndpointID: '', Gateway: pod.gateway ?? '', IPAddress: pod.ip ?? '', IPPrefixLen: subnet === undefined ? 0 : Number(subnet.split('/')[1]),
    IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, MacAddress: '',
  };
  return {
    ...NO_NETWORK, ...endpoint, Ports, SandboxKey: pod.namespaces.network ?? '',
    ...(pod.networkName !== undefined ? { Networks: { [pod.networkName]: { ...endpoint, NetworkID: pod.networkName, DriverOpts: null, IPAMConfig: null, Links: null } } } : {}),
  };
}

export function inspectImage(img: ImageSummary): Record<string, unknown> {
  return {
    Id: img.id, Digest: img.manifest.digest, RepoTags: img.names, Created: img.created, Size: img.size, Labels: img.labels,
    Config: img.config.config ?? {}, Architecture: img.config.architecture, Os: img.config.os, RootFS: img.config.rootfs,
    Author: img.config.author ?? '', Comment: img.config.history?.at(-1)?.comment ?? '', History: img.config.history ?? [],
  };
}

export class InspectCommand extends EngineCommand {
  static override paths = [['inspect'], ['container', 'inspect'], ['image', 'inspect']];
  static override explain = `
cat ROOT/containers/ID/container.json ROOT/containers/ID/bundle/config.json   # a container
skopeo inspect oci:ROOT/images:REF                                           # an image (the OCI layout)
`;
  static override usage = Command.Usage({ description: 'Show containers or images as JSON (an array, as podman prints it)' });
  type = Option.String('--type', 'all', { description: 'container, image or all' });
  format = Option.String('-f,--format', { description: 'json (default), or a Go template field path such as {{.State.Pid}}' });
  names = Option.Rest({ name: 'NAME', required: 1 });

  async perform(): Promise<number | undefined> {
    const out: unknown[] = [];
    const wantImage = this.path[0] === 'image' || this.type === 'image';
    for (const n of this.names) {
      const rec = this.type === 'image' || this.path[0] === 'image' ? undefined : findRecord(this.env, n);
      if (rec) { out.push({ ...inspectContainer(this.env, rec), NetworkSettings: await networkSettings(this.env, rec) }); continue; }
      const img = this.type === 'container' ? undefined : await findImage(this.env, n);
      if (img) { out.push(inspectImage(img)); continue; }
      this.print(out);
      throw new EngineError('E_NO_OBJECT', `no such ${wantImage ? 'image' : 'object'}: "${n}"`);
    }
    this.print(out);
    return undefined;
  }

  /** JSON, or one line per object for the simplest Go template podman users write: {{.Field.Sub}}. */
  private print(objects: unknown[]): void {
    if (this.format === undefined || this.format === 'json') {
      this.out(JSON.stringify(objects, null, 2));
      return;
    }
    if (!isTemplate(this.format)) throw new EngineError('E_USAGE', `--format ${this.format}: berth supports json and Go template fields such as {{.State.Pid}}`);
    for (const o of objects) this.out(renderTemplate(this.format, o));
  }
}
