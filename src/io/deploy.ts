/**
 * The decision, out: what a prepared model's quantization configuration means for the tools that
 * build the model for the chip.
 *
 * - `nodeInfo` / `ptqYaml`: the reference PTQ toolchain's config (`model_parameters.node_info`
 *   with the ONNX file's own node names — `{ ON: BPU, InputType: int16, OutputType: int16 }` for
 *   nodes quantbook runs at int16, `ON: CPU` for ops no march rule covers — plus the short form,
 *   `calibration_parameters.optimization` entries where every node of an op type is raised, and
 *   `march`).
 * - `pluginSnippet`: Python for horizon_plugin_pytorch: a `ModuleNameQconfigSetter` dict of the
 *   module paths that differ from the base template (int16 outputs, inputs or weights, fixed
 *   scales such as the rewrite's 7/32767), ready to paste into a calibration or QAT script.
 * - `onnxNames`: quantbook's op names ↔ the file's node names (setters accept either).
 *
 * ```ts
 * writeFileSync("ptq.yaml", qb.deploy.ptqYaml(calib, { onnxModel: "model.onnx", march: qb.March.NASH_M }));
 * writeFileSync("qconfig.py", qb.deploy.pluginSnippet(calib));
 * ```
 */
import type { Module } from "../nn/module";
import { FixedScaleObserver } from "../quant/observers";
import { checkModel } from "../march/check";
import { getMarch, type March } from "../march/march";
import { errors } from "../messages";
import { runtimeOf, validatingRuntime, type PreparedOp } from "../workflow/quantRuntime";
import type { Graph } from "../workflow/graph";
import { capture, lower, Unsupported, type Capture } from "../workflow/engine/compile";
import { isModelInput } from "../workflow/graph";
import type { FakeQuantizer } from "../quant/fakeQuantizer";
import { insertQdq, type QdqPoint, type QdqWhere } from "./onnx/qdqInsert";
import { readFileSync } from "node:fs";
import type * as tf from "@tensorflow/tfjs";
import type { Dataset } from "./dataset";

export interface OnnxNames {
  /** quantbook op name → the ONNX node it computes. */
  byOp: Record<string, string>;
  /** ONNX node name → the quantbook ops it became, in order. */
  byNode: Record<string, string[]>;
}

function graphOf(model: Module, where: string): Graph {
  return runtimeOf(model, where).graph;
}

/** quantbook's op names and the imported file's node names, both ways (a model from qb.io.loadOnnx, prepared). */
export function onnxNames(model: Module): OnnxNames {
  const graph = graphOf(model, "deploy.onnxNames");
  const byOp: Record<string, string> = {};
  const byNode: Record<string, string[]> = {};
  for (const op of graph.ops) {
    if (op.onnxNode === undefined) continue;
    byOp[op.name] = op.onnxNode;
    (byNode[op.onnxNode] ??= []).push(op.name);
  }
  if (Object.keys(byOp).length === 0) {
    throw errors.invalidArgument(
      "deploy.onnxNames",
      "the model has no ONNX node names",
      "prepare a model loaded with qb.io.loadOnnx (a model written with qb.nn has module paths, not node names)",
    );
  }
  return { byOp, byNode };
}

export interface NodeInfoEntry {
  ON: "BPU" | "CPU";
  InputType?: "int8" | "int16";
  OutputType?: "int8" | "int16";
}

const dtypeOf = (name: string | undefined): "int8" | "int16" | undefined =>
  name === "qint16" ? "int16" : name === "qint8" ? "int8" : undefined;

/**
 * `node_info` for the reference toolchain: every ONNX node whose ops quantbook runs with an int16
 * input or output (int8 is the toolchain's default and needs no entry), and `ON: CPU` for nodes
 * with an op no rule of the march covers.
 */
