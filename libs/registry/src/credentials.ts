import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BerthError, isErrno } from '@berth/cli-kit';

/**
 * Registry credentials, found where podman and docker keep them:
 *   1. --creds USER:PASS
 *   2. --authfile FILE (alone, like podman's --authfile), else $REGISTRY_AUTH_FILE
 *   3. $XDG_RUNTIME_DIR/containers/auth.json (what `podman login` writes)
 *   4. $XDG_CONFIG_HOME/containers/auth.json (~/.config/containers/auth.json)
 *   5. $DOCKER_CONFIG/config.json or ~/.docker/config.json (what `docker login` writes)
 * Each file maps a key (`host[:port]`, or `host/namespace/repo` for a
 * narrower login, or docker's `https://index.docker.io/v1/`) to
 * `{"auth": base64("user:password")}`. The most specific key wins, as in
 * containers-auth.json(5).
 */
export interface Credentials {
  username: string;
  password: string;
  /** Where they came from, for logs (never the secret itself). */
  source: string;
}

export function parseCredsFlag(value: string): Credentials {
  const i = value.indexOf(':');
  if (i <= 0) throw new BerthError('E_USAGE', `--creds must be USER:PASSWORD (got no ":" after a user name)`, { exitCode: 2 });
  return { username: value.slice(0, i), password: value.slice(i + 1), source: '--creds' };
}

export function authFileCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME || homedir();
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  files.push(join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers', 'auth.json'));
  files.push(join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json'));
  return files;
}

/** The keys to look up for a repository, most specific first. */
export function authKeys(registry: string, repository: string): string[] {
  const keys: string[] = [];
  const parts = repository.split('/');
  for (let n = parts.length; n >= 1; n--) keys.push(`${registry}/${parts.slice(0, n).join('/')}`);
  keys.push(registry);
  if (registry === 'docker.io') keys.push('index.docker.io', 'registry-1.docker.io', 'index.docker.io/v1');
  return keys;
}

/** docker writes `https://index.docker.io/v1/`; compare keys without scheme or trailing slash. */
function normalizeKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
}

interface AuthEntry { auth?: string; username?: string; password?: string; identitytoken?: string }

export async function readAuthFile(path: string, required: boolean): Promise<Map<string, AuthEntry> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (!required && (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR'))) return undefined;
    throw new BerthError('E_AUTHFILE', `read auth file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new BerthError('E_AUTHFILE', `auth file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  const auths = (doc as { auths?: unknown } | null)?.auths;
  const map = new Map<string, AuthEntry>();
  if (auths === undefined) return map;
  if (typeof auths !== 'object' || auths === null) throw new BerthError('E_AUTHFILE', `auth file ${path}: "auths" is not an object`);
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    if (typeof entry === 'object' && entry !== null) map.set(normalizeKey(key), entry as AuthEntry);
  }
  return map;
}

function decodeEntry(entry: AuthEntry, where: string): Credentials | undefined {
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i <= 0) throw new BerthError('E_AUTHFILE', `${where}: "auth" is not base64 of USER:PASSWORD`);
    return { username: decoded.slice(0, i), password: decoded.slice(i + 1), source: where };
  }
  if (typeof entry.username === 'string' && typeof entry.password === 'string') {
    return { username: entry.username, password: entry.password, source: where };
  }
  return undefined;
}

/** Find stored credentials for a repository; undefined means anonymous. */
export async function findCredentials(
  registry: string,
  repository: string,
  opts: { authfile?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Credentials | undefined> {
  const files = opts.authfile !== undefined ? [opts.authfile] : authFileCandidates(opts.env);
  const keys = authKeys(registry, repository);
  for (const file of files) {
    const map = await readAuthFile(file, opts.authfile !== undefined);
    if (!map) continue;
    for (const key of keys) {
      const entry = map.get(key);
      if (entry) {
        const creds = decodeEntry(entry, `${file} (${key})`);
        if (creds) return creds;
      }
    }
  }
  return undefined;
}
