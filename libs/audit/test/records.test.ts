/**
 * Record parsing and event grouping, on text the kernel and auditd wrote on
 * this host (copied from a real run): field decoding (quoted, hex, (null)),
 * the grouping of one serial's records, the log format's enriched tail.
 */
import { describe, expect, it } from 'vitest';
import { EventAssembler, buildEvent, parseFields, parseKernelRecord, parseLogLine, parseSince, type AuditRecord } from '../src/records.ts';
import { capNames } from '../src/proc.ts';
import { decodeRule, encodeWatchRule } from '../src/rules.ts';

const KERNEL: [number, string][] = [
  [1300, 'audit(1795944368.611:33): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=55d053a11930 a2=441 a3=1b6 items=2 ppid=1985 pid=2006 auid=4242 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=7 comm="sh" exe="/usr/bin/dash" key="protokey"'],
  [1307, 'audit(1795944368.611:33): cwd="/tmp/audproto"'],
  [1302, 'audit(1795944368.611:33): item=0 name="/tmp/audproto/" inode=2148094 dev=fe:00 mode=040755 ouid=0 ogid=0 rdev=00:00 nametype=PARENT cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0'],
  [1302, 'audit(1795944368.611:33): item=1 name="/tmp/audproto/watched" inode=2146609 dev=fe:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=CREATE cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0'],
  [1327, 'audit(1795944368.611:33): proctitle=7368002D63006563686F206869203E3E202F746D702F61756470726F746F2F77617463686564'],
  [1320, 'audit(1795944368.611:33): '],
];

describe('records', () => {
  it('decodes quoted, bare, hex-encoded and (null) values', () => {
    const f = parseFields('comm="my prog" exe=2F746D702F6120622F63 key=(null) ses=4294967295 proctitle=6C73002D6C');
    expect(f).toEqual({ comm: 'my prog', exe: '/tmp/a b/c', key: '(null)', ses: '4294967295', proctitle: 'ls -l' });
  });

  it('groups one serial\'s records into an event at EOE and lifts out its fields', () => {
    const asm = new EventAssembler();
    const done: AuditRecord[][] = [];
    for (const [type, text] of KERNEL) done.push(...asm.push(parseKernelRecord(type, text)!));
    expect(done).toHaveLength(1);
    const ev = buildEvent(done[0]!);
    expect(ev).toMatchObject({
      serial: 33, time: '2026-11-29T09:26:08.611Z', key: 'protokey', pid: 2006, ppid: 1985, auid: 4242, auidUnset: false, ses: 7,
      comm: 'sh', exe: '/usr/bin/dash', cwd: '/tmp/audproto', proctitle: 'sh -c echo hi >> /tmp/audproto/watched',
      syscall: { number: 257, name: 'openat', arch: 'x86_64', success: true, exit: 3 },
      types: ['SYSCALL', 'CWD', 'PATH', 'PATH', 'PROCTITLE'],
    });
    expect(ev.paths.map((p) => [p.name, p.nametype])).toEqual([['/tmp/audproto/', 'PARENT'], ['/tmp/audproto/watched', 'CREATE']]);
  });

  it('flushes an event without EOE once it went quiet, not before', () => {
    const asm = new EventAssembler(300);
    asm.push(parseKernelRecord(1305, 'audit(1795944369.135:35): op=set audit_enabled=0 old=1 auid=4294967295 ses=4294967295 res=1')!, 1000);
    expect(asm.flush(1100)).toHaveLength(0);
    const [ev] = asm.flush(1300);
    expect(buildEvent(ev!)).toMatchObject({ types: ['CONFIG_CHANGE'], auid: 4294967295, auidUnset: true, syscall: null });
  });

  it('reads auditd\'s enriched log lines, dropping the interpreted tail after 0x1d', () => {
    const r = parseLogLine('type=SYSCALL msg=audit(1795945001.399:83): arch=c000003e syscall=257 success=yes exit=3 ppid=18840 pid=18841 auid=4294967295 ses=4294967295 comm="bash" exe="/usr/bin/bash" key="ak1"\x1dARCH=x86_64 SYSCALL=openat AUID="unset" UID="root"');
    expect(r).toMatchObject({ type: 'SYSCALL', typeNumber: 1300, serial: 83, fields: { key: 'ak1', comm: 'bash', auid: '4294967295' } });
    expect(r!.fields).not.toHaveProperty('AUID');
    expect(parseLogLine('node=h1 type=PATH msg=audit(1795945001.399:83): item=0 name="/w"')).toMatchObject({ type: 'PATH', serial: 83 });
    expect(parseLogLine('garbage')).toBeUndefined();
  });

  it('--since words', () => {
    const now = Date.parse('2026-11-29T12:00:00Z');
    expect(parseSince('recent', now)).toBe(now / 1000 - 600);
    expect(parseSince('10m', now)).toBe(now / 1000 - 600);
    expect(parseSince('2026-11-29T11:00:00Z', now)).toBe(now / 1000 - 3600);
    expect(parseSince('1795944368', now)).toBe(1795944368);
    expect(() => parseSince('soonish', now)).toThrow(/invalid time "soonish"/);
  });
});

describe('capabilities and rules', () => {
  it('names the bits of a /proc capability mask, lowest first', () => {
    expect(capNames('00000000a80425fb')).toEqual([
      'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP',
      'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_AUDIT_WRITE', 'CAP_SETFCAP',
    ]);
    expect(capNames('0')).toEqual([]);
  });

  it('a watch rule encodes as auditctl -w builds it and decodes back', () => {
    const raw = encodeWatchRule('/etc/shadow', 'wa', 'shadow');
    // flags AUDIT_FILTER_EXIT, action AUDIT_ALWAYS, three fields; buf = path + key
    expect([raw.readUInt32LE(0), raw.readUInt32LE(4), raw.readUInt32LE(8)]).toEqual([4, 2, 3]);
    expect(raw.subarray(raw.length - 17).toString()).toBe('/etc/shadowshadow');
    expect(decodeRule(raw)).toMatchObject({ kind: 'watch', path: '/etc/shadow', perm: 'wa', key: 'shadow' });
    expect(() => encodeWatchRule('etc/shadow', 'w', null)).toThrow(/must be absolute/);
  });
});
