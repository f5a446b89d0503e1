import { BerthCommand, BerthUsageError, Command, Option, imageStorePath, log, tlsVerifyFlag } from '@berth/cli-kit';
import { hostPlatform, parsePlatform, parseReference } from '@berth/oci-spec';

export class PullCommand extends BerthCommand {
  static override paths = [Command.Default];

  static override usage = Command.Usage({
    description: 'Pull an image from a registry into an OCI image layout',
    details: `
      Speaks the OCI distribution spec (Docker Registry HTTP API v2): resolves REFERENCE the way podman does (\`busybox\` is \`docker.io/library/busybox:latest\`), fetches the manifest (choosing the platform from an index), downloads the config and layers concurrently while hashing them, and records the reference in ROOT/images/index.json. Prints one JSON document, {"kind":"image",...}, that the next stage reads with \`-\`.

      Names go through registries.conf as podman's do (containers-registries.conf(5)): a short name through [aliases] and unqualified-search-registries (with none, docker.io); a [[registry]] table chosen by the longest prefix can block the name, allow plain HTTP (\`insecure = true\`), move it (\`location\`) or give mirrors, tried first, in order. The image keeps the name you gave.

      Registries on plain HTTP (a loopback test registry) need \`--tls-verify=false\` or \`insecure = true\` in registries.conf; \`--tls-verify\` given either way wins over the file. Credentials come from --creds, --authfile, $XDG_RUNTIME_DIR/containers/auth.json (podman login) or ~/.docker/config.json (docker login).
    `,
    examples: [
      ['Pull busybox for this machine', '$0 busybox'],
      ['Pull from a local plain-HTTP registry into a chosen root', '$0 --tls-verify=false --root /tmp/berth 127.0.0.1:5000/library/busybox:latest'],
      ['Pull a pinned digest for arm64', '$0 --platform linux/arm64/v8 alpine@sha256:<digest>'],
      ['Pull and unpack', '$0 busybox | berth-store unpack -'],
      ['Pull through the mirrors and insecure registries of a registries.conf', '$0 --registries-conf ./registries.conf app:v1'],
    ],
  });

  static override explain = `
berth-pull follows the pull workflow of the OCI distribution spec
(https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pull):

1. GET /v2/ checks the API and learns the auth scheme from WWW-Authenticate
   (Basic, or Bearer: a token from the realm for scope repository:NAME:pull).
2. GET /v2/NAME/manifests/REF with Accept listing OCI and Docker schema2
   manifest and index types. An index (manifest list) is resolved to the
   entry for the wanted platform, fetched by digest. Every manifest is hashed
   and checked against the digest it was asked by; over 4 MiB is refused.
3. GET /v2/NAME/blobs/DIGEST for the config and each layer not yet in the
   store, several at once. Bytes stream into ROOT/images/ingest/ while being
   hashed; a blob becomes visible in blobs/sha256/ only after its size and
   digest match (fsync, then rename). Resets, 5xx and 429 are retried with
   backoff; a broken download resumes with a Range request.
4. The manifest (and index) blobs are written, then index.json is rewritten
   atomically under a lock, naming the manifest with the annotation
   org.opencontainers.image.ref.name (image-spec image-layout.md).
`;

  platform = Option.String('--platform', { description: 'OS/ARCH[/VARIANT] to pick from a multi-platform image (default: this machine)' });
  tlsVerify = Option.String('--tls-verify', { tolerateBoolean: true, description: 'Require HTTPS with a verified certificate (default true); --tls-verify=false allows plain HTTP and self-signed certificates' });
  creds = Option.String('--creds', { description: 'USER:PASSWORD for the registry' });
  authfile = Option.String('--authfile', { description: 'Path of an auth.json (containers-auth.json(5) or docker config.json)' });
  certDir = Option.String('--cert-dir', { description: 'Use certificates at DIR (*.crt CAs, *.cert/*.key client pair) for the registry, instead of the certs.d directories (containers-certs.d(5))' });
  registriesConf = Option.String('--registries-conf', { description: 'The registries.conf to use (default: CONTAINERS_REGISTRIES_CONF, ~/.config/containers/registries.conf, /etc/containers/registries.conf and its drop-ins)' });
  jobs = Option.String('--jobs', { description: 'Blobs downloaded at once (default 6)' });
  reference = Option.String({ name: 'REFERENCE' });

  async perform(): Promise<unknown> {
    const verify = tlsVerifyFlag(this.tlsVerify);
    if (this.creds !== undefined && this.authfile !== undefined) throw new BerthUsageError('--creds and --authfile cannot be used together');
    let concurrency: number | undefined;
    if (this.jobs !== undefined) {
      concurrency = Number(this.jobs);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new BerthUsageError(`--jobs takes a number from 1 to 64, not "${this.jobs}"`);
    }
    // The registry client (undici) is loaded only when a pull runs, so that
    // --help and usage errors start fast.
    log.debug(`command parsed at ${Math.round(performance.now())} ms since process start`);
    parseReference(this.reference);
    const { pullByName } = await import('../resolve.ts');
    log.debug(`registry client loaded at ${Math.round(performance.now())} ms since process start`);
    const platform = this.platform !== undefined ? parsePlatform(this.platform) : hostPlatform();
    return pullByName(this.reference, {
      store: imageStorePath(this.dataRoot),
      platform,
      platformExplicit: this.platform !== undefined,
      tlsVerify: verify,
      creds: this.creds,
      authfile: this.authfile,
      certDir: this.certDir,
      registriesConf: this.registriesConf,
      concurrency,
    });
  }
}
