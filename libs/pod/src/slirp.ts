/**
 * A private network for an ordinary user's pod: slirp4netns(1), a user-mode
 * TCP/IP stack (libslirp, QEMU's "user networking").
 *
 * slirp4netns runs on the host as the user. It enters the pod's user and
 * network namespaces just long enough to open /dev/net/tun and make a tap
 * device there (`tap0`, 10.0.2.100/24, default route via 10.0.2.2, MTU 65520
 * with --configure), then goes back and relays: every packet the pod sends
 * on tap0 becomes an ordinary socket call of the user's on the host, and
 * 10.0.2.3 answers DNS from the host's resolv.conf. Nothing of the host's
 * network changes, so no privilege is needed beyond opening /dev/net/tun,
 * which the kernel checks against the device node's owner, mode and ACL as
 * for any file (TUNSETIFF then needs CAP_NET_ADMIN only in the pod's user
 * namespace, which its root has).
 *
 * Published ports are host forwards asked for over slirp4netns's API socket
 * (`add_hostfwd`, a QMP-like JSON request per connection): slirp4netns
 * listens on HOSTIP:HOSTPORT as the user and connects to 10.0.2.100:PORT
 * inside for every connection accepted.
 *
 * Lifetime: slirp4netns would outlive the pod (a tap whose namespace is gone
 * does not stop it, and it keeps the host ports), so it is tied to the pod's
 * holder: the holder's catatonit has a FIFO in the pod's directory, opened
 * read-write, as its stdin; slirp4netns gets the FIFO's read end as --exit-fd, and
 * when the holder ends (pod rm, or killed) the last writer is gone, poll(2)
 * reports POLLHUP and slirp4netns exits. pod rm also stops it by its recorded
 * pid, first, so the ports are free when rm returns.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants as fsc, openSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { BerthError, BerthUsageError } from '@berth/cli-kit';
import { processAlive, procStartTime, type PidHolder } from './namespaces.ts';
import { formatPort, type PublishedPort } from './ports.ts';

/** slirp4netns's defaults (slirp4netns(1), "Default configuration"), with --configure. */
export const SLIRP_NETWORK = {
  cidr: '10.0.2.0/24',
  ip: '10.0.2.100',
  gateway: '10.0.2.2',
  dns: '10.0.2.3',
  mtu: 65520,
} as const;

export const TUN_DEVICE = '/dev/net/tun';

const SLIRP_CANDIDATES = ['/usr/bin/slirp4netns', '/usr/local/bin/slirp4netns', '/bin/slirp4netns'];

/** What pod.json keeps of a running slirp4netns. */
export interface UserModeNetwork extends PidHolder {
  /** The API socket add_hostfwd requests go to. */
  apiSocket: string;
  /** The tap device in the pod's network namespace. */
  device: string;
  /** 10.0.2.2 reaches the host's 127.0.0.1 (podman's allow_host_loopback=true). */
  allowHostLoopback: boolean;
  mtu: number;
}

/** podman's `--network slirp4netns[:OPTION=VALUE,...]` options that berth takes. */
export interface SlirpOptions {
  allowHostLoopback: boolean;
  mtu: number;
}

/**
 * Is this a slirp4netns network, and with which options? podman's form:
 * `slirp4netns:allow_host_loopback=true,mtu=1500`. Undefined for any other
 * network; an option berth does not implement is refused by name.
 */
export function parseSlirpNetwork(network: string): SlirpOptions | undefined {
  if (network !== 'slirp4netns' && !network.startsWith('slirp4netns:')) return undefined;
  const opts: SlirpOptions = { allowHostLoopback: false, mtu: SLIRP_NETWORK.mtu };
  const list = network.slice('slirp4netns:'.length);
  for (const item of network === 'slirp4netns' ? [] : list.split(',')) {
    const [key, value] = item.split('=', 2) as [string, string | undefined];
    if (key === 'allow_host_loopback' && (value === 'true' || value === 'false')) {
      opts.allowHostLoopback = value === 'true';
    } else if (key === 'mtu' && value !== undefined && /^\d+$/.test(value) && Number(value) >= 68 && Number(value) <= 65521) {
      opts.mtu = Number(value);
    } else if (key === 'allow_host_loopback' || key === 'mtu') {
      throw new BerthUsageError(`--network ${network}: ${key}=${value ?? ''}: ${key === 'mtu' ? 'an MTU is a number from 68 to 65521' : 'true or false'}`);
    } else {
      throw new BerthUsageError(`--network ${network}: option "${key}" is not supported (berth takes allow_host_loopback=true|false and mtu=N; ports are always forwarded by slirp4netns itself, IPv4 only)`);
    }
  }
  return opts;
}

