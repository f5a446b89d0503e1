/**
 * The CNI 1.0 data types, as the spec names them
 * (https://www.cni.dev/docs/spec/#section-1-network-configuration-format and
 * #section-5-result-types).
 */

/** One plugin's configuration inside a network configuration list. */
export interface PluginConfig {
  /** The plugin binary's name, looked up in CNI_PATH. */
  type: string;
  /** Capabilities the plugin accepts through runtimeConfig (e.g. portMappings). */
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

/** A network configuration list (a "conflist"). */
export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: PluginConfig[];
  /** Where it was read from, for error messages (not part of the spec). */
  source?: string;
}

export interface CniInterface { name: string; mac?: string; sandbox?: string }
export interface CniIpConfig { address: string; gateway?: string; interface?: number }
export interface CniRoute { dst: string; gw?: string }
export interface CniDns { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] }

/** A plugin's ADD result (the success result type). */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

/** The spec's error type: what a plugin prints on stdout when it exits non-zero. */
export interface CniErrorBody { cniVersion?: string; code: number; msg: string; details?: string }

/** A port mapping as the portMappings capability carries it (portmap's format). */
export interface PortMapping { hostPort: number; containerPort: number; protocol: 'tcp' | 'udp'; hostIP?: string }

/** What the runtime knows about the attachment: the spec's CNI_* parameters. */
export interface RuntimeConf {
  containerId: string;
  /** Path of the network namespace file (CNI_NETNS). */
  netns: string;
  ifName: string;
  /** CNI_ARGS key=value pairs. */
  args?: [string, string][];
  /** runtimeConfig values, handed only to plugins that declare the capability. */
  capabilityArgs?: Record<string, unknown>;
}
