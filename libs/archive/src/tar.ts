/**
 * A streaming tar reader and a header writer, for the formats layers use:
 * ustar, GNU (long names in 'L'/'K' entries, base-256 numbers) and PAX
 * (POSIX.1-2001 `pax` extended headers: path, linkpath, size, uid, gid, mtime,
 * SCHILY.xattr.*). See https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html
 * and GNU tar's "Basic Tar Format".
 *
 * Why not tar-stream's extract: it decodes PAX values as UTF-8, which turns a
 * binary xattr such as security.capability into replacement characters. Here
 * PAX values stay bytes until their key says what they are. The reader is
 * also push-based and synchronous, so the extractor can write file data with
 * no extra stream hop per chunk.
 */
export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo';

export interface TarHeader {
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** seconds since the epoch, fractional when PAX said so */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
}

export interface TarSink {
  /** A new entry; file data follows through `data`, then `end`. */
  entry(header: TarHeader): void;
  data(chunk: Buffer): void;
  end(): void;
}

const BLOCK = 512;
const typeFlags: Record<string, EntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'directory', '6': 'fifo',
};

export class TarFormatError extends Error {}

export class TarReader {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** bytes of the current entry's body still to come (data or long header) */
  private remaining = 0;
  private padding = 0;
  private state: 'header' | 'data' | 'long' | 'end' = 'header';
  private longKind = '';
  private longParts: Buffer[] = [];
  private pax = new Map<string, Buffer>();
  private paxGlobal = new Map<string, Buffer>();
  private gnuName: string | undefined;
  private gnuLink: string | undefined;
  entries = 0;

  constructor(private readonly sink: TarSink) {}

