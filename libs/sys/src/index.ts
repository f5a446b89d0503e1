export { SysError, errnoName, check, koffi } from './libc.ts';
export * from './mount.ts';
export * from './ns.ts';
export * from './caps.ts';
export * from './ids.ts';
export * from './rlimit.ts';
export * from './exec.ts';
export * from './term.ts';
export * from './socket.ts';
