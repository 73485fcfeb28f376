/**
 * Builds notebooks/NN_name.ipynb from notebooks/src/NN_name.ts ("percent" format: cells start
 * with `// %%`, markdown cells with `// %% [markdown]` and lines prefixed `// `).
 * `npm run notebooks:build` writes them; `checkNotebooks()` says which are out of date.
 */
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { NbCell, Notebook } from "../cli/notebookHtml";

export const NOTEBOOK_DIR = path.join(__dirname, "..", "..", "notebooks");

export function parsePercent(text: string): NbCell[] {
  const cells: NbCell[] = [];
  let cur: { kind: "markdown" | "code"; lines: string[] } | null = null;
  const flush = () => {
    if (cur === null) return;
    while (cur.lines.length && cur.lines[cur.lines.length - 1].trim() === "") cur.lines.pop();
    while (cur.lines.length && cur.lines[0].trim() === "") cur.lines.shift();
    const body = cur.lines.join("\n");
    const source = body.split(/(?<=\n)/);
    if (cur.kind === "markdown") cells.push({ cell_type: "markdown", source });
    else cells.push({ cell_type: "code", source, outputs: [], execution_count: null });
    cur = null;
  };
  for (const line of text.split("\n")) {
    const m = /^\/\/ %%( \[markdown\])?\s*$/.exec(line);
    if (m) {
      flush();
      cur = { kind: m[1] ? "markdown" : "code", lines: [] };
    } else if (cur !== null) cur.lines.push(cur.kind === "markdown" ? line.replace(/^\/\/ ?/, "") : line);
  }
  flush();
  return cells;
}

export function toNotebook(cells: NbCell[]): Notebook {
  return {
    cells: cells.map((c) => (c.cell_type === "code" ? { ...c, metadata: {} } : { ...c, metadata: {} })) as NbCell[],
    metadata: {
      kernelspec: { name: "quantbook", display_name: "TypeScript (quantbook)", language: "typescript" },
      language_info: { name: "typescript", file_extension: ".ts", mimetype: "text/typescript" },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
}

export function sources(): string[] {
  return readdirSync(path.join(NOTEBOOK_DIR, "src"))
    .filter((f) => /^\d\d_.*\.ts$/.test(f))
    .sort();
}

function render(file: string): string {
  const nb = toNotebook(parsePercent(readFileSync(path.join(NOTEBOOK_DIR, "src", file), "utf8")));
  nb.cells.forEach((c, i) => Object.assign(c, { id: `cell-${i}` }));
  return `${JSON.stringify(nb, null, 1)}\n`;
}

/** Notebooks whose .ipynb differs from what their source builds. */
export function checkNotebooks(): string[] {
  return sources().filter((f) => {
    const target = path.join(NOTEBOOK_DIR, f.replace(/\.ts$/, ".ipynb"));
    try {
      return readFileSync(target, "utf8") !== render(f);
    } catch {
      return true;
    }
  });
}

if (require.main === module) {
  for (const f of sources()) {
    writeFileSync(path.join(NOTEBOOK_DIR, f.replace(/\.ts$/, ".ipynb")), render(f));
    console.log(`notebooks/${f.replace(/\.ts$/, ".ipynb")}`);
  }
}
