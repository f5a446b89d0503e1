import { BerthError } from '@berth/cli-kit';

/**
 * The Containerfile (Dockerfile) grammar, as the Dockerfile reference
 * (https://docs.docker.com/reference/dockerfile/) and buildah read it:
 * - one instruction per logical line, `INSTRUCTION arguments`, the keyword
 *   case-insensitive;
 * - a line ending in the escape character (`\`, or the one set by a
 *   `# escape=` parser directive) continues on the next; comment lines and
 *   empty lines inside a continuation are dropped;
 * - `#` starts a comment only at the start of a line;
 * - RUN, CMD, ENTRYPOINT (and COPY, ADD, VOLUME, SHELL) take a JSON array
 *   (exec form) or a string (shell form);
 * - `${VAR}` expansion happens later, per instruction, with the ARG and ENV
 *   values in effect at that step (see expand()).
 * Errors name the file and line: `Containerfile:7: unknown instruction FOO`.
 */

export const Keywords = [
  'FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER',
  'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
] as const;
export type Keyword = typeof Keywords[number];

export interface Instruction {
  keyword: Keyword;
  /** The arguments after the flags, as written (continuations joined). */
  args: string;
  /** `--name=value` flags in front of the arguments (COPY --chown, FROM --platform, RUN --network). */
  flags: Record<string, string>;
  /** Every `--mount=` of a RUN, in order (the one flag that may repeat). */
  mounts?: string[];
  /** The JSON array of the exec form, when the arguments are one. */
  json: string[] | undefined;
  /** The whole instruction as written, continuations joined: for history and the cache key. */
  text: string;
  /** 1-based line where the instruction starts. */
  line: number;
  /** `file:line` for error messages. */
  where: string;
}

export interface ParsedContainerfile {
  /** ARG instructions before the first FROM: they may be used in FROM lines. */
  globalArgs: Instruction[];
  instructions: Instruction[];
  escape: string;
}

export function parseError(where: string, message: string): BerthError {
  return new BerthError('E_CONTAINERFILE', `${where}: ${message}`);
}

const flagged: Partial<Record<Keyword, readonly string[]>> = {
  FROM: ['platform'],
  // --link only promises the layer does not depend on the one below; every berth COPY layer is written that way.
  COPY: ['chown', 'chmod', 'from', 'link'],
  ADD: ['chown', 'chmod', 'link'],
  RUN: ['network', 'mount'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};
/** BuildKit flags that change what a step does: refused by name rather than silently ignored. */
const unsupported: Partial<Record<Keyword, readonly string[]>> = {
  COPY: ['parents', 'exclude'],
  ADD: ['checksum', 'keep-git-dir', 'exclude'],
  RUN: ['security'],
};
const execForm: ReadonlySet<Keyword> = new Set(['RUN', 'CMD', 'ENTRYPOINT', 'COPY', 'ADD', 'VOLUME', 'SHELL']);

export function parseContainerfile(text: string, name = 'Containerfile'): ParsedContainerfile {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let escape = '\\';
  // Parser directives (`# escape=` and `# syntax=`) may only open the file.
  let i = 0;
  for (; i < lines.length; i++) {
    const m = /^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(lines[i]!);
    if (!m) break;
    const key = m[1]!.toLowerCase();
    if (key === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw parseError(`${name}:${i + 1}`, `escape directive must be \\ or \`, not ${m[2]}`);
      escape = m[2]!;
    } else if (key !== 'syntax' && key !== 'check') break;
  }

  const out: Instruction[] = [];
  while (i < lines.length) {
    const raw = lines[i]!;
    const start = i + 1;
    i++;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    // Join continuation lines: the escape char at the end, before optional blanks.
    let logical = raw;
    while (endsWithEscape(logical, escape)) {
      logical = logical.replace(/\s*$/, '').slice(0, -1);
      let next: string | undefined;
      while (i < lines.length) {
        const l = lines[i++]!;
        const tl = l.trim();
        if (tl.startsWith('#') || tl === '') continue;
        next = l;
        break;
      }
      if (next === undefined) break;
      logical += next;
    }
    out.push(parseInstruction(logical.trim(), start, `${name}:${start}`));
  }

  const firstFrom = out.findIndex((ins) => ins.keyword === 'FROM');
  const before = firstFrom < 0 ? out : out.slice(0, firstFrom);
  const stray = before.find((ins) => ins.keyword !== 'ARG');
  if (stray) throw parseError(stray.where, `${stray.keyword} before the first FROM: only ARG may come before FROM`);
  if (firstFrom < 0) throw parseError(`${name}:1`, 'no FROM instruction: a Containerfile starts with FROM IMAGE (or FROM scratch)');
  return { globalArgs: before, instructions: out.slice(firstFrom), escape };
}

function endsWithEscape(line: string, escape: string): boolean {
  const t = line.replace(/\s*$/, '');
  if (!t.endsWith(escape)) return false;
  // An escaped escape (`\\` at the end) is a literal, not a continuation.
  let n = 0;
  for (let k = t.length - 1; k >= 0 && t[k] === escape; k--) n++;
  return n % 2 === 1;
}

function parseInstruction(line: string, lineNo: number, where: string): Instruction {
  const m = /^(\S+)\s*(.*)$/s.exec(line)!;
  const word = m[1]!;
  const keyword = word.toUpperCase() as Keyword;
  if (!(Keywords as readonly string[]).includes(keyword)) throw parseError(where, `unknown instruction ${word.toUpperCase()}`);
  let rest = m[2]!;
  const flags: Record<string, string> = {};
  let mounts: string[] | undefined;
  const allowed = flagged[keyword] ?? [];
  for (;;) {
    const f = /^--([a-z][a-z-]*)(?:=(\S*))?(?:\s+|$)/.exec(rest);
    if (!f) break;
    if (unsupported[keyword]?.includes(f[1]!)) throw parseError(where, `${keyword} --${f[1]} is a BuildKit extension berth does not support`);
    if (!allowed.includes(f[1]!)) throw parseError(where, `${keyword} has no flag --${f[1]}${allowed.length ? ` (it takes ${allowed.map((a) => `--${a}`).join(', ')})` : ''}`);
    if (f[1] === 'mount') (mounts ??= []).push(f[2] ?? '');
    else flags[f[1]!] = f[2] ?? 'true';
    rest = rest.slice(f[0].length);
  }
  let json: string[] | undefined;
  if (execForm.has(keyword) && rest.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(rest);
      if (Array.isArray(parsed) && parsed.every((s) => typeof s === 'string')) json = parsed as string[];
    } catch {
      // Not valid JSON: Docker then takes it as the shell form, and so do we.
    }
  }
  const needsArgs = keyword !== 'CMD' && keyword !== 'ENTRYPOINT' && keyword !== 'ONBUILD';
  if (needsArgs && rest.trim() === '' && json === undefined) throw parseError(where, `${keyword} needs arguments`);
  return { keyword, args: rest.trim(), flags, ...(mounts ? { mounts } : {}), json, text: line, line: lineNo, where };
}

