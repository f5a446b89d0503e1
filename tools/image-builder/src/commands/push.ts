import { BerthCommand, BerthUsageError, Command, Option, t } from '@berth/cli-kit';

export class PushCommand extends BerthCommand {
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
  tlsVerify = Option.String('--tls-verify', { tolerateBoolean: true, description: 'Require HTTPS (default true)' });
  creds = Option.String('--creds', { description: 'USER:PASSWORD' });
  authfile = Option.String('--authfile', { description: 'auth.json' });
  removeSignatures = Option.Boolean('--remove-signatures', false, { description: 'Accepted: berth makes no signatures' });
  format = Option.String('-f,--format', { description: 'oci or docker (v2s2): convert media types on the way', validator: t.isEnum(['oci', 'docker', 'v2s2'] as const) });
  chunkSize = Option.String('--chunk-size', { description: 'Blobs larger than this many MiB are uploaded in PATCH chunks of that size (default 32)' });
  digestfile = Option.String('--digestfile', { description: 'Write the pushed manifest digest here' });
  source = Option.String({ name: 'IMAGE' });
  destination = Option.String({ name: 'DEST', required: false });

  async perform(): Promise<unknown> {
    const { pushImage, tlsVerifyFlag } = await import('@berth/builder');
    if (this.creds !== undefined && this.authfile !== undefined) throw new BerthUsageError('--creds and --authfile cannot be used together');
    let chunkSize: number | undefined;
    if (this.chunkSize !== undefined) {
      const mib = Number(this.chunkSize);
      if (!Number.isFinite(mib) || mib <= 0) throw new BerthUsageError(`--chunk-size takes a number of MiB, not "${this.chunkSize}"`);
      chunkSize = Math.max(1, Math.round(mib * 1024 * 1024));
    }
    const tls = tlsVerifyFlag(this.tlsVerify);
    return pushImage({
      dataRoot: this.dataRoot,
      source: this.source,
      destination: this.destination,
      registry: { insecure: !tls, creds: this.creds, authfile: this.authfile },
      format: this.format === undefined ? undefined : this.format === 'oci' ? 'oci' : 'docker',
      removeSignatures: this.removeSignatures,
      chunkSize,
      digestFile: this.digestfile,
    });
  }
}
