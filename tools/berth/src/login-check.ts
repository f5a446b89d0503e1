import { Agent, request } from 'undici';
import { BerthError } from '@berth/cli-kit';
import { connectOptions, decodeErrorBody, RegistryClient, RegistryError } from '@berth/registry';

/**
 * The credential check `podman login` makes before it stores anything
 * (containers/image's docker.CheckAuth, docker's loginV2):
 *   1. the API version check, GET /v2/, which a registry that wants
 *      credentials answers 401 with its challenge (RFC 7235) — RegistryClient.ping;
 *   2. for a Bearer challenge, a token from the realm with the credentials
 *      as Basic and no repository scope (a login is for the registry, not a
 *      repository) — RegistryClient.authorizationFor([]), the same token flow
 *      pulls use; a token server that refuses them is a wrong password;
 *   3. GET /v2/ again with Basic credentials or the token: only a 200 means
 *      they are good.
 * Step 3 goes through an agent of its own with the same TLS settings
 * (certs.d or --cert-dir, --tls-verify), since the client sends nothing
 * to /v2/ with credentials itself.
 */
export interface LoginCheck {
  /** host[:port] */
  registry: string;
  username: string;
  password: string;
  /** --tls-verify=false: accept any certificate, and fall back to plain HTTP. */
  insecure: boolean;
  /** --cert-dir, else certs.d for the host. */
  certDir?: string;
}

/** podman's words for rejected credentials. */
export class InvalidCredentials extends BerthError {
  constructor(registry: string, detail: string) {
    super('E_LOGIN', `logging into "${registry}": invalid username/password${detail ? ` (${detail})` : ''}`);
  }
}

export async function checkLogin(opts: LoginCheck): Promise<void> {
  const what = `logging into "${opts.registry}"`;
  const client = new RegistryClient({
    registry: opts.registry, insecure: opts.insecure, certDir: opts.certDir,
    credentials: { username: opts.username, password: opts.password, source: 'the login' },
  });
  let agent: Agent | undefined;
  try {
    // 1. Which scheme the registry speaks, and what it wants.
    try {
      await client.ping();
    } catch (err) {
      throw new BerthError('E_LOGIN', `${what}: ${(err as Error).message}`, { cause: err });
    }
    // 2. Basic credentials as they are, or a token got with them.
    let authorization: string | undefined;
    try {
      authorization = await client.authorizationFor([]);
    } catch (err) {
      if (err instanceof RegistryError && (err.status === 401 || err.status === 403)) throw new InvalidCredentials(opts.registry, '');
      throw new BerthError('E_LOGIN', `${what}: ${(err as Error).message}`, { cause: err });
    }
    // 3. The API again, with them.
    agent = new Agent({ connect: connectOptions(opts.registry, { insecure: opts.insecure, certDir: opts.certDir }), headersTimeout: 30_000, bodyTimeout: 30_000 });
    const url = `${client.baseUrl}/v2/`;
    let status: number;
    let body: string;
    try {
      const res = await request(url, { dispatcher: agent, method: 'GET', headers: { 'user-agent': 'berth/0.1', ...(authorization ? { authorization } : {}) } });
      status = res.statusCode;
      body = await res.body.text().catch(() => '');
    } catch (err) {
      const e = err as { code?: string; cause?: { code?: string }; message?: string };
      throw new BerthError('E_LOGIN', `${what}: GET ${url}: ${e.cause?.code ?? e.code ?? e.message ?? String(err)}`, { cause: err });
    }
    if (status === 200) return;
    const { summary } = decodeErrorBody(body);
    if (status === 401) throw new InvalidCredentials(opts.registry, summary);
    throw new BerthError('E_LOGIN', `${what}: GET ${url}: registry answered ${status}${summary ? `: ${summary}` : ''}`);
  } finally {
    await client.close();
    await agent?.close().catch(() => {});
  }
}
