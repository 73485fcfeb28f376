// ESLint: typescript-eslint's recommended rules, no import cycles, and the layering of DESIGN.md
// as import zones (a zone lists what a folder may not import: arrows point one way, down).
const tseslint = require("typescript-eslint");
const importPlugin = require("eslint-plugin-import");

const SRC = ["util", "quant", "ops", "ir", "nn", "workflow", "march", "analysis", "transforms", "io", "display", "examples"];
/** Each layer and the layers above it, which it may not import. */
const ABOVE = {
  util: SRC.filter((l) => l !== "util"),
  quant: ["ops", "nn", "workflow", "march", "analysis", "transforms", "io", "display", "examples"],
  ops: ["nn", "workflow", "march", "analysis", "transforms", "io", "display", "examples"],
  ir: ["nn", "workflow", "march", "analysis", "transforms", "io", "display", "examples"],
  nn: ["workflow", "march", "analysis", "transforms", "io", "display", "examples"],
  workflow: ["analysis", "transforms", "io", "display", "examples"],
  march: ["analysis", "transforms", "io", "display", "examples"],
  analysis: ["transforms", "io", "display", "examples"],
  transforms: ["analysis", "io", "display", "examples"],
  io: ["analysis", "transforms", "display", "examples"],
  display: ["workflow", "march", "analysis", "transforms", "io", "examples"],
};

const zones = [
  // the library knows nothing of the kernel, scripts, benchmarks or tests
  { target: "./src", from: ["./kernel", "./cli", "./scripts", "./test", "./bench"] },
  // the kernel knows nothing of the report command that drives it
  { target: "./kernel", from: ["./cli", "./scripts", "./test", "./bench"] },
  { target: "./cli", from: ["./scripts", "./test", "./bench"] },
  ...Object.entries(ABOVE).map(([layer, above]) => ({
    target: `./src/${layer}`,
    from: above.map((a) => `./src/${a}`),
    message: `src/${layer} is below these layers (DESIGN.md): move the code down instead of importing up`,
  })),
];

module.exports = tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "report/**", "tmp/**", "eslint.config.js"] },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    plugins: { import: importPlugin },
    settings: { "import/resolver": { node: { extensions: [".ts", ".js"] } }, "import/parsers": { "@typescript-eslint/parser": [".ts"] }, "import/extensions": [".ts"] },
    rules: {
      "import/no-cycle": ["error", { ignoreExternal: true }],
      "import/no-restricted-paths": ["error", { zones }],
      "@typescript-eslint/no-require-imports": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // notebook sources are cells: a bare last expression is what the cell shows
    files: ["notebooks/src/**/*.ts"],
    rules: { "@typescript-eslint/no-unused-expressions": "off", "@typescript-eslint/no-unused-vars": "off" },
  },
  {
    // tests mutate parsed JSON and fixtures freely
    files: ["test/**/*.ts"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
);