export function findSlirp4netns(): string | undefined {
  return SLIRP_CANDIDATES.find((p) => { try { accessSync(p, fsc.X_OK); return true; } catch { return false; } });
}

function userName(uid: number): string | undefined {
  try {
    return readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[2] === String(uid))?.[0];
  } catch {
    return undefined;
  }
}

function groupName(gid: number): string | undefined {
  try {
    return readFileSync('/etc/group', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[2] === String(gid))?.[0];
  } catch {
    return undefined;
  }
}

/**
 * Why this user cannot have a slirp4netns network, or undefined when it
 * can: the binary is installed and /dev/net/tun opens read-write for this
 * user (access(2) checks the mode and any ACL entry, as open(2) will).
 * The message names the device, its mode and owner, and what to do.
 */
export function userModeNetworkProblem(flag = '--network slirp4netns'): string | undefined {
  const uid = process.getuid?.() ?? -1;
  const who = userName(uid) ?? String(uid);
  const alternative = 'or use --network none or --network host';
  if (!findSlirp4netns()) {
    return `${flag}: slirp4netns is not installed (${SLIRP_CANDIDATES[0]}): install the Debian package slirp4netns, ${alternative}`;
  }
  try {
    accessSync(TUN_DEVICE, fsc.R_OK | fsc.W_OK);
    return undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return `${flag}: ${TUN_DEVICE} does not exist: as root, load the tun module (modprobe tun), ${alternative}`;
    }
    let how = '';
    try {
      const st = statSync(TUN_DEVICE);
      how = ` (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, owner ${userName(st.uid) ?? st.uid}:${groupName(st.gid) ?? st.gid}, uid ${st.uid}, gid ${st.gid})`;
    } catch { /* the access error says enough */ }
    return `${flag}: a private network for an ordinary user is a user-mode network (slirp4netns) on ${TUN_DEVICE}, `
      + `which user ${who} (uid ${uid}) cannot open${how}; rootless podman's networking fails here too. `
      + `As root, grant this user the device: setfacl -m u:${who}:rw ${TUN_DEVICE}; ${alternative}`;
  }
}

/** --enable-sandbox keeps only /etc and /run: a resolv.conf that resolves elsewhere would vanish (slirp4netns(1)). */
function resolvConfInSandbox(): boolean {
  try {
    const real = realpathSync('/etc/resolv.conf');
    return real.startsWith('/etc/') || real.startsWith('/run/');
  } catch {
    return true;
  }
}

/** mkfifo(1): the FIFO whose last writer (the pod's holder) ending stops slirp4netns. */
export function makeExitFifo(podDir: string): string {
  const fifo = join(podDir, 'slirp4netns.exit');
  const r = spawnSync('mkfifo', ['-m', '0600', fifo], { encoding: 'utf8', timeout: 5_000 });
  if (r.status !== 0) throw new BerthError('E_NETWORK', `mkfifo ${fifo}: ${r.stderr?.trim() || r.error?.message || `exit ${r.status}`}`);
  return fifo;
}

/**
 * The API socket's path: a Unix socket path is at most 107 bytes
 * (sun_path, unix(7)), so when the pod's directory is too deep the socket
 * goes next to it, named by the pod's short id.
 */
export function apiSocketPath(podsDir: string, id: string): string {
  const inside = join(podsDir, id, 'slirp.sock');
  return Buffer.byteLength(inside) <= 107 ? inside : join(podsDir, `${id.slice(0, 12)}.sock`);
}

/**
 * Start slirp4netns for the process `targetPid` (a process in the pod's user
 * and network namespaces) and wait, bounded, until it has configured tap0
 * and opened its API socket (--ready-fd: it writes "1" and closes). It runs
 * detached, in its own session, so it outlives berth-pod; its output goes
 * to slirp4netns.log in the pod's directory.
 */
