/**
 * The container lifecycle (create, start, run, stop, kill, rm, wait,
 * cleanup): a subpath of its own, because it loads the snapshotter, the
 * archive code, the bundle generator and the pod lib. Verbs that only read
 * records (ps, logs, inspect) import '@berth/engine' and start faster.
 */
export {
  createContainer, startContainer, runForeground, stopContainer, killContainer, removeContainer, waitContainer,
  cleanupContainer, imageId, resolveForRun, runStorageRequest, type CreateRequest, type CleanupOutcome, type ForegroundStdio,
} from './container.ts';
