import { createReadStream } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';
import { log } from '@berth/cli-kit';
import { parseChallenges, type Challenge } from './challenge.ts';
import type { Credentials } from './credentials.ts';
import { RegistryError, codeForStatus, decodeErrorBody, describeNetworkError, isTransientNetworkError, isTransientStatus } from './errors.ts';

/**
 * The push side of the OCI distribution spec
 * (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#push):
 * - HEAD /v2/NAME/blobs/DIGEST: does the registry have the blob already?
 * - POST /v2/NAME/blobs/uploads/?mount=DIGEST&from=OTHER: cross-repository
 *   mount (201 = mounted; 202 = not allowed, and the answer is an ordinary
 *   upload session to use instead);
 * - POST /v2/NAME/blobs/uploads/ opens a session (202 + Location), then
 *   either PUT LOCATION?digest=D with the whole blob (monolithic) or PATCH
 *   LOCATION with `Content-Range: start-end` per chunk (each answer names the
 *   next Location) and a final empty PUT ?digest=D (chunked);
 * - PUT /v2/NAME/manifests/REF, last, once every blob it names is there.
 * Auth is the pull client's: Basic, or Bearer tokens from the realm, here for
 * the scope `repository:NAME:pull,push` (plus `repository:OTHER:pull` for a
 * mount), as the registry's 401 challenge asks.
 */
export interface PushClientOptions {
  registry: string;
  insecure?: boolean;
  credentials?: Credentials;
  /** Tries per request for resets, 5xx and 429 (default 4). */
  maxAttempts?: number;
  userAgent?: string;
}

export interface BlobSource {
  digest: string;
  size: number;
  /** A host file holding exactly the blob's bytes. */
  path: string;
}

export type UploadOutcome = 'exists' | 'mounted' | 'uploaded';

/** What happened to a blob; `requests` counts the PUT/PATCH requests that carried its bytes (1 for a monolithic upload). */
export interface UploadResult { outcome: UploadOutcome; requests: number }

interface Token { value: string; expiresAt: number }

export class PushClient {
  readonly registry: string;
  private readonly apiHost: string;
  private scheme: 'https' | 'http' = 'https';
  private readonly insecure: boolean;
  private readonly credentials: Credentials | undefined;
  private readonly agent: Agent;
  private readonly maxAttempts: number;
  private readonly userAgent: string;
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, Token>();

  constructor(opts: PushClientOptions) {
    this.registry = opts.registry;
    this.apiHost = opts.registry === 'docker.io' ? 'registry-1.docker.io' : opts.registry;
    this.insecure = opts.insecure ?? false;
    this.credentials = opts.credentials;
    this.maxAttempts = opts.maxAttempts ?? 4;
    this.userAgent = opts.userAgent ?? 'berth/0.1';
    this.agent = new Agent({ connections: 8, connect: { rejectUnauthorized: !this.insecure, timeout: 10_000 }, headersTimeout: 120_000, bodyTimeout: 120_000 });
  }

  async close(): Promise<void> { await this.agent.close().catch(() => {}); }

