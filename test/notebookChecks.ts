import type { Notebook } from "../cli/notebookHtml";

export interface Expectation {
  plots: number;
  tables: number;
  checks: { pattern: string; min?: number; max?: number }[];
}

const join = (s: unknown) => (Array.isArray(s) ? s.join("") : typeof s === "string" ? s : "");

/** Every problem with an executed notebook's outputs (empty when it meets its expectation). */
export function notebookProblems(nb: Notebook, exp: Expectation): string[] {
  const problems: string[] = [];
  let text = "";
  let plots = 0;
  let tables = 0;
  for (const cell of nb.cells) {
    for (const o of cell.outputs ?? []) {
      if (o.output_type === "error") problems.push(`error output: ${o.ename}: ${o.evalue}`);
      if (o.output_type === "stream") text += join(o.text);
      const d = o.data ?? {};
      if (d["text/plain"] !== undefined) text += `${join(d["text/plain"])}\n`;
      // nbformat may store text as a list of lines
      if (join(d["image/svg+xml"]).includes("<svg") && d["application/vnd.vegalite.v5+json"] !== undefined) plots++;
      if (join(d["text/html"]).includes("<table")) tables++;
    }
  }
  if (plots < exp.plots) problems.push(`${plots} plots, expected at least ${exp.plots}`);
  if (tables < exp.tables) problems.push(`${tables} tables, expected at least ${exp.tables}`);
  for (const c of exp.checks) {
    const m = new RegExp(c.pattern).exec(text);
    if (m === null) {
      problems.push(`no output matches /${c.pattern}/`);
      continue;
    }
    if (c.min === undefined && c.max === undefined) continue;
    const v = Number(m[1]);
    if (!(v >= (c.min ?? -Infinity) && v <= (c.max ?? Infinity)))
      problems.push(`/${c.pattern}/ gave ${v}, expected within [${c.min ?? "-inf"}, ${c.max ?? "inf"}]`);
  }
  return problems;
}
