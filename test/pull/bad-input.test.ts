import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBusyboxImage, writeImage } from '../helpers/images.ts';
import { freePort, skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { binPath, runTool, runToolAsync, tempDir } from '../helpers/run.ts';
import { startLyingRegistry, type LyingRegistry } from './lying-registry.ts';
import { expectStoreClean, indexText } from './store-check.ts';

// Pins how berth-pull fails: every bad input is a clear error on stderr naming
// what was wrong, exit 1, an empty stdout, and a store with nothing unverified
// in it (no temp files, no blob that fails its digest, index.json unchanged).
describe('berth-pull on bad input', () => {
  let reg: TestRegistry;
  let liar: LyingRegistry;
  const dir = tempDir('berth-pull-bad-');
  const layoutDir = join(dir.path, 'layout');
  let busyboxLayer = '';

  // One store that already holds an image, so "unchanged" means something.
  const root = join(dir.path, 'root');
  const store = join(root, 'images');

  beforeAll(async () => {
    [reg, liar] = await Promise.all([startRegistry(), startLyingRegistry()]);
    const img = await writeBusyboxImage(layoutDir, 'busybox:latest');
    busyboxLayer = img.layers[0]!.digest;
    skopeoPush(layoutDir, 'busybox:latest', `${reg.host}/library/busybox:latest`);
    await writeImage(layoutDir, 'small:latest', { layers: [[{ path: 'hello', content: 'hello world\n' }]] });
    skopeoPush(layoutDir, 'small:latest', `${reg.host}/small:latest`);
    const first = runTool('berth-pull', ['--root', root, '--tls-verify=false', `${reg.host}/small:latest`]);
    expect(first.code, first.stderr).toBe(0);
  });
  afterAll(async () => {
    await Promise.all([reg?.stop(), liar?.stop()]);
    dir.cleanup();
  });

  // Async runs: the lying registry lives in this process, so a synchronous
  // spawn would block the very event loop that has to answer the pull.
  async function pullFails(ref: string, message: RegExp, extra: string[] = ['--tls-verify=false']): Promise<string> {
    const before = indexText(store);
    const r = await runToolAsync('berth-pull', ['--root', root, ...extra, ref]);
    expect(r.code, `stderr: ${r.stderr}`).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expectStoreClean(store, before);
    return r.stderr;
  }

  it('names an unknown host: a closed loopback port and an unresolvable name', async () => {
    const port = await freePort();
    await pullFails(`127.0.0.1:${port}/library/busybox:latest`, new RegExp(`127\\.0\\.0\\.1:${port}.*connection refused`));
    pullFails('nosuch.invalid/library/busybox:latest', /nosuch\.invalid.*(no such host|DNS)/);
  });

  it('says to pass --tls-verify=false when a plain-HTTP registry is pulled with TLS', async () => {
    await pullFails(`${reg.host}/library/busybox:latest`, /does not speak TLS.*pass --tls-verify=false/, []);
  });

  it('names an unknown repository and an unknown tag with the registry\'s error code', async () => {
    await pullFails(`${reg.host}/library/nosuch:latest`, /127\.0\.0\.1:\d+\/library\/nosuch:latest: not found.*(MANIFEST_UNKNOWN|NAME_UNKNOWN)/);
    await pullFails(`${reg.host}/library/busybox:v9`, /library\/busybox:v9: not found.*MANIFEST_UNKNOWN/);
  });

  it('refuses a malformed reference with exit 2', async () => {
    const r = runTool('berth-pull', ['--root', root, 'Busy/Box:latest']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid image reference "Busy\/Box:latest".*lowercase/);
  });

  it('discards a blob whose bytes were corrupted inside the registry, naming the digest', async () => {
    // Same size, different bytes: only the hash can tell.
    const hex = busyboxLayer.slice(7);
    const data = join(reg.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const size = statSync(data).size;
    writeFileSync(data, Buffer.alloc(size, 0x42));
    await pullFails(`${reg.host}/library/busybox:latest`, new RegExp(`blob ${busyboxLayer}: content hashes to sha256:[a-f0-9]{64}; discarded`));
  });

  it('refuses a manifest that lies about a layer\'s size', async () => {
    const layoutIndex = JSON.parse(await (await fetch(`${reg.url}/v2/small/manifests/latest`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).text());
    const real = layoutIndex.layers[0].size as number;
    for (const [tag, size] of [['bigger', real + 100], ['smaller', real - 10]] as const) {
      const lie = { ...layoutIndex, layers: [{ ...layoutIndex.layers[0], size }] };
      const put = await fetch(`${reg.url}/v2/small/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: JSON.stringify(lie) });
      expect(put.status, await put.text()).toBe(201);
    }
    // The small image's layer is in the store already: pull into a fresh root so it is fetched.
    const fresh = join(dir.path, 'fresh');
    for (const tag of ['bigger', 'smaller']) {
      const r = await runToolAsync('berth-pull', ['--root', fresh, '--tls-verify=false', `${reg.host}/small:${tag}`]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`blob ${layoutIndex.layers[0].digest}: the registry sends ${real} bytes, the manifest declares ${tag === 'bigger' ? real + 100 : real - 10}`));
      expectStoreClean(join(fresh, 'images'), indexText(join(fresh, 'images')));
      expect(JSON.parse(indexText(join(fresh, 'images'))!).manifests).toEqual([]);
      expect(readdirSync(join(fresh, 'images', 'blobs', 'sha256'))).not.toContain(layoutIndex.layers[0].digest.slice(7));
    }
  });

  it('refuses malformed JSON, HTML, schema1, unknown media types and manifests over 4 MiB', async () => {
    await pullFails(`${liar.host}/json:latest`, /manifest 127\.0\.0\.1:\d+\/json:latest is not valid JSON/);
    await pullFails(`${liar.host}/html:latest`, /manifest .*\/html:latest: the registry sent an HTML page, not a manifest/);
    await pullFails(`${liar.host}/html-json:latest`, /manifest .*\/html-json:latest is not valid JSON \(got HTML, not JSON\)/);
    await pullFails(`${liar.host}/schema1:latest`, /Docker schema1 manifest.*does not pull/);
    await pullFails(`${liar.host}/unknown:latest`, /media type application\/vnd\.example\.thing\.v1\+json, which is not an image manifest or index/);
    await pullFails(`${liar.host}/big:latest`, /\/big:latest is \d+ bytes, over the 4194304-byte limit for manifests; refused/);
    await pullFails(`${liar.host}/big-chunked:latest`, /\/big-chunked:latest is over the 4194304-byte limit for manifests; refused/);
  });

  it('refuses a manifest whose content does not match the digest it was asked by', async () => {
    const wrong = `sha256:${'0'.repeat(64)}`;
    await pullFails(`${liar.host}/good@${wrong}`, new RegExp(`hashes to ${liar.manifestDigest}, not ${wrong}`));
  });

  it('gives up on a connection that drops every time, leaving no partial blob', async () => {
    const stderr = await pullFails(`${liar.host}/drop-always:latest`, new RegExp(`blob ${liar.layerDigest}: connection broke 5 times; giving up`));
    expect(stderr).toMatch(/resuming/);
  });

  it('resumes a blob with a Range request after the connection drops mid-blob', async () => {
    const fresh = join(dir.path, 'resume');
    const r = await runToolAsync('berth-pull', ['--root', fresh, '--tls-verify=false', `${liar.host}/drop:latest`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/connection broke after \d+ bytes/);
    const resumed = liar.log.filter((l) => l.startsWith(`GET /v2/drop/blobs/${liar.layerDigest} bytes=`));
    expect(resumed).toHaveLength(1);
    expect(r.json.layers[0].digest).toBe(liar.layerDigest);
    expectStoreClean(join(fresh, 'images'), indexText(join(fresh, 'images')));
    expect(readdirSync(join(fresh, 'images', 'blobs', 'sha256'))).toContain(liar.layerDigest.slice(7));
  });

  it('starts over when the registry ignores Range after a drop', async () => {
    const fresh = join(dir.path, 'norange');
    const r = await runToolAsync('berth-pull', ['--root', fresh, '--tls-verify=false', `${liar.host}/drop-norange:latest`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.layers[0].digest).toBe(liar.layerDigest);
    expectStoreClean(join(fresh, 'images'), indexText(join(fresh, 'images')));
  });

  it('removes its temp files when interrupted mid-blob', async () => {
    const fresh = join(dir.path, 'interrupted');
    const child = spawn(process.execPath, [binPath('berth-pull'), '--root', fresh, '--tls-verify=false', `${liar.host}/stall:latest`]);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Wait (bounded) until the layer's temp file exists, then interrupt.
    const ingest = join(fresh, 'images', 'ingest');
    for (let i = 0; i < 200 && !(existsSync(ingest) && readdirSync(ingest).length > 0); i++) await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(ingest).length).toBeGreaterThan(0);
    child.kill('SIGTERM');
    expect(await exited).toBe(1);
    expect(stderr).toMatch(/pull interrupted by SIGTERM; nothing was recorded/);
    expectStoreClean(join(fresh, 'images'), indexText(join(fresh, 'images')));
    expect(JSON.parse(indexText(join(fresh, 'images'))!).manifests).toEqual([]);
  });

  it('retries 503, waits out 429 Retry-After, and retries a 500 on a blob', async () => {
    const fresh = join(dir.path, 'flaky');
    const started = Date.now();
    const r = await runToolAsync('berth-pull', ['--root', fresh, '--tls-verify=false', '--debug', `${liar.host}/flaky:latest`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/registry answered 503; retry 1/);
    expect(r.stderr).toMatch(/registry answered 429; retry 2 in 1000 ms/);
    expect(r.stderr).toMatch(/registry answered 500; retry 1/);
    // Retry-After: 1 was honoured, not skipped.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(liar.log.filter((l) => l === 'GET /v2/flaky/manifests/latest')).toHaveLength(3);
  });
});
