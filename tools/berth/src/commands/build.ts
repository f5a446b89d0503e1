import { writeFile } from 'node:fs/promises';
import { Command, Option } from '@berth/cli-kit';
import { BuildFlags } from '@berth/builder/commands';

/**
 * `berth build`: podman build's flags over @berth/builder. Prints the image
 * id on stdout, as podman does; the steps and RUN's output go to stderr.
 */
export class BuildCommand extends BuildFlags {
  static override paths = [['build']];
  static override usage = Command.Usage({
    description: 'Build an image from a Containerfile',
    details: `
      Reads CONTEXT/Containerfile (or Dockerfile, or -f FILE) and runs its steps: FROM an image in the store (pulled when missing) or scratch; RUN in a container on an overlayfs snapshot through the OCI runtime, whose changes become a layer; COPY and ADD from the context (minus .containerignore/.dockerignore); ENV, ARG, WORKDIR, USER, EXPOSE, LABEL, CMD, ENTRYPOINT, VOLUME, STOPSIGNAL, SHELL into the image config. Unchanged steps reuse the layers of an earlier build ("Using cache") unless --no-cache. Prints the image id.
    `,
    examples: [
      ['Build and name the image', '$0 build -t web:1 .'],
      ['Docker media types, a build argument and a label', '$0 build --format docker --build-arg GIT_HASH=abc123 --label site=web -f Containerfile -t registry.local/web:abc123 .'],
    ],
  });
  static override explain = `
A build is a chain of image states. Each RUN prepares an active overlayfs
snapshot on the chain of committed layer snapshots (chainIDs), runs the
command in a container through the OCI runtime, then turns the snapshot's
upper directory (new files, and 0/0 character devices for deletions) into a
gzip tar layer with whiteouts, and commits it as the next snapshot. COPY/ADD
copy from the context into such a snapshot. Metadata instructions only change
the image config. At the end the config (with rootfs.diff_ids and history) and
the manifest are written as blobs to the OCI image layout, and index.json
names them. Steps are cached by the chain of the previous steps plus the
instruction (and the content of copied files).
`;

  iidfile = Option.String('--iidfile', { description: 'Write the image id (sha256:HEX) to this file' });

  async perform(): Promise<unknown> {
    const { buildImage } = await import('@berth/builder');
    const image = await buildImage(await this.buildOptions());
    if (this.iidfile !== undefined) await writeFile(this.iidfile, image.id);
    // podman prints the full image id (the config digest) on stdout and nothing else.
    this.context.stdout.write(`${image.id.replace(/^sha256:/, '')}\n`);
    return undefined;
  }
}
