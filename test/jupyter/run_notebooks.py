"""Executes notebooks with Jupyter's nbclient on the quantbook kernel (run by test/jupyter.test.ts).

usage: run_notebooks.py OUT_DIR NOTEBOOK...
Writes each executed notebook to OUT_DIR; exits non-zero if a cell raised.
"""
import os
import sys

import nbclient
import nbformat


def main(out_dir, paths):
    failed = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        client = nbclient.NotebookClient(nb, kernel_name="quantbook", timeout=600,
                                         resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
        try:
            client.execute()
            status = "ok"
        except nbclient.exceptions.CellExecutionError as e:
            failed += 1
            status = "FAILED: " + str(e).splitlines()[-1][:300]
        nbformat.write(nb, os.path.join(out_dir, os.path.basename(path)))
        print(os.path.basename(path), status, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