export async function startSlirp4netns(opts: { podDir: string; targetPid: number; apiSocket: string; exitFifo: string; options: SlirpOptions }): Promise<UserModeNetwork> {
  const binary = findSlirp4netns();
  if (!binary) throw new BerthError('E_NETWORK', userModeNetworkProblem() ?? 'slirp4netns is not installed');
  rmSync(opts.apiSocket, { force: true });
  const device = 'tap0';
  const args = [
    // --disable-host-loopback, as podman: 10.0.2.2 does not reach the host's 127.0.0.1 unless asked for.
    '--configure', `--mtu=${opts.options.mtu}`, ...(opts.options.allowHostLoopback ? [] : ['--disable-host-loopback']),
    // As podman does: after setup, slirp4netns pivots into a mount
    // namespace with only /etc and /run and confines itself to the system
    // calls a relay needs. The sandbox needs /etc/resolv.conf inside those two.
    ...(resolvConfInSandbox() ? ['--enable-sandbox'] : []), '--enable-seccomp',
    '--ready-fd=3', '--exit-fd=4', `--api-socket=${opts.apiSocket}`,
    String(opts.targetPid), device,
  ];
  const logFile = join(opts.podDir, 'slirp4netns.log');
  const logFd = openSync(logFile, 'w', 0o600);
  // Read end, non-blocking so the open does not wait for a writer (the holder already is one).
  const exitFd = openSync(opts.exitFifo, fsc.O_RDONLY | fsc.O_NONBLOCK);
  let child;
  try {
    child = spawn(binary, args, { detached: true, stdio: ['ignore', logFd, logFd, 'pipe', exitFd] });
  } finally {
    closeSync(logFd);
    closeSync(exitFd);
  }
  const pid = child.pid;
  const failed = (why: string): BerthError => {
    if (pid !== undefined) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    rmSync(opts.apiSocket, { force: true });
    let out = '';
    try { out = readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('; '); } catch { /* none */ }
    return new BerthError('E_NETWORK', `slirp4netns ${args.join(' ')} ${why}${out ? `: ${out}` : ''}`);
  };
  const ready = child.stdio[3] as NodeJS.ReadableStream | null;
  const outcome = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve('did not get ready within 10s'), 10_000);
    const done = (why: string) => { clearTimeout(timer); resolve(why); };
    child.once('error', (err) => done(`could not start: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    child.once('exit', (code, sig) => done(`exited before it was ready (${sig ?? `status ${code}`})`));
    let got = '';
    ready?.on('data', (d: Buffer) => { got += d.toString(); if (got.includes('1')) done(''); });
    ready?.on('error', () => { /* the exit or timer says why */ });
  });
  child.removeAllListeners('exit');
  (ready as unknown as { destroy?: () => void } | null)?.destroy?.();
  child.unref();
  if (outcome !== '' || pid === undefined) throw failed(outcome || 'gave no pid');
  const startTime = procStartTime(pid);
  if (startTime === undefined) throw failed('exited right after it was ready');
  return { pid, startTime, apiSocket: opts.apiSocket, device, allowHostLoopback: opts.options.allowHostLoopback, mtu: opts.options.mtu };
}

/** One request on the API socket: slirp4netns answers `{"return":...}` or `{"error":{"desc":...}}` and closes. */
export function slirpRequest(apiSocket: string, request: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(apiSocket);
    let reply = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new BerthError('E_NETWORK', `slirp4netns API ${apiSocket}: no answer within 5s`)); }, 5_000);
    sock.on('connect', () => sock.end(JSON.stringify(request)));
    sock.on('data', (d: Buffer) => { reply += d.toString(); });
    sock.on('error', (err) => { clearTimeout(timer); reject(new BerthError('E_NETWORK', `connect ${apiSocket}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)); });
    sock.on('close', () => {
      clearTimeout(timer);
      try { resolve(JSON.parse(reply) as Record<string, unknown>); } catch { reject(new BerthError('E_NETWORK', `slirp4netns API ${apiSocket}: unreadable answer ${JSON.stringify(reply.slice(0, 200))}`)); }
    });
  });
}

/**
 * Publish one port: add_hostfwd makes slirp4netns listen on HOSTIP:HOSTPORT
 * on the host (as the user) and forward each connection, or datagram, to
 * the pod's address.
 */
export async function addHostForward(net: UserModeNetwork, p: PublishedPort): Promise<void> {
  const reply = await slirpRequest(net.apiSocket, {
    execute: 'add_hostfwd',
    arguments: { proto: p.protocol, host_addr: p.hostIP || '0.0.0.0', host_port: p.hostPort, guest_addr: SLIRP_NETWORK.ip, guest_port: p.containerPort },
  });
  const error = reply.error as { desc?: string } | undefined;
  if (error) throw new BerthError('E_PORT', `--publish ${formatPort(p)}: slirp4netns add_hostfwd: ${error.desc ?? JSON.stringify(error)}`);
}

/**
 * Stop slirp4netns and remove its API socket, which it leaves behind.
 * SIGKILL: it keeps no state worth a clean exit (its tap goes with the
 * namespace, its sockets with the process), and the host ports must be free
 * when rm returns, so the wait (bounded) is for the process to be gone.
 */
export async function stopSlirp4netns(net: UserModeNetwork): Promise<void> {
  if (processAlive(net.pid, net.startTime)) {
    try { process.kill(net.pid, 'SIGKILL'); } catch { /* gone */ }
    const deadline = Date.now() + 5_000;
    while (processAlive(net.pid, net.startTime) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  }
  rmSync(net.apiSocket, { force: true });
}
