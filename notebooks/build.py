"""Build the notebooks: convert each jupytext source (notebooks/NAME.py, percent format) to
notebooks/NAME.ipynb and execute it, so the committed notebook carries its outputs.

    python notebooks/build.py                  # every notebook in NOTEBOOKS
    python notebooks/build.py walkthrough      # one
    python notebooks/build.py --no-execute     # only convert, leaving the outputs empty

Runs from any folder, on the embedded IMDb sample unless ANNOTATED_BERT_DATA says otherwise.
Uses jupytext and nbclient (the project's dev extras) and the current environment's "python3"
kernel. The notebooks turn progress bars off themselves; nbclient's coalesce_streams merges each
cell's stream pieces into one output.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = ["walkthrough", "real_bert"]  # built in this order


def source(name: str) -> Path:
    return HERE / f"{name}.py"


def notebook(name: str) -> Path:
    return HERE / f"{name}.ipynb"


def execute(nb: nbformat.NotebookNode, timeout: int = 900) -> nbformat.NotebookNode:
    """Run every cell in notebooks/ with the python3 kernel; raises CellExecutionError on an error.

    nbclient waits only 4 s by default for a cell's last outputs after the cell has finished, and
    then silently drops them: on a loaded machine a plot or a printed shape could go missing. Here
    it waits up to a minute, and a timeout is an error rather than a notebook with holes."""
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", coalesce_streams=True,
                            iopub_timeout=60, raise_on_iopub_timeout=True,
                            record_timing=False, resources={"metadata": {"path": str(HERE)}})
    return client.execute()


def build(name: str, run: bool = True, timeout: int = 900) -> None:
    nb = jupytext.read(source(name))
    if run:
        t0 = time.perf_counter()
        execute(nb, timeout)
        print(f"executed {source(name).name} in {time.perf_counter() - t0:.0f} s")
    nbformat.write(nb, notebook(name))
    print(f"wrote notebooks/{notebook(name).name}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"the notebooks to build, of {', '.join(NOTEBOOKS)} (default: all)")
    p.add_argument("--no-execute", action="store_true", help="only convert, leaving the outputs empty")
    p.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in NOTEBOOKS]
    if unknown:
        p.error(f"unknown notebook {', '.join(unknown)}; choose from {', '.join(NOTEBOOKS)}")
    names = args.names or NOTEBOOKS
    missing = [n for n in names if not source(n).exists()]
    if missing:
        print(f"error: no source for {', '.join(f'notebooks/{n}.py' for n in missing)}", file=sys.stderr)
        return 1
    for name in names:
        build(name, run=not args.no_execute, timeout=args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
