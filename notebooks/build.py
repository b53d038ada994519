"""Regenerate notebooks/walkthrough.ipynb from its source of truth, walkthrough.py
(jupytext percent format), and execute it so the committed notebook carries its outputs.

    ANNOTATED_BERT_DATA=../shared/data/imdb_train.csv.gz python notebooks/build.py

Runs from any folder. Uses jupytext and nbclient (the project's dev extras), the current
environment's "python3" kernel, and merges each cell's progress-bar updates into their final
state (nbclient's coalesce_streams) so the notebook stays small.
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
SOURCE = HERE / "walkthrough.py"
NOTEBOOK = HERE / "walkthrough.ipynb"


def execute(nb: nbformat.NotebookNode, timeout: int = 900) -> nbformat.NotebookNode:
    """Run every cell in notebooks/ with the python3 kernel; raises CellExecutionError on an error.

    nbclient waits only 4 s by default for a cell's last outputs after the cell has finished, and
    then silently drops them: on a loaded machine a plot or a printed shape could go missing. Here
    it waits up to a minute, and a timeout is an error rather than a notebook with holes."""
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", coalesce_streams=True,
                            iopub_timeout=60, raise_on_iopub_timeout=True,
                            record_timing=False, resources={"metadata": {"path": str(HERE)}})
    return client.execute()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--no-execute", action="store_true", help="only convert, leaving the outputs empty")
    p.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell")
    args = p.parse_args(argv)
    nb = jupytext.read(SOURCE)
    if not args.no_execute:
        t0 = time.perf_counter()
        execute(nb, args.timeout)
        print(f"executed {SOURCE.name} in {time.perf_counter() - t0:.0f} s")
    nbformat.write(nb, NOTEBOOK)
    print(f"wrote {NOTEBOOK}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
