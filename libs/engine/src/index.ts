export { EngineError, ExitCode, noSuchContainer, noSuchImage } from './errors.ts';
export { engineEnv, paths, type EngineEnv } from './paths.ts';
export {
  findRecord, mustFindRecord, listRecords, readRecord, updateRecord, generateName, newContainerId, validateName,
  type ContainerRecord, type ContainerStatus, type RestartPolicy,
} from './records.ts';
export { OciRuntime, resolveRuntimePath, signalNumber, runCapture } from './runtime.ts';
export { startMonitor, monitorArgs, findConmon, readExitFile, CONMON_CANDIDATES } from './monitor.ts';
export { isRunning, observedStatus, readSpec, runtimeFor } from './status.ts';
export { checkExecutable } from './executable.ts';
export { readLog, followLog, parseLogText, logSize, type LogLine } from './logs.ts';
export { listImages, findImage, imageFilter, candidateNames, untagImage, untagNames, splitRef, type ImageSummary } from './images.ts';
export { mark, processAlive, procStartTime, residentKiB, sleep } from './proc.ts';
export { isRootlessCaller, rootlessEnv, makePrivateRoots, checkRootlessRuntime, runningRootfs, ROOTFS_MOUNTS_ANNOTATION, type RootlessEnv, type StorageRequest } from './rootless.ts';
export { pauseContainer, unpauseContainer } from './pause.ts';
export { renameContainer } from './rename.ts';
export {
  createVolume, listVolumes, readVolume, removeVolume, reclaimVolumeLeftovers, volumeUsers, validateVolumeName, noSuchVolume, volumePaths, type VolumeRecord,
} from './volume-store.ts';
export { splitMountFlags, type ContainerMount, type SplitMountFlags, type VolumeMountRequest } from './volume-mounts.ts';
