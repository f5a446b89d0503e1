import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import {
  BerthCommand, BerthUsageError, Command, Option, parseStageDocument, readStdinDocument,
} from '@berth/cli-kit';
import { checkRootfsDocument, generateBundle, newContainerId, readImageConfigFile, validateId, type RootfsInput } from '../generate.ts';
import { bundleOptionsFromFlags, readText } from '../flags.ts';
import type { PodNamespaces } from '../spec.ts';
import { isRootless } from '../rootless.ts';

export class BundleCommand extends BerthCommand {
  static override paths = [Command.Default];

  static override usage = Command.Usage({
    description: 'Generate an OCI runtime bundle (config.json + rootfs) from a prepared rootfs and the image config',
    details: `
      Reads berth-store's rootfs document (a file, or \`-\` for stdin), mounts its rootfs on BUNDLE/rootfs, and writes BUNDLE/config.json from the image config and the podman-run style options. Prints \`{"kind":"bundle","id","bundle",...}\` for the runtime stage.

      Instead of a rootfs document, \`--rootfs DIR --image-config FILE\` takes a plain directory (from \`umoci unpack\`, say) and an image config file.

      Put the command after \`--\` when it has options of its own: \`berth-bundle - -- ls -l /\`.
    `,
    examples: [
      ['Bundle a prepared rootfs, running its default command', 'berth-store prepare c1 --image busybox | berth-bundle -'],
      ['Override the command, with env, a bind mount and a memory limit', 'berth-bundle rootfs.json -e A=1 -v /srv/data:/data:ro --memory 64m -- sh -c "cat /data/x"'],
      ['Bundle a plain directory', 'berth-bundle --rootfs ./rootfs --image-config ./config.json --bundle-dir ./b -- echo hi'],
    ],
  });

  static override explain = `
berth-bundle turns an image config and user options into an OCI runtime bundle
(runtime-spec bundle.md): a directory with config.json and the root filesystem.
It mounts the snapshot's mounts (overlayfs) on BUNDLE/rootfs, resolves the
user through the rootfs's /etc/passwd and /etc/group, and writes config.json
with: process (args from Entrypoint+Cmd, env, cwd, uid/gid/groups, capability
sets, rlimits capped at the caller's hard limits, no_new_privs), namespaces
(pid, ipc, uts, mount, network), mounts (proc, /dev tmpfs, devpts, shm,
mqueue, read-only sysfs and cgroup, generated /etc/hosts, /etc/hostname,
/etc/resolv.conf bound from the bundle, user volumes), cgroup resources
(devices allow-list, memory, cpu quota, pids), masked and read-only /proc
paths, and a seccomp allow-list resolved for the container's capabilities.
runc, crun or berth-runtime then run the bundle unchanged.

As an ordinary user it runs inside the user's namespace (subuid(5) range
mapped by newuidmap) and writes a rootless bundle: a user namespace first with
the same maps, root.path left empty and the overlay mounts in the
io.berth.rootfs.mounts annotation, which berth-runtime mounts inside the
container's user and mount namespaces (as podman and crun do); runc cannot
run such a bundle.`;

  name = Option.String('--name', { description: 'Container id (default: 64 random hex digits)' });
  bundleDir = Option.String('--bundle-dir', { description: 'Bundle directory (default ROOT/bundles/ID)' });
  rootfsDir = Option.String('--rootfs', { description: 'Use this plain directory as the rootfs instead of a rootfs document' });
  imageConfig = Option.String('--image-config', { description: 'Image config JSON file (with --rootfs)' });

