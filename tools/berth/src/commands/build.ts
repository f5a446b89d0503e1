import { writeFile } from 'node:fs/promises';
import { BerthCommand, Command, Option, t } from '@berth/cli-kit';

/**
 * `berth build`: podman build's flags over @berth/builder. Prints the image
 * id on stdout, as podman does; the steps and RUN's output go to stderr.
 */
export class BuildCommand extends BerthCommand {
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

  file = Option.String('-f,--file', { description: 'The Containerfile (default CONTEXT/Containerfile or CONTEXT/Dockerfile)' });
  tags = Option.Array('-t,--tag', [], { description: 'A name for the image (repeatable)' });
  format = Option.String('--format', 'oci', { description: 'Manifest and config media types: oci or docker', validator: t.isEnum(['oci', 'docker'] as const) });
  buildArgs = Option.Array('--build-arg', [], { description: 'ARG=VALUE for the Containerfile\'s ARG (repeatable)' });
  labels = Option.Array('--label', [], { description: 'KEY=VALUE label for the image (repeatable)' });
  noCache = Option.Boolean('--no-cache', false, { description: 'Run every step again; do not use cached layers' });
  layers = Option.String('--layers', { tolerateBoolean: true, description: 'Cache intermediate layers: --layers=false turns the cache off (default true)' });
  pull = Option.String('--pull', { tolerateBoolean: true, description: 'Pull FROM images: always, missing (default), never' });
  network = Option.String('--network', 'host', { description: 'RUN\'s network: host (default) or none' });
  runtime = Option.String('--runtime', { description: 'OCI runtime binary for RUN (default berth-runtime; env BERTH_RUNTIME)' });
  tlsVerify = Option.String('--tls-verify', { tolerateBoolean: true, description: 'Require HTTPS for registries FROM pulls from (default true)' });
  creds = Option.String('--creds', { description: 'USER:PASSWORD for the registry of a FROM image' });
  authfile = Option.String('--authfile', { description: 'auth.json for the registry of a FROM image' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'Do not print the steps' });
  iidfile = Option.String('--iidfile', { description: 'Write the image id (sha256:HEX) to this file' });
  contextDir = Option.String({ name: 'CONTEXT', required: false });

  async perform(): Promise<unknown> {
    const { booleanFlag, buildImage, keyValueFlags, networkFlag, pullFlag, tlsVerifyFlag } = await import('@berth/builder');
    const network = networkFlag(this.network);
    const tls = tlsVerifyFlag(this.tlsVerify);
    const pull = pullFlag(this.pull);
    const image = await buildImage({
      dataRoot: this.dataRoot,
      context: this.contextDir ?? '.',
      file: this.file,
      tags: this.tags ?? [],
      format: this.format as 'oci' | 'docker',
      buildArgs: keyValueFlags(this.buildArgs ?? [], '--build-arg', true),
      labels: keyValueFlags(this.labels ?? [], '--label', false),
      noCache: this.noCache,
      layers: booleanFlag(this.layers, '--layers', true),
      pull,
      network,
      runtime: this.runtime,
      registry: { insecure: !tls, creds: this.creds, authfile: this.authfile },
      quiet: this.quiet,
    });
    if (this.iidfile !== undefined) await writeFile(this.iidfile, image.id);
    // podman prints the full image id (the config digest) on stdout and nothing else.
    this.context.stdout.write(`${image.id.replace(/^sha256:/, '')}\n`);
    return undefined;
  }
}
