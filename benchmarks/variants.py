"""What each BERT variant buys on the same CPU budget: BERT (MLM + NSP), RoBERTa-style (MLM only,
dynamic masking), ALBERT (MLM + SOP, factorized embedding, one shared block) and ELECTRA
(replaced-token detection), each pretrained for the same wall-clock minutes on the same data and
probed by the same fine-tuning, beside the same probe from random weights.

    python benchmarks/variants.py                       # everything (about 2 hours on a 2-core CPU)
    python benchmarks/variants.py --minutes 20 --only bert albert

Data (from $ANNOTATED_BERT_SHARED_DATA): IMDb train + unsup, 75,000 reviews, through the IMDb
benchmark's pipeline: a 16,000-piece WordPiece vocabulary (trained by the first row, reused by
the others), whole reviews packed into 257-token chunks; for the rows with a pair task each chunk
is cut at a sentence boundary into A and B (NSP: B from another review half the time; SOP: A and
B swapped half the time). Pretraining: `bert-mini`'s width and depth (ALBERT: `albert-mini`), 15%
masked, batch 32, lr 1e-3 (ELECTRA 3e-4), sin/cos positions, no dropout, --budget-minutes; bf16
autocast where the CPU computes bfloat16 in hardware, fp32 elsewhere (or --precision).
The probe: IMDb sentiment fine-tuned on the first 5,000 training reviews outside the 2,500-review
validation slice that `finetune --seed 0` holds out, 128 tokens (head + tail), 1 epoch, batch 32,
lr 2e-4, evaluated on that slice, once per fine-tuning seed (0 and 1).

Every step writes runs/variants/<name>/ and is skipped when its result is there, so an
interrupted benchmark continues where it stopped. The table goes to runs/variants/table.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

import numpy as np

from annotated_bert.checkpoints import CheckpointError, load_training_checkpoint
from annotated_bert.data import read_table
from annotated_bert.files import atomic_write_text, read_jsonl
from annotated_bert.runtime import cpu_has_native_bf16

DATA = os.environ.get("ANNOTATED_BERT_SHARED_DATA", os.path.join("..", "shared", "data"))
OUT = os.path.join("runs", "variants")
ROWS = {  # name: (what it is, its flags)
    "bert": ("BERT: MLM + NSP", ["--preset", "bert-mini", "--pair-task", "nsp", "--masking", "static"]),
    "roberta": ("RoBERTa-style: MLM only, dynamic masking", ["--preset", "bert-mini", "--pair-task", "none",
                                                             "--masking", "dynamic"]),
    "albert": ("ALBERT: MLM + SOP, factorized embedding, shared block",
               ["--preset", "albert-mini", "--pair-task", "sop", "--masking", "static"]),
    "electra": ("ELECTRA: replaced-token detection", ["--preset", "bert-mini", "--objective", "electra",
                                                      "--lr", "3e-4", "--masking", "dynamic"]),
}
SEEDS = (0, 1)


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def probe_files(data: str) -> tuple[str, str]:
    """The probe's CSVs: the 2,500 reviews `finetune --seed 0` holds out of imdb_train, and the
    first 5,000 of the others in file order."""
    train, val = os.path.join(OUT, "probe_train.csv"), os.path.join(OUT, "probe_val.csv")
    if not os.path.exists(val):
        df = read_table(os.path.join(data, "imdb_train.csv.gz"), log=lambda *_: None)[["review", "sentiment"]]
        order = np.random.default_rng(0).permutation(len(df))           # annotated_bert.tasks.build_task_data
        held = np.sort(order[:round(0.1 * len(df))])
        rest = np.setdiff1d(np.arange(len(df)), held)
        atomic_write_text(train, df.iloc[rest[:5000]].to_csv(index=False))
        atomic_write_text(val, df.iloc[held].to_csv(index=False))
    return train, val


def finished(directory: str) -> bool:
    try:
        return bool(load_training_checkpoint(directory).get("finished"))
    except CheckpointError:
        return False


def pretrain(name: str, flags: list[str], data: str, minutes: float, precision: str) -> None:
    out = os.path.join(OUT, name)
    if finished(out):
        return
    if os.path.exists(os.path.join(out, "checkpoint.pt")):   # interrupted: the rest of its budget
        run([sys.executable, "-m", "annotated_bert.train", "--resume", out, "--quiet"])
        return
    vocab = os.path.join(OUT, "bert", "vocab.txt")
    tokenizer = ["--tokenizer", "wordpiece"] + (["--vocab", vocab] if name != "bert" else ["--vocab-size", "16000"])
    run([sys.executable, "-m", "annotated_bert.train", "--data", os.path.join(data, "imdb_train.csv.gz"),
         "--data", os.path.join(data, "imdb_unsup.csv.gz"), "--ds-to", "-1", "--layout", "packed", *tokenizer,
         "--context-length", "128", "--batch-size", "32", "--lr", "1e-3", "--positions", "sinusoidal", "--dropout", "0",
         "--precision", precision, "--epochs", "3", "--budget-minutes", str(minutes), "--save-every", "250",
         "--quiet", "--out", out, *flags])


def overlap_baseline(data: str) -> float:
    """The word-overlap logistic regression's held-out NSP accuracy on the BERT row's pairs."""
    path = os.path.join(OUT, "nsp_overlap.json")
    if not os.path.exists(path):
        out = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "nsp_baseline.py"),
                              "--data", os.path.join(data, "imdb_train.csv.gz"), "--data",
                              os.path.join(data, "imdb_unsup.csv.gz"), "--ds-to", "-1", "--layout", "packed",
                              "--pair-task", "nsp", "--tokenizer", "wordpiece", "--vocab",
                              os.path.join(OUT, "bert", "vocab.txt"), "--context-length", "128"],
                             check=True, capture_output=True, text=True).stdout
        accuracy = float(out.strip().splitlines()[-1].split("|")[-2])
        atomic_write_text(path, json.dumps({"val_accuracy": accuracy}))
    with open(path) as f:
        return json.load(f)["val_accuracy"]


def finetune(name: str, seed: int, train: str, val: str, precision: str, reinit: bool = False) -> float:
    """The probe's best validation accuracy; `reinit`: the same model and vocabulary, weights re-drawn."""
    out = os.path.join(OUT, f"ft-{'random' if reinit else name}-s{seed}")
    if not os.path.exists(os.path.join(out, "best", "finetune.json")) or not finished(out):
        run([sys.executable, "-m", "annotated_bert.finetune", "--task", "sentiment", "--data", train,
             "--eval-data", val, "--init", os.path.join(OUT, name), "--max-length", "128", "--epochs", "1",
             "--batch-size", "32", "--lr", "2e-4", "--dropout", "0.1", "--attention-dropout", "0",
             "--precision", precision, "--seed", str(seed), "--quiet", "--out", out, *(["--reinit"] if reinit else [])])
    return max(r["accuracy"] for r in read_jsonl(os.path.join(out, "metrics.jsonl")) if r["split"] == "val")


