import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';

/**
 * A docker token server on loopback (the "token" auth of the distribution
 * registry, docs/spec/auth/token.md). It checks Basic credentials and signs
 * RS256 JWTs with a key whose self-signed certificate goes into the JWT's
 * x5c header; the registry is configured to trust that certificate
 * (rootcertbundle), so the whole handshake is the real one.
 */
export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  /** Every token request: the scope asked for and whether credentials came with it. */
  requests: Array<{ scope: string | null; user: string | undefined }>;
  /** What the next tokens look like: a list consumed front first, then 'good'. */
  plan: Array<'good' | 'expired' | 'no-access'>;
  stop(): Promise<void>;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

export async function startTokenServer(dir: string, user: string, password: string): Promise<TokenServer> {
  const keyPath = join(dir, 'token.key');
  const certPath = join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=berth-test-token-issuer'], { stdio: 'ignore' });
  const key = readFileSync(keyPath);
  const certDer = Buffer.from(readFileSync(certPath, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const service = 'berth-test-registry';
  const issuer = 'berth-test-issuer';
  const requests: TokenServer['requests'] = [];
  const plan: TokenServer['plan'] = [];

  const credentialsOf = (req: IncomingMessage): { user: string; ok: boolean } | undefined => {
    const h = req.headers.authorization;
    if (!h?.startsWith('Basic ')) return undefined;
    const [u, ...rest] = Buffer.from(h.slice(6), 'base64').toString('utf8').split(':');
    return { user: u ?? '', ok: u === user && rest.join(':') === password };
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const scope = url.searchParams.get('scope');
    const creds = credentialsOf(req);
    requests.push({ scope, user: creds?.user });
    if (!creds || !creds.ok) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="berth-test-token"' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    const mode = plan.shift() ?? 'good';
    const now = Math.floor(Date.now() / 1000);
    const access = (scope ? [scope] : []).map((s) => {
      const [type, name, actions] = s.split(':');
      return { type, name, actions: mode === 'no-access' ? [] : (actions ?? '').split(',') };
    });
    // The registry allows 60 s of clock leeway, so an expired token is an hour old.
    const iat = mode === 'expired' ? now - 7200 : now - 5;
    const exp = mode === 'expired' ? now - 3600 : now + 300;
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = { iss: issuer, sub: creds.user, aud: service, exp, nbf: iat, iat, jti: randomBytes(8).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(input), key);
    const token = `${input}.${b64url(signature)}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date(iat * 1000).toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPath,
    requests,
    plan,
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** sha256 of a buffer, as a digest string. */
export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
