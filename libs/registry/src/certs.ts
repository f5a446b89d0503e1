import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { BerthError } from '@berth/cli-kit';

/**
 * A registry's own TLS settings, from a certs.d directory as
 * containers-certs.d(5) lays it out (the files podman, skopeo and buildah
 * read): in a directory named after the registry's host[:port],
 *   *.crt   CA certificates, trusted on top of the system's;
 *   *.cert  client certificates, each with the *.key of the same name.
 *
 * Which directory: `--cert-dir DIR` (its files, no host subdirectory), else
 * the first of these that exists for the host:
 *   ~/.config/containers/certs.d/HOST   (not for root)
 *   /etc/containers/certs.d/HOST
 *   /etc/docker/certs.d/HOST
 */
export interface RegistryTls {
  /** The directory the settings came from. */
  dir: string;
  /** Trusted CAs: the defaults plus the directory's *.crt (undefined: the defaults alone). */
  ca?: string[];
  cert?: string[];
  key?: string[];
}

export interface RegistryTlsOptions {
  /** --cert-dir: this directory's files, instead of the certs.d lookup. */
  certDir?: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
}

/** The certs.d directories looked at for `registry` (host[:port]), in order; the first that exists is used. */
export function certsDirCandidates(registry: string, opts: { env?: NodeJS.ProcessEnv; uid?: number } = {}): string[] {
  const env = opts.env ?? process.env;
  const uid = opts.uid ?? process.getuid?.() ?? 0;
  const dirs: string[] = [];
  if (uid !== 0) dirs.push(join(env.HOME || homedir(), '.config', 'containers', 'certs.d', registry));
  dirs.push(join('/etc/containers/certs.d', registry), join('/etc/docker/certs.d', registry));
  return dirs;
}

/** The TLS settings for `registry`, or undefined when no certs.d directory (and no --cert-dir) applies. */
export function registryTls(registry: string, opts: RegistryTlsOptions = {}): RegistryTls | undefined {
  let dir: string | undefined;
  if (opts.certDir !== undefined) {
    if (!isDirectory(opts.certDir)) throw new BerthError('E_CERT_DIR', `--cert-dir ${opts.certDir}: not a directory`);
    dir = opts.certDir;
  } else {
    dir = certsDirCandidates(registry, opts).find(isDirectory);
  }
  if (dir === undefined) return undefined;
  const names = readdirSync(dir).sort();
  const read = (name: string): string => {
    try {
      return readFileSync(join(dir, name), 'utf8');
    } catch (err) {
      throw new BerthError('E_CERT_DIR', `read ${join(dir, name)}: ${(err as Error).message}`, { cause: err });
    }
  };
  const tls: RegistryTls = { dir };
  const cas = names.filter((n) => n.endsWith('.crt')).map(read);
  if (cas.length > 0) tls.ca = [...defaultCas(opts.env ?? process.env), ...cas];
  // Client pairs go by name: client.cert with client.key. One without the
  // other is a broken setup, named rather than half-used.
  for (const certName of names.filter((n) => n.endsWith('.cert'))) {
    const keyName = `${certName.slice(0, -'.cert'.length)}.key`;
    if (!names.includes(keyName)) throw new BerthError('E_CERT_DIR', `${join(dir, certName)}: missing client key ${keyName} beside it`);
    (tls.cert ??= []).push(read(certName));
    (tls.key ??= []).push(read(keyName));
  }
  for (const keyName of names.filter((n) => n.endsWith('.key'))) {
    const certName = `${keyName.slice(0, -'.key'.length)}.cert`;
    if (!names.includes(certName)) throw new BerthError('E_CERT_DIR', `${join(dir, keyName)}: missing client certificate ${certName} beside it`);
  }
  return tls;
}

/**
 * Giving undici a `ca` list replaces Node's trust store, so the list starts
 * with what Node would have trusted: its bundled roots and the file named by
 * NODE_EXTRA_CA_CERTS. berth's launchers start Node without that variable
 * (reading the file costs every start ~40 ms, and most starts speak no TLS)
 * and pass the path on as BERTH_EXTRA_CA_CERTS, read here when TLS is needed.
 */
function defaultCas(env: NodeJS.ProcessEnv): string[] {
  const cas = [...rootCertificates];
  const extra = env.NODE_EXTRA_CA_CERTS || env.BERTH_EXTRA_CA_CERTS;
  if (extra && existsSync(extra)) cas.push(readFileSync(extra, 'utf8'));
  return cas;
}

/** The CA file a launcher kept from Node's start, which Node's own store therefore lacks. */
function deferredExtraCa(env: NodeJS.ProcessEnv): boolean {
  return !env.NODE_EXTRA_CA_CERTS && !!env.BERTH_EXTRA_CA_CERTS;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** undici connect options for a registry: verification, and the certs.d CAs and client pair when there are any. */
export function connectOptions(registry: string, opts: RegistryTlsOptions & { insecure?: boolean }): { rejectUnauthorized: boolean; timeout: number; ca?: string[]; cert?: string[]; key?: string[] } {
  const tls = registryTls(registry, opts);
  const ca = tls?.ca ?? (deferredExtraCa(opts.env ?? process.env) ? defaultCas(opts.env ?? process.env) : undefined);
  return {
    rejectUnauthorized: !(opts.insecure ?? false),
    timeout: 10_000,
    ...(ca ? { ca } : {}),
    ...(tls?.cert ? { cert: tls.cert, key: tls.key } : {}),
  };
}
