/**
 * A CNI runtime (https://www.cni.dev/docs/spec/#section-4-plugin-delegation
 * and #section-2-execution-protocol): for each plugin of a network
 * configuration list it execs the plugin binary found in CNI_PATH, with the
 * CNI_* parameters in the environment and the plugin's configuration on
 * stdin, extended with the list's name and cniVersion, the previous plugin's
 * result (prevResult) and the runtimeConfig for the capabilities the plugin
 * declares. The last result of ADD is cached so CHECK and DEL get it back as
 * prevResult.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/cli-kit';
import { writeFileAtomic } from '@berth/content';
import type { CniErrorBody, CniResult, NetworkConfigList, PluginConfig, RuntimeConf } from './types.ts';

/** Debian ships the standard plugins here (package containernetworking-plugins). */
export const DEFAULT_PLUGIN_DIRS = ['/usr/lib/cni', '/opt/cni/bin'];

export type CniCommand = 'ADD' | 'CHECK' | 'DEL';

/** A plugin failed: the message names the plugin, the command and the spec's error code. */
export class CniPluginError extends BerthError {
  readonly plugin: string;
  readonly cniCode: number | undefined;
  constructor(plugin: string, command: CniCommand, network: string, body: CniErrorBody | undefined, fallback: string) {
    const what = body ? `${body.msg}${body.details ? `: ${body.details}` : ''} (CNI error code ${body.code})` : fallback;
    super('E_CNI_PLUGIN', `CNI plugin ${plugin} ${command} on network ${network}: ${what}`);
    this.plugin = plugin;
    this.cniCode = body?.code;
  }
}

export interface CniRuntimeOptions {
  /** Directories searched for plugin binaries, in order (CNI_PATH). */
  pluginDirs?: string[];
  /** Where ADD results are cached (one JSON file per attachment). */
  cacheDir: string;
  /** Per-plugin timeout. */
  timeoutMs?: number;
}

/** The cache record: what DEL and CHECK need to undo or verify an ADD. */
interface CacheRecord {
  kind: 'cniCacheV1';
  containerId: string;
  ifName: string;
  networkName: string;
  config: NetworkConfigList;
  capabilityArgs?: Record<string, unknown>;
  result: CniResult;
}

export class CniRuntime {
  readonly pluginDirs: string[];
  readonly cacheDir: string;
  readonly timeoutMs: number;

  constructor(opts: CniRuntimeOptions) {
    this.pluginDirs = opts.pluginDirs ?? DEFAULT_PLUGIN_DIRS;
    this.cacheDir = opts.cacheDir;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** Path of a plugin binary, or a clear error naming the Debian package. */
  findPlugin(type: string): string {
    for (const dir of this.pluginDirs) {
      const p = join(dir, type);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch { /* next directory */ }
    }
    throw new BerthError('E_CNI_MISSING', `CNI plugin "${type}" not found in ${this.pluginDirs.join(':')}: install the Debian package containernetworking-plugins (apt-get install containernetworking-plugins)`);
  }

  /** Check every plugin of a list is installed, before anything is changed. */
  checkPlugins(list: NetworkConfigList): void {
    for (const p of list.plugins) this.findPlugin(p.type);
    // bridge's ipMasq, portmap and firewall program the host's tables through the iptables binary.
    const needsIptables = list.plugins.some((p) => p.type === 'portmap' || p.type === 'firewall' || p.ipMasq === true);
    if (needsIptables && !onPath('iptables')) {
      throw new BerthError('E_CNI_MISSING', `network ${list.name} needs iptables (masquerade, port mappings, firewall) and none is on PATH: install the Debian package iptables (apt-get install iptables)`);
    }
  }

  cachePath(list: NetworkConfigList, rt: RuntimeConf): string {
    return join(this.cacheDir, `${list.name}-${rt.containerId}-${rt.ifName}.json`);
  }

  /**
   * ADD: plugins in list order, each one's result the next one's prevResult.
   * A failure part-way runs DEL over the whole list (the spec lets DEL see
   * plugins that never ran), so a failed ADD leaves nothing behind.
   */
  async add(list: NetworkConfigList, rt: RuntimeConf): Promise<CniResult> {
    this.checkPlugins(list);
    let prev: CniResult | undefined;
    try {
      for (const plugin of list.plugins) {
        prev = parseResult(await this.exec('ADD', list, plugin, rt, prev), plugin.type, list.name);
      }
    } catch (err) {
      await this.del(list, rt, prev).catch(() => {});
      throw err;
    }
    const result = prev!;
    const record: CacheRecord = {
      kind: 'cniCacheV1', containerId: rt.containerId, ifName: rt.ifName, networkName: list.name,
      config: list, capabilityArgs: rt.capabilityArgs, result,
    };
    mkdirSync(this.cacheDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.cachePath(list, rt), JSON.stringify(record, null, 2), 0o600);
    return result;
  }

  /** CHECK: plugins in order, prevResult the cached ADD result; throws on the first failure. */
  async check(list: NetworkConfigList, rt: RuntimeConf): Promise<void> {
    if (list.disableCheck) return;
    const cached = this.readCache(list, rt);
    if (!cached) throw new BerthError('E_CNI_CHECK', `CNI CHECK on network ${list.name}: no cached ADD result for ${rt.containerId}`);
    this.checkPlugins(list);
    for (const plugin of list.plugins) await this.exec('CHECK', list, plugin, { ...rt, capabilityArgs: cached.capabilityArgs ?? rt.capabilityArgs }, cached.result);
  }

  /**
   * DEL: plugins in reverse order, so what a later plugin built on (portmap's
   * rules on the bridge's address) goes before what it built on. DEL is
   * tolerant: every plugin runs even when one fails or is missing; the
   * failures come back as a list, and the cache entry goes only when all passed.
   */
  async del(list: NetworkConfigList, rt: RuntimeConf, prevResult?: CniResult): Promise<Error[]> {
    const cached = this.readCache(list, rt);
    const prev = prevResult ?? cached?.result;
    const conf = { ...rt, capabilityArgs: cached?.capabilityArgs ?? rt.capabilityArgs };
    const errors: Error[] = [];
    for (const plugin of [...list.plugins].reverse()) {
      try {
        await this.exec('DEL', list, plugin, conf, prev);
      } catch (err) {
        errors.push(err as Error);
      }
    }
    if (errors.length === 0) rmSync(this.cachePath(list, rt), { force: true });
    return errors;
  }

  readCache(list: NetworkConfigList, rt: RuntimeConf): CacheRecord | undefined {
    try {
      const rec = JSON.parse(readFileSync(this.cachePath(list, rt), 'utf8')) as CacheRecord;
      return rec.kind === 'cniCacheV1' ? rec : undefined;
    } catch {
      return undefined;
    }
  }

  /** The configuration a plugin reads on stdin (spec section 4, "Deriving execution configuration"). */
  pluginInput(list: NetworkConfigList, plugin: PluginConfig, rt: RuntimeConf, prev: CniResult | undefined): Record<string, unknown> {
    const input: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
    const runtimeConfig: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
      if (on && rt.capabilityArgs?.[cap] !== undefined) runtimeConfig[cap] = rt.capabilityArgs[cap];
    }
    if (Object.keys(runtimeConfig).length > 0) input.runtimeConfig = runtimeConfig;
    if (prev !== undefined) input.prevResult = prev;
    return input;
  }

