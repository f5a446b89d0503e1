import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { sleep } from './proc.ts';

/**
 * The k8s-file log format conmon writes (and podman reads): one line per
 * chunk, `TIMESTAMP STREAM TAG TEXT`, where STREAM is stdout or stderr and
 * TAG is F for a full line or P for a partial one whose text continues on the
 * next line of the same stream.
 */
export interface LogLine { time: string; stream: 'stdout' | 'stderr'; text: string }

export function parseLogText(text: string): LogLine[] {
  const out: LogLine[] = [];
  const pending: Record<string, { time: string; text: string } | undefined> = {};
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    const m = /^(\S+) (stdout|stderr) ([FP]) ?([^\n]*)$/.exec(raw);
    if (!m) continue;
    const [, time, stream, tag, body] = m as unknown as [string, string, 'stdout' | 'stderr', string, string];
    const prev = pending[stream];
    const joined = (prev?.text ?? '') + body;
    if (tag === 'P') {
      pending[stream] = { time: prev?.time ?? time, text: joined };
      continue;
    }
    pending[stream] = undefined;
    out.push({ time: prev?.time ?? time, stream, text: joined });
  }
  return out;
}

export function readLog(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  return parseLogText(readFileSync(path, 'utf8'));
}

/** Follow a log file as it grows until `stillRunning` says no and nothing new arrived. */
export async function followLog(path: string, fromOffset: number, emit: (l: LogLine) => void, stillRunning: () => boolean): Promise<void> {
  let offset = fromOffset;
  let carry = '';
  for (;;) {
    const running = stillRunning();
    const size = existsSync(path) ? statSync(path).size : 0;
    if (size > offset) {
      const chunk = await new Promise<string>((resolve, reject) => {
        let s = '';
        createReadStream(path, { start: offset, end: size - 1, encoding: 'utf8' })
          .on('data', (d) => { s += d; }).on('end', () => resolve(s)).on('error', reject);
      });
      offset = size;
      const text = carry + chunk;
      const cut = text.lastIndexOf('\n');
      carry = cut < 0 ? text : text.slice(cut + 1);
      if (cut >= 0) for (const l of parseLogText(text.slice(0, cut + 1))) emit(l);
      continue;
    }
    if (!running) return;
    await sleep(100);
  }
}

export function logSize(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}
