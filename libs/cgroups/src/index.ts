/**
 * @berth/cgroups: a container's control group on cgroup v1, v2 and hybrid
 * hosts, with the cgroup root as a parameter so tests can use a temp dir.
 */
export { openCgroup, Cgroup, type OpenCgroupOptions, type CgroupDir, type CgroupStats } from './cgroup.ts';
export { detectCgroupMode, v1Hierarchies, v2Controllers, parseProcCgroup, DEFAULT_CGROUP_ROOT, type CgroupMode, type V1Hierarchy } from './hierarchy.ts';
export { planV1, planV2, planHybrid, deviceRuleLine, sharesToWeight, blkioWeightToIoWeight, type ControlWrite, type PlanHost } from './plan.ts';
export { validateResources } from './validate.ts';
export { CgroupFileError, type WriteTrace } from './fsio.ts';
export { DEFAULT_ALLOWED_DEVICES } from './devices.ts';
export { blockIoStats, perCpuUsage, processCgroup, parseV1ServiceBytes, parseIoStat, type BlockIoStats, type ProcessCgroupOptions } from './stats.ts';
