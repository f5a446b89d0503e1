/**
 * @berth/audit: what the kernel knows about a process (/proc) and what its
 * audit subsystem records (NETLINK_AUDIT), with container attribution.
 */
export { AuditControl, AuditLogReader, AuditUnavailableError, AuditRequestError, withControl, parseMessages, AUDIT_NLGRP_READLOG } from './netlink.ts';
export { auditStatus, setAuditEnabled, listRules, addWatch, removeWatches, findWatches, encodeWatchRule, decodeRule, parsePerm, type AuditStatus, type WatchRule, type AddWatchResult } from './rules.ts';
export { parseFields, parseKernelRecord, parseLogLine, buildEvent, EventAssembler, parseSince, syscallName, recordTypeName, UNSET_ID, type AuditRecord, type AuditEvent, type AuditPath } from './records.ts';
export { followKernel, readLogFile, followLogFile, DEFAULT_AUDIT_LOG, type FollowOptions } from './sources.ts';
export {
  ancestry, capNames, capabilitySets, cgroups, cgroupMounts, effectiveLimits, idMap, loginIds, lsmLabel, namespaces, namespaceInode,
  procStat, procStatus, processExists, requireProcess, userName, NAMESPACE_TYPES,
  type Ancestor, type CapSets, type CgroupEntry, type NamespaceInfo, type NamespaceType, type ProcStat,
} from './proc.ts';
export { listContainers, resolveContainer, containerOfProcess, ContainerAttributor, DEFAULT_BERTH_RUNTIME_ROOT, DEFAULT_RUNC_ROOT, type ContainerInfo, type Attribution } from './containers.ts';
export { resolveTarget, inspectProcess, defaultReference, formatInspectTable, type InspectDocument, type InspectTarget } from './inspect.ts';
