/**
 * Vega-Lite specs for the plots the notebooks and the report show. Data are summarised in JS
 * (binned, sampled) so specs stay small; display them with `qb.display.show(spec)` or as a cell's
 * last value.
 */
import * as tf from "@tensorflow/tfjs";
import { VEGA_LITE_SCHEMA, type VegaLiteSpec } from "./vega";
import { errors } from "../messages";

type Values = tf.Tensor | ArrayLike<number>;

function toArray(v: Values): Float32Array {
  return v instanceof tf.Tensor ? (v.dataSync() as Float32Array) : Float32Array.from(v);
}

function base(title: string, extra: Record<string, unknown> = {}): VegaLiteSpec {
  return { $schema: VEGA_LITE_SCHEMA, title, width: 460, height: 220, ...extra };
}

/** Histogram with `bins` equal bins between min and max; `logCount` puts counts on a log axis. */
export function histogram(
  values: Values,
  opts: { bins?: number; logCount?: boolean; title?: string; xTitle?: string } = {},
): VegaLiteSpec {
  const data = toArray(values);
  const bins = opts.bins ?? 60;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const width = hi > lo ? (hi - lo) / bins : 1;
  const counts = new Array<number>(bins).fill(0);
  for (const v of data) counts[Math.min(bins - 1, Math.floor((v - lo) / width))]++;
  // on a log axis a bar cannot start at 0: it starts at 0.5 (below the smallest count, 1)
  const rows = counts
    .map((count, i) => ({ start: lo + i * width, end: lo + (i + 1) * width, count, base: opts.logCount ? 0.5 : 0 }))
    .filter((r) => !opts.logCount || r.count > 0);
  return base(opts.title ?? "Histogram", {
    data: { values: rows },
    mark: { type: "bar", tooltip: true },
    encoding: {
      x: { field: "start", type: "quantitative", bin: { binned: true }, title: opts.xTitle ?? "value" },
      x2: { field: "end" },
      y: {
        field: "count",
        type: "quantitative",
        scale: opts.logCount ? { type: "log" } : {},
        title: opts.logCount ? "count (log)" : "count",
      },
      y2: { field: "base" },
    },
  });
}

/**
 * Distribution of |x| on a log axis with the band that rounds to zero at `scale` (|x| < scale/2)
 * shaded: the picture of the mul-output trap.
 */
export function zeroBandHistogram(
  values: Values,
  scale: number,
  opts: { title?: string; bins?: number } = {},
): VegaLiteSpec {
  const data = toArray(values);
  const logs: number[] = [];
  let zeroed = 0;
  for (const v of data) {
    if (v === 0) continue;
    logs.push(Math.log10(Math.abs(v)));
    if (Math.abs(v) <= scale / 2) zeroed++;
  }
  const hist = histogram(logs, { bins: opts.bins ?? 80, logCount: true });
  const cut = Math.log10(scale / 2);
  const lo = Math.min(...(hist.data as { values: { start: number }[] }).values.map((r) => r.start), cut);
  return base(
    opts.title ??
      `|x| and the band that rounds to 0 at scale ${scale.toExponential(2)}: ${((100 * zeroed) / Math.max(data.length, 1)).toFixed(1)}% of values`,
    {
      layer: [
        {
          data: { values: [{ from: lo, to: cut }] },
          mark: { type: "rect", color: "#f4a6a6", opacity: 0.5 },
          encoding: { x: { field: "from", type: "quantitative" }, x2: { field: "to" } },
        },
        {
          data: hist.data,
          mark: { type: "bar", tooltip: true },
          encoding: {
            ...(hist.encoding as object),
            x: { field: "start", type: "quantitative", bin: { binned: true }, title: "log10 |x|" },
          },
        },
        {
          data: { values: [{ at: cut }] },
          mark: { type: "rule", color: "#c0392b", strokeDash: [4, 3] },
          encoding: { x: { field: "at", type: "quantitative" } },
        },
      ],
    },
  );
}

interface ScaleSweepRow {
  setting: string;
  scale: number;
  zero_fraction: number;
  output_l1: number;
  clipped_fraction?: number;
  op_rmse?: number;
}

/** The slider's range and step over log10(scale): on the sweep's grid when the sweep is log-uniform. */
function sliderRange(rows: ScaleSweepRow[]): { min: number; max: number; step: number } {
  const logs = rows.map((r) => Math.log10(r.scale)).sort((a, b) => a - b);
  const sweep = rows
    .filter((r) => r.setting.startsWith("sweep "))
    .map((r) => Math.log10(r.scale))
    .sort((a, b) => a - b);
  const gaps = sweep.slice(1).map((v, i) => v - sweep[i]);
  const uniform = gaps.length >= 2 && gaps.every((g) => Math.abs(g - gaps[0]) < 1e-6 && g > 0);
  const round = (v: number) => Math.round(v * 1e6) / 1e6;
  if (uniform)
    return {
      min: round(Math.min(sweep[0], logs[0])),
      max: round(Math.max(sweep[sweep.length - 1], logs[logs.length - 1])),
      step: round(gaps[0]),
    };
  return { min: Math.floor(logs[0] * 100) / 100, max: Math.ceil(logs[logs.length - 1] * 100) / 100, step: 0.01 };
}

