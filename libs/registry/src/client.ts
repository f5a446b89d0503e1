import { Agent, request, type Dispatcher } from 'undici';
import { log } from '@berth/cli-kit';
import { parseChallenges, type Challenge } from './challenge.ts';
import { certsDirCandidates, connectOptions } from './certs.ts';
import type { Credentials } from './credentials.ts';
import {
  RegistryError, codeForStatus, decodeErrorBody, describeNetworkError, isTransientNetworkError, isTransientStatus,
} from './errors.ts';

/**
 * A client for the OCI distribution spec / Docker Registry HTTP API v2
 * (https://github.com/opencontainers/distribution-spec/blob/main/spec.md),
 * on undici. What it adds over a plain HTTP call:
 * - the API check (`GET /v2/`) that finds the scheme and the auth challenge;
 * - auth: anonymous, Basic, and Bearer tokens (docker token spec), refreshed
 *   when they expire or the registry says `insufficient_scope`;
 * - retries with exponential backoff for resets, 5xx and 429 (honouring
 *   Retry-After), and Range resume for a blob download that broke;
 * - redirects followed by hand, so Authorization never leaks to another host
 *   (blob GETs often redirect to object storage).
 */
export interface RegistryClientOptions {
  /** host[:port] as written in the reference; docker.io is served by registry-1.docker.io */
  registry: string;
  /** --tls-verify=false: accept any certificate, and fall back to plain HTTP */
  insecure?: boolean;
  /** --cert-dir: the registry's CAs and client pair from this directory instead of certs.d (certs.ts) */
  certDir?: string;
  credentials?: Credentials;
  /** How many tries a request gets in all (default 5). */
  maxAttempts?: number;
  /** First backoff delay in ms; doubles each retry (default 200). */
  retryBaseMs?: number;
  /** The longest Retry-After berth waits for before giving up (default 60 s). */
  maxRetryAfterMs?: number;
  /** Connections per origin (default 8). */
  connections?: number;
  userAgent?: string;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: string;
}

/** Where a blob download writes; the puller backs it with a store ingest. */
export interface BlobSink {
  /** Bytes accepted so far (the Range offset to resume from). */
  readonly written: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Drop what was written (the server ignored Range and sends from byte 0). */
  restart(): Promise<void>;
}

interface Token { value: string; expiresAt: number }

const defaultUserAgent = 'berth/0.1 (+https://github.com/opencontainers/distribution-spec)';

export class RegistryClient {
  readonly registry: string;
  /** The host that serves the API (docker.io is an alias). */
  readonly apiHost: string;
  private scheme: 'https' | 'http' = 'https';
  private readonly insecure: boolean;
  private readonly certDir: string | undefined;
  private readonly credentials: Credentials | undefined;
  private readonly agent: Agent;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly userAgent: string;
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, Token>();
  private readonly tokenFetches = new Map<string, Promise<Token>>();

