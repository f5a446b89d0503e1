/**
 * Audit status and watch rules over the control socket, the way auditctl
 * speaks to the kernel (auditctl(8), <linux/audit.h>).
 *
 * A watch (`auditctl -w PATH -p PERM -k KEY`) is a rule on the syscall-exit
 * filter list (AUDIT_FILTER_EXIT) with action AUDIT_ALWAYS, every syscall bit
 * set in its mask, and three fields: AUDIT_WATCH (the path), AUDIT_PERM (which
 * kinds of access: r w x a) and AUDIT_FILTERKEY (the key). String fields carry
 * their length in `values[]` and their bytes, back to back, in `buf`.
 * The kernel deletes a rule only when it is sent back field for field, so
 * removal lists the rules and returns the matching ones as the kernel gave them.
 */
import { dirname } from 'node:path';
import { BerthError, BerthUsageError } from '@berth/cli-kit';
import { AUDIT_ADD_RULE, AUDIT_DEL_RULE, AUDIT_GET, AUDIT_LIST_RULES, AUDIT_SET, AuditRequestError, withControl, type AuditControl } from './netlink.ts';

export interface AuditStatus {
  /** 0 off, 1 on, 2 on and locked (rules immutable until reboot). */
  enabled: number;
  failure: number;
  /** The pid of the registered audit daemon (auditd), 0 when none. */
  pid: number;
  rateLimit: number;
  backlogLimit: number;
  lost: number;
  backlog: number;
}

const AUDIT_STATUS_ENABLED = 1;

/** struct audit_status: eleven u32, of which we read the first eight. */
function decodeStatus(p: Buffer): AuditStatus {
  const u = (i: number) => (p.length >= (i + 1) * 4 ? p.readUInt32LE(i * 4) : 0);
  return { enabled: u(1), failure: u(2), pid: u(3), rateLimit: u(4), backlogLimit: u(5), lost: u(6), backlog: u(7) };
}

export function auditStatus(control?: AuditControl): AuditStatus {
  const run = (c: AuditControl) => {
    const replies = c.request(AUDIT_GET, Buffer.alloc(0), 'AUDIT_GET', { reply: true });
    const r = replies.find((m) => m.type === AUDIT_GET);
    if (!r) throw new BerthError('E_AUDIT_REQUEST', 'AUDIT_GET: the kernel sent no status');
    return decodeStatus(r.payload);
  };
  return control ? run(control) : withControl(run);
}

/** AUDIT_SET with mask AUDIT_STATUS_ENABLED: turn record generation on (1) or off (0). */
export function setAuditEnabled(enabled: 0 | 1, control?: AuditControl): void {
  const run = (c: AuditControl) => {
    const p = Buffer.alloc(11 * 4);
    p.writeUInt32LE(AUDIT_STATUS_ENABLED, 0);
    p.writeUInt32LE(enabled, 4);
    c.request(AUDIT_SET, p, `AUDIT_SET enabled=${enabled}`);
  };
  if (control) run(control);
  else withControl(run);
}

/* Rule encoding constants (<linux/audit.h>). */
const AUDIT_FILTER_EXIT = 0x04;
const AUDIT_ALWAYS = 2;
const AUDIT_BITMASK_SIZE = 64;
const AUDIT_MAX_FIELDS = 64;
const AUDIT_EQUAL = 0x40000000;
const AUDIT_WATCH = 105;
const AUDIT_PERM = 106;
const AUDIT_DIR = 107;
const AUDIT_FILTERKEY = 210;
/** Fields whose value is a string in buf (the value slot holds its length). */
const AUDIT_EXE = 112;
/** SELinux subject/object fields (13-17, 19-23) are strings too. */
const STRING_FIELDS = new Set([13, 14, 15, 16, 17, 19, 20, 21, 22, 23, AUDIT_WATCH, AUDIT_DIR, AUDIT_EXE, AUDIT_FILTERKEY]);
/** Offsets in struct audit_rule_data. */
const OFF_FIELDS = 12 + AUDIT_BITMASK_SIZE * 4;
const OFF_VALUES = OFF_FIELDS + AUDIT_MAX_FIELDS * 4;
const OFF_FIELDFLAGS = OFF_VALUES + AUDIT_MAX_FIELDS * 4;
const OFF_BUFLEN = OFF_FIELDFLAGS + AUDIT_MAX_FIELDS * 4;
const RULE_HEADER = OFF_BUFLEN + 4;

const PERM_BITS: Record<string, number> = { x: 1, w: 2, r: 4, a: 8 };

export interface WatchRule {
  path: string;
  /** Subset of "rwxa", in that order. */
  perm: string;
  key: string | null;
  /** Set for rules that are not plain watches (a directory watch, a syscall rule). */
  kind: 'watch' | 'dir' | 'other';
  /** The rule exactly as the kernel listed it: what AUDIT_DEL_RULE needs back. */
  raw: Buffer;
}

export function parsePerm(perm: string): number {
  if (!/^[rwxa]+$/.test(perm)) throw new BerthUsageError(`invalid permission filter "${perm}": use letters from rwxa (read, write, execute, attribute change)`);
  let bits = 0;
  for (const ch of perm) bits |= PERM_BITS[ch]!;
  return bits;
}

function permString(bits: number): string {
  return ['r', 'w', 'x', 'a'].filter((c) => bits & PERM_BITS[c]!).join('');
}

