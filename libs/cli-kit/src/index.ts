export { BerthError, BerthUsageError, sysErrorMessage, isErrno } from './errors.ts';
export { tlsVerifyFlag } from './flags.ts';
export { Logger, log, type LogFormat, type LogLevel } from './log.ts';
export { Progress, formatBytes } from './progress.ts';
export { defaultDataRoot, defaultRunRoot, imageStorePath, isRoot, makePrivateRoot } from './paths.ts';
export { readStdinDocument, parseStageDocument, type StageDocument } from './json.ts';
export { BerthCommand, runMain, reportError, writeDocument, flushAndExit, Command, Option, UsageError, t, type MainOptions } from './command.ts';
export { subordinateRange, rootlessPlan, reexecInUserNamespace, inBerthUserNamespace, type SubordinateRange, type UserNamespacePlan } from './userns.ts';
export { OBJECT_NAME_RE } from './names.ts';
