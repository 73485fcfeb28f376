export { toMimeBundle, DISPLAY_SYMBOL, type MimeBundle } from "./mime";
export { display, displayBundle, clearOutput, setDisplaySink, type DisplayOptions, type DisplaySink } from "./sink";
export { displayProgress } from "./progress";
export { renderSvg, isVegaLiteSpec, VEGA_LITE_MIME, type VegaLiteSpec } from "./vega";
export { escapeHtml, htmlTable } from "../util/display";
export * as plots from "./plots";
export { toDataFrame } from "../util/table";
