import { lstatSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BerthError, isErrno } from '@berth/cli-kit';

/**
 * Registry credentials, found where podman and docker keep them:
 *   1. --creds USER:PASS
 *   2. --authfile FILE (alone, like podman's --authfile), else $REGISTRY_AUTH_FILE (alone too)
 *   3. $XDG_RUNTIME_DIR/containers/auth.json, or /run/containers/UID/auth.json
 *      without XDG_RUNTIME_DIR (what `podman login` and `berth login` write)
 *   4. $XDG_CONFIG_HOME/containers/auth.json (~/.config/containers/auth.json)
 *   5. $DOCKER_CONFIG/config.json or ~/.docker/config.json (what `docker login` writes)
 * Each file maps a key (`host[:port]`, or `host/namespace/repo` for a
 * narrower login, or docker's `https://index.docker.io/v1/`) to
 * `{"auth": base64("user:password")}`. The most specific key wins, as in
 * containers-auth.json(5).
 *
 * A file may instead hand a registry to a credential helper, the
 * docker-credential-helpers protocol podman and docker share: `credHelpers`
 * maps a registry host to NAME, `credsStore` names one for every registry
 * (docker's config.json). berth runs `docker-credential-NAME get` with the
 * server on stdin and reads `{"ServerURL","Username","Secret"}` from stdout;
 * the helper's "credentials not found" means anonymous. A helper named for
 * the registry wins over that file's `auths`, as in docker.
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

/**
 * The auth file `podman login` writes, and berth login with it (containers/image's
 * getPathToAuth): $REGISTRY_AUTH_FILE (podman's default for --authfile), else
 * $XDG_RUNTIME_DIR/containers/auth.json. Without XDG_RUNTIME_DIR, root gets
 * /run/containers/0/auth.json; an ordinary user gets the runtime directory
 * rootless podman picks for itself (util.GetRuntimeDir): /run/user/UID when
 * the user owns it, else $TMPDIR/podman-run-UID.
 */
export function loginAuthFile(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): string {
  if (env.REGISTRY_AUTH_FILE) return env.REGISTRY_AUTH_FILE;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json');
  if (uid === 0) return join('/run/containers', '0', 'auth.json');
  const userRun = join('/run/user', String(uid));
  let st: ReturnType<typeof statSync> | undefined;
  try { st = statSync(userRun); } catch { st = undefined; }
  if (st?.isDirectory() && st.uid === uid && (st.mode & 0o700) === 0o700) return join(userRun, 'containers', 'auth.json');
  // /tmp is everyone's: another user may have made podman-run-UID first, to
  // read or swap the logins put there. Only a directory that is the user's
  // own and closed to others is used (podman's GetRuntimeDir insists on the
  // same); else the user's config directory, which podman reads too.
  const tmpRun = join(env.TMPDIR || '/tmp', `podman-run-${uid}`);
  let t: ReturnType<typeof lstatSync> | undefined;
  try { t = lstatSync(tmpRun); } catch { t = undefined; }
  if (t === undefined || (t.isDirectory() && t.uid === uid && (t.mode & 0o077) === 0)) return join(tmpRun, 'containers', 'auth.json');
  return join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'containers', 'auth.json');
}

/**
 * The files read for credentials, in order. The first is always the one
 * login writes (loginAuthFile), so a login is seen by the next pull or push.
 * $REGISTRY_AUTH_FILE stands alone, as an --authfile does (podman reads it as
 * the default of --authfile); otherwise the per-user config file and docker's
 * follow, as containers/image's getAuthFilePaths has them.
 */
