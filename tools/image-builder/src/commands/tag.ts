import { BerthCommand, Command, Option } from '@berth/cli-kit';

export class TagCommand extends BerthCommand {
  static override paths = [['tag']];
  static override usage = Command.Usage({
    description: 'Give an image in the store more names',
    details: 'Each DEST becomes an entry of ROOT/images/index.json for the same manifest (podman tag). Prints {"kind":"tag",...}.',
    examples: [['Tag as latest', '$0 tag 127.0.0.1:5000/site/web:abc123 127.0.0.1:5000/site/web:latest']],
  });
  static override explain = `
In the OCI image layout a name is an index.json entry with the annotation
org.opencontainers.image.ref.name. A tag adds entries for the same manifest
descriptor in one atomic rewrite of index.json, under its lock.
`;
  source = Option.String({ name: 'SRC' });
  targets = Option.Rest({ name: 'DEST', required: 1 });

  async perform(): Promise<unknown> {
    const { tagImage } = await import('@berth/builder');
    return tagImage(this.dataRoot, this.source, this.targets);
  }
}