  private exec(command: CniCommand, list: NetworkConfigList, plugin: PluginConfig, rt: RuntimeConf, prev: CniResult | undefined): Promise<string> {
    const bin = this.findPlugin(plugin.type);
    const input = JSON.stringify(this.pluginInput(list, plugin, rt, prev));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_IFNAME: rt.ifName,
      CNI_PATH: this.pluginDirs.join(':'),
    };
    if (rt.args && rt.args.length > 0) env.CNI_ARGS = rt.args.map(([k, v]) => `${k}=${v}`).join(';');
    return new Promise((resolve, reject) => {
      const child = spawn(bin, [], { env, stdio: ['pipe', 'pipe', 'pipe'], timeout: this.timeoutMs });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
      child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
      child.on('error', (err) => reject(new BerthError('E_CNI_PLUGIN', `exec CNI plugin ${bin}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
      child.on('close', (code, signal) => {
        if (code === 0) return resolve(stdout);
        let body: CniErrorBody | undefined;
        try {
          const parsed = JSON.parse(stdout) as CniErrorBody;
          if (typeof parsed.code === 'number' && typeof parsed.msg === 'string') body = parsed;
        } catch { /* not the spec's error JSON: fall back to stderr */ }
        const fallback = signal ? `killed by ${signal}${signal === 'SIGTERM' ? ` (timeout ${this.timeoutMs} ms)` : ''}` : `exit ${code}${stderr.trim() ? `: ${stderr.trim()}` : stdout.trim() ? `: ${stdout.trim()}` : ''}`;
        reject(new CniPluginError(plugin.type, command, list.name, body, fallback));
      });
      child.stdin.on('error', () => { /* a plugin that exits without reading stdin */ });
      child.stdin.end(input);
    });
  }
}

function onPath(binary: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (!dir) continue;
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return true;
    } catch { /* next */ }
  }
  return false;
}

function parseResult(stdout: string, plugin: string, network: string): CniResult {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch (err) {
    throw new BerthError('E_CNI_PLUGIN', `CNI plugin ${plugin} ADD on network ${network}: result is not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || typeof (doc as CniResult).cniVersion !== 'string') {
    throw new BerthError('E_CNI_PLUGIN', `CNI plugin ${plugin} ADD on network ${network}: result has no cniVersion`);
  }
  return doc as CniResult;
}

/** The first IPv4 address of a result's container interface, without the prefix length. */
export function resultAddress(result: CniResult): { ip: string; prefix: number; gateway?: string } | undefined {
  const sandboxed = new Set((result.interfaces ?? []).flatMap((itf, i) => (itf.sandbox ? [i] : [])));
  const ips = result.ips ?? [];
  const pick = ips.find((c) => c.interface !== undefined && sandboxed.has(c.interface) && !c.address.includes(':'))
    ?? ips.find((c) => !c.address.includes(':'));
  if (!pick) return undefined;
  const [ip, prefix] = pick.address.split('/');
  return { ip: ip!, prefix: Number(prefix), gateway: pick.gateway };
}
