import { Command } from '@berth/cli-kit';
import { KNOWN_CAPABILITIES } from '@berth/oci-spec';
import { SECCOMP_ACTIONS, SECCOMP_ARCHITECTURES, SECCOMP_FLAGS, SECCOMP_OPERATORS } from '@berth/seccomp';
import { RuntimeCommand } from '../command.ts';
import { knownMountOptions } from '../mount-options.ts';

export class FeaturesCommand extends RuntimeCommand {
  static override paths = [['features']];
  static override usage = Command.Usage({
    description: 'Print what this runtime supports (runtime-spec features.md)',
    examples: [['Features', 'berth-runtime features']],
  });
  static override explain = 'features: the features document of the runtime-spec: hooks, mount options, namespaces, capabilities, cgroup and seccomp support.';

  async perform(): Promise<unknown> {
    return {
      ociVersionMin: '1.0.0',
      ociVersionMax: '1.1.0',
      hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
      mountOptions: knownMountOptions,
      linux: {
        namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts', 'time'],
        capabilities: KNOWN_CAPABILITIES,
        cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
        seccomp: {
          enabled: true,
          actions: SECCOMP_ACTIONS,
          operators: Object.keys(SECCOMP_OPERATORS),
          archs: SECCOMP_ARCHITECTURES,
          supportedFlags: Object.entries(SECCOMP_FLAGS).filter(([, v]) => v !== null).map(([k]) => k),
        },
        apparmor: { enabled: false },
        selinux: { enabled: false },
        intelRdt: { enabled: false },
      },
      annotations: { 'org.opencontainers.runtime-spec.features.name': 'berth-runtime' },
    };
  }
}
