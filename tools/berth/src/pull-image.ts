import { imageStorePath, log } from '@berth/cli-kit';
import { hostPlatform } from '@berth/oci-spec';
import type { EngineEnv } from '@berth/engine';

/**
 * berth-pull's code, in-process: the name goes through registries.conf
 * (aliases, search registries, mirrors, insecure) as podman's does, and the
 * registry client (undici) is loaded only when a pull runs, so other verbs
 * start fast. `tlsVerify` undefined leaves plain HTTP to registries.conf.
 */
export async function pullImage(env: EngineEnv, ref: string, opts: { tlsVerify: boolean | undefined; quiet: boolean; creds?: string; authfile?: string; certDir?: string }): Promise<{ reference: string; manifest: string; config: string }> {
  const { pullByName } = await import('@berth/puller/resolve');
  if (opts.quiet) log.configure({ level: 'warn' });
  const doc = await pullByName(ref, {
    store: imageStorePath(env.dataRoot), platform: hostPlatform(), platformExplicit: false,
    tlsVerify: opts.tlsVerify, creds: opts.creds, authfile: opts.authfile, certDir: opts.certDir,
  });
  return { reference: doc.reference, manifest: doc.manifest.digest, config: doc.config.digest };
}

