import { createReadStream } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';
import { log } from '@berth/cli-kit';
import { connectOptions } from './certs.ts';
import { parseChallenges } from './challenge.ts';
import { pickChallenge, RegistryClient } from './client.ts';
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
  /** --cert-dir (see certs.ts) */
  certDir?: string;
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

export class PushClient {
  readonly registry: string;
  private readonly credentials: Credentials | undefined;
  /** Uploads run on their own agent: longer timeouts than the pull side's, for big PUTs. */
  private readonly agent: Agent;
  private readonly maxAttempts: number;
  private readonly userAgent: string;
  /** The pull client does the version check and the auth (Basic, or the token flow) for both sides. */
  private readonly session: RegistryClient;

  constructor(opts: PushClientOptions) {
    this.registry = opts.registry;
    this.credentials = opts.credentials;
    this.maxAttempts = opts.maxAttempts ?? 4;
    this.userAgent = opts.userAgent ?? 'berth/0.1';
    this.session = new RegistryClient({ registry: opts.registry, insecure: opts.insecure, certDir: opts.certDir, credentials: opts.credentials, maxAttempts: this.maxAttempts, userAgent: this.userAgent });
    this.agent = new Agent({ connections: 8, connect: connectOptions(opts.registry, { insecure: opts.insecure, certDir: opts.certDir }), headersTimeout: 120_000, bodyTimeout: 120_000 });
  }

  async close(): Promise<void> {
    await Promise.all([this.agent.close().catch(() => {}), this.session.close()]);
  }

  /** GET /v2/: which scheme answers, and which auth the registry wants. */
  async ping(): Promise<void> {
    await this.session.ping();
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
    const base = this.session.baseUrl;
    const apiHost = new URL(base).host;
    const url = pathOrUrl.startsWith('/') ? `${base}${pathOrUrl}` : new URL(pathOrUrl, `${base}/`).toString();
    let authRetries = 0;
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...opts.headers };
      const scopes = [`repository:${opts.repository}:pull,push`, ...(opts.extraScope ? [`repository:${opts.extraScope}:pull`] : [])];
      const auth = await this.session.authorizationFor(scopes);
      // Credentials go only to the registry itself, never to a redirect target.
      if (auth && new URL(url).host === apiHost) headers.authorization = auth;
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
          this.session.rechallenge(challenge);
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
}

/** Add ?digest= to an upload Location, which may already carry a query (the registry's _state). */
function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
