export { RefGraph, mark, sweep, collect, node, kindOf, idOf, type NodeId, type NodeKind } from './graph.ts';
export { planCollection, entryNode, type StoreFacts, type BlobFacts, type LayerFacts, type SnapshotFacts, type LeaseFacts, type GcPlan } from './store-graph.ts';
export { parseFilter, parseDuration, parseUntil, selectForUntag, tagOf, type ImageFilter, type ImageFacts, type Selection } from './filters.ts';
