"""The notebooks (every name in notebooks/build.py's NOTEBOOKS): each committed .ipynb matches its
jupytext source cell by cell and carries clean outputs (no errors, machine paths, throughput
figures or progress bars); and (slow) each source runs top to bottom on the embedded IMDb sample,
which fails whenever one of its hand-written checks disagrees with the library, and reproduces
the committed data-derived outputs exactly."""

import importlib.util

import pytest

from conftest import REPO

jupytext = pytest.importorskip("jupytext", reason="the notebook tests need the dev extras: pip install -e '.[dev]'")
nbformat = pytest.importorskip("nbformat", reason="the notebook tests need the dev extras: pip install -e '.[dev]'")

NOTEBOOKS_DIR = REPO / "notebooks"
_spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOKS_DIR / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

# The first cell whose outputs come from training (trained numbers may differ in the last digits on
# another CPU). Every cell before it shows data-derived outputs, which must reproduce exactly.
TRAINED_FROM = {"walkthrough": "train.main(", "real_bert": "def fine_tune("}
EXPECTED_IMAGES = {"walkthrough": 5}  # lengths, position encoding, GELU, loss curves, attention
WALKTHROUGH_SHAPES = ("[12, 55, 64]", "[12, 4, 55, 16]", "[12, 4, 55, 55]", "[12, 2]")
# what no committed output may show: a machine path, a throughput figure, a tqdm bar
FORBIDDEN = ("/work/", "/tmp/", "/home/", "/Users/", "site-packages", "samples/s", "it/s]")
TEXT_KINDS = ("text/plain", "text/markdown", "text/html")


def regenerate(name: str) -> str:
    return f"python notebooks/build.py {name}"


def source_of(name: str):
    path = build.source(name)
    assert path.exists(), f"notebooks/build.py lists {name!r} but notebooks/{path.name} does not exist"
    return jupytext.read(path)


def committed(name: str):
    path = build.notebook(name)
    assert path.exists(), f"notebooks/{path.name} is missing; build it with: {regenerate(name)}"
    return nbformat.read(path, as_version=4)


def cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def output_texts(cell) -> list[str]:
    """The text of each of a code cell's outputs: streams, tracebacks and the textual forms of
    rich outputs (images are left out)."""
    texts = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            texts.append(o.text)
        elif o.output_type == "error":
            texts.append("\n".join(o.traceback))
        else:
            texts += [o.data[k] for k in TEXT_KINDS if k in o.get("data", {})]
    return texts


def images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def data_derived(nb, name: str) -> list[tuple[str, list[str]]]:
    """(source, output texts) of every code cell before the first one that trains."""
    out = []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        if TRAINED_FROM[name] in c.source:
            return out
        out.append((c.source, output_texts(c)))
    raise AssertionError(f"no cell of {name} contains {TRAINED_FROM[name]!r}; update TRAINED_FROM")


@pytest.mark.parametrize("name", build.NOTEBOOKS)
def test_committed_notebook_matches_its_source(name):
    source, saved = cells(source_of(name)), cells(committed(name))
    for i, (a, b) in enumerate(zip(source, saved)):
        assert a == b, (f"cell {i} of {name}.ipynb differs from {name}.py "
                        f"({b[1].splitlines()[:1]} vs {a[1].splitlines()[:1]}); regenerate it with: {regenerate(name)}")
    assert len(source) == len(saved), (f"{name}.ipynb has {len(saved)} cells, {name}.py {len(source)}; "
                                       f"regenerate it with: {regenerate(name)}")


@pytest.mark.parametrize("name", build.NOTEBOOKS)
def test_committed_notebook_has_clean_outputs(name):
    nb = committed(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    empty = [i for i, c in enumerate(code) if not c.outputs]
    assert not empty, f"code cells {empty} of {name}.ipynb have no output; regenerate it with: {regenerate(name)}"
    errors = [o.get("ename") for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{name}.ipynb was saved with errors {errors}"
    for i, c in enumerate(code):
        for text in output_texts(c):
            for word in FORBIDDEN:
                assert word not in text, f"code cell {i} of {name}.ipynb shows {word!r}: {text[:300]!r}"
    assert images(nb) >= EXPECTED_IMAGES.get(name, 0), f"{name}.ipynb has {images(nb)} plots"


@pytest.mark.slow
@pytest.mark.parametrize("name", build.NOTEBOOKS)
def test_notebook_runs_and_reproduces(name, tmp_path, monkeypatch):
    pytest.importorskip("nbclient", reason="needs the dev extras: pip install -e '.[dev]'")
    monkeypatch.delenv("ANNOTATED_BERT_DATA", raising=False)              # the embedded sample
    monkeypatch.setenv("ANNOTATED_BERT_RUN", str(tmp_path / "run"))       # not the repository's runs/
    nb = source_of(name)
    build.execute(nb)  # in notebooks/, as build.py runs it; a failed assert raises CellExecutionError
    if name == "walkthrough":
        text = "".join(t for c in nb.cells if c.cell_type == "code" for t in output_texts(c))
        for shape in WALKTHROUGH_SHAPES:
            assert shape in text, f"the walkthrough's shape {shape} was not printed"
        assert (tmp_path / "run" / "checkpoint.pt").exists(), "the training run wrote no checkpoint"
    assert images(nb) >= EXPECTED_IMAGES.get(name, 0), f"the executed {name} has {images(nb)} plots"
    again, saved = data_derived(nb, name), data_derived(committed(name), name)
    assert len(again) == len(saved), f"{name}.ipynb is out of date; regenerate it with: {regenerate(name)}"
    for (src, new), (_, old) in zip(again, saved):
        assert new == old, (f"the outputs of the cell starting {src.splitlines()[0]!r} differ from the committed "
                            f"ones:\n{new}\nvs\n{old}")


def test_forbidden_words_are_caught():
    """The output check itself: a path, a throughput and a tqdm bar are each found."""
    fake = nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output("stream", name="stdout", text=t)
                                                   for t in ("/tmp/x", "12 samples/s", "10/10 [00:01, 9.1it/s]")])
    found = [w for text in output_texts(fake) for w in FORBIDDEN if w in text]
    assert found == ["/tmp/", "samples/s", "it/s]"]
