/**
 * Human logs go to stderr, never stdout: stdout carries only the JSON document
 * the next stage reads. `--log-format json` turns each line into
 * `{"level","msg","time"}` (the shape containerd's runc shim parses).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  format?: LogFormat;
  level?: LogLevel;
  /** Where log lines go; stderr unless a file was asked for (runc's --log). */
  write?: (line: string) => void;
}

export class Logger {
  format: LogFormat;
  level: LogLevel;
  private write: (line: string) => void;

  constructor(opts: LoggerOptions = {}) {
    this.format = opts.format ?? 'text';
    this.level = opts.level ?? 'info';
    this.write = opts.write ?? ((line) => process.stderr.write(line));
  }

  configure(opts: LoggerOptions): void {
    if (opts.format) this.format = opts.format;
    if (opts.level) this.level = opts.level;
    if (opts.write) this.write = opts.write;
  }

  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (order[level] < order[this.level]) return;
    if (this.format === 'json') {
      this.write(JSON.stringify({ level, msg, time: new Date().toISOString(), ...fields }) + '\n');
    } else {
      const extra = fields && Object.keys(fields).length > 0
        ? ' ' + Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')
        : '';
      this.write(`${level === 'info' ? '' : level + ': '}${msg}${extra}\n`);
    }
  }

  debug(msg: string, fields?: Record<string, unknown>): void { this.log('debug', msg, fields); }
  info(msg: string, fields?: Record<string, unknown>): void { this.log('info', msg, fields); }
  warn(msg: string, fields?: Record<string, unknown>): void { this.log('warn', msg, fields); }
  error(msg: string, fields?: Record<string, unknown>): void { this.log('error', msg, fields); }
}

/** The process-wide logger; the base command configures it from the flags. */
export const log = new Logger();
