import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { CniRuntime, defaultConfList, findNetwork, parseConfList, resultAddress } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'berth-cni-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('network configuration lists', () => {
  test('the default network: bridge berth0 on 10.89.0.0/24, portmap with snat, firewall', () => {
    const list = defaultConfList();
    expect(list).toMatchObject({ cniVersion: '1.0.0', name: 'berth' });
    expect(list.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap', 'firewall']);
    expect(list.plugins[0]).toMatchObject({ bridge: 'berth0', ipMasq: true, ipam: { type: 'host-local', dataDir: '/run/berth/cni/networks', ranges: [[{ subnet: '10.89.0.0/24' }]] } });
    expect(list.plugins[1]).toMatchObject({ capabilities: { portMappings: true }, snat: true });
  });

  test.each([
    ['{', /not valid JSON/],
    ['[]', /not a JSON object/],
    ['{"name":"n","plugins":[{"type":"bridge"}]}', /"cniVersion" must be/],
    ['{"cniVersion":"1.0.0","name":"bad name","plugins":[{"type":"bridge"}]}', /"name" must be/],
    ['{"cniVersion":"1.0.0","name":"n","type":"bridge"}', /single-plugin \.conf is not a list/],
    ['{"cniVersion":"1.0.0","name":"n","plugins":[]}', /"plugins" must be a non-empty array/],
    ['{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../bin/sh"}]}', /plugins\[0\] needs a "type"/],
  ])('%s is refused', (text, message) => {
    expect(() => parseConfList(text, 'x.conflist')).toThrow(message);
  });

  test('a user network is found by its name in the config directory; an unknown one is an error', () => {
    writeFileSync(join(dir, '10-mine.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'mine', plugins: [{ type: 'bridge', bridge: 'mine0' }] }));
    expect(findNetwork('mine', [dir]).plugins[0]).toMatchObject({ bridge: 'mine0' });
    expect(findNetwork('berth', [dir]).name).toBe('berth');
    expect(() => findNetwork('other', [dir])).toThrow(/no network named "other"/);
  });
});

describe('the plugin protocol', () => {
  const rt = new CniRuntime({ cacheDir: join(dir, 'cache') });
  const list = defaultConfList();
  const conf = { containerId: 'c1', netns: '/proc/self/ns/net', ifName: 'eth0', capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] } };

  test('stdin carries the list\'s name and version, runtimeConfig only for declared capabilities, and prevResult', () => {
    const prev = { cniVersion: '1.0.0', ips: [{ address: '10.89.0.2/24' }] };
    const bridge = rt.pluginInput(list, list.plugins[0]!, conf, undefined);
    expect(bridge).toMatchObject({ type: 'bridge', name: 'berth', cniVersion: '1.0.0' });
    expect(bridge).not.toHaveProperty('runtimeConfig');
    expect(bridge).not.toHaveProperty('prevResult');
    const portmap = rt.pluginInput(list, list.plugins[1]!, conf, prev);
    expect(portmap.runtimeConfig).toEqual({ portMappings: conf.capabilityArgs.portMappings });
    expect(portmap.prevResult).toEqual(prev);
  });

  test('a missing plugin names the Debian package', () => {
    const none = new CniRuntime({ cacheDir: dir, pluginDirs: [join(dir, 'nothing')] });
    expect(() => none.checkPlugins(list)).toThrow(/CNI plugin "bridge" not found in .*nothing: install the Debian package containernetworking-plugins/);
  });

  test('a plugin\'s error JSON becomes an error naming the plugin, the command and the CNI code', async () => {
    // A real plugin with a config it cannot decode: portmap answers with the spec's error type.
    const bad = parseConfList(JSON.stringify({ cniVersion: '1.0.0', name: 'bad', plugins: [{ type: 'portmap', snat: 'yes' }] }), 'bad');
    await expect(rt.add(bad, { containerId: 'c2', netns: '/proc/self/ns/net', ifName: 'eth0' })).rejects.toThrow(/CNI plugin portmap ADD on network bad: failed to parse config: .* \(CNI error code 999\)/);
  });

  test('the container\'s address comes from the interface in the sandbox', () => {
    expect(resultAddress({
      cniVersion: '1.0.0',
      interfaces: [{ name: 'berth0' }, { name: 'veth1' }, { name: 'eth0', sandbox: '/run/ns' }],
      ips: [{ address: 'fd00::2/64', interface: 2 }, { address: '10.89.0.7/24', gateway: '10.89.0.1', interface: 2 }],
    })).toEqual({ ip: '10.89.0.7', prefix: 24, gateway: '10.89.0.1' });
  });
});
