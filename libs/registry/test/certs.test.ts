import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { certsDirCandidates, connectOptions, registryTls } from '../src/certs.ts';

describe('certs.d lookup (containers-certs.d(5))', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-certs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const make = (name: string, files: Record<string, string>): string => {
    const d = join(dir, name);
    mkdirSync(d);
    for (const [f, text] of Object.entries(files)) writeFileSync(join(d, f), text);
    return d;
  };

  it('looks in the user\'s ~/.config first, then /etc/containers and /etc/docker; root has no ~/.config', () => {
    expect(certsDirCandidates('r.example:5000', { uid: 1000, env: { HOME: '/home/u' } })).toEqual([
      '/home/u/.config/containers/certs.d/r.example:5000', '/etc/containers/certs.d/r.example:5000', '/etc/docker/certs.d/r.example:5000',
    ]);
    expect(certsDirCandidates('r.example', { uid: 0, env: { HOME: '/root' } })).toEqual(['/etc/containers/certs.d/r.example', '/etc/docker/certs.d/r.example']);
  });

  it('a --cert-dir\'s *.crt are trusted on top of Node\'s roots and NODE_EXTRA_CA_CERTS; client pairs go by name', () => {
    const extra = join(dir, 'extra.pem');
    writeFileSync(extra, 'EXTRA CA');
    const d = make('full', { 'ca.crt': 'CA ONE', 'z.crt': 'CA TWO', 'client.cert': 'CERT', 'client.key': 'KEY', 'README': 'ignored' });
    const tls = registryTls('r.example', { certDir: d, env: { NODE_EXTRA_CA_CERTS: extra } })!;
    expect(tls.dir).toBe(d);
    expect(tls.ca!.slice(0, rootCertificates.length)).toEqual([...rootCertificates]);
    expect(tls.ca!.slice(rootCertificates.length)).toEqual(['EXTRA CA', 'CA ONE', 'CA TWO']);
    expect(tls).toMatchObject({ cert: ['CERT'], key: ['KEY'] });
  });

  it('a directory with only a client pair keeps Node\'s own trust store', () => {
    const d = make('pair', { 'c.cert': 'CERT', 'c.key': 'KEY' });
    const opts = connectOptions('r.example', { certDir: d, insecure: false, env: {} });
    expect(opts).toEqual({ rejectUnauthorized: true, timeout: 10_000, cert: ['CERT'], key: ['KEY'] });
  });

  it('names a certificate without its key, a key without its certificate, and a --cert-dir that is not a directory', () => {
    expect(() => registryTls('r', { certDir: make('nokey', { 'client.cert': 'C' }) })).toThrow(/client\.cert: missing client key client\.key beside it/);
    expect(() => registryTls('r', { certDir: make('nocert', { 'client.key': 'K' }) })).toThrow(/client\.key: missing client certificate client\.cert beside it/);
    expect(() => registryTls('r', { certDir: join(dir, 'absent') })).toThrow(/--cert-dir .*absent: not a directory/);
  });

  it('a CA file a launcher kept from Node\'s start (BERTH_EXTRA_CA_CERTS) is trusted when TLS is used', () => {
    const extra = join(dir, 'deferred.pem');
    writeFileSync(extra, 'DEFERRED CA');
    const env = { HOME: dir, BERTH_EXTRA_CA_CERTS: extra };
    expect(connectOptions('absent.invalid:1', { uid: 1000, env }).ca).toEqual([...rootCertificates, 'DEFERRED CA']);
    // Node read it itself at start: its own store has it already.
    expect(connectOptions('absent.invalid:1', { uid: 1000, env: { ...env, NODE_EXTRA_CA_CERTS: extra } }).ca).toBeUndefined();
  });

  it('no certs.d directory for the host: Node\'s defaults, verification as asked', () => {
    expect(registryTls('absent.invalid:1', { uid: 1000, env: { HOME: dir } })).toBeUndefined();
    expect(connectOptions('absent.invalid:1', { insecure: true, uid: 1000, env: { HOME: dir } })).toEqual({ rejectUnauthorized: false, timeout: 10_000 });
  });
});
