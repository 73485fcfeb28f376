/**
 * Where to cut a model's graph for one-point-on runs (sensitivity): a run whose point sits at op
 * k computes exactly the float values of every op before k, so it can start at any cut c ≤ k,
 * fed the float values that cross the cut (its frontier). Each cut costs a session build;
 * cuts are added greedily, the one that saves the most run cost first, while a cut saves more
 * than a build costs.
 */
import { FLOAT_CONSTANT, isModelInput, type Graph } from "../graph";

export interface Cut {
  /** The first op the cut graph computes. */
  from: number;
  /** The sources (op names, `<input:i>`) whose float values it is fed. */
  frontier: string[];
}

/** Fixed cost of an op in flop units (kernel launch, the point's Where): keeps cheap ops from looking free. */
const PER_OP_FLOPS = 5e4;
/** A session build costs about this many runs of the graph it builds (measured on ResNet-18 and MobileNetV3-Small: 0.1–1; a cut graph is smaller than the whole). */
const BUILD_RUNS = 1;
/** More sessions than this are not worth their memory. */
const MAX_CUTS = 32;

/** The sources crossing a cut before op `from`: made before it, read at or after it (or returned). */
export function frontierAt(graph: Graph, from: number): string[] {
  const made = new Set<string>();
  graph.ops.forEach((o, i) => i < from && made.add(o.name));
  const crossing = new Set<string>();
  const crosses = (s: string) => s !== FLOAT_CONSTANT && (isModelInput(s) || made.has(s));
  graph.ops.slice(from).forEach((o) => o.inputs.forEach((inp) => crosses(inp.source) && crossing.add(inp.source)));
  graph.outputs.forEach((s) => made.has(s) && crossing.add(s));
  return [...crossing];
}

/**
 * The cuts for points whose first op is `starts[k]`. A point runs from the last cut at or before
 * its start (op 0, the whole graph, is always there and not listed).
 */
export function chooseCuts(graph: Graph, starts: number[]): Cut[] {
  const n = graph.ops.length;
  // suffix[c]: the cost of running ops c.. n-1
  const suffix = new Float64Array(n + 1);
  for (let i = n - 1; i >= 0; i--) suffix[i] = suffix[i + 1] + graph.ops[i].flops + PER_OP_FLOPS;
  const from = starts.map(() => 0);
  const chosen: number[] = [];
  while (chosen.length < MAX_CUTS) {
    let best = -1;
    let bestGain = 0;
    for (let c = 1; c < n; c++) {
      let gain = 0;
      for (let k = 0; k < starts.length; k++) if (starts[k] >= c && from[k] < c) gain += suffix[from[k]] - suffix[c];
      gain -= BUILD_RUNS * suffix[c];
      if (gain > bestGain) {
        bestGain = gain;
        best = c;
      }
    }
    if (best < 0) break;
    chosen.push(best);
    starts.forEach((s, k) => {
      if (s >= best && from[k] < best) from[k] = best;
    });
  }
  return chosen.sort((a, b) => a - b).map((c) => ({ from: c, frontier: frontierAt(graph, c) }));
}
