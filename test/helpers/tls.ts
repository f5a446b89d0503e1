import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Certificates for TLS tests, made with openssl(1): a private CA, and
 * certificates it signs (a server's for 127.0.0.1, a client's for mutual
 * TLS). Files are PEM, written into `dir`.
 */
export interface TestCa { cert: string; key: string; dir: string }
export interface IssuedCert { cert: string; key: string }

const openssl = (args: string[]): void => { execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] }); };

export function makeCa(dir: string, name = 'berth test CA'): TestCa {
  const key = join(dir, `${name.replace(/\W+/g, '-')}.key`);
  const cert = join(dir, `${name.replace(/\W+/g, '-')}.crt`);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { cert, key, dir };
}

/** A certificate signed by `ca`: for a server at 127.0.0.1 (`server`) or a client (`client`). */
export function issueCert(ca: TestCa, name: string, kind: 'server' | 'client'): IssuedCert {
  const key = join(ca.dir, `${name}.key`);
  const csr = join(ca.dir, `${name}.csr`);
  const cert = join(ca.dir, `${name}.pem`);
  const ext = join(ca.dir, `${name}.ext`);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  const extText = kind === 'server'
    ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'
    : 'extendedKeyUsage=clientAuth\n';
  writeFileSync(ext, extText);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  return { cert, key };
}
