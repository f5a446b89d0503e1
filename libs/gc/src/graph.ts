/**
 * Garbage collection as a pure mark and sweep over a graph of named nodes.
 *
 * A node is a string `<kind>:<id>`, e.g. `image:docker.io/library/busybox:latest`,
 * `blob:sha256:…`, `layer:sha256:<chainID>`, `snapshot:<key>`, `lease:<id>`.
 * An edge `a -> b` says "a refers to b": b must exist for a to be readable.
 * Nothing here touches a disk, so every rule is tested on plain strings.
 */
export type NodeKind = 'image' | 'blob' | 'layer' | 'snapshot' | 'lease' | 'container';
export type NodeId = `${NodeKind}:${string}`;

export function node(kind: NodeKind, id: string): NodeId {
  return `${kind}:${id}`;
}

export function kindOf(n: NodeId | string): NodeKind {
  return n.slice(0, n.indexOf(':')) as NodeKind;
}

export function idOf(n: NodeId | string): string {
  return n.slice(n.indexOf(':') + 1);
}

/** Who refers to whom. Nodes nobody mentions as a key have no references. */
export class RefGraph {
  private readonly out = new Map<string, Set<string>>();
  private readonly all = new Set<string>();

  /** Declare that a node exists (it is a sweep candidate when unmarked). */
  add(n: string): this {
    this.all.add(n);
    return this;
  }

  /** `from` refers to `to`. Both become known nodes. */
  link(from: string, to: string): this {
    this.all.add(from);
    this.all.add(to);
    let s = this.out.get(from);
    if (!s) this.out.set(from, (s = new Set()));
    s.add(to);
    return this;
  }

  has(n: string): boolean {
    return this.all.has(n);
  }

  nodes(): IterableIterator<string> {
    return this.all.values();
  }

  refs(n: string): Iterable<string> {
    return this.out.get(n) ?? [];
  }
}

/**
 * Mark: every node reachable from a root. Iterative (an explicit stack), so a
 * deep snapshot chain cannot overflow the call stack; each node is visited once.
 */
export function mark(graph: RefGraph, roots: Iterable<string>): Set<string> {
  const marked = new Set<string>();
  const stack: string[] = [];
  for (const r of roots) if (!marked.has(r)) { marked.add(r); stack.push(r); }
  while (stack.length > 0) {
    const n = stack.pop()!;
    for (const m of graph.refs(n)) {
      if (!marked.has(m)) { marked.add(m); stack.push(m); }
    }
  }
  return marked;
}

/**
 * Sweep: the unmarked nodes, in an order that is safe to remove them one by
 * one with a crash possible between any two removals. A node comes before
 * everything it refers to (a manifest before its config and layers, a child
 * snapshot before its parent), so at every instant each surviving node still
 * finds what it refers to. Marked nodes never refer to unmarked ones (marking
 * is closed over edges), so only edges among the garbage decide the order.
 *
 * The order is Kahn's topological sort on the garbage subgraph. Content
 * addressing makes cycles impossible for blobs, but a corrupt snapshot store
 * could loop; a cycle's nodes come last, in insertion order, rather than
 * being kept forever.
 */
export function sweep(graph: RefGraph, marked: ReadonlySet<string>): string[] {
  const garbage: string[] = [];
  for (const n of graph.nodes()) if (!marked.has(n)) garbage.push(n);
  const indegree = new Map<string, number>();
  for (const n of garbage) indegree.set(n, 0);
  for (const n of garbage) {
    for (const m of graph.refs(n)) if (indegree.has(m)) indegree.set(m, indegree.get(m)! + 1);
  }
  const ready: string[] = garbage.filter((n) => indegree.get(n) === 0);
  const order: string[] = [];
  const placed = new Set<string>();
  for (let i = 0; i < ready.length; i++) {
    const n = ready[i]!;
    order.push(n);
    placed.add(n);
    for (const m of graph.refs(n)) {
      const d = indegree.get(m);
      if (d === undefined) continue;
      indegree.set(m, d - 1);
      if (d - 1 === 0) ready.push(m);
    }
  }
  for (const n of garbage) if (!placed.has(n)) order.push(n);
  return order;
}

/** Mark from `roots` and return the sweep order in one call. */
export function collect(graph: RefGraph, roots: Iterable<string>): { marked: Set<string>; garbage: string[] } {
  const marked = mark(graph, roots);
  return { marked, garbage: sweep(graph, marked) };
}