  /** GET /v2/: which scheme answers, and which auth the registry wants. */
  async ping(): Promise<void> {
    const schemes: Array<'https' | 'http'> = this.insecure ? ['https', 'http'] : ['https'];
    let lastErr: unknown;
    for (const scheme of schemes) {
      const url = `${scheme}://${this.apiHost}/v2/`;
      try {
        const res = await request(url, { dispatcher: this.agent, method: 'GET', headers: { 'user-agent': this.userAgent } });
        await res.body.dump().catch(() => {});
        this.scheme = scheme;
        if (res.statusCode === 401) this.challenge = pickChallenge(parseChallenges(res.headers['www-authenticate']));
        if (res.statusCode >= 500) throw new RegistryError('E_REGISTRY', `GET ${url}: registry answered ${res.statusCode}`, { status: res.statusCode });
        return;
      } catch (err) {
        if (err instanceof RegistryError) throw err;
        lastErr = err;
        const code = (err as { code?: string })?.code;
        if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH') {
          throw new RegistryError('E_REGISTRY_UNREACHABLE', `GET ${url}: ${describeNetworkError(err)}`, { cause: err });
        }
      }
    }
    if (!this.insecure) {
      throw new RegistryError('E_REGISTRY_TLS', `GET https://${this.apiHost}/v2/: ${describeNetworkError(lastErr)}; if ${this.registry} is a plain-HTTP or self-signed registry, pass --tls-verify=false`, { cause: lastErr });
    }
    throw new RegistryError('E_REGISTRY_UNREACHABLE', `GET ${this.apiHost}/v2/ over https and http: ${describeNetworkError(lastErr)}`, { cause: lastErr });
  }

  /** HEAD the blob: 200 means the registry has it in this repository. */
  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const res = await this.call('HEAD', `/v2/${repository}/blobs/${digest}`, { repository, what: `HEAD blob ${digest}`, ok: [200, 404] });
    return res.status === 200;
  }

  /**
   * Upload one blob unless the registry has it: HEAD, then a mount from
   * `from` when given, then POST + PUT (or PATCH chunks for blobs larger
   * than chunkSize). The registry checks the digest on the final PUT.
   */
  async pushBlob(repository: string, blob: BlobSource, opts: { from?: string; chunkSize?: number; onProgress?: (bytes: number) => void } = {}): Promise<UploadResult> {
    if (await this.hasBlob(repository, blob.digest)) return { outcome: 'exists', requests: 0 };
    let location: string | undefined;
    if (opts.from && opts.from !== repository) {
      const res = await this.call('POST', `/v2/${repository}/blobs/uploads/?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(opts.from)}`, {
        repository, extraScope: opts.from, what: `mount blob ${blob.digest} from ${opts.from}`, ok: [201, 202],
      });
      if (res.status === 201) return { outcome: 'mounted', requests: 0 };
      location = res.location;
      log.debug(`mount of ${blob.digest} from ${opts.from} refused (202): uploading`);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const requests = await this.upload(repository, blob, location, opts.chunkSize ?? 32 * 1024 * 1024, opts.onProgress);
        return { outcome: 'uploaded', requests };
      } catch (err) {
        // An upload that broke on the network starts again with a fresh session.
        const transient = (err instanceof RegistryError && err.status !== undefined && isTransientStatus(err.status)) || isTransientNetworkError(err);
        if (!transient || attempt >= this.maxAttempts) throw err;
        log.warn(`blob ${blob.digest}: upload failed (${(err as Error).message}); starting over`);
        location = undefined;
        await sleep(200 * 2 ** attempt);
      }
    }
  }

  private async upload(repository: string, blob: BlobSource, session: string | undefined, chunkSize: number, onProgress?: (bytes: number) => void): Promise<number> {
    let location = session ?? (await this.call('POST', `/v2/${repository}/blobs/uploads/`, { repository, what: `start upload of ${blob.digest}`, ok: [202] })).location;
    if (!location) throw new RegistryError('E_REGISTRY', `start upload of ${blob.digest}: the registry answered without a Location header`);
    if (blob.size <= chunkSize) {
      await this.call('PUT', withDigest(location, blob.digest), {
        repository, what: `upload blob ${blob.digest}`, ok: [201, 204],
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
        body: () => createReadStream(blob.path, { highWaterMark: 1024 * 1024 }),
      });
      onProgress?.(blob.size);
      return 1;
    }
    // Chunks in order: each PATCH says which bytes it carries, and the
    // registry's answer names where the next one goes.
    let requests = 0;
    for (let start = 0; start < blob.size; start += chunkSize) {
      const end = Math.min(blob.size, start + chunkSize) - 1;
      const res = await this.call('PATCH', location!, {
        repository, what: `upload bytes ${start}-${end} of blob ${blob.digest}`, ok: [202],
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - start + 1), 'content-range': `${start}-${end}` },
        body: () => createReadStream(blob.path, { start, end, highWaterMark: 1024 * 1024 }),
      });
      location = res.location ?? location;
      requests++;
      onProgress?.(end + 1);
    }
    await this.call('PUT', withDigest(location!, blob.digest), { repository, what: `finish upload of blob ${blob.digest}`, ok: [201, 204], headers: { 'content-length': '0' } });
    return requests;
  }

  /** PUT the manifest (by tag or digest); returns the digest the registry reports. */
  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<string | undefined> {
    const res = await this.call('PUT', `/v2/${repository}/manifests/${reference}`, {
      repository, what: `PUT manifest ${this.registry}/${repository}:${reference}`, ok: [201, 200, 202],
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: () => bytes,
    });
    return res.digest;
  }

  /**
   * One API call with auth and retries. Bodies are made by a function so a
   * retry can send them again (a stream can be read only once).
   */
  private async call(method: 'HEAD' | 'POST' | 'PUT' | 'PATCH', pathOrUrl: string, opts: {
    repository: string; extraScope?: string; what: string; ok: number[];
    headers?: Record<string, string>; body?: () => NodeJS.ReadableStream | Buffer;
  }): Promise<{ status: number; location: string | undefined; digest: string | undefined }> {
    const url = pathOrUrl.startsWith('/') ? `${this.scheme}://${this.apiHost}${pathOrUrl}` : new URL(pathOrUrl, `${this.scheme}://${this.apiHost}/`).toString();
    let authRetries = 0;
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...opts.headers };
      const auth = await this.authorization(opts.repository, opts.extraScope);
      if (auth && new URL(url).host === this.apiHost) headers.authorization = auth;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, { dispatcher: this.agent, method, headers, body: opts.body?.() as Dispatcher.DispatchOptions['body'] });
      } catch (err) {
        if (isTransientNetworkError(err) && attempt < this.maxAttempts && method !== 'PATCH') { await sleep(200 * 2 ** attempt); continue; }
        throw new RegistryError('E_REGISTRY', `${opts.what}: ${describeNetworkError(err)}`, { cause: err });
      }
      const status = res.statusCode;
      const text = method === 'HEAD' ? '' : await res.body.text().catch(() => '');
      if (method === 'HEAD') await res.body.dump().catch(() => {});
      if (status === 401 && authRetries < 1) {
        const challenge = pickChallenge(parseChallenges(res.headers['www-authenticate']));
        // A Basic registry we sent no credentials to, or a Bearer one whose
        // token lacks this scope: authenticate and send again.
        if (challenge && (challenge.scheme === 'bearer' || (this.credentials && !auth))) {
          this.challenge = challenge;
          this.tokens.clear();
          authRetries++;
          continue;
        }
      }
      if (opts.ok.includes(status)) {
        return { status, location: header(res.headers.location), digest: header(res.headers['docker-content-digest']) };
      }
      if (isTransientStatus(status) && attempt < this.maxAttempts && method !== 'PATCH') {
        await sleep(200 * 2 ** attempt);
        continue;
      }
      const { errors, summary } = decodeErrorBody(text);
      let hint = '';
      if (status === 401) hint = this.credentials ? ` (credentials from ${this.credentials.source} were rejected)` : ' (authentication required: pass --creds USER:PASS or --authfile)';
      else if (status === 403) hint = ' (the registry denies this push to these credentials)';
      throw new RegistryError(codeForStatus(status), `${opts.what}: registry answered ${status}${hint}${summary ? `: ${summary}` : ''} [${method} ${url.replace(/\?.*$/, '')}]`, { status, errors });
    }
  }

  private async authorization(repository: string, extra: string | undefined): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') {
      return this.credentials ? `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}` : undefined;
    }
    if (c.scheme !== 'bearer') return undefined;
    const scopes = [`repository:${repository}:pull,push`, ...(extra ? [`repository:${extra}:pull`] : [])];
    const key = scopes.join(' ');
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt - 5_000 > Date.now()) return `Bearer ${cached.value}`;
    const token = await this.fetchToken(c, scopes);
    this.tokens.set(key, token);
    return `Bearer ${token.value}`;
  }

  /** The docker token flow (distribution docs/spec/auth/token.md) for the push scopes. */
  private async fetchToken(c: Challenge, scopes: string[]): Promise<Token> {
    const realm = c.params.realm;
    if (!realm) throw new RegistryError('E_REGISTRY_AUTH', `${this.registry} asks for a Bearer token but names no realm`);
    const url = new URL(realm);
    if (c.params.service) url.searchParams.set('service', c.params.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { 'user-agent': this.userAgent };
    if (this.credentials) headers.authorization = `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
    const res = await request(url, { dispatcher: this.agent, method: 'GET', headers });
    const body = await res.body.text().catch(() => '');
    if (res.statusCode !== 200) {
      const { summary } = decodeErrorBody(body);
      throw new RegistryError('E_REGISTRY_AUTH', `token for ${scopes.join(' ')} from ${url.origin}${url.pathname}: answered ${res.statusCode}${this.credentials ? ` (credentials from ${this.credentials.source} were rejected)` : ''}${summary ? `: ${summary}` : ''}`, { status: res.statusCode });
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try { doc = JSON.parse(body) as typeof doc; } catch { throw new RegistryError('E_REGISTRY_AUTH', `the token server's answer is not JSON`); }
    const value = typeof doc.token === 'string' && doc.token ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
    if (!value) throw new RegistryError('E_REGISTRY_AUTH', `the token server's answer has no token`);
    const lifetime = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    return { value, expiresAt: Date.now() + lifetime * 1000 };
  }
}

/** Add ?digest= to an upload Location, which may already carry a query (the registry's _state). */
function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
