import { Command, Option } from '@berth/cli-kit';
import { EngineError, findImage, findRecord, isRootlessCaller, type ContainerRecord, type ImageSummary } from '@berth/engine';
import { EngineCommand, shq } from '../base.ts';

/**
 * `berth diff [--format json] CONTAINER|IMAGE`: podman diff. A container's
 * changes against its image, or an image's top layer against the layers
 * below it, as `A`/`C`/`D` lines or podman's JSON; the rules are
 * @berth/engine's diff.ts. `diff` tries a container first, then an image;
 * `image diff` takes only images, as in podman. (`container diff` is
 * berth's `diff`: argv.ts folds `container VERB` into VERB.)
 */
export class DiffCommand extends EngineCommand {
  static override paths = [['diff'], ['container', 'diff']];
  static override usage = Command.Usage({
    description: 'Show the changes of a container\'s or an image\'s filesystem',
    details: `
      For a container: what it added (\`A\`), changed (\`C\`) or deleted (\`D\`) against its image, read from its overlay upper directory. For an image: what its top layer does to the layers below it (an image of one layer: everything is added). A directory counts as changed when something in it was added or deleted; a directory the container emptied and refilled (\`rm -rf\` then \`mkdir\`) is deleted, and what it holds now follows. What the runtime makes in every container (/dev, /proc, /sys, /run, /etc/hosts, /etc/hostname, /etc/resolv.conf, /etc/mtab, /run/.containerenv, /run/secrets) is not listed, as podman does not list it.

      \`--format json\` prints \`{"changed":[...],"added":[...],"deleted":[...]}\`, a list left out when empty.
    `,
    examples: [
      ['A container\'s changes', '$0 diff web1'],
      ['As JSON', '$0 diff --format json web1'],
      ['An image\'s top layer', '$0 image diff localhost/mysite:v2'],
    ],
  });
  static override explain = `
The container's rootfs is an overlayfs: ROOT/snapshots/N/fs is its upper
directory, the image's committed layers are the lowerdirs. Every name in the
upper is a change: a 0/0 character device (or an empty file carrying
user.overlay.whiteout) deletes the name below it, a directory with
trusted.overlay.opaque=y (or user.overlay.opaque=y) replaced the one below;
any other name is changed when a lower layer has it and added when none does.
A directory overlayfs merely copied up (same size, mode and mtime as below) is
no change. An image's top layer is read the same way, from its committed
snapshot (unpacked first when no container has needed it yet).
`;

  protected readonly accepts: 'both' | 'image' = 'both';
  format = Option.String('--format', { description: 'json: podman\'s JSON document instead of lines' });
  target = Option.String({ name: 'CONTAINER|IMAGE' });
  other = Option.String({ name: 'OTHER', required: false });

  override explainPipeline(): string {
    return [
      `berth-store mounts ID   # ${shq(this.target)}'s overlay: its upperdir and lowerdirs (a container's snapshot key is its id; an image's top layer is its chainID)`,
      '# then a walk of the upperdir: whiteouts are D, names a lowerdir has are C, the rest A; parents of A and D are C',
      (this.constructor as typeof DiffCommand).explain.trim(),
    ].join('\n');
  }

  async perform(): Promise<number | undefined> {
    if (this.format !== undefined && this.format !== 'json') throw new EngineError('E_USAGE', `--format ${this.format}: the only supported value for --format is 'json'`);
    if (this.other !== undefined) {
      throw new EngineError('E_USAGE', `comparing ${this.target} with a second container or image (${this.other}) is not supported: berth diff compares a container with its image, and an image with its parent layers`);
    }
    if (isRootlessCaller()) {
      throw new EngineError('E_ROOTLESS', 'diff as an ordinary user is not supported yet: a container\'s upper directory belongs to its user namespace; run berth diff as root');
    }
    const { changesJson, changesText, containerChanges, imageChanges } = await import('@berth/engine/diff');
    let rec: ContainerRecord | undefined;
    let image: ImageSummary | undefined;
    if (this.accepts === 'both') rec = findRecord(this.env, this.target);
    if (!rec) image = await findImage(this.env, this.target);
    if (!rec && !image) throw new EngineError('E_NOT_FOUND', `${this.target} not found: no such ${this.accepts === 'both' ? 'container or image' : 'image'}`);
    const changes = rec ? await containerChanges(this.env, rec) : await imageChanges(this.env, image!);
    if (this.format === 'json') this.out(changesJson(changes));
    else if (changes.length > 0) this.out(changesText(changes));
    return undefined;
  }
}

/** `berth image diff IMAGE`: images only. */
export class ImageDiffCommand extends DiffCommand {
  static override paths = [['image', 'diff']];
  protected override readonly accepts = 'image' as const;
}
