import { BerthError, log } from '@berth/cli-kit';
import { formatReference, type Platform } from '@berth/oci-spec';
import { findCredentials, loadRegistriesConf, parseCredsFlag, resolvePullCandidates, type RegistriesConf } from '@berth/registry';
import { pullImage, type ImageDocument } from './pull.ts';

export interface PullByNameOptions {
  store: string;
  platform: Platform;
  platformExplicit: boolean;
  /** --tls-verify: undefined leaves it to registries.conf's `insecure`. */
  tlsVerify?: boolean;
  creds?: string;
  authfile?: string;
  /** --cert-dir: the CAs and client pair for every source, instead of each host's certs.d directory. */
  certDir?: string;
  /** --registries-conf; else CONTAINERS_REGISTRIES_CONF, the user's file, /etc/containers/registries.conf. */
  registriesConf?: string;
  /** Already loaded (tests, or a caller pulling several names). */
  conf?: RegistriesConf;
  concurrency?: number;
}

/**
 * A pull of what the user typed, as podman resolves it: the name through
 * registries.conf (aliases and search registries for a short name), each
 * name's sources (mirrors, then its location) in order, credentials looked
 * up for the host each source is on. The first source that serves the image
 * wins; when one fails, the next is tried and the failure is reported; when
 * all fail, the error names each attempt. Usage errors (a malformed name, a
 * blocked registry) are not retried.
 */
export async function pullByName(input: string, opts: PullByNameOptions): Promise<ImageDocument> {
  const conf = opts.conf ?? loadRegistriesConf({ path: opts.registriesConf });
  const candidates = resolvePullCandidates(conf, input, opts.tlsVerify);
  const attempts: { what: string; err: unknown }[] = [];
  for (const candidate of candidates) {
    for (const source of candidate.sources) {
      const name = formatReference(candidate.reference);
      const where = `${source.registry}/${source.repository}`;
      const what = source.kind === 'primary' ? name : `${name} from ${source.kind} ${where}`;
      log.debug(`trying ${what} (name resolved by ${candidate.resolvedBy}${source.insecure ? '; plain HTTP allowed' : ''})`);
      try {
        const credentials = opts.creds !== undefined
          ? parseCredsFlag(opts.creds)
          : await findCredentials(source.registry, source.repository, { authfile: opts.authfile });
        return await pullImage({
          reference: candidate.reference,
          store: opts.store,
          platform: opts.platform,
          platformExplicit: opts.platformExplicit,
          insecure: source.insecure,
          certDir: opts.certDir,
          credentials,
          concurrency: opts.concurrency,
          ...(source.kind === 'primary' ? {} : { source: { registry: source.registry, repository: source.repository } }),
        });
      } catch (err) {
        if (err instanceof BerthError && err.exitCode === 2) throw err;
        attempts.push({ what, err });
        const more = candidates.indexOf(candidate) < candidates.length - 1 || candidate.sources.indexOf(source) < candidate.sources.length - 1;
        if (more) log.warn(`${what}: ${(err as Error).message}; trying the next source`);
      }
    }
  }
  if (attempts.length === 1) throw attempts[0]!.err;
  const code = attempts.map((a) => (a.err instanceof BerthError ? a.err.code : 'E_PULL')).at(-1)!;
  throw new BerthError(code, `pull ${input}: every source failed (registries.conf: ${conf.files.join(', ') || 'none'}):\n${attempts.map((a) => `  ${a.what}: ${(a.err as Error).message}`).join('\n')}`);
}