  /** Everything after the end-of-archive blocks is ignored (but was hashed by the caller). */
  get ended(): boolean { return this.state === 'end'; }

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && this.state !== 'end') {
      if (this.state === 'data' || this.state === 'long') {
        if (this.remaining > 0) {
          const n = Math.min(this.remaining, chunk.length - off);
          const part = chunk.subarray(off, off + n);
          if (this.state === 'data') this.sink.data(part);
          else this.longParts.push(Buffer.from(part));
          this.remaining -= n;
          off += n;
          continue;
        }
        if (this.padding > 0) {
          const n = Math.min(this.padding, chunk.length - off);
          this.padding -= n;
          off += n;
          continue;
        }
        this.finishBody();
        continue;
      }
      // header: gather exactly one block
      const need = BLOCK - this.pendingLen;
      const n = Math.min(need, chunk.length - off);
      // A header split across chunks is kept as a copy: the caller may reuse a chunk's memory once push() returns.
      this.pending.push(n === BLOCK ? chunk.subarray(off, off + n) : Buffer.from(chunk.subarray(off, off + n)));
      this.pendingLen += n;
      off += n;
      if (this.pendingLen === BLOCK) {
        const block = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
        this.pending = [];
        this.pendingLen = 0;
        this.header(block);
      }
    }
    // A body that ends exactly at a chunk boundary finishes now, not with the next chunk.
    if ((this.state === 'data' || this.state === 'long') && this.remaining === 0 && this.padding === 0) this.finishBody();
  }

  /** The input ended: it must have ended on an entry boundary. */
  finish(): void {
    if (this.state === 'data' || this.state === 'long' || this.pendingLen > 0) {
      throw new TarFormatError('the tar stream ends in the middle of an entry (truncated layer)');
    }
  }

  private finishBody(): void {
    if (this.state === 'data') {
      this.state = 'header';
      this.sink.end();
      return;
    }
    this.state = 'header';
    const body = Buffer.concat(this.longParts);
    this.longParts = [];
    if (this.longKind === 'L') this.gnuName = cString(body);
    else if (this.longKind === 'K') this.gnuLink = cString(body);
    else if (this.longKind === 'x') for (const [k, v] of parsePax(body)) this.pax.set(k, v);
    else if (this.longKind === 'g') for (const [k, v] of parsePax(body)) this.paxGlobal.set(k, v);
  }

  private header(block: Buffer): void {
    if (isZero(block)) {
      // One zero block is enough to call it the end (GNU tar warns, does the same).
      this.state = 'end';
      return;
    }
    verifyChecksum(block);
    const flag = String.fromCharCode(block[156]!);
    const size = readNumber(block, 124, 12, 'size');
    if (flag === 'L' || flag === 'K' || flag === 'x' || flag === 'g') {
      if (size > 16 * 1024 * 1024) throw new TarFormatError(`a ${flag} extended header of ${size} bytes is over the 16 MiB limit`);
      this.longKind = flag;
      this.state = 'long';
      this.remaining = size;
      this.padding = pad(size);
      return;
    }
    const magic = block.toString('latin1', 257, 263);
    const ustar = magic === 'ustar\0';
    let name = cString(block.subarray(0, 100));
    // In GNU headers ("ustar  ") this area holds atime/ctime, not a prefix.
    if (ustar && block[345] !== 0) name = `${cString(block.subarray(345, 500))}/${name}`;
    const pax = this.paxGlobal.size > 0 ? new Map([...this.paxGlobal, ...this.pax]) : this.pax;
    this.pax = new Map();
    const type = typeFlags[flag];
    if (type === undefined) {
      throw new TarFormatError(`entry "${this.gnuName ?? name}" has tar type '${flag}', which layers do not use (sparse and multi-volume GNU entries are not supported)`);
    }
    const h: TarHeader = {
      name: this.gnuName ?? name,
      type,
      mode: readNumber(block, 100, 8, 'mode') & 0o7777,
      uid: readNumber(block, 108, 8, 'uid'),
      gid: readNumber(block, 116, 8, 'gid'),
      size: type === 'file' ? size : 0,
      mtime: readNumber(block, 136, 12, 'mtime'),
      linkname: this.gnuLink ?? cString(block.subarray(157, 257)),
      devmajor: type === 'char' || type === 'block' ? readNumber(block, 329, 8, 'devmajor') : 0,
      devminor: type === 'char' || type === 'block' ? readNumber(block, 337, 8, 'devminor') : 0,
      xattrs: new Map(),
    };
    this.gnuName = undefined;
    this.gnuLink = undefined;
    for (const [k, v] of pax) {
      if (k === 'path') h.name = v.toString('utf8');
      else if (k === 'linkpath') h.linkname = v.toString('utf8');
      else if (k === 'size' && type === 'file') h.size = paxInt(k, v);
      else if (k === 'uid') h.uid = paxInt(k, v);
      else if (k === 'gid') h.gid = paxInt(k, v);
      else if (k === 'mtime') h.mtime = Number(v.toString('latin1'));
      else if (k.startsWith('SCHILY.xattr.')) h.xattrs.set(k.slice('SCHILY.xattr.'.length), v);
    }
    this.entries++;
    this.sink.entry(h);
    // Only regular files carry data; a hardlink's size field (if set) is not followed by data in the formats we read.
    const bodySize = type === 'file' ? h.size : 0;
    this.state = 'data';
    this.remaining = bodySize;
    this.padding = pad(bodySize);
  }
}

