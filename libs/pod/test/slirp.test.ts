import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { apiSocketPath, createPod, parseSlirpNetwork, rootlessPodMessage } from '../src/index.ts';

// The parts of the rootless network (slirp.ts) that need no user and no
// /dev/net/tun: where the API socket goes, which networks an ordinary user
// is refused, and that root does not get slirp4netns. The network itself is
// proven as a user in test/rootless/network.test.ts.

describe('slirp4netns API socket path', () => {
  const id = 'a'.repeat(64);

  test('inside the pod directory when the path fits sun_path (107 bytes)', () => {
    expect(apiSocketPath('/tmp/berth-run-1000/berth/pods', id)).toBe(`/tmp/berth-run-1000/berth/pods/${id}/slirp.sock`);
  });

  test('next to it, by short id, under a run root too deep for a Unix socket path', () => {
    const deep = `/tmp/${'d'.repeat(40)}/berth/pods`;
    const path = apiSocketPath(deep, id);
    expect(path).toBe(`${deep}/${id.slice(0, 12)}.sock`);
    expect(Buffer.byteLength(path)).toBeLessThanOrEqual(107);
  });
});

describe('podman\'s --network slirp4netns[:OPTIONS]', () => {
  test('plain: podman\'s defaults (no host loopback, MTU 65520); other networks are not slirp4netns', () => {
    expect(parseSlirpNetwork('slirp4netns')).toEqual({ allowHostLoopback: false, mtu: 65520 });
    expect(parseSlirpNetwork('bridge')).toBeUndefined();
    expect(parseSlirpNetwork('slirp4netnsx')).toBeUndefined();
  });

  test('allow_host_loopback and mtu are taken', () => {
    expect(parseSlirpNetwork('slirp4netns:allow_host_loopback=true,mtu=1500')).toEqual({ allowHostLoopback: true, mtu: 1500 });
  });

  test.each([
    ['slirp4netns:port_handler=slirp4netns', /option "port_handler" is not supported/],
    ['slirp4netns:enable_ipv6=true', /option "enable_ipv6" is not supported/],
    ['slirp4netns:allow_host_loopback=yes', /allow_host_loopback=yes: true or false/],
    ['slirp4netns:mtu=70000', /mtu=70000: an MTU is a number from 68 to 65521/],
  ])('%s is refused by name', (network, message) => {
    expect(() => parseSlirpNetwork(network)).toThrow(message);
  });
});

describe('networks an ordinary user may have', () => {
  test('none and host need nothing', () => {
    expect(rootlessPodMessage('none')).toBeUndefined();
    expect(rootlessPodMessage('host')).toBeUndefined();
  });

  test('a CNI network (bridge or a conflist) is root\'s, and the message points at slirp4netns', () => {
    for (const net of ['bridge', 'mynet']) {
      const m = rootlessPodMessage(net);
      expect(m).toContain(`--network ${net}: a CNI network changes the host's network and needs root`);
      expect(m).toContain('--network slirp4netns');
    }
  });

  test('root asking for slirp4netns is told that root\'s private network is the CNI bridge, before anything is made', async () => {
    const runRoot = join(tmpdir(), `berth-slirp-root-${process.pid}`);
    await expect(createPod({ network: 'slirp4netns', runRoot })).rejects.toThrow(/--network slirp4netns: berth runs slirp4netns for ordinary users only/);
    expect(existsSync(runRoot)).toBe(false);
  });
});
