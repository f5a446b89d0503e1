import { Worker } from 'node:worker_threads';
import { BerthError } from '@berth/cli-kit';
import type { Compression } from './compression.ts';

/**
 * Read and inflate a layer blob on a worker thread.
 *
 * Node's zlib inflates on the threadpool but hands every output buffer back
 * to the thread that owns the stream before it inflates the next one. When
 * that thread is the extractor, busy with synchronous file writes, inflate
 * stalls between buffers, so decompression and extraction take turns instead
 * of overlapping (measured: ~1 s idle per 400 MB on 2 cores, and much worse
 * on a loaded machine). On a worker the stream's owner has nothing else to
 * do: it reads and inflates ahead of the extractor, a bounded window of
 * chunks in flight. The diffID is hashed by the caller, whose thread has
 * idle time to spare while it waits for inflate (the slower side).
 *
 * The worker is plain JavaScript given as a string (eval), so the bundled
 * CLI needs no second file.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createReadStream } = require('node:fs');
const { createGunzip } = require('node:zlib');
const { path, compression, window } = workerData;
let inFlight = 0;
const src = createReadStream(path, { highWaterMark: 1024 * 1024 });
const out = compression === 'gzip' ? src.pipe(createGunzip({ chunkSize: 256 * 1024 })) : src;
src.on('error', (e) => fail(e));
out.on('error', (e) => fail(e));
function fail(e) {
  parentPort.postMessage({ type: 'error', message: e.message, code: e.code });
}
// Buffers travel to the extractor and come back when it is done with them,
// so the same few megabytes are reused instead of fresh (faulting) memory.
const free = [];
const BUF = 256 * 1024;
function send(chunk, from) {
  const n = Math.min(BUF, chunk.length - from);
  const ab = free.pop() || new ArrayBuffer(BUF);
  // zlib reuses its own output buffer: copy before transferring.
  new Uint8Array(ab, 0, n).set(chunk.subarray(from, from + n));
  parentPort.postMessage({ type: 'data', buffer: ab, length: n }, [ab]);
  inFlight++;
  return n;
}
out.on('data', (chunk) => {
  for (let off = 0; off < chunk.length; ) off += send(chunk, off);
  if (inFlight >= window) out.pause();
});
out.on('end', () => parentPort.postMessage({ type: 'end' }));
parentPort.on('message', (ab) => {
  inFlight--;
  free.push(ab);
  if (inFlight < window && out.isPaused()) out.resume();
});
`;

/** Decompress the file at `path` (gzip or none) on a worker; chunks arrive in order. */
export async function* inflateFile(path: string, compression: Exclude<Compression, 'zstd'>, window = 32): AsyncGenerator<Buffer> {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, compression, window } });
  const queue: Array<{ type: string; buffer?: ArrayBuffer; length?: number; message?: string; code?: string }> = [];
  let wake: (() => void) | undefined;
  worker.on('message', (m) => { queue.push(m); wake?.(); });
  worker.on('error', (e) => { queue.push({ type: 'error', message: e.message }); wake?.(); });
  worker.on('exit', (code) => { if (code !== 0) queue.push({ type: 'error', message: `inflate worker exited with ${code}` }); wake?.(); });
  try {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((r) => { wake = r; });
      wake = undefined;
      const m = queue.shift()!;
      if (m.type === 'end') return;
      if (m.type !== 'data') {
        throw new BerthError('E_LAYER_FORMAT', m.code?.startsWith('Z_') ? `gzip stream is corrupt (${m.message})` : `reading the layer: ${m.message}`);
      }
      // The consumer is done with a chunk when it asks for the next one
      // (the tar reader copies what it keeps): hand the buffer back.
      yield Buffer.from(m.buffer!, 0, m.length);
      worker.postMessage(m.buffer, [m.buffer!]);
    }
  } finally {
    await worker.terminate();
  }
}
