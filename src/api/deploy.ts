/**
 * `qb.deploy`: the decision, out to the deployment toolchain — the integer model `convert` makes
 * (`HbModel`), PTQ YAML, the plugin's qconfig snippet, node info and QDQ ONNX.
 */
export * from "../io/deploy";
export { HbModel } from "../convert/convert";
