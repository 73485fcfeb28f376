import { findOp, opTypes } from ".";
import { IR_FORMAT, IR_VERSION, type Ir } from "../ir/types";
import { errors } from "../messages";

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Checks an IR's structure and consistency; throws one error listing every problem, each
 * naming the node. `where` names the file or caller.
 */
export function validateIr(ir: unknown, where: string): asserts ir is Ir {
  const fail = (problems: string[]): never => {
    throw errors.invalidIr(where, problems);
  };
  if (ir === null || typeof ir !== "object") fail(["expected a JSON object"]);
  const x = ir as Partial<Ir>;
  if (x.format !== IR_FORMAT) fail([`format is ${JSON.stringify(x.format)}, expected "${IR_FORMAT}"`]);
  if (x.version !== IR_VERSION) {
    fail([
      `version ${x.version} is not supported (this quantbook reads version ${IR_VERSION}); re-export the model with this version`,
    ]);
  }
  if (!Array.isArray(x.nodes) || !Array.isArray(x.inputs) || !Array.isArray(x.outputs))
    fail(["nodes, inputs and outputs must be arrays"]);
  const problems: string[] = [];
  const seen = new Map<string, number[]>();
  x.inputs!.forEach((inp, i) => seen.set(`<input:${i}>`, inp.shape));
  for (const n of x.nodes!) {
    const at = `node ${n?.name ?? "?"}`;
    // a node missing a field the checks read is malformed, not a crash
    const shape = (v: unknown) => Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);
    if (
      n === null ||
      typeof n !== "object" ||
      typeof n.name !== "string" ||
      !Array.isArray(n.inputs) ||
      !n.inputs.every(
        (i) => i && typeof i.source === "string" && shape(i.shape) && i.quant && typeof i.quant.dtype === "string",
      ) ||
      !n.output ||
      !shape(n.output.shape) ||
      !n.output.quant ||
      !Array.isArray(n.params) ||
      !n.params.every((p) => p && shape(p.shape) && Array.isArray(p.data)) ||
      !Array.isArray(n.constants) ||
      typeof n.attrs !== "object" ||
      n.attrs === null ||
      (n.weight !== undefined && (!shape(n.weight.shape) || !Array.isArray(n.weight.data) || !n.weight.quant))
    ) {
      problems.push(
        `${at}: malformed node (expected name, inputs [{ source, shape, quant }], output { shape, quant }, params, constants, attrs)`,
      );
      continue;
    }
    if (findOp(n.type) === undefined) {
      problems.push(`${at}: unknown op type '${n.type}' (known: ${opTypes().join(", ")})`);
      continue;
    }
    n.inputs.forEach((inp, i) => {
      if (inp.source === "<float>") {
        const c = n.constants.find((k) => k.input === i);
        if (!c || c.data.length !== size(inp.shape))
          problems.push(`${at}: input ${i} is a constant without ${size(inp.shape)} values`);
        return;
      }
      const produced = seen.get(inp.source);
      if (produced === undefined)
        problems.push(`${at}: input ${i} comes from '${inp.source}', which is not an earlier node or a model input`);
      else if (size(produced) !== size(inp.shape)) {
        problems.push(
          `${at}: input ${i} has shape [${inp.shape}] but '${inp.source}' produces [${produced}] (${size(produced)} elements)`,
        );
      }
    });
    if (n.weight) {
      if (n.weight.data.length !== size(n.weight.shape))
        problems.push(`${at}: weight has ${n.weight.data.length} values for shape [${n.weight.shape}]`);
      const s = n.weight.quant.scale;
      if (s !== null && s.length !== 1 && s.length !== n.weight.shape[n.weight.quant.axis ?? 0]) {
        problems.push(`${at}: weight has ${s.length} scales for ${n.weight.shape[n.weight.quant.axis ?? 0]} channels`);
      }
    }
    const inFeatures = n.weight ? n.weight.shape[n.attrs.weightLayout === "in_out" ? 0 : 1] : undefined;
    if (
      n.type === "Linear" &&
      n.weight &&
      n.inputs[0] &&
      n.inputs[0].shape[n.inputs[0].shape.length - 1] !== inFeatures
    ) {
      problems.push(`${at}: Linear input [${n.inputs[0].shape}] does not match weight [${n.weight.shape}]`);
    }
    for (const p of n.params)
      if (p.data.length !== size(p.shape))
        problems.push(`${at}: a parameter has ${p.data.length} values for shape [${p.shape}]`);
    seen.set(n.name, n.output.shape);
  }
  for (const o of x.outputs!) if (!seen.has(o)) problems.push(`output '${String(o)}' is not a node`);
  if (problems.length > 0) fail(problems);
}
