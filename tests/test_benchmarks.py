"""Scripts of benchmarks/ that have logic worth testing."""

import json
import os

def _load_plot_imdb():
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "plot_imdb.py")
    spec = importlib.util.spec_from_file_location("plot_imdb", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plot_imdb_draws_the_runs_it_finds_and_refuses_none(tmp_path, capsys):
    """benchmarks/plot_imdb.py reads runs/<name>/metrics.jsonl: the runs present are drawn, the
    missing ones are named, and with no fine-tuning run at all it stops with a clear error."""
    plot_imdb = _load_plot_imdb()
    runs, out = tmp_path / "runs", tmp_path / "imdb.png"
    assert plot_imdb.main(["--runs", str(runs), "--out", str(out)]) == 2
    assert "none of the IMDb fine-tuning runs" in capsys.readouterr().err and not out.exists()

    def write(name, records):
        (runs / name).mkdir(parents=True)
        (runs / name / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    write("imdb-pretrain-m25", [{"split": "train", "step": 50, "mlm_loss": 7.0},
                                {"split": "val", "step": 100, "mlm_loss": 6.0}])
    write("random-imdb", [{"split": "train", "step": 10, "elapsed_s": 60.0},
                          {"split": "val", "step": 10, "accuracy": 0.8}])
    assert plot_imdb.main(["--runs", str(runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "imdb-pretrain/metrics.jsonl not found" in printed and "pretrained-imdb-m40" in printed
    assert "random-imdb" not in printed
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_imdb.val_curve(str(runs / "random-imdb" / "metrics.jsonl")) == [(1.0, 0.8)]