/**
 * Variable substitution as the Dockerfile reference defines it: `$VAR`,
 * `${VAR}`, `${VAR:-default}` (default when unset or empty), `${VAR:+alt}`
 * (alt when set and not empty), and the escape char before `$` for a literal.
 * Unset variables expand to nothing. Quotes are kept (word splitting comes later).
 */
export function expand(text: string, vars: ReadonlyMap<string, string>, where: string, escape = '\\'): string {
  let out = '';
  for (let k = 0; k < text.length; k++) {
    const c = text[k]!;
    if (c === escape && text[k + 1] === '$') { out += '$'; k++; continue; }
    if (c !== '$') { out += c; continue; }
    if (text[k + 1] === '{') {
      const close = text.indexOf('}', k + 2);
      if (close < 0) throw parseError(where, `missing "}" in ${text.slice(k)}`);
      const body = text.slice(k + 2, close);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])(.*))?$/s.exec(body);
      if (!m) throw parseError(where, `bad substitution \${${body}}`);
      const value = vars.get(m[1]!);
      if (m[2] === ':-') out += value !== undefined && value !== '' ? value : expand(m[3]!, vars, where, escape);
      else if (m[2] === ':+') out += value !== undefined && value !== '' ? expand(m[3]!, vars, where, escape) : '';
      else out += value ?? '';
      k = close;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(k + 1));
    if (!m) { out += c; continue; }
    out += vars.get(m[0]) ?? '';
    k += m[0].length;
  }
  return out;
}

/**
 * Split `a=b "c d"=e f="g h"` into words, honouring double and single quotes
 * and the escape char, as ENV, LABEL and ARG read their arguments.
 */
export function splitWords(text: string, where: string, escape = '\\'): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let k = 0; k < text.length; k++) {
    const c = text[k]!;
    if (quote) {
      if (c === quote) { quote = undefined; continue; }
      if (c === escape && quote === '"' && k + 1 < text.length) { cur += text[++k]; continue; }
      cur += c;
      continue;
    }
    if (c === '"' || c === "'") { quote = c; inWord = true; continue; }
    if (c === escape && k + 1 < text.length) { cur += text[++k]; inWord = true; continue; }
    if (/\s/.test(c)) {
      if (inWord) { words.push(cur); cur = ''; inWord = false; }
      continue;
    }
    cur += c;
    inWord = true;
  }
  if (quote) throw parseError(where, `unterminated ${quote === '"' ? 'double' : 'single'} quote`);
  if (inWord) words.push(cur);
  return words;
}

/**
 * `KEY=VALUE ...` pairs (ENV, LABEL), or the legacy `KEY VALUE...` form
 * (one pair, the value the rest of the line).
 */
export function parseKeyValues(args: string, keyword: string, where: string, escape = '\\'): Array<[string, string]> {
  const words = splitWords(args, where, escape);
  if (words.length === 0) throw parseError(where, `${keyword} needs KEY=VALUE`);
  if (!words[0]!.includes('=')) {
    const m = /^(\S+)\s+(.*)$/s.exec(args.trim());
    if (!m) throw parseError(where, `${keyword} ${words[0]} needs a value (${keyword} KEY=VALUE)`);
    return [[m[1]!, splitWords(m[2]!, where, escape).join(' ')]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw parseError(where, `${keyword} "${w}": expected KEY=VALUE`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}
