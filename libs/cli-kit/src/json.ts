import { BerthError } from './errors.ts';

/** Every document on stdout has a `kind` the next stage checks. */
export interface StageDocument { kind: string; [key: string]: unknown }

/** Read the previous stage's JSON from stdin (for an argument of `-`). */
export async function readStdinDocument(expectKind?: string | string[]): Promise<StageDocument> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  return parseStageDocument(text, 'stdin', expectKind);
}

export function parseStageDocument(text: string, source: string, expectKind?: string | string[]): StageDocument {
  if (text === '') throw new BerthError('E_INPUT', `no JSON document on ${source}: expected the previous stage's output`);
  // NDJSON from a streaming stage: take the last complete document.
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  let doc: unknown;
  try {
    doc = JSON.parse(lines.length > 1 && !text.startsWith('{\n') ? lines[lines.length - 1]! : text);
  } catch (err) {
    throw new BerthError('E_INPUT', `malformed JSON on ${source}: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || typeof (doc as StageDocument).kind !== 'string') {
    throw new BerthError('E_INPUT', `JSON on ${source} has no "kind" field: not a berth stage document`);
  }
  const kinds = expectKind === undefined ? undefined : Array.isArray(expectKind) ? expectKind : [expectKind];
  if (kinds && !kinds.includes((doc as StageDocument).kind)) {
    throw new BerthError('E_INPUT', `JSON on ${source} is of kind "${(doc as StageDocument).kind}", expected ${kinds.map((k) => `"${k}"`).join(' or ')}`);
  }
  return doc as StageDocument;
}
