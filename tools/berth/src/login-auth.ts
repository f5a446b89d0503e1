import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BerthError, isErrno } from '@berth/cli-kit';
import { writeFileAtomic } from '@berth/content';

/**
 * The auth file of containers-auth.json(5), as `podman login` and `podman
 * logout` change it: `{"auths": {"KEY": {"auth": base64("USER:PASSWORD")}}}`,
 * KEY being `host[:port]` or `host[:port]/namespace/repo` for a narrower
 * login. Every other key of the file (docker's credHelpers, credsStore,
 * other registries' entries, anything unknown) is kept as it was. The file is
 * replaced atomically (temp file, fsync, rename) with mode 0600, in a
 * directory made 0700 when berth makes it: it holds passwords.
 */
export type AuthFileDoc = Record<string, unknown> & { auths?: Record<string, unknown> };

/**
 * The key a login is stored under: what the user typed without a scheme,
 * without a trailing slash or `/v1/`/`/v2/` API path (podman's
 * normalizeRegistry), so `https://r.example/v2/` and `r.example` are the same login.
 * docker.io's aliases become docker.io, as containers/image stores them.
 */
export function loginKey(input: string): string {
  let key = input.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
  key = key.replace(/\/v[12]$/, '');
  if (key === 'index.docker.io' || key === 'registry-1.docker.io') key = 'docker.io';
  if (key === '' || /\s/.test(key)) throw new BerthError('E_USAGE', `registry "${input}": expected HOST[:PORT][/NAMESPACE/REPO]`, { exitCode: 2 });
  const host = key.split('/')[0]!;
  if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(host) && !/^\[[0-9a-fA-F:]+\](:\d+)?$/.test(host)) {
    throw new BerthError('E_USAGE', `registry "${input}": "${host}" is not a host[:port]`, { exitCode: 2 });
  }
  if (/[@]|:[^/]*$/.test(key.slice(host.length))) {
    throw new BerthError('E_USAGE', `registry "${input}": a login is for a registry or a repository, not for a tag or digest`, { exitCode: 2 });
  }
  return key;
}

/** The registry host[:port] a key's credentials are checked against. */
export function keyHost(key: string): string {
  return key.split('/')[0]!;
}

/** Read an auth file; a missing one is an empty document. */
export async function readAuthDocument(path: string): Promise<AuthFileDoc> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return {};
    throw new BerthError('E_AUTHFILE', `read auth file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (text.trim() === '') return {};
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new BerthError('E_AUTHFILE', `auth file ${path} is not valid JSON: ${(err as Error).message}; fix or remove it`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new BerthError('E_AUTHFILE', `auth file ${path} is not a JSON object`);
  const auths = (doc as AuthFileDoc).auths;
  if (auths !== undefined && (typeof auths !== 'object' || auths === null || Array.isArray(auths))) {
    throw new BerthError('E_AUTHFILE', `auth file ${path}: "auths" is not an object`);
  }
  return doc as AuthFileDoc;
}

/** The entry stored for a key (scheme and trailing slash ignored, as the readers do). */
export function entryFor(doc: AuthFileDoc, key: string): { key: string; username: string; password: string } | undefined {
  for (const [k, v] of Object.entries(doc.auths ?? {})) {
    if (k.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '') !== key) continue;
    const auth = (v as { auth?: unknown } | null)?.auth;
    if (typeof auth !== 'string') continue;
    const decoded = Buffer.from(auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i <= 0) continue;
    return { key: k, username: decoded.slice(0, i), password: decoded.slice(i + 1) };
  }
  return undefined;
}

/**
 * Write the document: the directory first (0700 for each level berth
 * creates, as containers/image makes it), then the file in one rename, 0600.
 */
export async function writeAuthDocument(path: string, doc: AuthFileDoc): Promise<void> {
  await mkdirPrivate(dirname(path));
  // podman writes tab-indented JSON; keeping the same shape keeps diffs of the file small.
  // The temp file is created 0600 (the umask only takes bits away), so the password is never readable by others, not even for a moment.
  await writeFileAtomic(path, JSON.stringify(doc, null, '\t'), 0o600);
}

async function mkdirPrivate(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    const st = await stat(d).catch((err: unknown) => {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw new BerthError('E_AUTHFILE', `stat ${d}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    });
    if (st) {
      if (!st.isDirectory()) throw new BerthError('E_AUTHFILE', `${d} is not a directory, so the auth file cannot go under it`);
      // The directory that holds the file must be the caller's: another user owning it could swap the file.
      const uid = process.getuid?.() ?? 0;
      if (d === dir && uid !== 0 && st.uid !== uid) throw new BerthError('E_AUTHFILE', `${d} belongs to uid ${st.uid}, not to you (uid ${uid}): refusing to keep credentials in it`);
      break;
    }
    missing.push(d);
    if (dirname(d) === d) break;
  }
  // Parents first, each made 0700 (mkdir's mode is masked by the umask, hence chmod).
  for (const d of missing.reverse()) {
    await mkdir(d, { mode: 0o700 }).catch((err: unknown) => {
      if (!isErrno(err, 'EEXIST')) throw new BerthError('E_AUTHFILE', `mkdir ${d}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    });
    // chmod fails (EPERM) on a directory another user slipped in after the mkdir's EEXIST.
    await chmod(d, 0o700).catch((err: unknown) => {
      throw new BerthError('E_AUTHFILE', `chmod 0700 ${d}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; is it yours?`);
    });
  }
}

/** Store USER:PASSWORD under key, keeping every other entry and key of the file. */
export async function storeLogin(path: string, key: string, username: string, password: string): Promise<void> {
  const doc = await readAuthDocument(path);
  const auths: Record<string, unknown> = { ...(doc.auths ?? {}) };
  // A key written with a scheme (docker's https://index.docker.io/v1/) is the same login: replace it.
  for (const k of Object.keys(auths)) if (k !== key && k.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '') === key) delete auths[k];
  auths[key] = { auth: Buffer.from(`${username}:${password}`).toString('base64') };
  await writeAuthDocument(path, { ...doc, auths });
}

/** Remove one key's entry; false when there was none. */
export async function removeLogin(path: string, key: string): Promise<boolean> {
  const doc = await readAuthDocument(path);
  const auths: Record<string, unknown> = { ...(doc.auths ?? {}) };
  const hit = Object.keys(auths).filter((k) => k.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '') === key);
  if (hit.length === 0) return false;
  for (const k of hit) delete auths[k];
  await writeAuthDocument(path, { ...doc, auths });
  return true;
}

/** logout --all: every stored login goes, and so do the credential helpers named in the file (containers/image does the same). */
export async function removeAllLogins(path: string): Promise<void> {
  const doc = await readAuthDocument(path);
  if (Object.keys(doc).length === 0) return;
  const { credHelpers: _helpers, ...rest } = doc;
  await writeAuthDocument(path, { ...rest, auths: {} });
}
