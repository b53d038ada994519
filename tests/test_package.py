"""The package's own namespace: `from annotated_bert import BertModel` and friends."""

import importlib
import re
import subprocess
import sys

import pytest

import annotated_bert


def test_every_exported_name_is_its_modules_object():
    for name in annotated_bert.__all__:
        home = importlib.import_module(f"annotated_bert.{annotated_bert._HOME[name]}")
        assert getattr(annotated_bert, name) is getattr(home, name), name
    assert set(annotated_bert.__all__) <= set(dir(annotated_bert))


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchThing"):
        annotated_bert.NoSuchThing


def test_importing_the_package_loads_no_module_and_the_clis_run_once():
    code = "import sys, annotated_bert; print(sorted(m for m in sys.modules if m.startswith('annotated_bert.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    # runpy warns ("found in sys.modules ... prior to execution") if the package had imported the CLI module
    for cli in ("train", "finetune", "predict", "data"):
        run = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", f"annotated_bert.{cli}", "--help"],
                             capture_output=True, text=True)
        assert run.returncode == 0 and "usage:" in run.stdout and "Warning" not in run.stderr, (cli, run.stderr)


@pytest.mark.parametrize("cli", ["train", "finetune"])
def test_every_flag_explains_itself_and_every_range_names_a_flag(cli):
    module = importlib.import_module(f"annotated_bert.{cli}")
    parser = module.build_parser()
    flags = {a.dest: a for a in parser._actions if a.dest != "help"}
    assert [d for d, a in flags.items() if not a.help] == []
    ranges = module.TRAIN_RANGES if cli == "train" else module.FINETUNE_RANGES
    # --help shows a default once, and only a real one: not "None", not a second one after the help's own
    text = " ".join(parser.format_help().split())
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "(default: 0.1)" in text  # --val-fraction's, added by the formatter
    assert not re.search(r"default:[^()]*\) \(default:", text), text
    assert set(ranges) <= set(flags)


def _imports() -> dict[str, set[str]]:
    """Each module of the package -> the package modules it imports (anywhere in its file)."""
    import ast
    import pathlib
    root = pathlib.Path(annotated_bert.__file__).parent
    names = {p.stem for p in root.glob("*.py")} - {"__init__", "__main__"}
    graph = {}
    for name in names:
        tree = ast.parse((root / f"{name}.py").read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("annotated_bert."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.ImportFrom) and node.module == "annotated_bert":
                found |= {a.name for a in node.names if a.name in names}
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("annotated_bert.")}
        graph[name] = found & names - {name}
    return graph


def test_the_import_graph_has_no_cycle_and_the_clis_import_no_cli():
    graph = _imports()
    clis = {"train", "finetune", "predict"}
    assert clis <= set(graph)
    assert {cli: graph[cli] & clis for cli in clis} == {cli: set() for cli in clis}
    assert not any(graph[m] & clis for m in graph if m not in clis), "a library module imports a CLI"
    done, visiting = set(), []

    def visit(module):   # depth-first; a module met again while still on the path closes a cycle
        if module in visiting:
            raise AssertionError("import cycle: " + " -> ".join(visiting[visiting.index(module):] + [module]))
        if module not in done:
            visiting.append(module)
            for m in sorted(graph[module]):
                visit(m)
            visiting.pop()
            done.add(module)

    for module in sorted(graph):
        visit(module)
