"""The notebook: its committed .ipynb matches its jupytext source and carries outputs, and the
source runs top to bottom on the real IMDb data (skipped when the data is absent)."""

import importlib.util

import pytest

from conftest import IMDB_TRAIN, REPO

jupytext = pytest.importorskip("jupytext", reason="the notebook tests need the dev extras: pip install -e '.[dev]'")
nbformat = pytest.importorskip("nbformat", reason="the notebook tests need the dev extras: pip install -e '.[dev]'")

NOTEBOOKS = REPO / "notebooks"
SOURCE = NOTEBOOKS / "walkthrough.py"
NOTEBOOK = NOTEBOOKS / "walkthrough.ipynb"
REGENERATE = "ANNOTATED_BERT_DATA=../shared/data/imdb_train.csv.gz python notebooks/build.py"
EXPECTED_IMAGES = 4  # length histogram, position encoding, loss curves, attention heatmap


def cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_committed_notebook_matches_its_source():
    source, committed = cells(jupytext.read(SOURCE)), cells(nbformat.read(NOTEBOOK, as_version=4))
    for i, (a, b) in enumerate(zip(source, committed)):
        assert a == b, (f"cell {i} of {NOTEBOOK.name} differs from {SOURCE.name} "
                        f"({b[1].splitlines()[:1]} vs {a[1].splitlines()[:1]}); regenerate it with: {REGENERATE}")
    assert len(source) == len(committed), (f"{NOTEBOOK.name} has {len(committed)} cells, {SOURCE.name} "
                                           f"{len(source)}; regenerate it with: {REGENERATE}")


def test_committed_notebook_has_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    empty = [i for i, c in enumerate(code) if not c.outputs]
    assert not empty, f"code cells {empty} of {NOTEBOOK.name} have no output; regenerate it with: {REGENERATE}"
    errors = [o.get("ename") for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{NOTEBOOK.name} was saved with errors {errors}"
    assert images(nb) >= EXPECTED_IMAGES, f"{NOTEBOOK.name} has {images(nb)} plots, expected {EXPECTED_IMAGES}"


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    if not IMDB_TRAIN.exists():
        pytest.skip(f"real IMDb data not found at {IMDB_TRAIN} (set ANNOTATED_BERT_SHARED_DATA to its folder)")
    pytest.importorskip("nbclient", reason="needs the dev extras: pip install -e '.[dev]'")
    monkeypatch.setenv("ANNOTATED_BERT_DATA", str(IMDB_TRAIN))
    monkeypatch.setenv("ANNOTATED_BERT_RUN", str(tmp_path / "run"))  # not the repository's runs/notebook
    nb = jupytext.read(SOURCE)
    # executed as notebooks/build.py executes it (in notebooks/, where Jupyter runs it); a cell error
    # raises CellExecutionError with the traceback
    spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOKS / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.execute(nb)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    for shape in ("[12, 55, 64]", "[12, 4, 55, 16]", "[12, 4, 55, 55]", "[12, 2]"):
        assert shape in text, f"the walkthrough's shape {shape} was not printed"
    assert images(nb) >= EXPECTED_IMAGES, f"the executed notebook has {images(nb)} plots, expected {EXPECTED_IMAGES}"
    assert (tmp_path / "run" / "checkpoint.pt").exists(), "section 7's training run wrote no checkpoint"