def cls_spread(name: str, val: str, n: int = 256) -> float:
    """How much the last layer's [CLS] vector varies from review to review: its standard deviation
    over the first `n` probe-validation reviews (128 tokens), averaged over dimensions. A vector
    that barely moves gives the probe's classifier nothing to read."""
    import torch

    from annotated_bert.interop import load_tokenizer
    from annotated_bert.models import model_type_of, task_class

    directory = os.path.join(OUT, name)
    texts = read_table(val, log=lambda *_: None)["review"].tolist()[:n]
    model, _ = task_class("sentiment", model_type_of(directory)).from_pretrained(directory, num_labels=2,
                                                                                 output_loading_info=True)
    batch = load_tokenizer(directory)(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        h = getattr(model.eval(), model.base_model_prefix)(batch["input_ids"], batch["token_type_ids"],
                                                           batch["attention_mask"]).last_hidden_state
    return h[:, 0].std(0).mean().item()


def pretraining_summary(name: str) -> dict:
    records = read_jsonl(os.path.join(OUT, name, "metrics.jsonl"))
    train = [r for r in records if r["split"] == "train"]
    val = [r for r in records if r["split"] == "val"][-1]
    state = load_training_checkpoint(os.path.join(OUT, name))
    weights, seen = {}, set()   # each tensor once (the MLM decoder shares the token table), buffers left out
    for k, v in state["model"].items():
        if "position_encoding" not in k and v.data_ptr() not in seen:
            seen.add(v.data_ptr())
            weights[k] = v.numel()
    kept = sum(n for k, n in weights.items() if k.startswith(("bert.", "albert.")))
    total = sum(weights.values())
    return {"steps": state["step"], "samples_per_s": statistics.median(r["samples_per_s"] for r in train[2:] or train),
            "parameters": total, "encoder_parameters": kept,
            "mlm_acc": val.get("mlm_acc"), "rtd_acc": val.get("rtd_acc"),
            "pair_acc": val.get("nsp_acc", val.get("sop_acc")), "pair_task": "nsp" if "nsp_acc" in val else
            "sop" if "sop_acc" in val else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DATA, help="the folder holding imdb_train.csv.gz and imdb_unsup.csv.gz")
    p.add_argument("--minutes", type=float, default=20, help="each pretraining's wall-clock budget")
    p.add_argument("--only", nargs="+", choices=list(ROWS), help="some of the rows (bert first: it makes the vocabulary)")
    p.add_argument("--precision", choices=("fp32", "bf16"),
                   help="autocast for every run (default: bf16 where the CPU has bfloat16 instructions, else fp32)")
    args = p.parse_args(argv)
    missing = [f for f in ("imdb_train.csv.gz", "imdb_unsup.csv.gz") if not os.path.exists(os.path.join(args.data, f))]
    if missing:
        p.error(f"{', '.join(missing)} not in {args.data}: pass --data path/to/folder or set ANNOTATED_BERT_SHARED_DATA")
    precision = args.precision or ("bf16" if cpu_has_native_bf16() else "fp32")
    os.makedirs(OUT, exist_ok=True)
    rows = args.only or list(ROWS)
    train, val = probe_files(args.data)
    results = {}
    for name in rows:
        pretrain(name, ROWS[name][1], args.data, args.minutes, precision)
        results[name] = pretraining_summary(name) | {"imdb": [finetune(name, s, train, val, precision) for s in SEEDS],
                                                     "cls_spread": cls_spread(name, val)}
    # the reference: what the probe gives with no pretraining at all
    no_pretraining = [finetune("bert", s, train, val, precision, reinit=True) for s in SEEDS] if "bert" in rows else None
    overlap = overlap_baseline(args.data) if "bert" in rows else None
    lines = ["| variant | parameters (kept for fine-tuning) | steps in the budget | training samples/s | "
             "held-out MLM accuracy | pair task: held-out accuracy | [CLS] spread across reviews | "
             "IMDb validation accuracy (seeds 0, 1) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        pretraining = f"{r['mlm_acc']:.3f}" if r["rtd_acc"] is None else f"{r['mlm_acc']:.3f} (generator); replaced-token accuracy {r['rtd_acc']:.3f}"
        pair = "none" if r["pair_task"] is None else f"{r['pair_task'].upper()} {r['pair_acc']:.3f}" + (
            f" (word overlap: {overlap:.3f})" if r["pair_task"] == "nsp" and overlap is not None else
            " (word overlap: 0.5 by construction)" if r["pair_task"] == "sop" else "")
        lines.append(f"| {ROWS[name][0]} | {r['parameters'] / 1e6:.1f}M ({r['encoder_parameters'] / 1e6:.1f}M) | "
                     f"{r['steps']:,} | {r['samples_per_s']:.1f} | {pretraining} | {pair} | {r['cls_spread']:.3f} | "
                     f"{r['imdb'][0]:.4f}, {r['imdb'][1]:.4f} (mean {sum(r['imdb']) / 2:.4f}) |")
    if no_pretraining:
        lines.append(f"| no pretraining: the BERT row's model and vocabulary, weights re-drawn (`--reinit`) | "
                     f"{results['bert']['encoder_parameters'] / 1e6:.1f}M | 0 | | | | | "
                     f"{no_pretraining[0]:.4f}, {no_pretraining[1]:.4f} (mean {sum(no_pretraining) / 2:.4f}) |")
    table = "\n".join(lines) + "\n"
    atomic_write_text(os.path.join(OUT, "table.md"), table)
    atomic_write_text(os.path.join(OUT, "results.json"), json.dumps({"rows": results, "no_pretraining": no_pretraining, "nsp_overlap": overlap, "precision": precision,
                                                                        "minutes": args.minutes}, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
