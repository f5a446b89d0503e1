import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/run.ts';
import { berthAs, makeUser, type TestUser } from '../rootless/users.ts';
import { Berth, httpGet, pushGuideImages, until } from './fixtures.ts';

// `berth network` as podman's CNI backend has it: conflists in
// /etc/berth/cni/net.d (the real directory berth reads, as a user's networks
// live there), real bridges, real iptables rules through the CNI plugins.
// Every network this suite makes carries the label berth-test-net=SUFFIX and
// a name ending in SUFFIX; afterAll removes them and checks that no bridge,
// lease directory or iptables rule of theirs is left.

const CONFIG_DIR = '/etc/berth/cni/net.d';
const LEASE_DIR = '/run/berth/cni/networks';

interface Inspected {
  name: string; id: string; driver: string; network_interface: string; created: string;
  subnets?: { subnet: string; gateway?: string; lease_range?: { start_ip: string; end_ip: string } }[];
  ipv6_enabled: boolean; internal: boolean; dns_enabled: boolean; labels?: Record<string, string>; ipam_options: { driver: string };
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
}

function inSubnet(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/') as [string, string];
  const mask = Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
  return ((ipToInt(ip) & mask) >>> 0) === ((ipToInt(base) & mask) >>> 0);
}

function configFiles(): string[] {
  try { return readdirSync(CONFIG_DIR).sort(); } catch { return []; }
}

/** A non-default route of this host on a device that is no berth bridge (eth0's subnet here), as A.B.C.D/N. */
function someHostRoute(): string | undefined {
  for (const line of readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || /^berth\d+$/.test(f[0]!) || f[7] === '00000000') continue;
    const le = (h: string) => { const n = parseInt(h, 16); return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.'); };
    const mask = le(f[7]!).split('.').reduce((n, o) => n + (Number(o).toString(2).match(/1/g)?.length ?? 0), 0);
    return `${le(f[1]!)}/${mask}`;
  }
  return undefined;
}

/** The iptables lines (nat and filter) that mention any of `needles`. */
function iptablesLines(needles: string[]): string[] {
  const text = execFileSync('iptables', ['-S', '-t', 'nat'], { encoding: 'utf8' }) + execFileSync('iptables', ['-S'], { encoding: 'utf8' });
  return text.split('\n').filter((l) => needles.some((n) => l.includes(n)));
}

