import { log } from './log.ts';

/**
 * Progress for long transfers, on stderr. On a TTY one line per item is redrawn
 * in place; otherwise (CI, pipes, --log-format json) a plain line is logged
 * when an item starts and when it ends, so logs stay readable.
 */
export class Progress {
  private readonly tty: boolean;
  private readonly items = new Map<string, { label: string; done: number; total: number; finished: boolean }>();
  private lastDraw = 0;
  private drawnLines = 0;

  constructor(opts: { tty?: boolean } = {}) {
    this.tty = opts.tty ?? (process.stderr.isTTY === true && log.format === 'text');
  }

  start(id: string, label: string, total: number): void {
    this.items.set(id, { label, done: 0, total, finished: false });
    if (!this.tty) log.info(`${label}: started`, { size: total });
    else this.draw(true);
  }

  update(id: string, done: number): void {
    const it = this.items.get(id);
    if (!it) return;
    it.done = done;
    if (this.tty) this.draw(false);
  }

  finish(id: string, note = 'done'): void {
    const it = this.items.get(id);
    if (!it) return;
    it.done = it.total;
    it.finished = true;
    if (!this.tty) log.info(`${it.label}: ${note}`);
    else this.draw(true);
  }

  private draw(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    let out = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : '';
    for (const it of this.items.values()) {
      const pct = it.total > 0 ? Math.min(1, it.done / it.total) : it.finished ? 1 : 0;
      const width = 24;
      const filled = Math.round(pct * width);
      out += `\x1b[2K${it.label.padEnd(24).slice(0, 24)} [${'='.repeat(filled)}${' '.repeat(width - filled)}] ${formatBytes(it.done)} / ${formatBytes(it.total)}\n`;
    }
    this.drawnLines = this.items.size;
    process.stderr.write(out);
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
