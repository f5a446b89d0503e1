export * from './media-types.ts';
export * from './image.ts';
export * from './runtime.ts';
