import { BerthCommand, BerthUsageError, Command, Option, t } from '@berth/cli-kit';

/** `berth push IMAGE [DEST]`: podman push. */
export class PushCommand extends BerthCommand {
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

  tlsVerify = Option.String('--tls-verify', { tolerateBoolean: true, description: 'Require HTTPS with a verified certificate (default true)' });
  creds = Option.String('--creds', { description: 'USER:PASSWORD for the registry' });
  authfile = Option.String('--authfile', { description: 'Path of an auth.json' });
  removeSignatures = Option.Boolean('--remove-signatures', false, { description: 'Do not copy signatures (berth makes none; accepted for podman scripts)' });
  format = Option.String('-f,--format', { description: 'Manifest type to push: oci or docker (default: as stored)', validator: t.isEnum(['oci', 'docker', 'v2s2'] as const) });
  digestfile = Option.String('--digestfile', { description: 'Write the pushed manifest digest to this file' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'No progress on stderr' });
  source = Option.String({ name: 'IMAGE' });
  destination = Option.String({ name: 'DEST', required: false });

  async perform(): Promise<unknown> {
    const { pushImage, tlsVerifyFlag } = await import('@berth/builder');
    const tls = tlsVerifyFlag(this.tlsVerify);
    if (this.creds !== undefined && this.authfile !== undefined) throw new BerthUsageError('--creds and --authfile cannot be used together');
    await pushImage({
      dataRoot: this.dataRoot,
      source: this.source,
      destination: this.destination,
      registry: { insecure: !tls, creds: this.creds, authfile: this.authfile },
      format: this.format === undefined ? undefined : this.format === 'oci' ? 'oci' : 'docker',
      removeSignatures: this.removeSignatures,
      digestFile: this.digestfile,
      quiet: this.quiet,
    });
    return undefined;
  }
}
