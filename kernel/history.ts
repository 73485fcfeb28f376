/** Execution history for history_request: tail, range and search (glob patterns). */

export interface Entry {
  session: number;
  line: number;
  input: string;
  output: string | null;
}

export class History {
  private readonly entries: Entry[] = [];
  readonly session = 1;

  add(line: number, input: string): Entry {
    const e = { session: this.session, line, input, output: null };
    this.entries.push(e);
    return e;
  }

  private format(es: Entry[], output: boolean): unknown[] {
    return es.map((e) => [e.session, e.line, output ? [e.input, e.output] : e.input]);
  }

  query(c: {
    hist_access_type?: string;
    output?: boolean;
    n?: number;
    session?: number;
    start?: number;
    stop?: number;
    pattern?: string;
    unique?: boolean;
  }): unknown[] {
    const output = Boolean(c.output);
    switch (c.hist_access_type) {
      case "tail":
        return this.format(this.entries.slice(-(c.n ?? 10)), output);
      case "range": {
        const session = c.session === undefined || c.session <= 0 ? this.session : c.session;
        if (session !== this.session) return [];
        const start = c.start ?? 1;
        const stop = c.stop ?? Infinity;
        return this.format(
          this.entries.filter((e) => e.line >= start && e.line < stop),
          output,
        );
      }
      case "search": {
        const glob = c.pattern ?? "*";
        const re = new RegExp(
          `^${glob
            .replace(/[.+^${}()|[\]\\]/g, "\\$&")
            .replace(/\*/g, ".*")
            .replace(/\?/g, ".")}$`,
          "s",
        );
        let found = this.entries.filter((e) => re.test(e.input));
        if (c.unique) {
          const seen = new Set<string>();
          found = found
            .reverse()
            .filter((e) => (seen.has(e.input) ? false : (seen.add(e.input), true)))
            .reverse();
        }
        if (c.n !== undefined && c.n > 0) found = found.slice(-c.n);
        return this.format(found, output);
      }
      default:
        return [];
    }
  }
}