describe('berth network (root, CNI bridge networks)', () => {
  let reg: TestRegistry;
  const layout = tempDir('berth-engine-network-layout-');
  const berth = new Berth();
  const suffix = Math.random().toString(16).slice(2, 8);
  const label = `berth-test-net=${suffix}`;
  const net = (n: string) => `${n}-${suffix}`;
  /** Every network seen made by this suite, with its bridge and subnet, for the final check. */
  const made = new Map<string, { bridge: string; subnet: string }>();
  let image: string;

  function inspect(name: string): Inspected {
    const r = berth.run('network', 'inspect', name);
    if (r.code !== 0) throw new Error(`network inspect ${name}: ${r.stderr}`);
    const doc = (JSON.parse(r.stdout) as Inspected[])[0]!;
    made.set(doc.name, { bridge: doc.network_interface, subnet: doc.subnets?.[0]?.subnet ?? '' });
    return doc;
  }

  function create(...args: string[]): Inspected {
    const name = berth.ok('network', 'create', '--label', label, ...args).trim();
    return inspect(name);
  }

  /** The IPv4 address of eth0 in a running container. */
  function addressOf(ctr: string): string {
    const out = berth.ok('exec', ctr, 'ip', '-4', '-o', 'addr', 'show', 'eth0');
    const m = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out);
    if (!m) throw new Error(`no IPv4 address on eth0 of ${ctr}: ${out}`);
    return m[1]!;
  }

  beforeAll(async () => {
    reg = await startRegistry();
    image = (await pushGuideImages(reg, layout.path)).plain;
    berth.ok('pull', '--tls-verify=false', image);
  }, 120_000);

  afterAll(async () => {
    await berth.cleanup();
    // Networks of this suite a failed test left: found by their label, removed by berth, else by hand.
    const left = berth.run('network', 'ls', '-q', '--filter', `label=${label}`).stdout.split('\n').filter(Boolean);
    if (left.length > 0) berth.run('network', 'rm', '-f', '-t', '0', ...left);
    for (const f of configFiles()) if (f.endsWith(`-${suffix}.conflist`)) unlinkSync(join(CONFIG_DIR, f));
    for (const [name, { bridge }] of made) {
      if (bridge && existsSync(join('/sys/class/net', bridge)) && readdirSync(join('/sys/class/net', bridge, 'brif')).length === 0) {
        try { execFileSync('ip', ['link', 'delete', 'dev', bridge]); } catch { /* gone meanwhile */ }
      }
      rmSync(join(LEASE_DIR, name), { recursive: true, force: true });
    }
    await reg?.stop();
    layout.cleanup();
  });

  it('creates a network with a free 10.89.N.0/24 and a bridge device of its own, in podman\'s inspect shape', () => {
    const before = JSON.parse(berth.ok('network', 'ls', '--format', 'json')) as Inspected[];
    expect(before.map((n) => n.name)).toContain('berth');
    const name = net('web');
    expect(berth.ok('network', 'create', '--label', label, '--label', `tier=front-${suffix}`, name).trim()).toBe(name);
    const doc = inspect(name);
    // podman 4's keys, in its order.
    expect(Object.keys(doc)).toEqual(['name', 'id', 'driver', 'network_interface', 'created', 'subnets', 'ipv6_enabled', 'internal', 'dns_enabled', 'labels', 'ipam_options']);
    expect(doc.id).toBe(createHash('sha256').update(name).digest('hex'));
    expect(doc).toMatchObject({ name, driver: 'bridge', ipv6_enabled: false, internal: false, dns_enabled: false, labels: { 'berth-test-net': suffix, tier: `front-${suffix}` }, ipam_options: { driver: 'host-local' } });
    expect(Date.now() - Date.parse(doc.created)).toBeLessThan(60_000);
    const m = /^10\.89\.(\d+)\.0\/24$/.exec(doc.subnets![0]!.subnet);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(1);
    expect(doc.subnets).toEqual([{ subnet: doc.subnets![0]!.subnet, gateway: `10.89.${m![1]}.1` }]);
    // A subnet and a bridge nobody else has.
    for (const other of before) {
      expect(other.network_interface).not.toBe(doc.network_interface);
      for (const s of other.subnets ?? []) expect(inSubnet(s.subnet.split('/')[0]!, doc.subnets![0]!.subnet) || inSubnet(doc.subnets![0]!.subnet.split('/')[0]!, s.subnet)).toBe(false);
    }
    expect(doc.network_interface).toMatch(/^berth[1-9]\d*$/);
    // The file pods read: bridge, host-local, portmap, firewall, the leases on tmpfs.
    const conf = JSON.parse(readFileSync(join(CONFIG_DIR, `${name}.conflist`), 'utf8')) as { name: string; plugins: Record<string, any>[] };
    expect(conf.name).toBe(name);
    expect(conf.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap', 'firewall']);
    expect(conf.plugins[0]).toMatchObject({ bridge: doc.network_interface, isGateway: true, ipMasq: true, ipam: { type: 'host-local', dataDir: LEASE_DIR, routes: [{ dst: '0.0.0.0/0' }] } });
    // Nothing half-written beside it.
    expect(configFiles().filter((f) => f.startsWith('.') && f.includes(name))).toEqual([]);
  });

  it('lists, filters, inspects by id and answers exists as podman does', () => {
    const name = net('web');
    const table = berth.ok('network', 'ls');
    // Column widths follow the longest name in /etc/berth/cni/net.d, which other runs may share.
    expect(table.split('\n')[0]).toMatch(/^NETWORK ID {4}NAME {2,}DRIVER$/);
    const id = createHash('sha256').update(name).digest('hex');
    expect(table).toMatch(new RegExp(`^${id.slice(0, 12)}  ${name.replace(/[.-]/g, '\\$&')}\\s+bridge$`, 'm'));
    expect(table).toMatch(/^[0-9a-f]{12} {2}berth {2,}bridge$/m);
    expect(berth.ok('network', 'ls', '-q').split('\n')).toEqual(expect.arrayContaining(['berth', name]));
    expect(berth.ok('network', 'ls', '-q', '--filter', `label=${label}`).trim()).toBe(name);
    expect(berth.ok('network', 'ls', '-q', '--filter', `label=${label}`, '--filter', `label!=tier=front-${suffix}`).trim()).toBe('');
    expect(berth.ok('network', 'ls', '-q', '--filter', `name=^${name}$`).trim()).toBe(name);
    expect(berth.ok('network', 'ls', '-q', '--filter', `label=${label}`, '--filter', 'driver=macvlan').trim()).toBe('');
    expect(berth.ok('network', 'ls', '--filter', `label=${label}`, '--format', '{{.Name}} {{.NetworkInterface}} {{.ID}}').trim())
      .toBe(`${name} ${inspect(name).network_interface} ${id.slice(0, 12)}`);
    expect(berth.run('network', 'ls', '--filter', 'colour=red').code).toBe(125);
    expect((JSON.parse(berth.ok('network', 'inspect', id.slice(0, 16))) as Inspected[])[0]!.name).toBe(name);
    expect(berth.ok('network', 'inspect', '--format', '{{.NetworkInterface}}', name).trim()).toBe(inspect(name).network_interface);
    expect(berth.run('network', 'exists', name).code).toBe(0);
    expect(berth.run('network', 'exists', 'berth').code).toBe(0);
    expect(berth.run('network', 'exists', net('nosuch')).code).toBe(1);
    const missing = berth.run('network', 'inspect', name, net('nosuch'));
    expect(missing.code).toBe(125);
    expect((JSON.parse(missing.stdout) as Inspected[]).map((n) => n.name)).toEqual([name]);
    expect(missing.stderr).toContain(`unable to find network with name or ID ${net('nosuch')}: network not found`);
  });

  it('takes --subnet, --gateway, --ip-range, -o mtu and --internal, and names a network berthN without NAME', async () => {
    const custom = create('--subnet', '10.89.240.7/24', '--gateway', '10.89.240.254', '--ip-range', '10.89.240.128/25', '-o', 'mtu=1400', net('custom'));
    expect(custom.subnets).toEqual([{ subnet: '10.89.240.0/24', gateway: '10.89.240.254', lease_range: { start_ip: '10.89.240.128', end_ip: '10.89.240.254' } }]);
    expect(custom.internal).toBe(false);
    expect((custom as unknown as { options: Record<string, string> }).options).toEqual({ mtu: '1400' });
    const internal = create('--internal', net('internal'));
    expect(internal.internal).toBe(true);
    expect(internal.subnets![0]!.gateway).toBeUndefined();
    const conf = JSON.parse(readFileSync(join(CONFIG_DIR, `${internal.name}.conflist`), 'utf8')) as { plugins: Record<string, any>[] };
    // podman's --internal: no gateway on the host, no masquerade, no default route.
    expect(conf.plugins[0]!.isGateway).toBe(false);
    expect(conf.plugins[0]!.ipMasq).toBeUndefined();
    expect(conf.plugins[0]!.ipam.routes).toBeUndefined();
    const auto = create('--disable-dns');
    expect(auto.name).toMatch(/^berth[1-9]\d*$/);
    expect(auto.dns_enabled).toBe(false);
    expect(berth.ok('network', 'rm', auto.name).trim()).toBe(auto.name);
    expect(existsSync(join(CONFIG_DIR, `${auto.name}.conflist`))).toBe(false);
    made.delete(auto.name);
    // Two creates at once: the directory's lock gives each its own name, subnet and bridge.
    const both = await Promise.all([1, 2].map(() => berth.runAsync('network', 'create', '--label', label)));
    const docs = both.map((r) => { expect(r.code, r.stderr).toBe(0); return inspect(r.stdout.trim()); });
    expect(docs[0]!.name).not.toBe(docs[1]!.name);
    expect(docs[0]!.subnets![0]!.subnet).not.toBe(docs[1]!.subnets![0]!.subnet);
    expect(docs[0]!.network_interface).not.toBe(docs[1]!.network_interface);
    expect(berth.ok('network', 'rm', docs[0]!.name, docs[1]!.name).split('\n').filter(Boolean)).toEqual([docs[0]!.name, docs[1]!.name]);
    for (const d of docs) made.delete(d.name);
  });

  it('refuses bad names, duplicates, overlapping subnets and bad flags, and writes nothing', () => {
    const web = inspect(net('web')).subnets![0]!.subnet;
    const before = configFiles();
    const route = someHostRoute();
    const cases: [string[], RegExp][] = [
      [[net('web')], /network name .* already used: network already exists/],
      [['berth'], /network name berth already used/],
      [['a/b'], /network name "a\/b" invalid: names must match \[a-zA-Z0-9\]\[a-zA-Z0-9_.-\]\*/],
      [['..'], /network name "\.\." invalid/],
      [['host'], /conflicts with a valid network mode/],
      [['--subnet', web.replace('.0/24', '.128/25'), net('x1')], new RegExp(`subnet .* is already used by network ${net('web')}`)],
      [['--subnet', '10.89.0.0/16', net('x2')], /is already used by network/],
      [['--subnet', '10.89.241.0/24', '--gateway', '10.89.242.1', net('x3')], /gateway 10\.89\.242\.1 not in subnet 10\.89\.241\.0\/24/],
      [['--subnet', '10.89.241.0/24', '--gateway', '10.89.241.255', net('x4')], /network or broadcast address/],
      [['--subnet', '10.89.241.0/24', '--ip-range', '10.89.242.0/25', net('x5')], /--ip-range 10\.89\.242\.0\/25 is not inside subnet/],
      [['--subnet', '10.89.241.0/33', net('x6')], /not an IPv4 CIDR/],
      [['--subnet', 'fd00::/64', net('x7')], /IPv4 only/],
      [['-d', 'macvlan', net('x8')], /unsupported driver macvlan: berth creates bridge networks only/],
      [['--gateway', '10.89.241.1', net('x9')], /--gateway needs --subnet/],
    ];
    // The host's own routes: a bridge on that subnet would capture the host's traffic.
    if (route !== undefined) cases.push([['--subnet', route, net('x10')], /already used on the host: it overlaps the route/]);
    for (const [args, message] of cases) {
      const r = berth.run('network', 'create', '--label', label, ...args);
      expect(r.code, args.join(' ')).toBe(125);
      expect(r.stderr, args.join(' ')).toMatch(/^Error: /);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stdout).toBe('');
    }
    expect(configFiles()).toEqual(before);
    // --explain shows the conflist without writing it.
    const explained = berth.ok('network', 'create', '--explain', net('explained'));
    expect(explained).toContain(`"name": "${net('explained')}"`);
    expect(existsSync(join(CONFIG_DIR, `${net('explained')}.conflist`))).toBe(false);
  });

  it('gives containers on one network addresses from its subnet and lets them talk; an --internal network has no way out', async () => {
    const web = inspect(net('web'));
    const internal = inspect(net('internal'));
    berth.ok('run', '-d', '--name', 'srv', '--network', web.name, image, 'httpd', '-f', '-p', '8080', '-h', '/etc');
    const srv = addressOf('srv');
    expect(inSubnet(srv, web.subnets![0]!.subnet)).toBe(true);
    const hostname = berth.ok('exec', 'srv', 'cat', '/etc/hostname').trim();
    // A second container on the network reaches the first by its address.
    const client = berth.run('run', '--rm', '--network', web.name, image, 'sh', '-c', `ip -4 -o addr show eth0; ip route; wget -qO- http://${srv}:8080/hostname`);
    expect(client.stderr).toBe('');
    expect(client.code).toBe(0);
    const clientIp = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(client.stdout)![1]!;
    expect(inSubnet(clientIp, web.subnets![0]!.subnet)).toBe(true);
    expect(clientIp).not.toBe(srv);
    expect(client.stdout).toContain(`default via ${web.subnets![0]!.gateway}`);
    expect(client.stdout.trim().endsWith(hostname)).toBe(true);

    // A custom subnet and lease range: addresses come from the range.
    berth.ok('run', '-d', '--name', 'ranged', '--network', net('custom'), image, 'sleep', '600');
    const ranged = addressOf('ranged');
    expect(inSubnet(ranged, '10.89.240.128/25')).toBe(true);

    // --internal: peers talk, but there is no default route, so nothing outside the subnet is reachable.
    berth.ok('run', '-d', '--name', 'isrv', '--network', internal.name, image, 'httpd', '-f', '-p', '8080', '-h', '/etc');
    const isrv = addressOf('isrv');
    expect(inSubnet(isrv, internal.subnets![0]!.subnet)).toBe(true);
    expect(berth.ok('exec', 'isrv', 'ip', 'route')).not.toMatch(/default/);
    const ihost = berth.ok('exec', 'isrv', 'cat', '/etc/hostname').trim();
    const peer = berth.run('run', '--rm', '--network', internal.name, image, 'sh', '-c', `printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc ${isrv} 8080`);
    expect(peer.code).toBe(0);
    expect(peer.stdout.trim().endsWith(ihost)).toBe(true);
    const out = berth.run('run', '--rm', '--network', internal.name, image, 'sh', '-c', `nc ${srv} 8080 </dev/null`);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/Network is unreachable/);

    // pod create --network NAME and -p with --network: the pod is on the network; the port reaches it from the host.
    const podId = berth.ok('pod', 'create', '--name', `pod-${suffix}`, '--network', web.name).trim();
    const pod = JSON.parse(berth.ok('pod', 'inspect', podId)) as { IP: string; InfraConfig: { Networks: string[] } };
    expect(pod.InfraConfig.Networks).toEqual([web.name]);
    expect(inSubnet(pod.IP, web.subnets![0]!.subnet)).toBe(true);
    const port = await freePort();
    berth.ok('run', '-d', '--name', 'pub', '--network', web.name, '-p', `${port}:8080`, image, 'httpd', '-f', '-p', '8080', '-h', '/etc');
    expect(inSubnet(addressOf('pub'), web.subnets![0]!.subnet)).toBe(true);
    // berth inspect shows what the container sees: podman's NetworkSettings, where scripts read the address.
    const settings = (JSON.parse(berth.ok('inspect', 'pub')) as Array<{ NetworkSettings: Record<string, unknown> & { Networks: Record<string, Record<string, unknown>> } }>)[0]!.NetworkSettings;
    expect(settings).toMatchObject({ IPAddress: addressOf('pub'), Gateway: web.subnets![0]!.gateway, IPPrefixLen: Number(web.subnets![0]!.subnet.split('/')[1]), Ports: { '8080/tcp': [{ HostIp: '', HostPort: String(port) }] } });
    expect(settings.Networks[web.name]).toMatchObject({ IPAddress: addressOf('pub'), NetworkID: web.name });
    expect(berth.ok('inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'srv').trim()).toBe(srv);
    // ps --filter network= by name or id: the containers attached to that network, and no other.
    expect(berth.ok('ps', '--filter', `network=${web.name}`, '--format', '{{.Names}}').trim().split('\n').sort()).toEqual(['pub', 'srv']);
    expect(berth.ok('ps', '--filter', `network=${web.id.slice(0, 12)}`, '--format', '{{.Names}}').trim().split('\n').sort()).toEqual(['pub', 'srv']);
    expect(berth.ok('ps', '--filter', `network=${internal.name}`, '--format', '{{.Names}}').trim()).toBe('isrv');
    const res = await until('the published port', async () => { try { return await httpGet(`http://127.0.0.1:${port}/hostname`); } catch { return undefined; } });
    expect(res.body.trim()).toBe(berth.ok('exec', 'pub', 'cat', '/etc/hostname').trim());
    // A network that does not exist is refused before anything, the pull of a missing image included.
    const none = berth.run('run', '--rm', '--network', net('nosuch'), `${reg.host}/library/nosuch-${suffix}:latest`, 'true');
    expect(none.code).toBe(125);
    expect(none.stderr).toContain(`unable to find network with name or ID ${net('nosuch')}: network not found`);
  });

  it('rm refuses a network in use (2); -f removes its containers and pods, then the bridge, the leases and every rule', () => {
    const web = inspect(net('web'));
    expect(existsSync(join('/sys/class/net', web.network_interface))).toBe(true);
    const busy = berth.run('network', 'rm', web.name);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(new RegExp(`^Error: "${web.name}" has associated containers with it .*Use -f to forcibly delete containers and pods: network is being used`));
    expect(existsSync(join(CONFIG_DIR, `${web.name}.conflist`))).toBe(true);
    // Used networks are no prune's: web is the only one labelled tier=front.
    expect(berth.run('network', 'prune', '-f', '--filter', `label=tier=front-${suffix}`).stdout).toBe('');

    const gone = berth.run('network', 'rm', '-f', '-t', '0', web.name);
    expect(gone.code).toBe(0);
    expect(gone.stdout.trim()).toBe(web.name);
    const names = berth.ok('ps', '-a', '--format', '{{.Names}}').split('\n');
    expect(names).not.toContain('srv');
    expect(names).not.toContain('pub');
    expect(names).toContain('isrv');
    expect(berth.ok('pod', 'ls', '-q')).toBe('');
    expect(berth.run('network', 'exists', web.name).code).toBe(1);
    expect(existsSync(join(CONFIG_DIR, `${web.name}.conflist`))).toBe(false);
    expect(existsSync(join('/sys/class/net', web.network_interface))).toBe(false);
    expect(existsSync(join(LEASE_DIR, web.name))).toBe(false);
    expect(iptablesLines([web.subnets![0]!.subnet.replace(/\.0\/24$/, '.'), `name: "${web.name}"`])).toEqual([]);

    const def = berth.run('network', 'rm', 'berth');
    expect(def.code).toBe(125);
    expect(def.stderr).toContain('default network berth cannot be removed');
    const nosuch = berth.run('network', 'rm', net('nosuch'));
    expect(nosuch.code).toBe(1);
    expect(nosuch.stderr).toContain(`unable to find network with name or ID ${net('nosuch')}: network not found`);
  });

  it('prune removes the unused networks and keeps the used ones', () => {
    const internal = net('internal');
    const custom = net('custom');
    berth.ok('rm', '-f', 'ranged');
    const spare = create(net('spare')).name;
    // dangling: no pod of this run root on it and nothing on its bridge.
    expect(berth.ok('network', 'ls', '-q', '--filter', `label=${label}`, '--filter', 'dangling=true').split('\n').filter(Boolean).sort()).toEqual([custom, spare].sort());
    expect(berth.ok('network', 'ls', '-q', '--filter', `label=${label}`, '--filter', 'dangling=false').trim()).toBe(internal);
    const pruned = berth.run('network', 'prune', '-f', '--filter', `label=${label}`);
    expect(pruned.code).toBe(0);
    expect(pruned.stdout.split('\n').filter(Boolean).sort()).toEqual([custom, spare].sort());
    expect(berth.run('network', 'exists', internal).code).toBe(0);
    expect(berth.run('network', 'exists', 'berth').code).toBe(0);
    for (const n of [custom, spare]) {
      expect(existsSync(join('/sys/class/net', made.get(n)!.bridge))).toBe(false);
      expect(existsSync(join(LEASE_DIR, n))).toBe(false);
    }
    expect(berth.ok('network', 'rm', '-f', '-t', '0', internal).trim()).toBe(internal);
    expect(berth.ok('ps', '-a', '-q')).toBe('');
  });

  it('leaves no bridge, lease directory, conflist or iptables rule of its networks behind', () => {
    expect(berth.ok('network', 'ls', '-q', '--filter', `label=${label}`)).toBe('');
    expect(configFiles().filter((f) => f.includes(suffix))).toEqual([]);
    for (const [name, { bridge, subnet }] of made) {
      expect(existsSync(join('/sys/class/net', bridge)), bridge).toBe(false);
      expect(existsSync(join(LEASE_DIR, name)), name).toBe(false);
      expect(iptablesLines([subnet.replace(/\.0\/24$/, '.'), `name: "${name}"`])).toEqual([]);
    }
  });

  describe('as an ordinary user', () => {
    let user: TestUser | undefined;
    beforeAll(() => { user = makeUser(`bnet${suffix.slice(0, 4)}`); });
    afterAll(() => {
      if (!user) return;
      user.remove();
      rmSync(`/tmp/berth-run-${user.uid}`, { recursive: true, force: true });
    });

    it('create, rm and prune are refused clearly (CNI networks are root\'s); ls works', () => {
      const before = configFiles();
      for (const args of [['network', 'create', net('user')], ['network', 'rm', 'berth'], ['network', 'prune', '-f']]) {
        const r = berthAs(user!, args);
        expect(r.code, args.join(' ')).toBe(125);
        expect(r.stderr).toMatch(/CNI networks change the host's network .* need root/);
        expect(r.stderr).toMatch(/slirp4netns/);
      }
      expect(configFiles()).toEqual(before);
      const ls = berthAs(user!, ['network', 'ls', '-q']);
      expect(ls.code).toBe(0);
      expect(ls.stdout.split('\n')).toContain('berth');
    });
  });
});