export function nodeInfo(model: Module, opts: { march?: March } = {}): Record<string, NodeInfoEntry> {
  const rt = runtimeOf(model, "deploy.nodeInfo");
  const march = opts.march ?? getMarch();
  if (march === null)
    throw errors.wrongState("deploy.nodeInfo", "no target chip", "pass { march } or call qb.setMarch first");
  const names = onnxNames(model);
  const ops = new Map([...rt.ops.values()].map((o) => [o.info.name, o]));
  const cpu = new Set<string>();
  for (const v of checkModel(model, march).violations) if (v.kind === "no-rule" || v.kind === "cpu") cpu.add(v.op);
  const out: Record<string, NodeInfoEntry> = {};
  for (const [node, opNames] of Object.entries(names.byNode)) {
    const prepared = opNames.map((n) => ops.get(n)).filter((o): o is PreparedOp => o !== undefined);
    if (prepared.length === 0) continue;
    if (opNames.some((n) => cpu.has(n))) {
      out[node] = { ON: "CPU" };
      continue;
    }
    // the node's input: its first op's activation inputs; its output: its last op's output
    const first = prepared[0];
    const last = prepared[prepared.length - 1];
    const input = first.inputs.map((fq) => dtypeOf(fq?.dtype.name)).find((d) => d !== undefined);
    const output = dtypeOf(last.output?.dtype.name) ?? dtypeOf(rt.outputQuantizer(last.info.name)?.dtype.name);
    if (input !== "int16" && output !== "int16") continue;
    const e: NodeInfoEntry = { ON: "BPU" };
    if (input !== undefined) e.InputType = input;
    if (output !== undefined) e.OutputType = output;
    out[node] = e;
  }
  return out;
}

const quote = (s: string) => JSON.stringify(s);

/**
 * The toolchain's `input_parameters` for data prepared the way `data` prepares it: an image folder's
 * channel order, layout, mean and scale become `input_type_train` / `input_layout_train` /
 * `norm_type` / `mean_value` / `scale_value` (the toolchain computes `(x − mean) · scale`, as
 * quantbook does); tensors read as they are become a `featuremap` with `no_preprocess`. With a
 * model, `input_name` and `input_shape` come from its (ONNX) inputs. `input_type_rt` and
 * `input_layout_rt` repeat the training values: change them if the board feeds another format
 * (nv12 from a camera).
 */
export function inputParameters(data: Dataset, model?: Module): Record<string, string> {
  const pre = data?.preprocessing;
  if (pre === undefined) {
    throw errors.invalidArgument(
      "deploy.inputParameters",
      "a dataset whose `transform` quantbook cannot describe",
      "pass { inputParameters } to ptqYaml yourself, or do the normalisation with imageFolder's `image` options",
    );
  }
  const out: Record<string, string> = {};
  const onnx = (model as unknown as { onnx?: { inputs?: { name: string; dims: (number | string)[] }[] } } | undefined)
    ?.onnx;
  const shapes = model ? (runtimeOf(model, "deploy.inputParameters").graph.inputShapes ?? []) : [];
  if (onnx?.inputs?.[0]) out.input_name = onnx.inputs.map((i) => i.name).join(";");
  // the file's own input shape when it is static, else the shape the model was prepared with
  const fileShapes = onnx?.inputs?.map((i) => i.dims);
  const staticFile =
    fileShapes !== undefined &&
    fileShapes.length > 0 &&
    fileShapes.every((d) => d.every((v) => typeof v === "number" && v > 0));
  if (staticFile) out.input_shape = fileShapes.map((d) => d.join("x")).join(";");
  else if (shapes.length > 0) out.input_shape = shapes.map((sh) => (sh ?? []).join("x")).join(";");
  const list = (v: number[]) => v.map((x) => String(Number(x.toPrecision(8)))).join(" ");
  if (pre.kind === "featuremap") {
    Object.assign(out, {
      input_type_train: "featuremap",
      input_layout_train: "NCHW",
      input_type_rt: "featuremap",
      input_layout_rt: "NCHW",
      norm_type: "no_preprocess",
    });
    return out;
  }
  const type = pre.image.channels ?? "rgb";
  const layout = pre.image.layout ?? "NCHW";
  const mean = pre.image.mean;
  const scale = pre.image.scale;
  const norm = mean && scale ? "data_mean_and_scale" : mean ? "data_mean" : scale ? "data_scale" : "no_preprocess";
  Object.assign(out, {
    input_type_train: type,
    input_layout_train: layout,
    input_type_rt: type,
    input_layout_rt: layout,
    norm_type: norm,
  });
  if (mean) out.mean_value = list(mean);
  if (scale) out.scale_value = list(scale);
  return out;
}

export interface PtqYamlOptions {
  /** The ONNX file the toolchain compiles (default: the file the model was loaded from). */
  onnxModel?: string;
  march?: March;
  /** `input_parameters` to write as they are (input_type_train, input_layout_train, norm_type, mean_value, scale_value, ...). */
  inputParameters?: Record<string, string | number>;
  /** The calibration dataset: its preprocessing becomes `input_parameters` (see `inputParameters`; given keys win). */
  data?: Dataset;
}