  env = Option.Array('-e,--env', [], { description: 'Set an environment variable: KEY=VALUE, or KEY to pass the caller\'s' });
  envFile = Option.Array('--env-file', [], { description: 'Read KEY=VALUE lines from a file' });
  entrypoint = Option.String('--entrypoint', { description: 'Override the image Entrypoint (a program or a JSON array); drops the image Cmd' });
  workdir = Option.String('-w,--workdir', { description: 'Working directory inside the container' });
  user = Option.String('-u,--user', { description: 'USER[:GROUP], names or ids, resolved in the rootfs' });
  volume = Option.Array('-v,--volume', [], { description: 'Bind mount SRC:DST[:ro|rw,...]' });
  mount = Option.Array('--mount', [], { description: 'type=bind,source=,target=[,ro] or type=tmpfs,target=[,tmpfs-size=]' });
  tmpfs = Option.Array('--tmpfs', [], { description: 'Mount a tmpfs: DST[:OPTIONS]' });
  readOnly = Option.Boolean('--read-only', false, { description: 'Mount the rootfs read-only (tmpfs on /run, /tmp, /var/tmp)' });
  hostname = Option.String('--hostname', { description: 'Container hostname (default: the first 12 characters of the id)' });
  capAdd = Option.Array('--cap-add', [], { description: 'Add capabilities (NAME, CAP_NAME or ALL; comma-separated)' });
  capDrop = Option.Array('--cap-drop', [], { description: 'Drop capabilities (NAME, CAP_NAME or ALL; comma-separated)' });
  privileged = Option.Boolean('--privileged', false, { description: 'All capabilities, no seccomp, no masked paths, writable /sys' });
  securityOpt = Option.Array('--security-opt', [], { description: 'no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json' });
  memory = Option.String('-m,--memory', { description: 'Memory limit, e.g. 512m' });
  cpus = Option.String('--cpus', { description: 'CPU quota in CPUs, e.g. 1.5' });
  pidsLimit = Option.String('--pids-limit', { description: 'Maximum number of tasks (default 2048; -1 for none)' });
  ulimit = Option.Array('--ulimit', [], { description: 'NAME=SOFT[:HARD], e.g. nofile=1024:4096' });
  sysctl = Option.Array('--sysctl', [], { description: 'Namespaced sysctl KEY=VALUE' });
  network = Option.String('--network', { description: 'none (default), host, or ns:PATH' });
  pod = Option.String('--pod', { description: 'Join a pod\'s namespaces: a pod document file, or - for stdin' });
  init = Option.Boolean('--init', false, { description: 'Run an init (catatonit or tini) as PID 1 that reaps zombies and forwards signals' });
  initPath = Option.String('--init-path', { description: 'The init binary for --init' });

  args = Option.Rest({ name: 'ROOTFS_JSON|- [-- COMMAND ARGS]' });

  async perform(): Promise<unknown> {
    // Parse every flag before touching the filesystem: a bad flag leaves nothing behind.
    const positional = [...this.args];
    let input: RootfsInput;
    let rootfsArg: string | undefined;
    if (this.rootfsDir !== undefined) {
      if (this.imageConfig === undefined) throw new BerthUsageError('--rootfs needs --image-config FILE (the image config to run)');
      if (positional[0] === '-') throw new BerthUsageError('--rootfs DIR replaces the ROOTFS_JSON argument: drop the "-"');
    } else {
      rootfsArg = positional.shift();
      if (rootfsArg === undefined) throw new BerthUsageError('missing ROOTFS_JSON argument: a rootfs document file, - for stdin, or --rootfs DIR --image-config FILE');
      if (this.imageConfig !== undefined) throw new BerthUsageError('--image-config goes with --rootfs DIR; a rootfs document names its image itself');
    }
    if (rootfsArg === '-' && this.pod === '-') throw new BerthUsageError('--pod - and ROOTFS_JSON - cannot both read stdin');
    const options = bundleOptionsFromFlags(this, positional);
    const id = validateId(this.name ?? newContainerId());

    if (this.rootfsDir !== undefined) {
      input = { from: 'directory', path: this.rootfsDir, imageConfig: readImageConfigFile(this.imageConfig!), imageConfigPath: this.imageConfig! };
    } else if (rootfsArg === '-') {
      input = { from: 'document', doc: checkRootfsDocument(await readStdinDocument('rootfs'), 'stdin') };
    } else {
      input = { from: 'document', doc: checkRootfsDocument(parseStageDocument(readText(rootfsArg!, 'ROOTFS_JSON'), rootfsArg!, 'rootfs'), rootfsArg!) };
    }
    if (this.pod !== undefined) options.pod = await readPod(this.pod);
    if (options.pod?.hostNetwork && Object.keys(options.sysctls).some((k) => k.startsWith('net.'))) {
      throw new BerthUsageError('a net.* --sysctl cannot be set in a pod with --network host: it would change the host');
    }

    // The bundle goes under the data root the user named, else the one the rootfs came from, so
    // `berth-store --root R prepare … | berth-bundle -` keeps everything under R.
    const docRoot = input.from === 'document' && typeof input.doc.root === 'string' ? input.doc.root : undefined;
    const envRoot = process.env.BERTH_ROOT_IMPLICIT === '1' ? undefined : process.env.BERTH_ROOT || undefined;
    const dataRoot = this.root ?? envRoot ?? docRoot ?? this.dataRoot;
    return generateBundle({ input, options, id, bundleDir: this.bundleDir, dataRoot });
  }
}