/**
 * Scale explorer rows as an interactive chart: model-output error and fraction rounded to zero
 * against the scale, and a slider over the scales (a Vega-Lite `params` binding) that marks the
 * nearest explored scale in both panels and states its numbers. With `values` (the op's float
 * output) a third panel shows log10 |x| with the band that rounds to zero at the slider's scale,
 * moving as the slider moves. Static renderers (SVG) draw it at the first setting's scale.
 */
export function scaleSweepChart(
  rows: ScaleSweepRow[],
  opts: { title?: string; values?: Values; bins?: number } = {},
): VegaLiteSpec {
  if (rows.length === 0)
    throw errors.invalidArgument("scaleSweepChart", "no rows", "pass the rows qb.analysis.scaleExplorer returns");
  const { min, max, step } = sliderRange(rows);
  const start = Math.log10(rows[0].scale);
  const data = rows.map((r) => ({ ...r, kind: r.setting.startsWith("sweep ") ? "sweep" : r.setting }));
  const nearest = [
    { calculate: "abs(log(datum.scale) / LN10 - log_scale)", as: "distance" },
    { joinaggregate: [{ op: "min", field: "distance", as: "best" }] },
    { filter: "datum.distance == datum.best" },
    { window: [{ op: "row_number", as: "rank" }] },
    { filter: "datum.rank == 1" },
  ];
  const tooltip = [
    { field: "setting", type: "nominal" },
    { field: "scale", type: "quantitative", format: ".3e" },
    { field: "zero_fraction", type: "quantitative", format: ".1%", title: "rounded to 0" },
    { field: "output_l1", type: "quantitative", format: ".3e", title: "output L1" },
  ];
  const x = { field: "scale", type: "quantitative", scale: { type: "log" }, title: "output scale (log)" };
  const panel = (field: string, title: string, log: boolean) => {
    const y = { field, type: "quantitative", title, scale: log ? { type: "log" } : {} };
    return {
      width: 300,
      height: 200,
      layer: [
        { transform: [{ filter: "datum.kind == 'sweep'" }], mark: { type: "line", color: "#aaa" }, encoding: { x, y } },
        {
          mark: { type: "point", filled: true, size: 70, tooltip: true },
          encoding: { x, y, color: { field: "kind", type: "nominal", title: "setting" }, tooltip },
        },
        { transform: nearest, mark: { type: "point", size: 260, strokeWidth: 2, color: "#000" }, encoding: { x, y } },
        {
          data: { values: [{}] },
          transform: [{ calculate: "pow(10, log_scale)", as: "at" }],
          mark: { type: "rule", color: "#c0392b", strokeDash: [4, 3] },
          encoding: { x: { field: "at", type: "quantitative" } },
        },
      ],
    };
  };
  const summary = {
    width: 620,
    height: 18,
    transform: [
      ...nearest,
      {
        calculate:
          "'scale ' + format(datum.scale, '.3e') + ' (' + datum.setting + '): ' + format(datum.zero_fraction, '.1%') + ' of nonzero values round to 0, model output L1 ' + format(datum.output_l1, '.3e')",
        as: "label",
      },
    ],
    mark: { type: "text", align: "left", x: 0, y: 9, fontSize: 13 },
    encoding: { text: { field: "label" } },
  };
  const sections: unknown[] = [
    summary,
    {
      hconcat: [
        panel("output_l1", "model output L1 (log)", true),
        panel("zero_fraction", "fraction rounded to 0", false),
      ],
    },
  ];
  if (opts.values !== undefined) {
    const logs: number[] = [];
    for (const v of toArray(opts.values)) if (v !== 0) logs.push(Math.log10(Math.abs(v)));
    const hist = histogram(logs, { bins: opts.bins ?? 80, logCount: true });
    const lo = Math.min(
      ...(hist.data as { values: { start: number }[] }).values.map((r) => r.start),
      min - Math.log10(2),
    );
    sections.push({
      width: 620,
      height: 160,
      layer: [
        {
          data: { values: [{ from: lo }] },
          transform: [{ calculate: "log_scale - log(2) / LN10", as: "to" }],
          mark: { type: "rect", color: "#f4a6a6", opacity: 0.5 },
          encoding: {
            x: { field: "from", type: "quantitative", title: "log10 |x| (shaded: rounds to 0 at the slider's scale)" },
            x2: { field: "to" },
          },
        },
        {
          data: hist.data,
          mark: { type: "bar", tooltip: true },
          encoding: {
            ...(hist.encoding as object),
            x: { field: "start", type: "quantitative", bin: { binned: true } },
          },
        },
      ],
    });
  }
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: opts.title ?? "Scale explorer (move the slider)",
    params: [
      {
        name: "log_scale",
        value: Math.round(start * 1e6) / 1e6,
        bind: { input: "range", min, max, step, name: "output scale, log10 " },
      },
    ],
    data: { values: data },
    vconcat: sections,
  };
}

