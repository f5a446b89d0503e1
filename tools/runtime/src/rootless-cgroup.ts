import { log } from '@berth/cli-kit';
import { Cgroup } from '@berth/cgroups';
import type { LinuxResources } from '@berth/oci-spec';

/**
 * The container's cgroup for an ordinary user: created and used where the
 * user may write it (a delegated cgroup), otherwise skipped with one warning;
 * the container then runs without limits, as a rootless podman does on cgroup v1.
 */
export class BestEffortCgroup extends Cgroup {
  private skipped = false;

  override create(): void {
    try {
      super.create();
    } catch (err) {
      const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
      if (!cause || !['EACCES', 'EPERM', 'EROFS'].includes(cause.code ?? '')) throw err;
      this.skipped = true;
      log.warn(`cgroup limits are not applied: ${(err as Error).message.replace(/^cgroup: /, '')} (uid ${process.geteuid!()} has no writable cgroup to delegate; resources are best-effort for a rootless container)`);
    }
  }

  override apply(resources: LinuxResources): void {
    if (!this.skipped) super.apply(resources);
  }

  override addProcess(pid: number): void {
    if (!this.skipped) super.addProcess(pid);
  }
}