/**
 * A pod document as berth-pod create prints it:
 * {"kind":"pod","namespaces":{["user",]"network","ipc","uts"[,"pid"]}[,"hostname"][,"ip"][,"dns"][,"network":"host"]}.
 * A rootless pod's namespaces are its holder's /proc/PID/ns files. From this
 * process's own user namespace they cannot be stat'ed (the kernel's ptrace
 * check on nsfs links; the holder's namespace is a sibling, not a child), so
 * for those the holder's /proc/PID is what must exist.
 */
async function readPod(arg: string): Promise<PodNamespaces> {
  const doc = arg === '-' ? await readStdinDocument('pod') : parseStageDocument(readText(arg, '--pod'), arg, 'pod');
  const ns = (doc as { namespaces?: unknown }).namespaces;
  if (typeof ns !== 'object' || ns === null) throw new BerthUsageError(`--pod ${arg}: the pod document has no "namespaces" object`);
  const out: PodNamespaces = {};
  const d = doc as { hostname?: unknown; ip?: unknown; dns?: unknown; network?: unknown };
  if (d.hostname !== undefined) {
    if (typeof d.hostname !== 'string' || d.hostname === '') throw new BerthUsageError(`--pod ${arg}: hostname must be a non-empty string`);
    out.hostname = d.hostname;
  }
  if (d.ip !== undefined && d.ip !== null) {
    if (typeof d.ip !== 'string' || !isIP(d.ip)) throw new BerthUsageError(`--pod ${arg}: ip must be an IP address or null`);
    out.ip = d.ip;
  }
  if (d.dns !== undefined) {
    const dns = d.dns as Record<string, unknown>;
    const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
    if (typeof dns !== 'object' || dns === null || ['nameservers', 'search', 'options'].some((k) => dns[k] !== undefined && !strings(dns[k]))) {
      throw new BerthUsageError(`--pod ${arg}: dns must be {"nameservers":[...],"search":[...],"options":[...]} (CNI's DNS type)`);
    }
    out.dns = dns as PodNamespaces['dns'];
  }
  if (d.network === 'host') out.hostNetwork = true;
  for (const [key, value] of Object.entries(ns as Record<string, unknown>)) {
    if (key !== 'user' && key !== 'network' && key !== 'ipc' && key !== 'uts' && key !== 'pid') throw new BerthUsageError(`--pod ${arg}: namespaces.${key}: a container can join a pod's user, network, ipc, uts and pid namespaces only`);
    if (typeof value !== 'string' || !value.startsWith('/')) throw new BerthUsageError(`--pod ${arg}: namespaces.${key} must be an absolute path`);
    const holder = /^\/proc\/(\d+)\/ns\/[a-z]+$/.exec(value);
    if (holder ? !holderAlive(Number(holder[1])) : !existsSync(value)) {
      throw new BerthUsageError(`--pod ${arg}: namespaces.${key}: ${value} does not exist${holder ? ' (the pod\'s namespace holder is gone: remove the pod and create it again)' : ''}`);
    }
    out[key] = value;
  }
  // A rootless pod's namespaces belong to its user namespace, root's to the host's: each joins only its own kind.
  if (out.user !== undefined && !isRootless()) throw new BerthUsageError(`--pod ${arg}: the pod was created by an ordinary user (it has a user namespace): join it as that user`);
  if (out.user === undefined && isRootless() && (out.network ?? out.ipc ?? out.uts ?? out.pid) !== undefined) {
    throw new BerthUsageError(`--pod ${arg}: the pod was created by root: an ordinary user joins only a pod of their own (berth-pod create --network none|host as that user)`);
  }
  return out;
}

/**
 * A rootless pod's namespaces live as long as its holder process. A killed
 * holder may linger as a zombie until its parent reaps it; a zombie holds no
 * namespace, so it counts as gone. (The ns links themselves cannot be stat'ed
 * from this process's own user namespace, hence /proc/PID/stat.)
 */
function holderAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