/** Horizontal bars of a sensitivity table, worst first. */
export function sensitivityBars(
  rows: { op_name: string; sensitive_type: string; value: number }[],
  opts: { topk?: number; metric?: string; title?: string } = {},
): VegaLiteSpec {
  const top = rows
    .slice(0, opts.topk ?? 12)
    .map((r) => ({ op: `${r.op_name} (${r.sensitive_type})`, value: r.value, type: r.sensitive_type }));
  return base(opts.title ?? `Sensitivity (${opts.metric ?? "L1"}), worst first`, {
    height: Math.max(120, 22 * top.length),
    data: { values: top },
    mark: { type: "bar", tooltip: true },
    encoding: {
      y: { field: "op", type: "nominal", sort: null, title: null },
      x: { field: "value", type: "quantitative", title: opts.metric ?? "L1" },
      color: { field: "type", type: "nominal", title: "type" },
    },
  });
}

/**
 * Per output channel: the RMS error of the weight quantized int8 per channel against int16 per
 * tensor (what the broadcast mul + sum rewrite trades), from `qb.analysis.weightQuantError(weight)`.
 */
export function weightQuantErrorChart(
  rows: { channel: number; scheme: string; rmse: number }[],
  opts: { title?: string } = {},
): VegaLiteSpec {
  if (!Array.isArray(rows)) {
    throw errors.invalidArgument(
      "weightQuantErrorChart",
      "a tensor (plots draw computed rows)",
      "pass qb.analysis.weightQuantError(weight), the rows it computes",
    );
  }
  return base(opts.title ?? "Weight quantization error per output channel", {
    data: { values: rows },
    mark: { type: "line", point: true, tooltip: true },
    encoding: {
      x: { field: "channel", type: "quantitative", title: "output channel" },
      y: { field: "rmse", type: "quantitative", scale: { type: "log" }, title: "RMS error (log)" },
      color: { field: "scheme", type: "nominal", title: null },
    },
  });
}

/** Bars of estimated latency per configuration. */
export function latencyBars(
  items: { config: string; latencyMs: number }[],
  opts: { title?: string } = {},
): VegaLiteSpec {
  return base(opts.title ?? "Estimated latency (analytic model, not a chip measurement)", {
    height: Math.max(100, 30 * items.length),
    data: { values: items.map((i) => ({ config: i.config, latency_us: i.latencyMs * 1000 })) },
    mark: { type: "bar", tooltip: true },
    encoding: {
      y: { field: "config", type: "nominal", sort: null, title: null },
      x: { field: "latency_us", type: "quantitative", title: "µs" },
    },
  });
}

/** Accuracy against latency, one labelled point per configuration. */
export function accuracyVsLatency(
  items: { config: string; latencyMs: number; error: number }[],
  opts: { title?: string; errorTitle?: string } = {},
): VegaLiteSpec {
  const values = items.map((i) => ({ config: i.config, latency_us: i.latencyMs * 1000, error: i.error }));
  const enc = {
    x: { field: "latency_us", type: "quantitative", title: "estimated latency (µs)" },
    y: {
      field: "error",
      type: "quantitative",
      scale: { type: "log" },
      title: opts.errorTitle ?? "output error vs float (log)",
    },
  };
  return base(opts.title ?? "Accuracy against estimated latency", {
    data: { values },
    layer: [
      {
        mark: { type: "point", filled: true, size: 100, tooltip: true },
        encoding: { ...enc, color: { field: "config", type: "nominal", legend: null } },
      },
      { mark: { type: "text", align: "left", dx: 8, dy: -6 }, encoding: { ...enc, text: { field: "config" } } },
    ],
  });
}

/** Quantized against float outputs (a deterministic sample of at most `sample` points) with y = x. */
export function outputScatter(
  floatOut: Values,
  quantOut: Values,
  opts: { sample?: number; title?: string } = {},
): VegaLiteSpec {
  const a = toArray(floatOut);
  const b = toArray(quantOut);
  const n = Math.min(opts.sample ?? 1500, a.length);
  const step = a.length / n;
  const values = Array.from({ length: n }, (_, i) => ({
    float: a[Math.floor(i * step)],
    quantized: b[Math.floor(i * step)],
  }));
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v.float);
    hi = Math.max(hi, v.float);
  }
  return base(opts.title ?? "Quantized against float output", {
    width: 300,
    height: 300,
    layer: [
      {
        data: {
          values: [
            { x: lo, y: lo },
            { x: hi, y: hi },
          ],
        },
        mark: { type: "line", color: "#999", strokeDash: [4, 3] },
        encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } },
      },
      {
        data: { values },
        mark: { type: "point", size: 8, opacity: 0.5 },
        encoding: { x: { field: "float", type: "quantitative" }, y: { field: "quantized", type: "quantitative" } },
      },
    ],
  });
}
