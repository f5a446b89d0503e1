import { BerthCommand, Command, Option } from '@berth/cli-kit';

/** `berth tag SRC DEST...`: podman tag. Prints nothing, as podman does. */
export class TagCommand extends BerthCommand {
  static override paths = [['tag']];
  static override usage = Command.Usage({
    description: 'Give an image one or more additional names',
    details: `
      SRC is a name or an id prefix of an image in the store. Each DEST becomes another entry of ROOT/images/index.json pointing at the same manifest; a name without a registry is local (\`web\` is localhost/web:latest).
    `,
    examples: [
      ['Tag as latest', '$0 tag registry.local/web:abc123 registry.local/web:latest'],
    ],
  });
  static override explain = `
In the OCI image layout (image-spec image-layout.md) a name is an entry of
index.json whose org.opencontainers.image.ref.name annotation holds it. A tag
adds such an entry for the same manifest descriptor, in one atomic rewrite of
index.json under its lock; no blob is copied.
`;

  source = Option.String({ name: 'SRC' });
  targets = Option.Rest({ name: 'DEST', required: 1 });

  async perform(): Promise<unknown> {
    const { tagImage } = await import('@berth/builder');
    await tagImage(this.dataRoot, this.source, this.targets);
    return undefined;
  }
}
