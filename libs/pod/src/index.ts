export {
  createPod, rootlessPodMessage, removePod, listPods, inspectPod, attachContainer, detachContainer, podPorts, checkPodNetwork, podsDir, documentOf,
  type PodEnv, type CreatePodOptions, type RemovePodOptions, type PodDocument, type PodRecord, type PodInspect, type PodStatus, type PodContainerInfo, type NetworkMode,
} from './pod.ts';
export { parsePublish, formatPort, portsClash, assertPortFree, assertPortNotMapped, portHolder, type PublishedPort } from './ports.ts';
export { DEFAULT_RUNTIME_ROOT, defaultRuntimeRoot, memberState, type PodMember, type MemberState, type MemberStatus } from './members.ts';
export { processAlive, procStartTime, type PodNamespacePaths, type SharedNamespace, type PidHolder } from './namespaces.ts';
export { checkSubnetFree } from './routes.ts';
export {
  SLIRP_NETWORK, TUN_DEVICE, userModeNetworkProblem, apiSocketPath, parseSlirpNetwork, type SlirpOptions, findSlirp4netns, addHostForward, slirpRequest, type UserModeNetwork,
} from './slirp.ts';
export { podsOnNetwork, bridgePorts, releaseNetwork } from './network-use.ts';
// The network files themselves are @berth/cni's; re-exported so the engine front needs one networking lib.
export {
  createNetwork, planNetwork, listNetworks, findStoredNetwork, isDefaultNetwork, removeNetworkFile, networkId, DEFAULT_CONFIG_DIR as NETWORK_CONFIG_DIR,
  DEFAULT_NETWORK_NAME, type NetworkInfo, type StoredNetwork, type CreateNetworkOptions,
} from '@berth/cni';
