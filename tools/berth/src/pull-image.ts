import { imageStorePath, log } from '@berth/cli-kit';
import { hostPlatform, parseReference } from '@berth/oci-spec';
import type { EngineEnv } from '@berth/engine';

/**
 * berth-pull's code, in-process: the registry client (undici) is loaded only
 * when a pull runs, so other verbs start fast.
 */
export async function pullImage(env: EngineEnv, ref: string, opts: { insecure: boolean; quiet: boolean; creds?: string }): Promise<{ reference: string; manifest: string; config: string }> {
  const { findCredentials, parseCredsFlag } = await import('@berth/registry');
  const { pullImage: pull } = await import('@berth/puller/pull');
  const reference = parseReference(ref);
  // The loopback registries of tests and demos speak plain HTTP, as podman allows for them only with --tls-verify=false.
  const credentials = opts.creds !== undefined ? parseCredsFlag(opts.creds) : await findCredentials(reference.registry, reference.repository, {});
  if (opts.quiet) log.configure({ level: 'warn' });
  const doc = await pull({
    reference, store: imageStorePath(env.dataRoot), platform: hostPlatform(), platformExplicit: false,
    insecure: opts.insecure, credentials,
  });
  return { reference: doc.reference, manifest: doc.manifest.digest, config: doc.config.digest };
}
