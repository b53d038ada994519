"""Fine-tuning CLI on small generated data for every task (the real-data runs are benchmarks)."""

import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest

from annotated_bert import finetune, predict, tasks
from annotated_bert.checkpoints import load_training_checkpoint
from annotated_bert.data import DataError, read_classification
from annotated_bert.files import read_jsonl
from annotated_bert.inference import TaskPredictor
from annotated_bert.ner import convert_tags, entity_scores, read_conll
from annotated_bert.runtime import EXIT_INTERRUPTED
from annotated_bert.squad import read_squad
from annotated_bert.wordpiece_trainer import train_wordpiece

TINY = ["--init", "scratch", "--preset", "bert-tiny", "--quiet", "--max-length", "32", "--batch-size", "8"]
FILLER = "the film movie plot story scene music actor script ending".split()


@pytest.fixture
def sentiment_csv(tmp_path):
    rng = random.Random(0)
    rows = []
    for i in range(240):
        label = rng.choice(["positive", "negative"])
        words = [rng.choice(FILLER) for _ in range(rng.randint(4, 10))]
        words.insert(rng.randrange(len(words)), "great" if label == "positive" else "awful")
        rows.append((" ".join(words) + ".", label))
    path = tmp_path / "sentiment.csv"
    pd.DataFrame(rows, columns=["review", "sentiment"]).to_csv(path, index=False)
    return path


@pytest.fixture
def conll_file(tmp_path):
    rng = random.Random(0)
    people, places = ["John", "Mary", "Ali", "Chen"], ["Paris", "Lima", "Oslo", "New York"]
    lines = ["-DOCSTART- -X- -X- O", ""]
    for _ in range(120):
        person, place = rng.choice(people), rng.choice(places)
        tokens = [(person, "I-PER"), ("lives", "O"), ("in", "O")]
        tokens += [(w, "I-LOC") for w in place.split()] + [(".", "O")]
        lines += [f"{w} NN I-NP {t}" for w, t in tokens] + [""]
    path = tmp_path / "ner.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def squad_file(tmp_path):
    rng = random.Random(0)
    data = []
    for a in range(10):
        paragraphs = []
        for p in range(2):
            city, year = rng.choice(["Paris", "Rome", "Lima"]), str(rng.randint(1800, 1999))
            context = f"The museum of article {a} opened in {city} in {year}. It holds paintings and maps."
            paragraphs.append({"context": context, "qas": [
                {"id": f"{a}-{p}-city", "question": "Where did the museum open?",
                 "answers": [{"text": city, "answer_start": context.index(city)}]},
                {"id": f"{a}-{p}-year", "question": "When did the museum open?",
                 "answers": [{"text": year, "answer_start": context.index(year)}]}]})
        data.append({"title": f"Article {a}", "paragraphs": paragraphs})
    path = tmp_path / "squad.json.gz"
    with gzip.open(path, "wt") as f:
        json.dump({"version": "1.1", "data": data}, f)
    return path


