"""Fine-tune BERT on a downstream task (Devlin et al. 2018, section 4).

    python -m annotated_bert.finetune --task sentiment --data reviews.csv --init runs/pretrain
    python -m annotated_bert.finetune --task pair --data mrpc/train.tsv --eval-data mrpc/dev.tsv --init MINILM_DIR
    python -m annotated_bert.finetune --task ner --data conll2003/eng.train --eval-data conll2003/eng.testa --init DIR
    python -m annotated_bert.finetune --task qa --data squad_articles.json.gz --init DIR
    python -m annotated_bert.finetune --eval-only --init runs/finetune/best --eval-data test.csv

The tasks, their heads and metrics are annotated_bert.tasks'; the loop is annotated_bert.training's.
`--init` is a pretraining run of this project (its own vocabulary and tokenizer), a Hugging Face
BERT directory or Hub id (WordPiece vocab.txt), a fine-tuned output of this command, or `scratch`
(random weights: a --preset with a WordPiece --vocab, or a basic_english vocabulary built from
the training texts). `--reinit` keeps an --init checkpoint's architecture and vocabulary but
re-draws every weight: the "no pretraining" control with everything else equal.

With `--budget-minutes` the learning-rate schedule follows whichever is further along, steps or
time, so the decay ends when the budget does. `--layer-lr-decay` gives each layer below the head
a smaller learning rate than the one above (ULMFiT's discriminative fine-tuning; Sun et al. 2019
use 0.95 on BERT-base, ELECTRA 0.8). Under `torchrun --nproc_per_node N -m annotated_bert.finetune
...` it trains with DistributedDataParallel: `--batch-size` is the global batch, each process takes
every N-th example of it, and evaluation is split between the processes and gathered.

Writes OUT/metrics.jsonl (epoch, step, split and the task's metrics), OUT/curves.png (loss and
validation metrics against steps), OUT/best/ (the best model by the validation metric, in the
Hugging Face layout, with vocab.txt and finetune.json) and OUT/checkpoint.pt (to --resume), all
atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import torch

from annotated_bert.checkpoints import CheckpointError
from annotated_bert.config import PRESETS
from annotated_bert.data import DataError
from annotated_bert.files import append_jsonl
from annotated_bert.interop import load_tokenizer
from annotated_bert.plots import plot_curves
from annotated_bert.runtime import (POSITIVE, PROBABILITY, HelpFormatter, at_least, check_ranges, distributed,
                                    is_main, run_cli, say, setup_device)
from annotated_bert.tasks import (MAIN_METRIC, TASKS, Encoding, build_task_data, build_task_model, collate, evaluate,
                                  length_grouped_batches, load_finetuned, read_finetune_meta, save_finetuned,
                                  scratch_tokenizer, shard, tokenizer_kind)
from annotated_bert.tokenization import Vocab, WordTokenizer
from annotated_bert.training import (Plan, Schedule, TrainState, fit, format_metrics, make_optimizer, restore,
                                     start_run)
from annotated_bert.wordpiece import WordPieceTokenizer

TASK_HELP = {
    "sentiment": "[CLS] text [SEP] -> a class (accuracy; F1 with two classes)",
    "pair": "[CLS] A [SEP] B [SEP] -> a class (accuracy, F1)",
    "ner": "[CLS] word pieces [SEP] -> a tag per word (entity F1, conlleval)",
    "qa": "[CLS] question [SEP] passage window [SEP] -> an answer span (exact match, F1; SQuAD v1.1)",
}
# flag -> (test, what it must be), as train.TRAIN_RANGES
FINETUNE_RANGES = {
    "val_fraction": PROBABILITY, "limit": at_least(1), "max_length": at_least(8), "head_tokens": at_least(0),
    "doc_stride": at_least(1), "max_answer_length": at_least(1), "dropout": PROBABILITY,
    "attention_dropout": PROBABILITY, "epochs": at_least(1), "batch_size": at_least(1), "lr": POSITIVE,
    "warmup": PROBABILITY, "weight_decay": at_least(0), "clip": POSITIVE, "budget_minutes": POSITIVE,
    "layer_lr_decay": ((lambda x: 0 < x <= 1), "in (0, 1] (1 turns it off)"), "eval_every": at_least(0),
    "eval_batch_size": at_least(1), "threads": at_least(1), "log_every": at_least(1),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m annotated_bert.finetune",
                                description=__doc__.split("\n\n")[0] + " See the module docstring or the README.",
                                epilog="Tasks: " + "; ".join(f"{t}: {what}" for t, what in TASK_HELP.items()),
                                formatter_class=HelpFormatter)
    g = p.add_argument_group("task and data")
    g.add_argument("--task", choices=TASKS, help="what to fine-tune for (read from --init with --eval-only)")
    g.add_argument("--data", help="training file: a CSV (sentiment: review/text/sentence + label/sentiment columns; pair: "
                                  "sentence1, sentence2, label), a GLUE TSV (MRPC), CoNLL-2003 (ner), SQuAD JSON (qa)")
    g.add_argument("--eval-data", help="validation file, which chooses the best model; default: a held-out slice of --data")
    g.add_argument("--test-data", metavar="FILE",
                   help="a test file, evaluated once at the end with the best model by validation; writes a "
                        "'test' record to metrics.jsonl (the test set never chooses anything)")
    g.add_argument("--text-column", metavar="NAME", default=None,
                   help="sentiment CSVs: the text column (default: the first of review, text, sentence)")
    g.add_argument("--label-column", metavar="NAME", default=None,
                   help="sentiment and pair CSVs: the label column (default: label, else sentiment)")
    g.add_argument("--val-fraction", type=float, default=0.1,
                   help="held out of --data when there is no --eval-data (qa: by article, 8 of 40)")
    g.add_argument("--limit", type=int, default=None, help="use only the first N training examples")
    g.add_argument("--max-length", type=int, default=256, help="tokens per input, [CLS] and [SEP] included")
    g.add_argument("--truncation", choices=("head+tail", "head", "tail"), default="head+tail",
                   help="which part of a long single text to keep")
    g.add_argument("--head-tokens", type=int, default=None,
                   help="with head+tail: tokens kept from the start (default: a quarter of the budget)")
    g.add_argument("--ner-scheme", choices=("BIO", "BIOES"), default="BIO", help="tags the NER head predicts")
    g.add_argument("--doc-stride", type=int, default=128, help="qa: overlap between passage windows")
    g.add_argument("--max-answer-length", type=int, default=30, help="qa: longest answer span, in tokens")

    g = p.add_argument_group("model")
    g.add_argument("--init", default=None,
                   help="a pretraining run directory, a Hugging Face BERT directory, a fine-tuned output, or 'scratch'")
    g.add_argument("--reinit", action="store_true",
                   help="keep --init's architecture and vocabulary but re-draw all weights (no-pretraining control)")
    g.add_argument("--preset", default="bert-mini", help=f"with --init scratch: {', '.join(PRESETS)}")
    g.add_argument("--vocab", help="with --init scratch: a WordPiece vocab.txt (default: basic_english vocabulary "
                                   "built from the training texts)")
    g.add_argument("--dropout", type=float, default=None, help="hidden and attention dropout (default: the model's)")
    g.add_argument("--attention-dropout", type=float, default=None,
                   help="dropout on the attention probabilities alone (default: --dropout, else the model's); "
                        "0 lets PyTorch use its fused attention kernel, much faster on CPU")

    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=3, help="passes over the training examples (BERT: 2 to 4)")
    g.add_argument("--batch-size", type=int, default=16, help="examples per optimizer step, over all processes")
    g.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (BERT's range: 2e-5 to 5e-5)")
    g.add_argument("--warmup", type=float, default=0.1, help="fraction of training spent warming up")
    g.add_argument("--weight-decay", type=float, default=0.01, help="AdamW decay, not on biases and LayerNorm (BERT's 0.01)")
    g.add_argument("--layer-lr-decay", type=float, default=1.0,
                   help="layer-wise learning-rate decay: the task head gets --lr, each layer below it this factor "
                        "times the layer above, the embeddings the smallest (1: one rate for all; ELECTRA: 0.8)")
    g.add_argument("--clip", type=float, default=1.0, help="clip the gradient norm to this value")
    g.add_argument("--budget-minutes", type=float, default=None,
                   help="stop training after this many minutes (the schedule adapts), then evaluate")

    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0,
                   help="one seed: the held-out slice, the batch order, new weights and dropout")
    g.add_argument("--out", default=os.path.join("runs", "finetune"),
                   help="directory for metrics, curves, best/ and the checkpoint")
    g.add_argument("--resume", metavar="DIR", help="continue the fine-tuning run saved in DIR")
    g.add_argument("--eval-only", action="store_true",
                   help="evaluate the --init model (a fine-tuned output) on --eval-data; print one JSON line")
    g.add_argument("--eval-every", type=int, default=0, help="also evaluate every N steps (0: at epoch ends)")
    g.add_argument("--log-every", type=int, default=50, help="write a train record to metrics.jsonl every N steps")
    g.add_argument("--eval-batch-size", type=int, default=64, help="examples per batch when evaluating")
    g.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N, mps")
    g.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: autocast matmuls to bfloat16 (faster on GPUs and on CPUs with AVX-512 BF16 or AMX; "
                        "slower on CPUs without them)")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def get_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if not args.resume and not args.eval_only:
        if not args.task or not args.data or not args.init:
            p.error("--task, --data and --init are required (or --resume DIR, or --eval-only)")
    if args.eval_only and (not args.init or not args.eval_data):
        p.error("--eval-only needs --init (a fine-tuned output directory) and --eval-data")
    check_ranges(p, args, FINETUNE_RANGES)
    return args


def encoding(args: argparse.Namespace) -> Encoding:
    return Encoding(args.max_length, args.truncation, args.head_tokens, args.ner_scheme, args.doc_stride)


def task_data(args, path: str, tok, labels: list[str] | None = None, hold_out: float = 0.0, limit=None):
    return build_task_data(args.task, path, tok, encoding(args), labels, hold_out=hold_out, seed=args.seed,
                           limit=limit, text_column=args.text_column, label_column=args.label_column,
                           progress=not args.quiet)


def evaluate_on(model, d, args, labels: list[str], pad_id: int) -> dict[str, float]:
    return evaluate(model, d, args.task, labels, ner_scheme=args.ner_scheme, max_answer_length=args.max_answer_length,
                    batch_size=args.eval_batch_size, pad_id=pad_id, precision=args.precision, progress=not args.quiet)


def eval_only(args: argparse.Namespace) -> int:
    """Evaluate a fine-tuned output on --eval-data, encoded as it was trained; one JSON line."""
    meta = read_finetune_meta(args.init)
    for k in ("task", "max_length", "truncation", "head_tokens", "ner_scheme", "doc_stride"):
        setattr(args, k, meta.get(k, getattr(args, k)))
    device = setup_device(args.device, args.precision)
    model, tok, _ = load_finetuned(args.init, device)
    d, _, labels = task_data(args, args.eval_data, tok, meta["labels"])
    metrics = evaluate_on(model, d, args, labels, tok.pad_token_id)
    say(json.dumps({"task": args.task, "eval_data": args.eval_data, **metrics}, sort_keys=True))
    return 0


def finetune(args: argparse.Namespace) -> int:
    # ---- setup
    checkpoint, args, device, rank, world = start_run(args)
    torch.manual_seed(args.seed)

    # ---- tokenizer, data, model
    if checkpoint is not None:  # the run's own vocabulary (a scratch vocabulary is rebuilt identically, but be sure)
        tok = (WordTokenizer(Vocab(checkpoint["vocab"])) if checkpoint["data"]["tokenizer"] == "basic_english"
               else WordPieceTokenizer(checkpoint["vocab"]))
    elif args.init == "scratch":
        tok = WordPieceTokenizer.from_file(args.vocab) if args.vocab else scratch_tokenizer(
            args.task, args.data, args.text_column, args.label_column)
    else:
        try:
            tok = load_tokenizer(args.init)
        except CheckpointError as e:
            raise CheckpointError(f"--init: {e}; or --init scratch for random weights") from None
    train_d, val_d, labels = task_data(args, args.data, tok, hold_out=0.0 if args.eval_data else args.val_fraction,
                                       limit=args.limit)
    if args.eval_data:
        val_d, _, _ = task_data(args, args.eval_data, tok, labels)
    if len(train_d) == 0:
        raise DataError(f"{args.data} leaves no training examples ({len(val_d or []):,} held out for validation): "
                        "give more data, or a separate --eval-data")
    if not val_d:
        raise DataError(f"{args.eval_data or args.data} gives no validation examples: "
                        "check the file, or pass another --eval-data")
    test_d = task_data(args, args.test_data, tok, labels)[0] if args.test_data else None
    dropout = {} if args.dropout is None else {"hidden_dropout_prob": args.dropout,
                                               "attention_probs_dropout_prob": args.dropout}
    if args.attention_dropout is not None:
        dropout["attention_probs_dropout_prob"] = args.attention_dropout
    model = build_task_model(args.task, len(labels), tok, args.init, preset_name=args.preset, reinit=args.reinit,
                             seed=args.seed, max_length=args.max_length, dropout=dropout).to(device).train()
    optimizer = make_optimizer(model, args.lr, args.weight_decay, args.layer_lr_decay, device)
    state = restore(checkpoint, model, optimizer) if checkpoint is not None else TrainState()
    steps_per_epoch = -(-len(train_d) // args.batch_size)   # the last batch may be smaller
    plan = Plan(out=args.out, epochs=args.epochs, steps_per_epoch=steps_per_epoch, batch_size=args.batch_size,
                schedule=Schedule(args.lr, steps_per_epoch * args.epochs, args.warmup,
                                  args.budget_minutes * 60 if args.budget_minutes else None),
                clip=args.clip, precision=args.precision, log_every=args.log_every, eval_every=args.eval_every,
                quiet=args.quiet, command="python -m annotated_bert.finetune")
    meta = {"task": args.task, "labels": labels, "tokenizer": tokenizer_kind(tok), **vars(encoding(args)),
            "init": args.init, "reinit": args.reinit}
    say(f"{args.task}: {len(train_d):,} training and {len(val_d):,} validation inputs, {len(labels)} labels; "
        f"model {model.num_parameters():,} parameters from {args.init}{' (re-initialised)' if args.reinit else ''}; "
        f"{plan.schedule.total_steps:,} steps of {args.batch_size}" + (f" over {world} processes" if world > 1 else "")
        + (f", budget {args.budget_minutes:g} min" if args.budget_minutes else ""))

    # ---- the loop: batches of similar lengths, each process taking every world-th example of each
    best_dir = os.path.join(args.out, "best")
    code = fit(model, optimizer, plan, state,
               batches=lambda epoch: length_grouped_batches([len(x) for x in train_d.input_ids], args.batch_size,
                                                            args.seed, epoch),
               load=lambda idx: {k: v.to(device) for k, v in
                                 collate(train_d, shard(idx, rank, world), args.task, tok.pad_token_id).items()},
               validate=lambda: evaluate_on(model, val_d, args, labels, tok.pad_token_id),
               checkpoint_extra={"kind": "finetuning", "args": vars(args), "config": model.config.to_dict(),
                                 "vocab": list(tok.ids_to_tokens), "data": {"tokenizer": tokenizer_kind(tok)}},
               forward=distributed(model, device), main_metric=MAIN_METRIC[args.task],
               on_best=lambda metrics: save_finetuned(model, tok, best_dir, {**meta, "step": state.step,
                                                                              "metrics": metrics}),
               plot=lambda: plot_curves(os.path.join(args.out, "metrics.jsonl"), os.path.join(args.out, "curves.png"),
                                        args.task, MAIN_METRIC[args.task]))
    if code != 0:
        return code
    say(f"done: best validation {MAIN_METRIC[args.task]} {state.best:.4f}; model in {best_dir}")
    if test_d is not None:  # once, with the model validation chose
        best, best_tok, _ = load_finetuned(best_dir, device)
        metrics = evaluate_on(best, test_d, args, labels, best_tok.pad_token_id)
        if is_main():
            append_jsonl(os.path.join(args.out, "metrics.jsonl"),
                         {"split": "test", "step": read_finetune_meta(best_dir)["step"], "test_data": args.test_data,
                          **metrics})
        say(f"test ({args.test_data}, the best model by validation): {format_metrics(metrics)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return run_cli(lambda: eval_only(args) if args.eval_only else finetune(args),
                   (DataError, CheckpointError, FileNotFoundError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
