import { Command } from '@berth/cli-kit';
import { PushFlags } from '@berth/builder/commands';

/** `berth push IMAGE [DEST]`: podman push. */
export class PushCommand extends PushFlags {
  static override paths = [['push']];
  static override usage = Command.Usage({
    description: 'Push an image from the store to a registry',
    details: `
      Uploads the image's layers and config with the distribution spec's blob upload (POST then PUT, or PATCH chunks for big blobs), skipping blobs the registry already has (HEAD) and mounting blobs from another repository of the same registry when the image came from there; the manifest goes last. DEST defaults to IMAGE's own name; \`docker://\` in front of DEST is accepted.
    `,
    examples: [
      ['Push to a local plain-HTTP registry', '$0 push --tls-verify=false 127.0.0.1:5000/web:abc123'],
      ['Push under another name', '$0 push --creds user:pw web:1 registry.example.com/team/web:1'],
    ],
  });
  static override explain = `
The distribution spec's push workflow: for each blob (layers, then the
config) HEAD /v2/NAME/blobs/DIGEST; if missing, try a cross-repository mount
(POST /v2/NAME/blobs/uploads/?mount=DIGEST&from=OTHER), else POST to open an
upload session and PUT the bytes with ?digest= (PATCH chunks first for big
blobs). The manifest is PUT last, by tag, so the registry never names an image
whose blobs are not all there.
`;

  async perform(): Promise<unknown> {
    const { pushImage } = await import('@berth/builder');
    // podman push prints progress only; the result document is berth-build push's.
    await pushImage(await this.pushOptions());
    return undefined;
  }
}
