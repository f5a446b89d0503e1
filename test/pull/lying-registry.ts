import { randomBytes } from 'node:crypto';
import { createServer, type ServerResponse, type Server } from 'node:http';
import { sha256 } from './token-server.ts';

/**
 * A registry that misbehaves on purpose, for the failures a real registry
 * will not produce on demand. It runs on 127.0.0.1 and serves one small but
 * valid image under several repository names; each name picks a misbehaviour:
 *   json       a manifest that is not JSON
 *   html       an HTML page (text/html) instead of a manifest
 *   html-json  an HTML page labelled application/json
 *   big        a manifest of 5 MiB with Content-Length
 *   big-chunked  the same without Content-Length (chunked)
 *   schema1    a Docker schema1 manifest
 *   unknown    a manifest of an unknown media type
 *   drop       the layer connection drops halfway once; Range is honoured
 *   drop-norange  the same, but Range is ignored (200 from the start)
 *   drop-always   the layer connection drops every time
 *   flaky      503, then 429 with Retry-After: 1, then the manifest; the config 500s once
 *   stall      the layer sends half its bytes, then nothing (until the server stops)
 *   good       behaves
 */
export interface LyingRegistry {
  host: string;
  manifestDigest: string;
  layerDigest: string;
  /** Requests seen, as "METHOD path range" lines. */
  log: string[];
  stop(): Promise<void>;
}

export async function startLyingRegistry(): Promise<LyingRegistry> {
  // Random bytes: the layer is "compressed" data as far as the pull cares.
  const layer = randomBytes(3 * 1024 * 1024 + 17);
  const layerDigest = sha256(layer);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [sha256('not checked by the puller')] },
  }));
  const configDigest = sha256(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
  }));
  const manifestDigest = sha256(manifest);
  const log: string[] = [];
  const counts = new Map<string, number>();
  const count = (key: string) => { const n = (counts.get(key) ?? 0) + 1; counts.set(key, n); return n; };

  const sendManifest = (res: ServerResponse, body: Buffer, type = 'application/vnd.oci.image.manifest.v1+json') => {
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'docker-content-digest': sha256(body) });
    res.end(body);
  };

  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    log.push(`${req.method} ${path} ${req.headers.range ?? ''}`.trim());
    if (path === '/v2/') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{}'); return; }
    const m = /^\/v2\/([a-z0-9-]+)\/(manifests|blobs)\/(.+)$/.exec(path);
    if (!m) { res.writeHead(404); res.end(); return; }
    const [, repo, kind, ref] = m as unknown as [string, string, string, string];
    if (kind === 'manifests') {
      switch (repo) {
        case 'json': return sendManifest(res, Buffer.from('{"schemaVersion": 2, "config": {'));
        case 'html': {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          res.end('<!DOCTYPE html><html><body><h1>Welcome to the captive portal</h1></body></html>');
          return;
        }
        case 'html-json': {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('<html><body>Sign in to continue</body></html>');
          return;
        }
        case 'big': return sendManifest(res, Buffer.concat([manifest.subarray(0, manifest.length - 1), Buffer.from(`,"annotations":{"pad":"${'x'.repeat(5 * 1024 * 1024)}"}}`)]));
        case 'big-chunked': {
          res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
          const chunk = Buffer.alloc(256 * 1024, 0x20);
          let sent = 0;
          const push = () => {
            while (sent < 5 * 1024 * 1024) {
              sent += chunk.length;
              if (!res.write(chunk)) { res.once('drain', push); return; }
            }
            res.end();
          };
          res.on('error', () => {});
          push();
          return;
        }
        case 'schema1': {
          const body = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'schema1', tag: 'latest', architecture: 'amd64', fsLayers: [], history: [] }));
          return sendManifest(res, body, 'application/vnd.docker.distribution.manifest.v1+prettyjws');
        }
        case 'unknown': {
          const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example.thing.v1+json', parts: [] }));
          return sendManifest(res, body, 'application/vnd.example.thing.v1+json');
        }
        case 'flaky': {
          const n = count(`manifest ${ref}`);
          if (n === 1) { res.writeHead(503, { 'content-type': 'application/json' }); res.end('{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}'); return; }
          if (n === 2) { res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' }); res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'); return; }
          return sendManifest(res, manifest);
        }
        default: return sendManifest(res, manifest);
      }
    }
    let blob: Buffer | undefined;
    if (ref === configDigest) blob = config;
    if (ref === layerDigest) blob = layer;
    if (!blob) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}');
      return;
    }
    if (repo === 'flaky' && blob === config && count('config') === 1) { res.writeHead(500); res.end('internal error'); return; }
    if (repo === 'stall' && blob === layer) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
      res.on('error', () => {});
      res.write(blob.subarray(0, Math.floor(blob.length / 2)));
      return;
    }
    const dropping = blob === layer && (repo === 'drop' || repo === 'drop-norange' || repo === 'drop-always');
    if (dropping && (repo === 'drop-always' || count(`layer ${repo}`) === 1)) {
      // Promise the whole blob, send part of it, then cut the connection.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
      res.write(blob.subarray(0, Math.floor(blob.length / 2)), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && repo !== 'drop-norange') {
      const start = Number(range[1]);
      const part = blob.subarray(start);
      res.writeHead(206, { 'content-type': 'application/octet-stream', 'content-length': part.length, 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}` });
      res.end(part);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
    res.end(blob);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    manifestDigest,
    layerDigest,
    log,
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
