// quantbook's floors, lowest first: the one list ESLint's import zones (eslint.config.js) and the
// architecture page (docs/ARCHITECTURE.md, checked by test/architecture.test.ts) are made from. A
// folder of src/ may import folders on lower floors only — never a higher floor, never a sibling.
module.exports = {
  FLOORS: [
    ["util"],
    ["wasm"],
    ["quant"],
    ["ir"],
    ["ops"],
    ["nn", "display"],
    ["march", "transforms", "examples"],
    ["workflow"],
    ["convert"],
    ["analysis", "io"],
    ["planner"],
    ["api"],
  ],
};