function pad(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

function verifyChecksum(block: Buffer): void {
  const stored = readNumber(block, 148, 8, 'checksum');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  if (sum !== stored) throw new TarFormatError(`tar header checksum mismatch (stored ${stored}, computed ${sum}): not a tar stream, or a corrupt one`);
}

/** Octal with NUL/space padding, or GNU base-256 when the top bit of the first byte is set. */
function readNumber(block: Buffer, off: number, len: number, what: string): number {
  if (block[off]! & 0x80) {
    let v = block[off]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + block[off + i]!;
    return v;
  }
  const s = block.toString('latin1', off, off + len).replace(/[\0 ]+$/, '').replace(/^[\0 ]+/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`tar header field ${what} is not an octal number: "${s}"`);
  return parseInt(s, 8);
}

function paxInt(key: string, v: Buffer): number {
  const s = v.toString('latin1');
  if (!/^[0-9]+$/.test(s)) throw new TarFormatError(`PAX record ${key}="${s}" is not a number`);
  return Number(s);
}

/** PAX records: "<len> <key>=<value>\n", len counting the whole record; values stay bytes. */
export function parsePax(body: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < body.length) {
    if (body[off] === 0) break;
    const space = body.indexOf(0x20, off);
    if (space < 0) throw new TarFormatError('malformed PAX record: no length');
    const len = Number(body.toString('latin1', off, space));
    if (!Number.isInteger(len) || len <= 0 || off + len > body.length) throw new TarFormatError('malformed PAX record length');
    const rec = body.subarray(space + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new TarFormatError('malformed PAX record: no "="');
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1)));
    off += len;
  }
  return out;
}

// ---- writing ----

export interface WriteHeader {
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

const flagOf: Record<EntryType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', directory: '5', fifo: '6' };

/**
 * The header blocks for one entry: a PAX header first when the name or link
 * is too long for ustar, ids or size are too big, or there are xattrs; then
 * the ustar header.
 */
export function encodeHeader(h: WriteHeader): Buffer {
  const records: Array<[string, Buffer]> = [];
  const nameBytes = Buffer.byteLength(h.name);
  const linkBytes = Buffer.byteLength(h.linkname ?? '');
  if (nameBytes > 100) records.push(['path', Buffer.from(h.name)]);
  if (linkBytes > 100) records.push(['linkpath', Buffer.from(h.linkname ?? '')]);
  if (h.uid > 0o7777777) records.push(['uid', Buffer.from(String(h.uid))]);
  if (h.gid > 0o7777777) records.push(['gid', Buffer.from(String(h.gid))]);
  if (h.size > 0o77777777777) records.push(['size', Buffer.from(String(h.size))]);
  for (const [k, v] of h.xattrs ?? []) records.push([`SCHILY.xattr.${k}`, v]);
  const parts: Buffer[] = [];
  if (records.length > 0) {
    const body = Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
    parts.push(ustarBlock({ name: 'PaxHeaders/' + h.name.slice(-80), type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: h.mtime }, 'x'));
    parts.push(body, Buffer.alloc(pad(body.length)));
  }
  parts.push(ustarBlock(h, flagOf[h.type]));
  return Buffer.concat(parts);
}

function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.byteLength(key) + value.length + 3; // ' ', '=', '\n'
  let len = rest + String(rest).length;
  if (String(len).length !== String(rest).length) len = rest + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

function ustarBlock(h: WriteHeader, flag: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  // Over-long names went into PAX; keep a truncated one here for readers without PAX.
  b.write(truncateBytes(h.name, 100), 0, 'utf8');
  writeOctal(b, 100, 8, h.mode & 0o7777);
  writeOctal(b, 108, 8, Math.min(h.uid, 0o7777777));
  writeOctal(b, 116, 8, Math.min(h.gid, 0o7777777));
  writeOctal(b, 124, 12, Math.min(h.size, 0o77777777777));
  writeOctal(b, 136, 12, Math.max(0, Math.floor(h.mtime)));
  b.fill(0x20, 148, 156);
  b.write(flag, 156, 'latin1');
  if (h.linkname) b.write(truncateBytes(h.linkname, 100), 157, 'utf8');
  b.write('ustar\x0000', 257, 'latin1');
  writeOctal(b, 329, 8, h.devmajor ?? 0);
  writeOctal(b, 337, 8, h.devminor ?? 0);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  writeOctal(b, 148, 7, sum);
  return b;
}

function truncateBytes(s: string, max: number): string {
  let out = s;
  while (Buffer.byteLength(out) > max) out = out.slice(0, -1);
  return out;
}

function writeOctal(b: Buffer, off: number, len: number, v: number): void {
  b.write(v.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);
export function paddingFor(size: number): Buffer {
  return Buffer.alloc(pad(size));
}
