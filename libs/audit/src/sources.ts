/**
 * Where audit records come from:
 *
 * - live, from the kernel: the AUDIT_NLGRP_READLOG multicast group
 *   (`followKernel`); only records made after the socket joined the group.
 * - history, from auditd's log file (`readLogFile`, and `followLogFile` to
 *   keep reading as auditd appends): whatever auditd wrote, when one runs.
 *
 * Both yield complete events (the records of one serial), in arrival order.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { BerthError } from '@berth/cli-kit';
import { AuditLogReader } from './netlink.ts';
import { EventAssembler, parseKernelRecord, parseLogLine, type AuditRecord } from './records.ts';

export const DEFAULT_AUDIT_LOG = '/var/log/audit/audit.log';

export interface FollowOptions {
  /** Stop when aborted. */
  signal?: AbortSignal;
  /** Called once the source is listening: records made after this are seen. */
  onReady?: () => void;
  /** Called when the kernel dropped records because we read too slowly. */
  onOverrun?: (count: number) => void;
}

function aborted(signal?: AbortSignal): boolean {
  return signal?.aborted === true;
}

/** Resolve on abort or after `ms`, whichever comes first. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Live events from the kernel's audit multicast group. Throws AuditUnavailableError when it cannot join. */
export async function* followKernel(opts: FollowOptions = {}): AsyncGenerator<AuditRecord[]> {
  const reader = new AuditLogReader();
  const assembler = new EventAssembler();
  let overruns = 0;
  try {
    opts.onReady?.();
    while (!aborted(opts.signal)) {
      const now = Date.now();
      for (const { type, text } of reader.drain()) {
        const r = parseKernelRecord(type, text);
        if (!r) continue;
        for (const ev of assembler.push(r, now)) yield ev;
      }
      if (reader.overruns !== overruns) {
        opts.onOverrun?.(reader.overruns - overruns);
        overruns = reader.overruns;
      }
      for (const ev of assembler.flush(Date.now())) yield ev;
      if (aborted(opts.signal)) break;
      // poll(2) on koffi's worker thread; 200 ms bounds how long an abort or
      // a quiet event's flush waits.
      await reader.wait(200);
    }
    for (const ev of assembler.flush(Date.now(), true)) yield ev;
  } finally {
    reader.close();
  }
}

function readChunk(path: string, from: number): { text: string; size: number } {
  const size = statSync(path).size;
  if (size <= from) return { text: '', size };
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(size - from);
    const n = readSync(fd, buf, 0, buf.length, from);
    return { text: buf.subarray(0, n).toString('utf8'), size: from + n };
  } finally {
    closeSync(fd);
  }
}

function openLog(path: string): number {
  try {
    return statSync(path).size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BerthError('E_NO_AUDIT_LOG', `read ${path}: ${code}${code === 'ENOENT' ? ': no auditd log here (is auditd running?); --follow reads live records from the kernel instead' : ''}`);
  }
}

/** The events in auditd's log, in file order. */
export function* readLogFile(path: string = DEFAULT_AUDIT_LOG): Generator<AuditRecord[]> {
  openLog(path);
  const { text } = readChunk(path, 0);
  const assembler = new EventAssembler();
  for (const line of text.split('\n')) {
    const r = parseLogLine(line);
    if (!r) continue;
    yield* assembler.push(r, 0);
  }
  yield* assembler.flush(0, true);
}

/** auditd's log as it grows (a rotation that shrinks the file starts over from its beginning). */
export async function* followLogFile(path: string = DEFAULT_AUDIT_LOG, opts: FollowOptions & { fromStart?: boolean } = {}): AsyncGenerator<AuditRecord[]> {
  let offset = opts.fromStart ? 0 : openLog(path);
  const assembler = new EventAssembler();
  let partial = '';
  opts.onReady?.();
  while (!aborted(opts.signal)) {
    let chunk: { text: string; size: number };
    try {
      chunk = readChunk(path, offset);
      if (chunk.size < offset) {
        offset = 0;
        partial = '';
        continue;
      }
    } catch {
      chunk = { text: '', size: offset };
    }
    offset = chunk.size;
    const lines = (partial + chunk.text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const r = parseLogLine(line);
      if (r) for (const ev of assembler.push(r)) yield ev;
    }
    for (const ev of assembler.flush()) yield ev;
    await sleep(200, opts.signal);
  }
  for (const ev of assembler.flush(Date.now(), true)) yield ev;
}
