import { Command } from '@berth/cli-kit';
import { BuildFlags } from '@berth/builder/commands';

export class BuildCommand extends BuildFlags {
  static override paths = [Command.Default, ['build']];
  static override usage = Command.Usage({
    description: 'Build an image from a Containerfile into the OCI image layout; print the image document',
    details: `
      The build stage of the pipeline: the same build as \`berth build\` (podman build's flags), but stdout carries {"kind":"image",...} like berth-pull's, so \`berth-build ... | berth-store prepare ID --image -\` works. The steps (\`STEP 2/7: RUN ...\`, \`--> Using cache ...\`, \`COMMIT ref\`) and RUN's own output go to stderr.

      RUN needs root (overlayfs, namespaces) and an OCI runtime: berth-runtime by default, or --runtime/BERTH_RUNTIME (runc works).
    `,
    examples: [
      ['Build the current directory', '$0 -t web:1 .'],
      ['Docker media types with a build argument', '$0 --format docker --build-arg GIT_HASH=$(git rev-parse --short HEAD) -t 127.0.0.1:5000/site/web:latest examples/website'],
      ['Build, then prepare a rootfs of the result', '$0 -t web:1 . | berth-store prepare c1 --image -'],
    ],
  });
  static override explain = `
A build is a chain of image states. Each RUN prepares an active overlayfs
snapshot (upperdir on the lowerdirs of the chainID snapshots below it), runs
the command in a container through the OCI runtime (runtime-spec: pid, mount,
ipc, uts namespaces; network too with --network none), then turns the upper
directory (new and changed files; 0/0 character devices for deletions, which
become .wh. whiteouts) into a gzip tar layer: the tar hash is the diffID, the
gzip hash the blob digest. COPY and ADD copy from the build context into such
a snapshot. Metadata instructions only change the image config. At the end
the config (rootfs.diff_ids, history) and the manifest become blobs of the
OCI image layout, and index.json names them (image-spec image-layout.md).
Every step is cached under the hash of the steps before it plus its own
instruction (and the content of copied files).
`;

  async perform(): Promise<unknown> {
    const { buildImage } = await import('@berth/builder');
    return buildImage(await this.buildOptions());
  }
}