  constructor(opts: RegistryClientOptions) {
    this.registry = opts.registry;
    this.apiHost = opts.registry === 'docker.io' ? 'registry-1.docker.io' : opts.registry;
    this.insecure = opts.insecure ?? false;
    this.certDir = opts.certDir;
    this.credentials = opts.credentials;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.retryBaseMs = opts.retryBaseMs ?? 200;
    this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 60_000;
    this.userAgent = opts.userAgent ?? defaultUserAgent;
    this.agent = new Agent({
      connections: opts.connections ?? 8,
      connect: connectOptions(opts.registry, { insecure: this.insecure, certDir: opts.certDir }),
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
  }

  get baseUrl(): string { return `${this.scheme}://${this.apiHost}`; }

  async close(): Promise<void> {
    await this.agent.close().catch(() => {});
  }

  /**
   * The API version check (spec: "end-1", GET /v2/). It tells us whether the
   * host speaks TLS and which auth it wants, before any real request. With
   * --tls-verify=false, https is tried first and plain http second, as
   * containers/image does for an insecure registry.
   */
  async ping(): Promise<void> {
    const schemes: Array<'https' | 'http'> = this.insecure ? ['https', 'http'] : ['https'];
    let lastErr: unknown;
    for (const scheme of schemes) {
      this.scheme = scheme;
      const url = `${scheme}://${this.apiHost}/v2/`;
      let res: Dispatcher.ResponseData;
      try {
        res = await this.withNetworkRetries(`GET ${url}`, () => request(url, { dispatcher: this.agent, method: 'GET', headers: { 'user-agent': this.userAgent } }));
      } catch (err) {
        lastErr = err;
        if (err instanceof RegistryError && err.code === 'E_REGISTRY_UNREACHABLE') throw err;
        continue;
      }
      await res.body.dump().catch(() => {});
      if (res.statusCode === 401) {
        this.challenge = pickChallenge(parseChallenges(res.headers['www-authenticate']));
        return;
      }
      if (res.statusCode === 200 || res.statusCode === 404 || res.statusCode === 403) return;
      if (res.statusCode >= 500) throw new RegistryError('E_REGISTRY', `GET ${url}: registry answered ${res.statusCode}`, { status: res.statusCode });
      return;
    }
    const detail = describeNetworkError((lastErr as { cause?: unknown })?.cause ?? lastErr);
    if (!this.insecure) {
      const where = this.certDir ?? certsDirCandidates(this.registry)[0];
      throw new RegistryError('E_REGISTRY_TLS', `GET https://${this.apiHost}/v2/: ${detail}; if ${this.registry} uses a private CA, put its certificate in ${where}/ca.crt (containers-certs.d(5)); if it is a plain-HTTP or self-signed registry, pass --tls-verify=false`, { cause: lastErr });
    }
    throw new RegistryError('E_REGISTRY_UNREACHABLE', `GET ${this.apiHost}/v2/ over https and http: ${detail}`, { cause: lastErr });
  }

  /**
   * One API call with auth, redirects and retries. The returned body must be
   * consumed or dumped by the caller. Non-2xx answers become RegistryErrors
   * carrying the decoded distribution error body.
   */
  async send(method: 'GET' | 'HEAD', path: string, opts: { repository: string; headers?: Record<string, string>; what: string; signal?: AbortSignal }): Promise<Response> {
    let url = `${this.baseUrl}${path}`;
    let authRetries = 0;
    let transient = 0;
    let redirects = 0;
    for (;;) {
      const sameHost = new URL(url).host === this.apiHost;
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...opts.headers };
      // Credentials go only to the registry itself, never to a redirect target.
      if (sameHost) {
        const auth = await this.authorization(opts.repository, opts.signal);
        if (auth) headers.authorization = auth;
      }
      const res = await this.withNetworkRetries(`${method} ${url}`, () => request(url, { dispatcher: this.agent, method, headers, signal: opts.signal }));
      const status = res.statusCode;
      if (status >= 300 && status < 400 && res.headers.location !== undefined) {
        await res.body.dump().catch(() => {});
        if (++redirects > 5) throw new RegistryError('E_REGISTRY', `${opts.what}: more than 5 redirects from ${url}`);
        url = new URL(String(res.headers.location), url).toString();
        continue;
      }
      if (status === 401 && sameHost && authRetries < 2) {
        const challenge = pickChallenge(parseChallenges(res.headers['www-authenticate']));
        // Bearer: our token expired or lacks the scope (or we had none yet):
        // forget tokens and fetch one for the scope the challenge names.
        // Basic: worth one more try only if we had not sent credentials yet.
        const retry = challenge !== undefined && (challenge.scheme === 'bearer'
          || (challenge.scheme === 'basic' && this.challenge?.scheme !== 'basic' && this.credentials !== undefined));
        if (retry) {
          await res.body.dump().catch(() => {});
          this.challenge = challenge;
          this.tokens.clear();
          authRetries++;
          log.debug(`${opts.what}: 401 (${challenge.params.error ?? challenge.scheme}), authenticating again`);
          continue;
        }
      }
      if (isTransientStatus(status) && transient + 1 < this.maxAttempts) {
        const body = await res.body.text().catch(() => '');
        transient++;
        const delay = this.retryDelay(transient, res.headers['retry-after'], opts.what, status, body);
        log.debug(`${opts.what}: registry answered ${status}; retry ${transient} in ${delay} ms`);
        await sleep(delay, opts.signal);
        continue;
      }
      if (status >= 400) {
        const body = await res.body.text().catch(() => '');
        throw this.statusError(opts.what, status, body, url);
      }
      return { status, headers: res.headers, body: res.body, url };
    }
  }

  /**
   * Fetch a manifest or index by tag or digest (spec: "end-3"), reading at
   * most maxSize bytes: a registry that sends more is refused before it can
   * fill memory.
   */
  async getManifest(repository: string, reference: string, opts: { accept: readonly string[]; maxSize: number; signal?: AbortSignal }): Promise<{ bytes: Buffer; contentType: string | undefined; dockerContentDigest: string | undefined }> {
    const what = `manifest ${this.registry}/${repository}:${reference}`.replace(/:sha256:/, '@sha256:');
    const res = await this.send('GET', `/v2/${repository}/manifests/${reference}`, { repository, what, headers: { accept: opts.accept.join(', ') }, signal: opts.signal });
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > opts.maxSize) {
      await res.body.dump().catch(() => {});
      throw new RegistryError('E_MANIFEST_TOO_LARGE', `${what} is ${declared} bytes, over the ${opts.maxSize}-byte limit for manifests; refused`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of res.body) {
        total += (chunk as Buffer).length;
        if (total > opts.maxSize) {
          res.body.destroy();
          throw new RegistryError('E_MANIFEST_TOO_LARGE', `${what} is over the ${opts.maxSize}-byte limit for manifests; refused`);
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError('E_REGISTRY', `${what}: connection broke while reading it: ${describeNetworkError(err)}`, { cause: err });
    }
    const contentType = headerValue(res.headers['content-type'])?.split(';')[0]?.trim();
    return { bytes: Buffer.concat(chunks), contentType, dockerContentDigest: headerValue(res.headers['docker-content-digest']) };
  }

  /**
   * Download a blob (spec: "end-2") into a sink. The registry's Content-Length
   * must equal the descriptor's size. When the connection breaks mid-body,
   * the download goes on from sink.written with `Range: bytes=N-`; a server
   * that ignores Range (200 instead of 206) makes the sink start over.
   */
  async downloadBlob(repository: string, desc: { digest: string; size: number }, sink: BlobSink, opts: { signal?: AbortSignal; onProgress?: (bytes: number) => void } = {}): Promise<void> {
    const what = `blob ${desc.digest}`;
    let breaks = 0;
    for (;;) {
      const offset = sink.written;
      const headers: Record<string, string> = {};
      if (offset > 0) headers.range = `bytes=${offset}-`;
      const res = await this.send('GET', `/v2/${repository}/blobs/${desc.digest}`, { repository, what, headers, signal: opts.signal });
      if (offset > 0 && res.status === 206) {
        const start = /^bytes (\d+)-/.exec(headerValue(res.headers['content-range']) ?? '');
        if (!start || Number(start[1]) !== offset) {
          await res.body.dump().catch(() => {});
          await sink.restart();
          continue;
        }
        log.debug(`${what}: resuming at byte ${offset}`);
      } else {
        if (offset > 0) {
          log.debug(`${what}: registry ignored Range, starting over`);
          await sink.restart();
        }
        const length = Number(headerValue(res.headers['content-length']));
        if (res.status === 200 && Number.isFinite(length) && length !== desc.size) {
          await res.body.dump().catch(() => {});
          throw new RegistryError('E_BLOB_SIZE', `${what}: the registry sends ${length} bytes, the manifest declares ${desc.size}; refused`);
        }
      }
      let streamErr: unknown;
      try {
        await this.pump(res.body, sink, opts.onProgress);
        return;
      } catch (err) {
        // A sink error (size overflow, digest, disk full) is final; only the
        // network's errors are retried, so the two are told apart here.
        if (err instanceof SinkError) throw err.cause;
        if (!isTransientNetworkError(err)) {
          if (opts.signal?.aborted || (err as Error)?.name === 'AbortError') throw opts.signal?.reason ?? err;
          throw new RegistryError('E_REGISTRY', `${what}: download failed: ${describeNetworkError(err)}`, { cause: err });
        }
        streamErr = err;
      }
      breaks++;
      if (breaks >= this.maxAttempts) {
        throw new RegistryError('E_REGISTRY', `${what}: connection broke ${breaks} times; giving up: ${describeNetworkError(streamErr)}`, { cause: streamErr });
      }
      const delay = this.backoff(breaks);
      log.warn(`${what}: connection broke after ${sink.written} bytes (${describeNetworkError(streamErr)}); resuming in ${delay} ms`);
      await sleep(delay, opts.signal);
    }
  }

  /**
   * Move a response body into a sink. Chunks are taken as 'data' events and
   * their writes chained, so the socket keeps being read while earlier
   * chunks are on their way to disk (an await per chunk would stall the
   * connection on every write); the body is paused when more than 8 MiB wait.
   * Writes stay in order, so the sink hashes the bytes in order.
   */
  private pump(body: Response['body'], sink: BlobSink, onProgress?: (bytes: number) => void): Promise<void> {
    const high = 8 * 1024 * 1024;
    return new Promise<void>((resolve, reject) => {
      let chain: Promise<void> = Promise.resolve();
      let waiting = 0;
      let failed = false;
      const fail = (err: unknown) => {
        if (failed) return;
        failed = true;
        body.destroy();
        reject(err);
      };
      body.on('data', (chunk: Buffer) => {
        waiting += chunk.length;
        chain = chain.then(async () => {
          if (failed) return;
          try {
            await sink.write(chunk);
          } catch (err) {
            throw new SinkError(err);
          }
          waiting -= chunk.length;
          onProgress?.(sink.written);
          if (body.isPaused() && waiting < high / 2) body.resume();
        });
        chain.catch(fail);
        if (waiting > high) body.pause();
      });
      body.once('end', () => { chain.then(() => { if (!failed) resolve(); }, fail); });
      // A network error reports only after the writes already queued are
      // done, so sink.written is the exact offset to resume from.
      body.once('error', (err) => { chain.then(() => fail(err), fail); });
    });
  }

  /** Run one HTTP exchange, retrying resets and timeouts with backoff. */
  private async withNetworkRetries<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if ((err as Error)?.name === 'AbortError') throw err;
        const code = (err as { code?: string })?.code;
        if (code === 'ENOTFOUND' || code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
          // Nothing listens there: retrying would only delay the answer.
          throw new RegistryError('E_REGISTRY_UNREACHABLE', `${what}: ${describeNetworkError(err)}`, { cause: err });
        }
        if (!isTransientNetworkError(err) || attempt >= this.maxAttempts) {
          throw new RegistryError('E_REGISTRY', `${what}: ${describeNetworkError(err)}`, { cause: err });
        }
        const delay = this.backoff(attempt);
        log.debug(`${what}: ${describeNetworkError(err)}; retry ${attempt} in ${delay} ms`);
        await sleep(delay);
      }
    }
  }

  /** Exponential backoff with jitter: base, 2x base, 4x base ... capped at 10 s. */
  private backoff(attempt: number): number {
    const exp = Math.min(10_000, this.retryBaseMs * 2 ** (attempt - 1));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  private retryDelay(attempt: number, retryAfter: string | string[] | undefined, what: string, status: number, body: string): number {
    const value = headerValue(retryAfter);
    if (value === undefined) return this.backoff(attempt);
    // Retry-After is seconds or an HTTP date (RFC 9110 section 10.2.3).
    const seconds = /^\d+$/.test(value.trim()) ? Number(value) * 1000 : Date.parse(value) - Date.now();
    const ms = Number.isFinite(seconds) ? Math.max(0, seconds) : this.backoff(attempt);
    if (ms > this.maxRetryAfterMs) {
      const { summary } = decodeErrorBody(body);
      throw new RegistryError(codeForStatus(status), `${what}: registry answered ${status} and asks to wait ${Math.round(ms / 1000)} s (Retry-After), longer than berth waits${summary ? `: ${summary}` : ''}`, { status });
    }
    return ms;
  }

  private statusError(what: string, status: number, body: string, url: string): RegistryError {
    const { errors, summary } = decodeErrorBody(body);
    const detail = summary ? `: ${summary}` : '';
    let hint = '';
    if (status === 401) {
      hint = this.credentials
        ? ` (credentials from ${this.credentials.source} were rejected)`
        : ' (authentication required: pass --creds USER:PASS or --authfile, or log in with podman login)';
    } else if (status === 403) {
      hint = ' (access denied for these credentials)';
    }
    const name = errors[0]?.code === 'NAME_UNKNOWN' ? 'repository not found' : errors[0]?.code === 'MANIFEST_UNKNOWN' ? 'not found' : errors[0]?.code === 'BLOB_UNKNOWN' ? 'blob not found' : undefined;
    const lead = name ? `${what}: ${name}` : `${what}: registry answered ${status}`;
    return new RegistryError(codeForStatus(status), `${lead}${hint}${detail} [${status} from ${url.replace(/\?.*$/, '')}]`, { status, errors });
  }

  /** The Authorization header for a repository, fetching a token when the registry wants one. */
  private async authorization(repository: string, signal?: AbortSignal): Promise<string | undefined> {
    const c = this.challenge;
    const scope = c?.params.scope && c.params.scope.includes(`repository:${repository}:`) ? c.params.scope : `repository:${repository}:pull`;
    return this.authorizationFor([scope], signal);
  }

  /**
   * The Authorization header for these token scopes under the current
   * challenge: Basic credentials, or a Bearer token (cached until shortly
   * before it expires; concurrent callers share one fetch). The push client
   * asks for `repository:NAME:pull,push` (and `repository:OTHER:pull` to
   * mount from OTHER) through the same flow.
   */
  async authorizationFor(scopes: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') {
      if (!this.credentials) return undefined;
      return `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
    }
    if (c.scheme !== 'bearer') return undefined;
    const key = scopes.join(' ');
    const cached = this.tokens.get(key);
    // Refresh a little early, so a token does not expire between here and the registry.
    if (cached && cached.expiresAt - 5_000 > Date.now()) return `Bearer ${cached.value}`;
    let pending = this.tokenFetches.get(key);
    if (!pending) {
      pending = this.fetchToken(c, scopes, signal).finally(() => this.tokenFetches.delete(key));
      this.tokenFetches.set(key, pending);
    }
    const token = await pending;
    this.tokens.set(key, token);
    return `Bearer ${token.value}`;
  }

  /** A 401 named a new challenge: authenticate under it from now on, with fresh tokens. */
  rechallenge(challenge: Challenge): void {
    this.challenge = challenge;
    this.tokens.clear();
  }

  /** Whether the registry asked for Basic auth, and whether there are credentials to send. */
  get authState(): { scheme: string | undefined; hasCredentials: boolean; credentialsSource: string | undefined } {
    return { scheme: this.challenge?.scheme, hasCredentials: this.credentials !== undefined, credentialsSource: this.credentials?.source };
  }

  /**
   * The docker token flow (distribution's docs/spec/auth/token.md):
   * GET realm?service=S&scope=repository:NAME:pull, with Basic credentials
   * when we have them; the answer is {"token"|"access_token", "expires_in", "issued_at"}.
   */
  private async fetchToken(c: Challenge, scopes: readonly string[], signal?: AbortSignal): Promise<Token> {
    const realm = c.params.realm;
    if (!realm) throw new RegistryError('E_REGISTRY_AUTH', `${this.registry} asks for a Bearer token but names no realm to get it from`);
    let url: URL;
    try { url = new URL(realm); } catch { throw new RegistryError('E_REGISTRY_AUTH', `${this.registry}: token realm "${realm}" is not a URL`); }
    if (c.params.service) url.searchParams.set('service', c.params.service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const headers: Record<string, string> = { 'user-agent': this.userAgent };
    if (this.credentials) headers.authorization = `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
    const what = `token from ${url.origin}${url.pathname} for ${scopes.join(' ')}`;
    for (let attempt = 1; ; attempt++) {
      const res = await this.withNetworkRetries(`GET ${url.origin}${url.pathname}`, () => request(url, { dispatcher: this.agent, method: 'GET', headers, signal }));
      const body = await res.body.text().catch(() => '');
      if (isTransientStatus(res.statusCode) && attempt < this.maxAttempts) {
        await sleep(this.retryDelay(attempt, res.headers['retry-after'], what, res.statusCode, body), signal);
        continue;
      }
      if (res.statusCode === 401 || res.statusCode === 403) {
        const { summary } = decodeErrorBody(body);
        throw new RegistryError('E_REGISTRY_AUTH', `${what}: token server answered ${res.statusCode}${this.credentials ? ` (credentials from ${this.credentials.source} were rejected)` : ' (authentication required: pass --creds USER:PASS or --authfile)'}${summary ? `: ${summary}` : ''}`, { status: res.statusCode });
      }
      if (res.statusCode !== 200) {
        const { summary } = decodeErrorBody(body);
        throw new RegistryError('E_REGISTRY_AUTH', `${what}: token server answered ${res.statusCode}${summary ? `: ${summary}` : ''}`, { status: res.statusCode });
      }
      let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
      try { doc = JSON.parse(body) as typeof doc; } catch { throw new RegistryError('E_REGISTRY_AUTH', `${what}: the token server's answer is not JSON`); }
      const value = typeof doc.token === 'string' && doc.token !== '' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
      if (value === '') throw new RegistryError('E_REGISTRY_AUTH', `${what}: the token server's answer has no token`);
      // The spec's default lifetime is 60 s when expires_in is missing.
      const lifetime = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
      const issued = typeof doc.issued_at === 'string' && Number.isFinite(Date.parse(doc.issued_at)) ? Date.parse(doc.issued_at) : Date.now();
      log.debug(`got a token for ${scopes.join(' ')}, valid ${lifetime} s`);
      return { value, expiresAt: Math.min(issued, Date.now()) + lifetime * 1000 };
    }
  }
}

/** An error thrown by a BlobSink, kept apart from the network's errors. */
class SinkError extends Error {
  constructor(override readonly cause: unknown) {
    super('sink failed');
  }
}

/** Prefer Bearer over Basic when a registry offers both. */
export function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