export function authFileCandidates(env: NodeJS.ProcessEnv = process.env, uid?: number): string[] {
  const home = env.HOME || homedir();
  const primary = loginAuthFile(env, uid);
  if (env.REGISTRY_AUTH_FILE) return [primary];
  return [...new Set([
    primary,
    join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers', 'auth.json'),
    join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json'),
  ])];
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

/** What one auth file says: the `auths` entries, and which credential helper serves which registry. */
interface AuthDoc {
  auths: Map<string, AuthEntry>;
  credHelpers: Map<string, string>;
  credsStore: string | undefined;
}

export async function readAuthFile(path: string, required: boolean): Promise<Map<string, AuthEntry> | undefined> {
  return (await readAuthDoc(path, required))?.auths;
}

async function readAuthDoc(path: string, required: boolean): Promise<AuthDoc | undefined> {
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
  const { auths, credHelpers, credsStore } = (doc ?? {}) as { auths?: unknown; credHelpers?: unknown; credsStore?: unknown };
  const out: AuthDoc = { auths: new Map(), credHelpers: new Map(), credsStore: undefined };
  if (auths !== undefined) {
    if (typeof auths !== 'object' || auths === null) throw new BerthError('E_AUTHFILE', `auth file ${path}: "auths" is not an object`);
    for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
      if (typeof entry === 'object' && entry !== null) out.auths.set(normalizeKey(key), entry as AuthEntry);
    }
  }
  if (credHelpers !== undefined) {
    if (typeof credHelpers !== 'object' || credHelpers === null) throw new BerthError('E_AUTHFILE', `auth file ${path}: "credHelpers" is not an object`);
    for (const [key, name] of Object.entries(credHelpers as Record<string, unknown>)) {
      if (typeof name !== 'string' || !helperName.test(name)) throw new BerthError('E_AUTHFILE', `auth file ${path}: credHelpers "${key}": ${JSON.stringify(name)} is not a helper name`);
      out.credHelpers.set(normalizeKey(key), name);
    }
  }
  if (credsStore !== undefined && credsStore !== '') {
    if (typeof credsStore !== 'string' || !helperName.test(credsStore)) throw new BerthError('E_AUTHFILE', `auth file ${path}: credsStore ${JSON.stringify(credsStore)} is not a helper name`);
    out.credsStore = credsStore;
  }
  return out;
}

/** A helper name becomes part of a program name: docker-credential-NAME. */
const helperName = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** The server a helper is asked about: docker.io's logins are stored under docker's index URL. */
function helperServer(registry: string): string {
  return registry === 'docker.io' ? 'https://index.docker.io/v1/' : registry;
}

/**
 * `docker-credential-NAME get`, as the docker-credential-helpers protocol
 * has it: the server on stdin, a JSON answer on stdout; "credentials not
 * found" on stdout (with a non-zero exit) means there are none.
 */
async function fromHelper(name: string, registry: string, where: string): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  const server = helperServer(registry);
  const { spawn } = await import('node:child_process');
  const result = await new Promise<{ code: number | null; stdout: string; stderr: string; error?: NodeJS.ErrnoException }>((resolve) => {
    const child = spawn(program, ['get'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    child.on('error', (error: NodeJS.ErrnoException) => { clearTimeout(timer); resolve({ code: null, stdout, stderr, error }); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    child.stdin.on('error', () => {});
    child.stdin.end(server);
  });
  if (result.error) {
    const why = result.error.code === 'ENOENT' ? 'is not on PATH' : `cannot run: ${result.error.code ?? result.error.message}`;
    throw new BerthError('E_AUTHFILE', `credential helper ${program} (${where}) ${why}`);
  }
  if (result.code !== 0) {
    if (/credentials not found/i.test(result.stdout + result.stderr)) return undefined;
    throw new BerthError('E_AUTHFILE', `credential helper ${program} (${where}) failed for ${server} with exit ${result.code}: ${(result.stderr || result.stdout).trim().slice(0, 200)}`);
  }
  let answer: { Username?: unknown; Secret?: unknown };
  try {
    answer = JSON.parse(result.stdout) as typeof answer;
  } catch {
    throw new BerthError('E_AUTHFILE', `credential helper ${program} (${where}) answered something that is not JSON for ${server}`);
  }
  if (typeof answer.Username !== 'string' || typeof answer.Secret !== 'string' || answer.Username === '') {
    throw new BerthError('E_AUTHFILE', `credential helper ${program} (${where}) answered without a Username and Secret for ${server}`);
  }
  if (answer.Username === '<token>') {
    throw new BerthError('E_AUTHFILE', `credential helper ${program} (${where}) holds an identity token for ${server}, which berth cannot use yet; log in with a password (podman login) or pass --creds`);
  }
  return { username: answer.Username, password: answer.Secret, source: `${program} (${where})` };
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
    const doc = await readAuthDoc(file, opts.authfile !== undefined);
    if (!doc) continue;
    // A helper named for this registry wins over the file's auths; the
    // file-wide credsStore serves registries the auths do not name.
    const named = keys.map((k) => doc.credHelpers.get(k)).find((h) => h !== undefined);
    if (named !== undefined) return fromHelper(named, registry, `credHelpers in ${file}`);
    for (const key of keys) {
      const entry = doc.auths.get(key);
      if (entry) {
        const creds = decodeEntry(entry, `${file} (${key})`);
        if (creds) return creds;
      }
    }
    if (doc.credsStore !== undefined) {
      const creds = await fromHelper(doc.credsStore, registry, `credsStore in ${file}`);
      if (creds) return creds;
    }
  }
  return undefined;
}
