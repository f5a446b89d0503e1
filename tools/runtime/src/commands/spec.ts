import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, Command, Option } from '@berth/cli-kit';
import type { RuntimeSpec } from '@berth/oci-spec';
import { RuntimeCommand } from '../command.ts';

const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** The same starting point `runc spec` writes: a busybox-friendly shell in every namespace but user and cgroup. */
export function defaultSpec(rootless: boolean): RuntimeSpec {
  const spec: RuntimeSpec = {
    ociVersion: '1.0.2',
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'berth',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  if (rootless) {
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    spec.linux!.namespaces!.push({ type: 'user' });
    spec.linux!.uidMappings = [{ containerID: 0, hostID: uid, size: 1 }];
    spec.linux!.gidMappings = [{ containerID: 0, hostID: gid, size: 1 }];
    delete spec.linux!.resources;
    spec.mounts = spec.mounts!.filter((m) => m.destination !== '/sys/fs/cgroup' && m.destination !== '/sys');
    spec.mounts.push({ destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
  }
  return spec;
}

export class SpecCommand extends RuntimeCommand {
  static override paths = [['spec']];
  static override usage = Command.Usage({
    description: 'Write a starting config.json (as `runc spec` does)',
    examples: [['In the current directory', 'berth-runtime spec'], ['Rootless', 'berth-runtime spec --rootless -b /tmp/b']],
  });
  static override explain = 'spec: writes a runtime-spec config.json running `sh` in a rootfs/ next to it, with new pid, network, ipc, uts and mount namespaces.';

  bundle = Option.String('-b,--bundle', '.', { description: 'Where to write config.json' });
  rootless = Option.Boolean('--rootless', false, { description: 'A config for an unprivileged user (user namespace, no cgroups)' });

  async perform(): Promise<undefined> {
    const file = join(this.bundle, 'config.json');
    if (existsSync(file)) throw new BerthError('E_EXISTS', 'File config.json exists. Remove it first');
    writeFileSync(file, JSON.stringify(defaultSpec(this.rootless), null, '\t') + '\n', { flag: 'wx', mode: 0o644 });
    return undefined;
  }
}
