import { describe, expect, test } from 'vitest';
import { checkSubnetFree, formatPort, parsePublish, portsClash } from '../src/index.ts';

describe('--publish parsing', () => {
  test.each([
    ['8080:80', { hostIP: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    ['127.0.0.1:8080:80', { hostIP: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    ['0.0.0.0:53:53/udp', { hostIP: '', hostPort: 53, containerPort: 53, protocol: 'udp' }],
    ['5432:5432/tcp', { hostIP: '', hostPort: 5432, containerPort: 5432, protocol: 'tcp' }],
  ])('%s', (spec, expected) => {
    expect(parsePublish(spec)).toEqual(expected);
  });

  test.each([
    ['80', /expected \[HOSTIP:\]HOSTPORT:PORT/],
    ['0:80', /host port 0 is out of range/],
    ['80:65536', /container port 65536 is out of range/],
    ['1.2.3:80:80', /not an IPv4 address/],
    ['80:80/icmp', /unknown protocol "icmp"/],
    ['a:b:c:d', /expected/],
  ])('%s is refused with a usage error', (spec, message) => {
    expect(() => parsePublish(spec)).toThrow(message);
    try { parsePublish(spec); } catch (err) { expect((err as { exitCode: number }).exitCode).toBe(2); }
  });

  test('clashes: same protocol and host port, unless both name different addresses', () => {
    const p = (s: string) => parsePublish(s);
    expect(portsClash(p('8080:80'), p('127.0.0.1:8080:81'))).toBe(true);
    expect(portsClash(p('127.0.0.1:8080:80'), p('127.0.0.2:8080:80'))).toBe(false);
    expect(portsClash(p('8080:80/udp'), p('8080:80/tcp'))).toBe(false);
    expect(formatPort(p('8080:80/udp'))).toBe('0.0.0.0:8080->80/udp');
  });
});

describe('the default subnet against the host routes', () => {
  const header = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';
  test('a default route and unrelated subnets pass; the bridge\'s own route is ours', () => {
    const table = header
      + 'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n' // default via 192.0.2.1
      + 'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n' // 192.0.2.0/24
      + 'berth0\t0000590A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n'; // 10.89.0.0/24 on berth0
    expect(() => checkSubnetFree('10.89.0.0/24', 'berth0', table)).not.toThrow();
  });
  test('a route covering the subnet on another device is refused', () => {
    const table = header + 'eth1\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n'; // 10.0.0.0/8
    expect(() => checkSubnetFree('10.89.0.0/24', 'berth0', table)).toThrow(/overlaps a route of this host on eth1/);
  });
});
