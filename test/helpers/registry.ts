import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxEntries, writeImage } from './images.ts';

/**
 * A real registry for tests: Debian's docker-registry (the CNCF distribution
 * registry) on a free loopback port, storing into a temp dir. Nothing leaves
 * 127.0.0.1.
 */
export interface TestRegistry {
  /** host:port, as used in image references */
  host: string;
  url: string;
  port: number;
  storage: string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** htpasswd Basic auth with this user and password */
  basicAuth?: { user: string; password: string };
  /** token auth: realm URL, service, issuer and the PEM bundle of the signing cert */
  tokenAuth?: { realm: string; service: string; issuer: string; rootCertBundle: string };
  /** HTTPS with this server certificate and key (PEM files); with clientCas, a client certificate signed by one of them is required */
  tls?: { certificate: string; key: string; clientCas?: string[] };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
  });
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-registry-'));
  const storage = join(dir, 'storage');
  const port = await freePort();
  let auth = '';
  if (opts.basicAuth) {
    const htpasswd = join(dir, 'htpasswd');
    // bcrypt is what the registry accepts; htpasswd -B comes from apache2-utils.
    execFileSync('htpasswd', ['-Bbc', htpasswd, opts.basicAuth.user, opts.basicAuth.password], { stdio: 'ignore' });
    auth = `auth:\n  htpasswd:\n    realm: berth-test\n    path: ${htpasswd}\n`;
  } else if (opts.tokenAuth) {
    const t = opts.tokenAuth;
    auth = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.rootCertBundle}\n`;
  }
  let tls = '';
  if (opts.tls) {
    tls = `  tls:\n    certificate: ${opts.tls.certificate}\n    key: ${opts.tls.key}\n`;
    if (opts.tls.clientCas) tls += `    clientcas:\n${opts.tls.clientCas.map((c) => `      - ${c}\n`).join('')}`;
  }
  const config = join(dir, 'config.yml');
  writeFileSync(config, `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${tls}${auth}`);
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    try {
      // A TLS registry's certificate is not one fetch trusts: it is up once it accepts connections.
      if (opts.tls ? await accepts(port) : [200, 401].includes((await fetch(`${url}/v2/`)).status)) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`docker-registry did not start on ${url}: ${stderr}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: `127.0.0.1:${port}`,
    url,
    port,
    storage,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Push an image from an OCI layout into a registry with skopeo (plain HTTP on loopback). */
export function skopeoPush(layoutDir: string, ref: string, dest: string, opts: { creds?: string; format?: 'oci' | 'v2s2' } = {}): void {
  const args = ['copy', '--quiet', '--dest-tls-verify=false'];
  if (opts.creds) args.push('--dest-creds', opts.creds);
  if (opts.format) args.push('--format', opts.format);
  args.push(`oci:${layoutDir}:${ref}`, `docker://${dest}`);
  execFileSync('skopeo', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A one-layer busybox image (busybox-static as the whole filesystem), written
 * into layoutDir and pushed with skopeo to REGISTRY/repoTag; returns that
 * reference.
 */
export async function pushBusybox(reg: TestRegistry, layoutDir: string, repoTag: string): Promise<string> {
  const local = repoTag.slice(repoTag.lastIndexOf('/') + 1);
  await writeImage(layoutDir, local, { layers: [busyboxEntries()] });
  const ref = `${reg.host}/${repoTag}`;
  skopeoPush(layoutDir, local, ref);
  return ref;
}