/** struct audit_rule_data for `auditctl -w path -p perm -k key`. */
export function encodeWatchRule(path: string, perm: string, key: string | null): Buffer {
  if (!path.startsWith('/')) throw new BerthUsageError(`watch path must be absolute: "${path}"`);
  if (path.length > 1 && path.endsWith('/')) throw new BerthUsageError(`watch path must not end with "/": "${path}"`);
  const strings: Buffer[] = [];
  const fields: [number, number][] = [];
  const pathBytes = Buffer.from(path);
  fields.push([AUDIT_WATCH, pathBytes.length]);
  strings.push(pathBytes);
  fields.push([AUDIT_PERM, parsePerm(perm)]);
  if (key !== null) {
    const keyBytes = Buffer.from(key);
    if (keyBytes.length === 0 || keyBytes.length > 255) throw new BerthUsageError(`audit key must be 1 to 255 bytes: "${key}"`);
    fields.push([AUDIT_FILTERKEY, keyBytes.length]);
    strings.push(keyBytes);
  }
  const buf = Buffer.concat(strings);
  const rule = Buffer.alloc(RULE_HEADER + buf.length);
  rule.writeUInt32LE(AUDIT_FILTER_EXIT, 0);
  rule.writeUInt32LE(AUDIT_ALWAYS, 4);
  rule.writeUInt32LE(fields.length, 8);
  // A watch applies to every syscall that touches the inode: all mask bits set.
  for (let i = 0; i < AUDIT_BITMASK_SIZE; i++) rule.writeUInt32LE(0xffffffff, 12 + i * 4);
  fields.forEach(([f, v], i) => {
    rule.writeUInt32LE(f, OFF_FIELDS + i * 4);
    rule.writeUInt32LE(v, OFF_VALUES + i * 4);
    rule.writeUInt32LE(AUDIT_EQUAL, OFF_FIELDFLAGS + i * 4);
  });
  rule.writeUInt32LE(buf.length, OFF_BUFLEN);
  buf.copy(rule, RULE_HEADER);
  return rule;
}

/** Read back one listed rule; rules that are not watches come back with kind 'other'. */
export function decodeRule(raw: Buffer): WatchRule {
  const count = raw.readUInt32LE(8);
  const buflen = raw.readUInt32LE(OFF_BUFLEN);
  const buf = raw.subarray(RULE_HEADER, RULE_HEADER + buflen);
  let off = 0;
  let path = '';
  let perm = '';
  let key: string | null = null;
  let kind: WatchRule['kind'] = 'other';
  for (let i = 0; i < Math.min(count, AUDIT_MAX_FIELDS); i++) {
    const field = raw.readUInt32LE(OFF_FIELDS + i * 4);
    const value = raw.readUInt32LE(OFF_VALUES + i * 4);
    if (STRING_FIELDS.has(field)) {
      const s = buf.subarray(off, off + value).toString('utf8');
      off += value;
      if (field === AUDIT_WATCH) { path = s; kind = 'watch'; }
      else if (field === AUDIT_DIR) { path = s; kind = 'dir'; }
      else if (field === AUDIT_FILTERKEY) key = s;
    } else if (field === AUDIT_PERM) {
      perm = permString(value);
    }
  }
  return { path, perm, key, kind, raw };
}

export function listRules(control?: AuditControl): WatchRule[] {
  const run = (c: AuditControl) =>
    c.request(AUDIT_LIST_RULES, Buffer.alloc(0), 'AUDIT_LIST_RULES', { dump: true })
      .filter((m) => m.type === AUDIT_LIST_RULES)
      .map((m) => decodeRule(m.payload));
  return control ? run(control) : withControl(run);
}

/** The watches on `path` (and with `key`, when given). */
export function findWatches(rules: WatchRule[], path: string, key?: string | null): WatchRule[] {
  return rules.filter((r) => (r.kind === 'watch' || r.kind === 'dir') && r.path === path && (key == null || r.key === key));
}

export interface AddWatchResult {
  rule: WatchRule;
  /** True when this call turned audit on (it was off). */
  enabledAudit: boolean;
  /** True when an identical rule existed already (nothing was added). */
  existed: boolean;
}

/**
 * Add a watch and make sure the kernel generates records: a rule on a
 * disabled audit subsystem is accepted but never fires, so enable it first
 * (the order matters only for the records of the rule change itself).
 */
export function addWatch(path: string, opts: { perm?: string; key?: string | null } = {}): AddWatchResult {
  const perm = opts.perm ?? 'rwxa';
  const key = opts.key ?? null;
  const rule = encodeWatchRule(path, perm, key);
  return withControl((c) => {
    const status = auditStatus(c);
    if (status.enabled === 2) throw new BerthError('E_AUDIT_LOCKED', 'audit is locked (enabled=2, auditctl -e 2): rules cannot change until reboot');
    let enabledAudit = false;
    if (status.enabled === 0) {
      setAuditEnabled(1, c);
      enabledAudit = true;
    }
    try {
      c.request(AUDIT_ADD_RULE, rule, `AUDIT_ADD_RULE watch ${path}`);
    } catch (err) {
      if (err instanceof AuditRequestError && err.message.endsWith('EEXIST')) {
        return { rule: decodeRule(rule), enabledAudit, existed: true };
      }
      // Leave audit as we found it: a failed watch changes nothing.
      if (enabledAudit) setAuditEnabled(0, c);
      if (err instanceof AuditRequestError && err.message.endsWith('ENOENT')) {
        throw new AuditRequestError(`AUDIT_ADD_RULE watch ${path} (its directory ${dirname(path)} must exist)`, err.errno);
      }
      throw err;
    }
    return { rule: decodeRule(rule), enabledAudit, existed: false };
  });
}

/** Remove every watch on `path` (with `key`, when given); returns what was removed. */
export function removeWatches(path: string, opts: { key?: string | null } = {}): WatchRule[] {
  return withControl((c) => {
    const found = findWatches(listRules(c), path, opts.key);
    for (const r of found) c.request(AUDIT_DEL_RULE, r.raw, `AUDIT_DEL_RULE watch ${path}`);
    return found;
  });
}