/**
 * The reference toolchain's PTQ YAML for this model's configuration: `model_parameters` (onnx_model,
 * march, node_info with the file's node names), `calibration_parameters.optimization` where every
 * node of an ONNX op type is raised (`set_Softmax_input_int16`), and `input_parameters` if given.
 */
export function ptqYaml(model: Module, opts: PtqYamlOptions = {}): string {
  const march = opts.march ?? getMarch();
  if (march === null)
    throw errors.wrongState("deploy.ptqYaml", "no target chip", "pass { march } or call qb.setMarch first");
  const info = nodeInfo(model, { march });
  const rt = runtimeOf(model, "deploy.ptqYaml");
  const file = opts.onnxModel ?? (model as unknown as { onnx?: { file?: string } }).onnx?.file ?? "model.onnx";
  // an op type whose every node is raised on its input (or output): the toolchain's set_<Type>_input_int16 says it in one line
  const byType = new Map<string, string[]>();
  for (const op of rt.graph.ops)
    if (op.onnxNode && op.onnxType)
      byType.set(op.onnxType, [...new Set([...(byType.get(op.onnxType) ?? []), op.onnxNode])]);
  const optimization: string[] = [];
  for (const [type, nodes] of byType) {
    if (nodes.length < 2) continue;
    if (nodes.every((n) => info[n]?.InputType === "int16")) optimization.push(`set_${type}_input_int16`);
    if (nodes.every((n) => info[n]?.OutputType === "int16")) optimization.push(`set_${type}_output_int16`);
  }
  const short = Object.entries(info)
    .filter(([, e]) => e.ON === "BPU" && e.OutputType === "int16")
    .map(([n]) => `${n}:int16`)
    .join(";");
  const lines = [
    `# quantbook: the quantization configuration of ${file} for the PTQ toolchain (${Object.keys(info).length} node_info entries)`,
    `# short form of the int16 outputs: ${short === "" ? "(none)" : quote(short)}`,
    "model_parameters:",
    `  onnx_model: ${quote(file)}`,
    `  march: ${quote(march)}`,
  ];
  if (Object.keys(info).length === 0) lines.push("  node_info: {}");
  else {
    lines.push("  node_info:");
    for (const [node, e] of Object.entries(info)) {
      lines.push(`    ${quote(node)}:`);
      // keys quoted: YAML 1.1 (PyYAML) reads a bare ON as the boolean true
      for (const [k, v] of Object.entries(e)) lines.push(`      ${quote(k)}: ${quote(v)}`);
    }
  }
  const inputs = { ...(opts.data ? inputParameters(opts.data, model) : {}), ...(opts.inputParameters ?? {}) };
  if (Object.keys(inputs).length > 0) {
    lines.push("input_parameters:");
    for (const [k, v] of Object.entries(inputs)) lines.push(`  ${k}: ${typeof v === "number" ? v : quote(v)}`);
  }
  if (optimization.length > 0)
    lines.push("calibration_parameters:", `  optimization: ${quote(optimization.join(","))}`);
  return lines.join("\n") + "\n";
}

const SETTER_OF_BASE: Record<string, string> = {
  calibration8bitWeight16bitActQconfigSetter: "calibration_8bit_weight_16bit_act_qconfig_setter",
  defaultCalibrationQconfigSetter: "default_calibration_qconfig_setter",
  qat8bitWeight16bitActQconfigSetter: "qat_8bit_weight_16bit_act_qconfig_setter",
  defaultQatQconfigSetter: "default_qat_qconfig_setter",
};

/**
 * Python for horizon_plugin_pytorch: the base template and a `ModuleNameQconfigSetter` dict of
 * every module path whose dtypes (or fixed scale) differ from it. Module paths are quantbook's,
 * which are PyTorch's for a model written with qb.nn or exported by torch.onnx.export.
 */
