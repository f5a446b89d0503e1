import { Command } from '@berth/cli-kit';
import { PushFlags } from '@berth/builder/commands';

export class PushCommand extends PushFlags {
  static override paths = [['push']];
  static override usage = Command.Usage({
    description: 'Push an image from the store to a registry',
    details: `
      podman push's flags. Blobs the registry has are skipped (HEAD), blobs another repository of that registry has are mounted (?mount=&from=), the rest uploaded (POST, then PUT; PATCH chunks over --chunk-size); the manifest last. Prints {"kind":"push",...} with what happened to each blob.
    `,
    examples: [
      ['Push to a loopback registry', '$0 push --tls-verify=false 127.0.0.1:5000/site/web:abc123'],
      ['Push under another name with credentials', '$0 push --creds user:pw web:1 registry.example.com/team/web:1'],
    ],
  });
  static override explain = `
The OCI distribution spec's push: HEAD /v2/NAME/blobs/DIGEST for each layer
and the config; when missing, POST /v2/NAME/blobs/uploads/?mount=D&from=OTHER
(201: mounted) or POST /v2/NAME/blobs/uploads/ (202 + Location) and PUT
LOCATION?digest=D with the bytes (or PATCH chunks with Content-Range, then an
empty PUT). The registry verifies each digest. PUT /v2/NAME/manifests/TAG
comes last, when every blob it names is there.
`;
  async perform(): Promise<unknown> {
    const { pushImage } = await import('@berth/builder');
    return pushImage(await this.pushOptions());
  }
}