def test_sentiment_learns_saves_evaluates_and_predicts(sentiment_csv, tmp_path, capsys):
    out = tmp_path / "sent"
    assert finetune.main(["--task", "sentiment", "--data", str(sentiment_csv), "--out", str(out), *TINY,
                          "--epochs", "6", "--lr", "1e-3"]) == 0
    val = [r for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "val"]
    assert {"epoch", "step", "split", "accuracy", "loss"} <= set(val[-1])
    assert max(r["accuracy"] for r in val) >= 0.9
    for name in ("config.json", "model.safetensors", "vocab.txt", "finetune.json"):
        assert (out / "best" / name).exists()
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((out / "best" / "finetune.json").read_text())
    assert meta["labels"] == ["negative", "positive"] and meta["tokenizer"] == "basic_english"
    capsys.readouterr()
    assert finetune.main(["--eval-only", "--init", str(out / "best"), "--eval-data", str(sentiment_csv), "--quiet"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["task"] == "sentiment" and line["n"] == 240 and line["accuracy"] >= 0.9
    # inference on unlabeled text: the same predictions as the evaluation, and a labeled copy of a CSV
    predictor = TaskPredictor.load(str(out / "best"))
    assert [label for label, _ in predictor.classify(["the film was great .", "an awful plot ."])] == ["positive",
                                                                                                   "negative"]
    scored = tmp_path / "scored.csv"
    assert predict.main(["--checkpoint", str(out / "best"), "classify", "--file", str(sentiment_csv),
                         "--out", str(scored)]) == 0
    df = pd.read_csv(scored)
    assert list(df.columns) == ["review", "sentiment", "prediction", "probability"] and len(df) == 240
    assert (df["prediction"] == df["sentiment"]).mean() == pytest.approx(line["accuracy"])
    assert ((0.5 <= df["probability"]) & (df["probability"] <= 1)).all()
    with pytest.raises(DataError, match="fine-tuned for 'sentiment', not for 'ner'"):
        predictor.tag("John lives in Paris")


def test_pair_task_reads_glue_tsv(tmp_path):
    rows = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    rng = random.Random(1)
    for i in range(80):
        a = " ".join(rng.choice(FILLER) for _ in range(6))
        same = rng.random() < 0.5
        b = a if same else " ".join(rng.choice(FILLER) for _ in range(6))
        rows.append(f"{int(same)}\t{i}\t{i + 1000}\t{a}\t{b}")
    path = tmp_path / "train.tsv"
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "pair"
    assert finetune.main(["--task", "pair", "--data", str(path), "--out", str(out), *TINY, "--epochs", "1"]) == 0
    val = [r for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "val"][-1]
    assert 0 <= val["accuracy"] <= 1 and 0 <= val["f1"] <= 1


def test_ner_learns_entities(conll_file, tmp_path, capsys):
    out = tmp_path / "ner"
    assert finetune.main(["--task", "ner", "--data", str(conll_file), "--out", str(out), *TINY,
                          "--epochs", "8", "--lr", "2e-3"]) == 0
    val = [r for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "val"]
    assert {"precision", "recall", "f1"} <= set(val[-1])
    assert max(r["f1"] for r in val) > 0.8
    meta = json.loads((out / "best" / "finetune.json").read_text())
    assert meta["labels"] == ["O", "B-LOC", "B-PER", "I-LOC"] or meta["labels"][0] == "O"
    # tag(): the best model's word tags score the entity F1 its evaluation recorded
    best = max(val, key=lambda r: r["f1"])
    sentences = read_conll(conll_file)
    tagged = TaskPredictor.load(str(out / "best")).tag([s.words for s in sentences])
    assert [w for w, _ in tagged[0]] == sentences[0].words
    gold = [convert_tags(s.tags, "IOB1", "BIO") for s in sentences]
    f1 = entity_scores(gold, [[t for _, t in sentence] for sentence in tagged], scheme="BIO")["f1"]
    assert f1 > 0.8 and best["f1"] > 0.8  # the validation slice is a tenth of these sentences
    capsys.readouterr()
    assert predict.main(["--checkpoint", str(out / "best"), "tag", "Mary lives in Oslo ."]) == 0
    assert capsys.readouterr().out.split()[1:] == ["lives/O", "in/O", "Oslo/B-LOC", "./O"]


def test_qa_with_a_wordpiece_vocabulary(squad_file, tmp_path, capsys):
    with gzip.open(squad_file, "rt") as f:
        texts = [p["context"] + " " + q["question"] for a in json.load(f)["data"] for p in a["paragraphs"]
                 for q in p["qas"]]
    vocab_dir = tmp_path / "vocab"
    train_wordpiece(texts, vocab_size=120, show_progress=False).save_vocabulary(vocab_dir)
    out = tmp_path / "qa"
    assert finetune.main(["--task", "qa", "--data", str(squad_file), "--out", str(out), *TINY,
                          "--vocab", str(vocab_dir / "vocab.txt"), "--epochs", "1", "--doc-stride", "8",
                          "--max-length", "24"]) == 0   # short windows: a question spans several
    val = [r for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "val"][-1]
    assert 0 <= val["exact_match"] <= 1 and 0 <= val["f1"] <= 1
    # answer(): a span of the passage, the one the evaluation decodes for the same question
    examples = read_squad(squad_file)
    predictor = TaskPredictor.load(str(out / "best"))
    answers = {ex.id: predictor.answer(ex.question, ex.context) for ex in examples}
    assert all(a in ex.context for ex, a in zip(examples, answers.values()))
    model, tok, meta = tasks.load_finetuned(str(out / "best"))
    d = tasks.qa_data(examples, tok, meta["max_length"], meta["doc_stride"])
    outputs, _ = tasks.task_outputs(model, d, "qa", 7, tok.pad_token_id)
    assert answers == tasks.qa_answers(outputs, d, max_answer_length=30)
    # --eval-only counts questions, not the passage windows they were split into
    capsys.readouterr()
    assert finetune.main(["--eval-only", "--init", str(out / "best"), "--eval-data", str(squad_file), "--quiet"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["n"] == len(examples) == 40 and line["n_inputs"] == len(d) > 40


def test_qa_needs_wordpiece(squad_file, tmp_path, capsys):
    assert finetune.main(["--task", "qa", "--data", str(squad_file), "--out", str(tmp_path / "x"), *TINY]) == 2
    assert "WordPiece --vocab" in capsys.readouterr().err


def test_test_data_is_evaluated_once_with_the_best_model(sentiment_csv, tmp_path, capsys):
    """--test-data: one 'test' record at the end, from the model validation chose, equal to what
    --eval-only gives that model on the same file."""
    out = tmp_path / "t"
    assert finetune.main(["--task", "sentiment", "--data", str(sentiment_csv), "--test-data", str(sentiment_csv),
                          "--out", str(out), *TINY, "--epochs", "3", "--lr", "1e-3"]) == 0
    records = read_jsonl(out / "metrics.jsonl")
    test = [r for r in records if r["split"] == "test"]
    assert len(test) == 1 and records[-1]["split"] == "test"
    best_step = json.loads((out / "best" / "finetune.json").read_text())["step"]
    assert test[0]["step"] == best_step and test[0]["n"] == 240
    capsys.readouterr()
    assert finetune.main(["--eval-only", "--init", str(out / "best"), "--eval-data", str(sentiment_csv), "--quiet"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["accuracy"] == test[0]["accuracy"] and again["loss"] == pytest.approx(test[0]["loss"])


def test_time_budget_stops_cleanly(sentiment_csv, tmp_path, capsys):
    out = tmp_path / "budget"
    assert finetune.main(["--task", "sentiment", "--data", str(sentiment_csv), "--out", str(out), *TINY,
                          "--epochs", "50", "--budget-minutes", "0.02"]) == 0
    assert "time budget of 0.02 minutes reached" in capsys.readouterr().out
    assert (out / "best" / "model.safetensors").exists()


@pytest.mark.slow
def test_an_eval_every_step_that_ends_an_epoch_is_evaluated_once(sentiment_csv, tmp_path):
    out = tmp_path / "every"
    assert finetune.main(["--task", "sentiment", "--data", str(sentiment_csv), "--out", str(out), *TINY,
                          "--epochs", "2", "--eval-every", "1"]) == 0
    val = [r for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "val"]
    steps = [r["step"] for r in val]
    assert steps == list(range(1, len(steps) + 1))  # one record per step, the epoch ends included once
    assert [r["epoch"] for r in val] == [1] * (len(steps) // 2) + [2] * (len(steps) // 2)


def test_interrupt_and_resume_give_the_uninterrupted_result(sentiment_csv, tmp_path, monkeypatch):
    args = ["--task", "sentiment", "--data", str(sentiment_csv), *TINY, "--epochs", "2"]
    assert finetune.main([*args, "--out", str(tmp_path / "full")]) == 0
    calls = {"n": 0}
    real = finetune.collate

    def collate_then_interrupt(*a, **k):
        calls["n"] += 1
        if calls["n"] == 30:  # mid-epoch 2 (27 steps per epoch)
            os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    monkeypatch.setattr(finetune, "collate", collate_then_interrupt)
    assert finetune.main([*args, "--out", str(tmp_path / "cut")]) == EXIT_INTERRUPTED
    monkeypatch.setattr(finetune, "collate", real)
    # as if the process had gone on logging past its checkpoint and then been killed
    saved_step = load_training_checkpoint(str(tmp_path / "cut"))["step"]
    with open(tmp_path / "cut" / "metrics.jsonl", "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in read_jsonl(tmp_path / "full" / "metrics.jsonl")
                     if r["step"] > saved_step)
    assert finetune.main(["--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    steps = lambda d: [(r["split"], r["step"]) for r in read_jsonl(d / "metrics.jsonl")]
    assert steps(tmp_path / "cut") == steps(tmp_path / "full")  # each step logged once, none lost
    last = lambda d: [r for r in read_jsonl(d / "metrics.jsonl") if r["split"] == "val"][-1]
    assert last(tmp_path / "full")["accuracy"] == last(tmp_path / "cut")["accuracy"]
    assert last(tmp_path / "full")["loss"] == pytest.approx(last(tmp_path / "cut")["loss"], abs=1e-6)


@pytest.mark.parametrize("content, message", [
    ("words,label\nhello,1\n", "no text column"),
    ("review,stars\nhello,1\n", "no label column"),
    ("review,label\ngood,a\nfine,a\nnice,a\n", "at least two classes"),
    ("review,label\ngood,a\n", "at least two classes"),
    ("review,label\ngood,a\nbad,b\n", None),  # one row each: trains on one, validates on the other
    ("review,label\ngood,a\nbad,b\nmeh,\nok, \n", "2 rows with text have no 'label' (the first is data row 3)"),
])
def test_bad_classification_files(tmp_path, content, message, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code = finetune.main(["--task", "sentiment", "--data", str(path), "--out", str(tmp_path / "x"), *TINY])
    err = capsys.readouterr().err
    if message is None:
        assert code == 0, err
    else:
        assert code == 2 and err.startswith("error: ") and message in err


def test_text_and_label_columns_by_name(tmp_path, capsys):
    rows = ["positive,great film,x", "negative,dull film,y"] * 6
    path = tmp_path / "named.csv"
    path.write_text("verdict,comment,review\n" + "\n".join(rows) + "\n")  # 'review' is a decoy
    a, _, labels = read_classification(str(path), "sentiment", "comment", "verdict")
    assert a[:2] == ["great film", "dull film"] and labels[:2] == ["positive", "negative"]
    base = ["--task", "sentiment", "--data", str(path), *TINY]
    assert finetune.main([*base, "--out", str(tmp_path / "x")]) == 2
    assert "pass --label-column NAME" in capsys.readouterr().err
    assert finetune.main([*base, "--label-column", "stars", "--out", str(tmp_path / "x")]) == 2
    assert "no column 'stars'" in capsys.readouterr().err
    argv = [*base, "--text-column", "comment", "--label-column", "verdict", "--out", str(tmp_path / "ok")]
    assert finetune.main(argv) == 0, capsys.readouterr().err
    vocab = (tmp_path / "ok" / "best" / "vocab.txt").read_text().split("\n")
    assert "great" in vocab and "x" not in vocab  # the scratch vocabulary came from the named column


def test_no_training_examples_is_an_error(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("-DOCSTART- -X- -X- O\n\n")
    assert finetune.main(["--task", "ner", "--data", str(empty), "--out", str(tmp_path / "x"), *TINY]) == 2
    assert "no training examples" in capsys.readouterr().err


def test_an_init_that_is_no_model_is_named(sentiment_csv, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert finetune.main(["--task", "sentiment", "--data", str(sentiment_csv), "--init", str(tmp_path / "empty"),
                          "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --init") and "Hugging Face" in err and "--init scratch" in err


def test_eval_data_with_unseen_labels(sentiment_csv, tmp_path, capsys):
    other = tmp_path / "other.csv"
    pd.DataFrame({"review": ["a b c"], "sentiment": ["neutral"]}).to_csv(other, index=False)
    assert finetune.main(["--task", "sentiment", "--data", str(sentiment_csv), "--eval-data", str(other),
                          "--out", str(tmp_path / "x"), *TINY]) == 2
    assert "were not seen in training" in capsys.readouterr().err


def test_from_a_pretraining_run_and_reinit(sentiment_csv, tiny_csv, tmp_path):
    from annotated_bert import train
    from annotated_bert.checkpoints import load_training_checkpoint
    pre = tmp_path / "pre"
    assert train.main(["--data", str(tiny_csv), "--ds-to", "60", "--out", str(pre), "--quiet",
                       "--context-length", "8", "--epochs", "1"]) == 0
    for extra in ([], ["--reinit"]):
        out = tmp_path / ("ft" + "".join(extra))
        assert finetune.main(["--task", "sentiment", "--data", str(sentiment_csv), "--init", str(pre),
                              "--out", str(out), "--quiet", "--max-length", "32", "--epochs", "1", *extra,
                              "--dropout", "0.2", "--attention-dropout", "0"]) == 0
        meta = json.loads((out / "best" / "finetune.json").read_text())
        assert meta["tokenizer"] == "basic_english" and meta["reinit"] == bool(extra)
        config = json.loads((out / "best" / "config.json").read_text())
        assert (config["hidden_dropout_prob"], config["attention_probs_dropout_prob"]) == (0.2, 0.0)
    # the fine-tuned model starts from the pretrained encoder: its vocabulary is the run's
    assert (tmp_path / "ft" / "best" / "vocab.txt").read_text().split("\n")[:5] == \
        load_training_checkpoint(str(pre))["vocab"][:5]


def test_layer_lr_decay_sets_the_learning_rates(sentiment_csv, tmp_path, capsys):
    out = tmp_path / "llrd"
    assert finetune.main(["--task", "sentiment", "--data", str(sentiment_csv), "--out", str(out), *TINY,
                          "--epochs", "1", "--lr", "1e-3", "--layer-lr-decay", "0.5"]) == 0
    groups = load_training_checkpoint(str(out))["optimizer"]["param_groups"]
    top = max(g["lr"] for g in groups)
    assert top > 0 and sorted({round(g["lr"] / top, 6) for g in groups}) == [0.125, 0.25, 0.5, 1.0]
    with pytest.raises(SystemExit):
        finetune.main(["--task", "sentiment", "--data", str(sentiment_csv), *TINY, "--layer-lr-decay", "0"])
    assert "--layer-lr-decay must be in (0, 1]" in capsys.readouterr().err
    for flag, value, message in [("--warmup", "1", "must be in [0, 1), got 1.0"), ("--doc-stride", "0", "must be at least 1"),
                                 ("--attention-dropout", "-0.1", "must be in [0, 1)")]:
        with pytest.raises(SystemExit):
            finetune.main(["--task", "sentiment", "--data", str(sentiment_csv), *TINY, flag, value])
        assert f"{flag} {message}" in capsys.readouterr().err


TORCHRUN = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(TORCHRUN), reason="torchrun not found")
def test_torchrun_two_processes(sentiment_csv, conll_file, tmp_path):
    """Two gloo processes, each half of every global batch. Sentiment: with no dropout and equal
    halves, the run matches a single process on the same global batches. NER: each process
    evaluates half of the sentences; the gathered F1 equals a single process's --eval-only score."""
    def torchrun(*argv):
        cmd = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "annotated_bert.finetune", *argv]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    val = lambda d: [r for r in read_jsonl(d / "metrics.jsonl") if r["split"] == "val"]
    args = ["--task", "sentiment", "--data", str(sentiment_csv), *TINY, "--epochs", "2", "--dropout", "0", "--device", "cpu"]
    assert "over 2 processes" in torchrun(*args, "--out", str(tmp_path / "ddp"))  # 216 training rows: 27 batches of 8
    assert finetune.main([*args, "--out", str(tmp_path / "single")]) == 0
    ddp, single = val(tmp_path / "ddp"), val(tmp_path / "single")
    assert [r["step"] for r in ddp] == [r["step"] for r in single] == [27, 54]
    for a, b in zip(ddp, single):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4) and a["accuracy"] == b["accuracy"]

    out = tmp_path / "ner"
    torchrun("--task", "ner", "--data", str(conll_file), "--eval-data", str(conll_file), *TINY, "--epochs", "2",
             "--lr", "2e-3", "--device", "cpu", "--out", str(out))
    best = max(val(out), key=lambda r: r["f1"])
    code = subprocess.run([sys.executable, "-m", "annotated_bert.finetune", "--eval-only", "--init", str(out / "best"),
                           "--eval-data", str(conll_file), "--quiet"], capture_output=True, text=True)
    single = json.loads(code.stdout.strip().splitlines()[-1])
    assert single["n"] == 120 and single["f1"] == pytest.approx(best["f1"]) and 0 < best["f1"]
