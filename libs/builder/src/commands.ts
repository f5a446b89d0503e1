import { BerthCommand, BerthUsageError, Option, t, tlsVerifyFlag } from '@berth/cli-kit';
import type { BuildOptions, PushOptions } from './types.ts';

/**
 * The flags of `podman build` and `podman push`, shared by the two front ends
 * of this lib: `berth build|push` (podman's output: an id) and the pipeline
 * stage `berth-build [build]|push` (a JSON document). Only the usage text,
 * the paths and what goes to stdout differ, so those stay in the tools.
 *
 * This module imports nothing but cli-kit: the build machinery is loaded in
 * perform(), so `--help` stays fast.
 */
export abstract class BuildFlags extends BerthCommand {
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
  certDir = Option.String('--cert-dir', { description: 'CAs (*.crt) and client pair (*.cert/*.key) for the registry of a FROM image, instead of its certs.d directory' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'Do not print the steps' });
  contextDir = Option.String({ name: 'CONTEXT', required: false });

  /** The flags as the lib's BuildOptions, checked. */
  protected async buildOptions(): Promise<BuildOptions> {
    const { booleanFlag, keyValueFlags, networkFlag, pullFlag } = await import('./flags.ts');
    const tls = tlsVerifyFlag(this.tlsVerify);
    return {
      dataRoot: this.dataRoot,
      context: this.contextDir ?? '.',
      file: this.file,
      tags: this.tags ?? [],
      format: this.format as 'oci' | 'docker',
      buildArgs: keyValueFlags(this.buildArgs ?? [], '--build-arg', true),
      labels: keyValueFlags(this.labels ?? [], '--label', false),
      noCache: this.noCache,
      layers: booleanFlag(this.layers, '--layers', true),
      pull: pullFlag(this.pull),
      network: networkFlag(this.network),
      runtime: this.runtime,
      // Without --tls-verify, registries.conf's `insecure` decides for FROM pulls.
      registry: { insecure: tls === undefined ? undefined : !tls, creds: this.creds, authfile: this.authfile, certDir: this.certDir },
      quiet: this.quiet,
    };
  }
}

export abstract class PushFlags extends BerthCommand {
  tlsVerify = Option.String('--tls-verify', { tolerateBoolean: true, description: 'Require HTTPS with a verified certificate (default true)' });
  creds = Option.String('--creds', { description: 'USER:PASSWORD for the registry' });
  authfile = Option.String('--authfile', { description: 'Path of an auth.json' });
  certDir = Option.String('--cert-dir', { description: 'Use certificates at DIR (*.crt CAs, *.cert/*.key client pair) for the registry, instead of the certs.d directories (containers-certs.d(5))' });
  removeSignatures = Option.Boolean('--remove-signatures', false, { description: 'Do not copy signatures (berth makes none; accepted for podman scripts)' });
  format = Option.String('-f,--format', { description: 'Manifest type to push: oci or docker (v2s2), converting media types on the way (default: as stored)', validator: t.isEnum(['oci', 'docker', 'v2s2'] as const) });
  chunkSize = Option.String('--chunk-size', { description: 'Blobs larger than this many MiB are uploaded in PATCH chunks of that size (default 32)' });
  digestfile = Option.String('--digestfile', { description: 'Write the pushed manifest digest to this file' });
  quiet = Option.Boolean('-q,--quiet', false, { description: 'No progress on stderr' });
  source = Option.String({ name: 'IMAGE' });
  destination = Option.String({ name: 'DEST', required: false });

  /** The flags as the lib's PushOptions, checked. */
  protected async pushOptions(): Promise<PushOptions> {
    if (this.creds !== undefined && this.authfile !== undefined) throw new BerthUsageError('--creds and --authfile cannot be used together');
    let chunkSize: number | undefined;
    if (this.chunkSize !== undefined) {
      const mib = Number(this.chunkSize);
      if (!Number.isFinite(mib) || mib <= 0) throw new BerthUsageError(`--chunk-size takes a number of MiB, not "${this.chunkSize}"`);
      chunkSize = Math.max(1, Math.round(mib * 1024 * 1024));
    }
    const tls = tlsVerifyFlag(this.tlsVerify);
    return {
      dataRoot: this.dataRoot,
      source: this.source,
      destination: this.destination,
      // A push speaks TLS unless told not to.
      registry: { insecure: tls === false, creds: this.creds, authfile: this.authfile, certDir: this.certDir },
      format: this.format === undefined ? undefined : this.format === 'oci' ? 'oci' : 'docker',
      removeSignatures: this.removeSignatures,
      chunkSize,
      digestFile: this.digestfile,
      quiet: this.quiet,
    };
  }
}
