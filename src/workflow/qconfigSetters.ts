/**
 * QConfig setters decide each op's qconfig from the traced graph. `prepare` applies them in the
 * order given and the earlier one wins, field by field (see `mergeQconfig`): put specific
 * setters (by module name, by op type) before a template.
 */
import { qint16, qint8, type QuantDType } from "../quant/dtypes";
import { MinMaxObserver } from "../quant/observers/minmax";
import { MSEObserver } from "../quant/observers/mse";
import type { ObserverFactory } from "../quant/observers/observer";
import { getQconfig, type QConfig } from "../quant/qconfig";
import { isGemm, type Graph, type OpInfo } from "./graph";
import { errors } from "../messages";

export interface QconfigSetter {
  readonly setterName: string;
  /** The qconfig this setter proposes for an op, or undefined to leave it to later setters. */
  qconfigFor(op: OpInfo, graph: Graph): QConfig | undefined;
  /** Throws when the setter refers to something the model does not have. */
  validate?(graph: Graph): void;
}

/** True for a GEMM whose only consumer is the DeQuantStub: it keeps a high-precision output. */
export function feedsOnlyDequant(op: OpInfo, graph: Graph): boolean {
  return isGemm(op.type) && op.consumers.length === 1 && graph.byName.get(op.consumers[0])?.type === "DeQuantStub";
}

/**
 * A whole-model template: per-channel MinMax weights of `weightDtype`, activations of `actDtype`
 * watched by `actObserver`, a GEMM that feeds only the DeQuantStub kept in float (the shape of
 * every built-in template).
 */
export function calibrationTemplate(
  setterName: string,
  weightDtype: QuantDType,
  actDtype: QuantDType,
  actObserver: ObserverFactory,
): QconfigSetter {
  return {
    setterName,
    qconfigFor(op, graph) {
      if (op.type === "DeQuantStub") return { output: null };
      const highPrecision = feedsOnlyDequant(op, graph);
      return {
        weight: op.weightShape ? { dtype: weightDtype, observer: MinMaxObserver } : undefined,
        output: highPrecision ? null : { dtype: actDtype, observer: actObserver },
      };
    },
  };
}

/** int8 per-channel MinMax weights, int16 MSE activations (the article's calibration template). */
export const calibration8bitWeight16bitActQconfigSetter = calibrationTemplate(
  "calibration8bitWeight16bitActQconfigSetter",
  qint8,
  qint16,
  MSEObserver,
);
/** int8 weights and activations, MSE-calibrated activations. */
export const defaultCalibrationQconfigSetter = calibrationTemplate(
  "defaultCalibrationQconfigSetter",
  qint8,
  qint8,
  MSEObserver,
);
/** QAT twin of calibration8bitWeight16bitActQconfigSetter: MinMax (moving-average) activations. */
export const qat8bitWeight16bitActQconfigSetter = calibrationTemplate(
  "qat8bitWeight16bitActQconfigSetter",
  qint8,
  qint16,
  MinMaxObserver,
);
/** QAT twin of defaultCalibrationQconfigSetter. */
export const defaultQatQconfigSetter = calibrationTemplate("defaultQatQconfigSetter", qint8, qint8, MinMaxObserver);

/** The names a graph answers to: op names and module paths. */
export function graphNames(graph: Graph): string[] {
  return [
    ...new Set(
      graph.ops.flatMap((op) => [
        op.name,
        ...(op.modulePath === "" ? [] : [op.modulePath]),
        ...(op.onnxNode ? [op.onnxNode] : []),
      ]),
    ),
  ];
}

/**
 * Qconfigs by op name (`linear2.mul`) or module path (`linear2`, `layernorm`: every op the
 * module runs itself) or, for an imported graph, the file's own node name
 * (`/layer4/layer4.0/downsample/downsample.0/Conv`: every op that node became).
 *
 * ```ts
 * qb.qconfig.ModuleNameQconfigSetter({ linear2: qb.qconfig.getQconfig({ weightDtype: qb.qint16 }) })
 * ```
 */
export function ModuleNameQconfigSetter(byName: Record<string, QConfig>): QconfigSetter {
  return {
    setterName: "ModuleNameQconfigSetter",
    qconfigFor: (op) =>
      byName[op.name] ?? byName[op.modulePath] ?? (op.onnxNode === undefined ? undefined : byName[op.onnxNode]),
    validate(graph) {
      for (const key of Object.keys(byName)) {
        const known = graph.ops.some((op) => op.name === key || op.modulePath === key || op.onnxNode === key);
        if (!known) {
          throw errors.unknownName("ModuleNameQconfigSetter", "op or module", key, graphNames(graph));
        }
      }
    },
  };
}

/** Qconfigs by op type (`Linear`, `Mul`, `Sigmoid`, ...). */
export function OpTypeQconfigSetter(byType: Record<string, QConfig>): QconfigSetter {
  return {
    setterName: "OpTypeQconfigSetter",
    qconfigFor: (op) => byType[op.type],
    validate(graph) {
      const types = new Set(graph.ops.map((o) => o.type));
      for (const key of Object.keys(byType)) {
        if (!types.has(key)) {
          throw errors.unknownName("OpTypeQconfigSetter", "op of type", key, types);
        }
      }
    },
  };
}

/**
 * Fixed output scales by op name, e.g. the article's `{ "linear2.mul": 7 / 32767 }` (int16
 * unless the dtype is given).
 */
export function FixedScaleQconfigSetter(scales: Record<string, number>, dtype: QuantDType = qint16): QconfigSetter {
  const byName: Record<string, QConfig> = {};
  for (const [k, s] of Object.entries(scales)) byName[k] = getQconfig({ outDtype: dtype, fixScale: s });
  return { ...ModuleNameQconfigSetter(byName), setterName: "FixedScaleQconfigSetter" };
}
