/**
 * Vega-Lite specs → SVG in Node (vega 5 / vega-lite 5, CommonJS; loaded on first use), so a plot
 * shows in static HTML and in notebooks opened without a running kernel.
 */
export type VegaLiteSpec = Record<string, unknown> & { $schema?: string };

export const VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json";
export const VEGA_LITE_MIME = "application/vnd.vegalite.v5+json";

export function isVegaLiteSpec(v: unknown): v is VegaLiteSpec {
  return (
    v !== null &&
    typeof v === "object" &&
    typeof (v as VegaLiteSpec).$schema === "string" &&
    /vega-lite/.test((v as VegaLiteSpec).$schema as string)
  );
}

/** Renders a Vega-Lite spec to an SVG string. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const vega = require("vega") as typeof import("vega");
  const vl = require("vega-lite") as typeof import("vega-lite");
  const compiled = vl.compile(spec as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
