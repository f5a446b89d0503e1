export type { PluginConfig, NetworkConfigList, CniInterface, CniIpConfig, CniRoute, CniDns, CniResult, CniErrorBody, PortMapping, RuntimeConf } from './types.ts';
export { DEFAULT_NETWORK_NAME, DEFAULT_BRIDGE, DEFAULT_SUBNET, DEFAULT_GATEWAY, DEFAULT_CONFIG_DIR, DEFAULT_IPAM_DIR, defaultConfList, parseConfList, loadConfList, findNetwork } from './conflist.ts';
export { CniRuntime, CniPluginError, DEFAULT_PLUGIN_DIRS, resultAddress, type CniCommand, type CniRuntimeOptions } from './runtime.ts';
export {
  NETWORK_MODES, networkId, describeNetwork, listNetworks, findStoredNetwork, isDefaultNetwork, createNetwork, planNetwork, bridgeConfList,
  removeNetworkFile, withNetworkLock, type NetworkInfo, type NetworkSubnet, type StoredNetwork, type CreateNetworkOptions, type NetworkPlan,
} from './network-store.ts';
export { parseCidr, formatCidr, parseIpv4, formatIpv4, overlaps, contains, hostRoutes, pickFreeSubnet, type Ipv4Net, type HostRoute } from './network-subnet.ts';
