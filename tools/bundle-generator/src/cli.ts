import { inBerthUserNamespace, reexecInUserNamespace, reportError, rootlessPlan, runMain } from '@berth/cli-kit';
import { BundleCommand } from './commands/bundle.ts';
import { reexecWithOwnIdOnly } from './rootless.ts';

// Rootless: the bundle is written from inside the user's namespace (as
// berth-store unpacks there), where the rootfs can be mounted for a moment to
// read /etc/passwd and create the working directory, and whose id maps become
// the bundle's uidMappings/gidMappings. Help needs no namespace.
const args = process.argv.slice(2);
if (process.getuid?.() !== 0 && !inBerthUserNamespace() && args.length > 0 && !args.some((a) => a === '-h' || a === '--help' || a === '--explain')) {
  // The re-exec sets BERTH_ROOT to the user's default data root; a bundle
  // still goes under the root its rootfs document names unless the user chose one.
  if (!process.env.BERTH_ROOT) process.env.BERTH_ROOT_IMPLICIT = '1';
  try {
    const plan = rootlessPlan();
    if (plan) reexecInUserNamespace(plan);
    else reexecWithOwnIdOnly();
  } catch (err) {
    process.exit(reportError(err));
  }
}

void runMain([BundleCommand], { binaryName: 'berth-bundle', binaryLabel: 'berth-bundle: generate an OCI runtime bundle from a rootfs and an image config' });
