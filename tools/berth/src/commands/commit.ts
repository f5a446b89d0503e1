import { Command, Option, imageStorePath } from '@berth/cli-kit';
import { EngineError, isRootlessCaller, isRunning, mustFindRecord, readSpec, runtimeFor } from '@berth/engine';
import { EngineCommand, shq } from '../base.ts';

/**
 * `berth commit [-m MSG] [-a AUTHOR] [-c CHANGE]... [-p] [-q] [-f oci|docker] CONTAINER [IMAGE]`:
 * podman commit. The container's changes (its overlay upper directory)
 * become one new layer on its image; the config carries the container's
 * settings, the --change edits, a history entry and the new diffID.
 */
export class CommitCommand extends EngineCommand {
  static override paths = [['commit'], ['container', 'commit']];
  static override usage = Command.Usage({
    description: 'Create an image from a container\'s changes',
    details: `
      The files the container added, changed or deleted (deletions as whiteouts) become one layer on top of the container's image. The new config keeps the image's and takes the container's environment, working directory, labels, ports and command (as podman's commit does), then each \`--change\` (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR, in Containerfile syntax). IMAGE is named as podman names it (\`web\` is localhost/web:latest); without it the image has no name. The image id is printed. \`--pause\` freezes a running container while its changes are copied.
    `,
    examples: [
      ['Commit with a new command', '$0 commit -c \'CMD ["httpd","-f"]\' -m "add site" web1 mysite:v2'],
      ['Freeze a running container while committing', '$0 commit --pause web1 web-snapshot'],
    ],
  });
  static override explain = `
The container's rootfs is an overlayfs whose upper directory holds what it
changed (deleted names are 0/0 character devices, replaced directories carry
trusted.overlay.opaque). commit copies that directory (cp -a; with --pause
between RUNTIME pause and RUNTIME resume, the cgroup freezer) into a new
snapshot on the image's top layer, drops the mount points the runtime made,
and walks it into a layer tar as berth-store diff does (whiteouts become
.wh.NAME, opaque dirs .wh..wh..opq), gzip-compressed, hashed twice (digest of
the blob, diffID of the tar). The config gets the new diffID and a history
entry; blobs, then config, then manifest go into ROOT/images, and the name
last (index.json).
`;

  message = Option.String('-m,--message', { description: 'Comment of the history entry' });
  author = Option.String('-a,--author', { description: 'Author of the image (e.g. "Jane Doe <jane@example.com>")' });
  changes = Option.Array('-c,--change', [], { description: 'Apply a Containerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR' });
  pause = Option.Boolean('-p,--pause', false, { description: 'Pause a running container while its changes are copied' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'Print only the image id' });
  format = Option.String('-f,--format', 'oci', { description: 'Image format: oci (default) or docker' });
  iidfile = Option.String('--iidfile', { description: 'Also write the image id to this file' });
  container = Option.String({ name: 'CONTAINER' });
  image = Option.String({ name: 'IMAGE', required: false });

  override explainPipeline(): string {
    return [
      `berth-store diff ${shq(this.container)}   # the container's upper directory as a layer blob (berth commit copies it first, so the container is paused only for that)`,
      `# then a config with the new diffID and history, a manifest, and the name ${this.image ? shq(this.image) : '(none)'} in ROOT/images/index.json`,
    ].join('\n');
  }

  async perform(): Promise<number | undefined> {
    if (this.format !== 'oci' && this.format !== 'docker') {
      throw new EngineError('E_USAGE', `--format ${this.format}: expected oci or docker`);
    }
    const { commitContainer, parseChanges } = await import('@berth/builder');
    // Bad --change text is refused before anything is read or written.
    parseChanges(this.changes);
    if (isRootlessCaller()) {
      throw new EngineError('E_ROOTLESS', 'commit as an ordinary user is not supported yet: the container\'s upper directory belongs to its user namespace; run berth commit as root');
    }
    const env = this.env;
    const rec = mustFindRecord(env, this.container);
    const { ImageLayout } = await import('@berth/content');
    const { resolveImage, Snapshotter } = await import('@berth/snapshots');
    const layout = new ImageLayout(imageStorePath(env.dataRoot));
    const snapshot = await new Snapshotter(env.dataRoot).stat(rec.snapshot);
    const manifestLabel = snapshot.labels?.['berth.image.manifest'];
    if (manifestLabel === undefined) throw new EngineError('E_COMMIT', `container ${rec.name}: its snapshot does not say which image it was made from`);
    const { validateDescriptor } = await import('@berth/oci-spec');
    const manifest = validateDescriptor(JSON.parse(manifestLabel), `container ${rec.name}: its image's manifest descriptor`);
    const base = await resolveImage(layout, { kind: 'image', reference: rec.image.reference, manifest }).catch((err: unknown) => {
      throw new EngineError('E_NO_IMAGE', `container ${rec.name}: its image ${rec.image.reference ?? rec.image.id} is no longer in the store: ${(err as Error).message}`);
    });
    const spec = readSpec(rec.bundle);
    const running = isRunning(rec);
    const runtime = runtimeFor(env, rec);
    if (!this.quiet) process.stderr.write(`Getting image source signatures\nCopying blob ${rec.id.slice(0, 12)} (the container's changes)\n`);
    const image = await commitContainer({
      dataRoot: env.dataRoot,
      snapshot: rec.snapshot,
      base,
      mountPoints: (spec.mounts ?? []).map((m) => m.destination),
      container: {
        args: spec.process?.args ?? rec.command,
        env: spec.process?.env ?? [],
        workingDir: spec.process?.cwd,
        labels: rec.labels,
        ports: rec.ports.map(containerPort).filter((p): p is string => p !== undefined),
      },
      changes: this.changes,
      message: this.message,
      author: this.author,
      format: this.format,
      name: this.image,
      // The cgroup freezer stops every task of the container, so the copy sees one moment of its files.
      // One the user paused is already still, and stays paused after.
      freeze: running && this.pause && !rec.state.paused ? async () => {
        await runtime.call('pause', [rec.id]);
        return async () => { await runtime.call('resume', [rec.id]); };
      } : undefined,
    });
    if (!this.quiet) process.stderr.write(`Copying config ${image.id.slice(7, 19)}\nWriting manifest to image destination\n`);
    if (this.iidfile !== undefined) {
      const { writeFileAtomic } = await import('@berth/content');
      await writeFileAtomic(this.iidfile, image.id);
    }
    this.out(image.id.slice('sha256:'.length));
    return undefined;
  }
}

/** A record's port ("8080:80/tcp", "127.0.0.1:8080:80") as the image's ExposedPorts key ("80/tcp"). */
function containerPort(p: string): string | undefined {
  const [spec, proto = 'tcp'] = p.split('/');
  const port = spec?.split(':').at(-1);
  return port && /^\d+(-\d+)?$/.test(port) ? `${port}/${proto}` : undefined;
}
