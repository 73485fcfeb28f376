/**
 * Module paths from ONNX node names. torch writes a node's scope as `/layer1/layer1.0/conv1/Conv`:
 * each segment is a module (sometimes with its parent's path as a prefix), the last one the op
 * type; repeated calls of one module get `_N` on their segment (`relu_1`). Graphs without scopes
 * (paddle2onnx's `p2o.Conv.0`, or `Conv_12`) have no module path.
 */

/** "layer1.0.conv1" for "/layer1/layer1.0/conv1/Conv"; "" for a node without scope. */
export function scopePath(nodeName: string): string {
  if (!nodeName.startsWith("/")) return "";
  const segs = nodeName.split("/").filter((s) => s !== "");
  segs.pop(); // the op itself
  let path = "";
  for (const seg of segs) {
    const parts = path === "" ? [] : path.split(".");
    const last = parts[parts.length - 1];
    if (path !== "" && seg.startsWith(`${path}.`))
      path = seg; // the segment repeats the whole path
    else if (last !== undefined && seg.startsWith(`${last}.`))
      path = [...parts.slice(0, -1), seg].join("."); // or its parent's short name
    else path = path === "" ? seg : `${path}.${seg}`;
  }
  return path;
}

/** Module paths safe as field chains: no empty segments, no characters a field name cannot hold. */
export function cleanPath(p: string): string {
  return p
    .split(".")
    .filter((s) => s !== "")
    .map((s) => s.replace(/[^A-Za-z0-9_]/g, "_"))
    .join(".");
}

/**
 * The module path and op name of a node: `_N` suffixes of torch's repeated calls are dropped from
 * the path when the unsuffixed module exists too (quantbook names the second call `<path>_1`
 * itself); unscoped nodes are named after the node (or its first output), made field-safe.
 */
export function nodeNames(
  nodeName: string,
  allPaths: Set<string>,
  firstOutput: string,
  ownOp: Set<string> = new Set(),
): { path: string; opName: string | null } {
  const raw = scopePath(nodeName);
  if (raw === "" && nodeName.startsWith("/")) {
    // a root-level op of a torch graph ("/Concat_1"): named by its type, repeats counted by quantbook
    return { path: "", opName: (nodeName.split("/").pop() ?? "op").replace(/_\d+$/, "").toLowerCase() };
  }
  if (raw === "") {
    const base = (nodeName || firstOutput).replace(/^\//, "");
    return { path: "", opName: base.replace(/[^A-Za-z0-9_.]/g, "_").replace(/\./g, "_") };
  }
  const segs = cleanPath(raw).split(".");
  const last = segs[segs.length - 1];
  const m = /^(.*)_(\d+)$/.exec(last);
  if (m && allPaths.has([...segs.slice(0, -1), m[1]].join("."))) segs[segs.length - 1] = m[1];
  const type = nodeName.split("/").pop() ?? "";
  // the only op of a leaf module (a ReLU, a pooling) is the module's own op: named by its path
  return { path: segs.join("."), opName: ownOp.has(raw) ? null : type.replace(/_\d+$/, "").toLowerCase() };
}

/** Scopes (raw, before `_N` handling) that are leaves holding exactly one node: their op is the module's own. */
export function ownOpScopes(nodeNamesList: string[]): Set<string> {
  const count = new Map<string, number>();
  const raws = nodeNamesList.map(scopePath).filter((p) => p !== "");
  for (const p of raws) count.set(p, (count.get(p) ?? 0) + 1);
  const parents = new Set(raws.flatMap((p) => p.split(".").map((_, i, a) => a.slice(0, i).join("."))));
  return new Set([...count].filter(([p, n]) => n === 1 && !parents.has(p)).map(([p]) => p));
}