export function pluginSnippet(model: Module, opts: { base?: keyof typeof SETTER_OF_BASE } = {}): string {
  const rt = runtimeOf(model, "deploy.pluginSnippet");
  const ops = [...rt.ops.values()];
  // the base: the activation dtype most outputs have
  const outs = ops.flatMap((o) => (o.output ? [o.output.dtype.name as string] : []));
  const int16 = outs.filter((d) => d === "qint16").length;
  const base =
    opts.base ??
    (int16 * 2 > outs.length ? "calibration8bitWeight16bitActQconfigSetter" : "defaultCalibrationQconfigSetter");
  const act = base.includes("16bitAct") ? "qint16" : "qint8";
  const entries: string[] = [];
  const seen = new Set<string>();
  for (const op of ops) {
    // the op's own name: a layer's op is named by its module path (linear3), a functional op inside a module by both (linear2.mul)
    const key = op.info.name;
    const args: string[] = [];
    const inDtype = op.inputs.find((fq) => fq !== undefined && fq !== null)?.dtype.name;
    const out = op.output;
    const fixed = out?.observer instanceof FixedScaleObserver ? (out.scale()?.[0] ?? null) : null;
    if (out && out.dtype.name !== act) args.push(`out_dtype=${out.dtype.name}`);
    if (inDtype && inDtype !== act && op.info.type !== "QuantStub") args.push(`in_dtype=${inDtype}`);
    if (op.weight && op.weight.dtype.name !== "qint8") args.push(`weight_dtype=${op.weight.dtype.name}`);
    if (fixed !== null)
      args.push(
        `fix_scale=${fixed}`,
        ...(args.some((a) => a.startsWith("out_dtype")) ? [] : [`out_dtype=${out?.dtype.name}`]),
      );
    if (args.length === 0 || seen.has(key)) continue;
    seen.add(key);
    entries.push(`    ${JSON.stringify(key)}: get_qconfig(${args.join(", ")}),`);
  }
  const setter = SETTER_OF_BASE[base];
  return [
    "# quantbook: this model's qconfigs for horizon_plugin_pytorch (paste into the calibration / QAT script).",
    "# The names below are the ones the plugin's docs and the reference example import; check them against your version.",
    "from horizon_plugin_pytorch.dtype import qint8, qint16",
    "from horizon_plugin_pytorch.quantization.qconfig_template import (",
    "    ModuleNameQconfigSetter,",
    `    ${setter},`,
    ")",
    "from horizon_plugin_pytorch.quantization.qconfig import get_qconfig",
    "",
    "module_name_to_qconfig = {",
    ...entries,
    "}",
    `qconfig_setter = (ModuleNameQconfigSetter(module_name_to_qconfig), ${setter})`,
    "",
  ].join("\n");
}

/**
 * The model as a QDQ ONNX file (the interchange many compilers read), every quantizing point as
 * `QuantizeLinear → DequantizeLinear` with quantbook's scales (per channel where quantbook is;
 * int16 points in the com.microsoft domain, which onnxruntime runs).
 *
 * - `graph: "file"` (the default for a model loaded from an ONNX file): your own file, its nodes,
 *   names and initializers unchanged, with the pairs inserted on the tensors quantbook quantizes —
 *   node outputs, the model inputs, weight initializers, re-quantized input edges. A point with no
 *   place in the file (inside a pattern quantbook fused from several nodes, or on a weight the
 *   import folded) is an error naming it: write `graph: "quantbook"` then.
 * - `graph: "quantbook"`: quantbook's own lowering of the prepared model as standard ONNX nodes.
 *
 * onnxruntime runs either. ONNX divides by the scale where quantbook multiplies by 1/s, so a
 * near-tie may land one step away; BPU rounding has no QuantizeLinear form and is written the same
 * way. `example`: inputs of the shapes the file takes.
 */
export function qdqOnnx(
  model: Module,
  example: tf.Tensor | tf.Tensor[],
  opts: { graph?: "file" | "quantbook" } = {},
): Uint8Array {
  const rt = validatingRuntime(model, "deploy.qdqOnnx");
  const args = Array.isArray(example) ? example : [example];
  const cap = capture(model, rt, args);
  if (cap instanceof Unsupported)
    throw errors.unsupported("deploy.qdqOnnx", cap.reason, "write the model with quantbook ops only");
  const file = (model as unknown as { onnx?: { file?: string } }).onnx?.file;
  const graph = opts.graph ?? (file !== undefined && file !== "<bytes>" ? "file" : "quantbook");
  if (graph === "file") return qdqIntoFile(model, rt, cap, file);
  if (graph !== "quantbook")
    throw errors.invalidArgument("deploy.qdqOnnx", `graph '${String(graph)}'`, "pass file or quantbook");
  const lowered = lower(rt, cap, { qdq: true });
  if (lowered instanceof Unsupported)
    throw errors.unsupported(
      "deploy.qdqOnnx",
      lowered.reason,
      "calibrate every point (int8 / int16) and use ops with an ONNX lowering",
    );
  return lowered.bytes;
}

