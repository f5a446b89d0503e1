import { BerthError } from '@berth/cli-kit';

/**
 * Ask one line on the terminal. The question goes to stderr (stdout carries
 * only results). For a password the terminal is put in raw mode, so the
 * kernel's tty line discipline does not echo what is typed; berth then does
 * the editing itself (backspace), and Ctrl-C / Ctrl-D abort.
 */
/** What arrived after the end of the last line (a fast typist, or a paste): the next question's answer starts with it. */
let pending = '';

export function promptLine(question: string, opts: { hidden: boolean }): Promise<string> {
  const input = process.stdin;
  return new Promise<string>((resolve, reject) => {
    let line = '';
    const raw = opts.hidden && input.isTTY;
    // Echo goes off before the question shows, so nothing typed after it is ever echoed.
    if (raw) input.setRawMode(true);
    process.stderr.write(question);
    let settled = false;
    const done = (err: Error | undefined) => {
      settled = true;
      input.off('data', onData);
      input.off('end', onEnd);
      if (raw) input.setRawMode(false);
      input.pause();
      if (opts.hidden) process.stderr.write('\n');
      if (err) reject(err); else resolve(line);
    };
    const onEnd = () => done(new BerthError('E_USAGE', `${question.replace(/: $/, '').toLowerCase()}: the terminal closed before a line was entered`, { exitCode: 2 }));
    const onData = (chunk: Buffer | string) => {
      const chars = [...chunk.toString()];
      for (let i = 0; i < chars.length; i++) {
        const ch = chars[i]!;
        if (ch === '\r' || ch === '\n') {
          pending = chars.slice(chars[i + 1] === '\n' && ch === '\r' ? i + 2 : i + 1).join('');
          return done(undefined);
        }
        if (ch === '\u0003') return done(new BerthError('E_USAGE', 'interrupted', { exitCode: 2 }));
        if (ch === '\u0004') { if (line === '') return onEnd(); continue; }
        if (ch === '\u007f' || ch === '\b') { line = [...line].slice(0, -1).join(''); continue; }
        line += ch;
      }
    };
    if (pending !== '') {
      const early = pending;
      pending = '';
      onData(early);
      if (settled) return;
    }
    input.on('data', onData);
    input.on('end', onEnd);
    input.resume();
  });
}
