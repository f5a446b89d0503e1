import { BerthCommand, Option } from '@berth/cli-kit';
import type { PodEnv } from '@berth/pod';

/** Flags every berth-pod verb shares: where pods live and where CNI looks. */
export abstract class PodCommand extends BerthCommand {
  runRoot = Option.String('--run-root', {
    description: 'Runtime state root holding pods/ (default /run/berth as root; env BERTH_RUN_ROOT)',
  });

  cniPluginDirs = Option.Array('--cni-plugin-dir', {
    description: 'Directory with CNI plugin binaries, repeatable (default /usr/lib/cni, /opt/cni/bin)',
  });

  cniConfigDirs = Option.Array('--cni-config-dir', {
    description: 'Directory with user networks as *.conflist files, repeatable (default /etc/berth/cni/net.d)',
  });

  get env(): PodEnv {
    return {
      ...(this.runRoot !== undefined ? { runRoot: this.runRoot } : {}),
      ...(this.cniPluginDirs !== undefined ? { cniPluginDirs: this.cniPluginDirs } : {}),
      ...(this.cniConfigDirs !== undefined ? { cniConfigDirs: this.cniConfigDirs } : {}),
    };
  }
}