/** The points of a prepared model placed in the ONNX file it was loaded from. */
function qdqIntoFile(
  model: Module,
  rt: ReturnType<typeof runtimeOf>,
  cap: Capture,
  file: string | undefined,
): Uint8Array {
  if (file === undefined || file === "<bytes>") {
    throw errors.invalidArgument(
      "deploy.qdqOnnx",
      "graph 'file' for a model not loaded from an ONNX file",
      "load it with qb.io.loadOnnx(path), or pass { graph: 'quantbook' }",
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw errors.badFile(
      "deploy.qdqOnnx",
      file,
      `cannot read the model's file again: ${(e as Error).message}; pass { graph: 'quantbook' } to write quantbook's own graph`,
      e,
    );
  }
  const inputNames = ((model as unknown as { onnx: { inputs: { name: string }[] } }).onnx.inputs ?? []).map(
    (i) => i.name,
  );
  const { byNode } = onnxNames(model);
  const points: QdqPoint[] = [];
  const problems: string[] = [];
  const add = (fq: FakeQuantizer | null | undefined, name: string, where: QdqWhere, rank: number): void => {
    if (!fq || !fq.quantizing) return;
    const scale = fq.scale();
    const elem = fq.dtype.name === "qint16" ? "int16" : fq.dtype.name === "qint8" ? "int8" : null;
    if (scale === null) return void problems.push(`${name}: no scale (calibrate the model first)`);
    if (elem === null) return void problems.push(`${name}: ${fq.dtype.name} (QDQ writes int8 and int16 points)`);
    const axis = fq.axis === undefined ? undefined : fq.axis < 0 ? fq.axis + rank : fq.axis;
    points.push({ where, name, scale: Array.from(scale), elem, axis });
  };
  for (const info of rt.graph.ops) {
    const op = rt.ops.get(info.name);
    if (op === undefined) continue;
    const node = info.onnxNode;
    const rank = info.outputShape?.length ?? 0;
    if (node === undefined) {
      // the model inputs' QuantStubs quantize the graph inputs
      const src = info.inputs[0]?.source ?? "";
      const k = isModelInput(src) ? Number(src.slice(7, -1)) : -1;
      if (info.type === "QuantStub" && inputNames[k] !== undefined)
        add(op.output, info.name, { kind: "graphInput", name: inputNames[k] }, rank);
      else if (op.output?.quantizing || op.weight?.quantizing)
        problems.push(`${info.name} (${info.type}): no node of the file computes it`);
      continue;
    }
    const ops = byNode[node] ?? [];
    const last = rt.graph.ops.find((o) => o.name === ops[ops.length - 1]);
    // a QuantStub quantbook put on a constant input of the node: the pair goes on that input edge
    const edge = last?.inputs.findIndex((i) => i.source === info.name) ?? -1;
    if (ops[ops.length - 1] === info.name) add(op.output, info.name, { kind: "output", node }, rank);
    else if (info.type === "QuantStub" && edge >= 0 && op.output?.quantizing)
      add(op.output, info.name, { kind: "input", node, input: edge }, rank);
    else if (op.output?.quantizing)
      problems.push(`${info.name} (${info.type}): inside node ${node}, whose output is ${ops[ops.length - 1]}'s`);
    const w = cap.weights.get(info.name);
    if (op.weight?.quantizing && w !== undefined)
      add(op.weight, `${info.name}.weight`, { kind: "weight", node, data: w.data, shape: w.shape }, w.shape.length);
    op.inputs.forEach((fq, i) => {
      if (!fq?.quantizing) return;
      if (ops.length === 1)
        add(fq, `${info.name}.input_${i}`, { kind: "input", node, input: i }, info.inputs[i]?.shape.length ?? 0);
      else problems.push(`${info.name}.input_${i}: an input inside node ${node}`);
    });
  }
  const out = insertQdq(bytes, file, points);
  problems.push(...out.skipped);
  if (problems.length > 0) {
    throw errors.unsupported(
      "deploy.qdqOnnx",
      `${problems.length} quantization point${problems.length === 1 ? "" : "s"} cannot be written into ${file}: ${problems.slice(0, 5).join("; ")}${problems.length > 5 ? "; ..." : ""}`,
      "pass { graph: 'quantbook' } to write quantbook's own graph, which holds every point",
    );
  }
  return out.bytes;
}
