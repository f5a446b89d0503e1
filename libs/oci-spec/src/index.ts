export * from './media-types.ts';
export * from './image.ts';
export * from './runtime.ts';
export * from './runtime-validate.ts';
export * from './reference.ts';
