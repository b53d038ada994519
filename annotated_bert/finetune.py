"""Fine-tune BERT on a downstream task (BERT paper section 4; ../shared/BRIEF.md section 3).

    python -m annotated_bert.finetune --task sentiment --data imdb_train.csv.gz --init runs/pretrain
    python -m annotated_bert.finetune --task pair --data mrpc/train.tsv --eval-data mrpc/dev.tsv --init MINILM_DIR
    python -m annotated_bert.finetune --task ner --data conll2003/eng.train --eval-data conll2003/eng.testa --init DIR
    python -m annotated_bert.finetune --task qa --data squad_articles.json.gz --init DIR
    python -m annotated_bert.finetune --eval-only --init runs/finetune/best --eval-data test.csv

Tasks and their heads (annotated_bert.model):
    sentiment  [CLS] text [SEP]            -> BertForSequenceClassification   metric: accuracy
    pair       [CLS] A [SEP] B [SEP]       -> BertForSequenceClassification   metrics: accuracy, F1
    ner        [CLS] word pieces [SEP]     -> BertForTokenClassification      metric: entity F1 (conlleval)
    qa         [CLS] question [SEP] passage window [SEP] -> BertForQuestionAnswering  metrics: EM, F1 (SQuAD v1.1)

`--init` is a pretraining run of this project (its own vocabulary and tokenizer), a Hugging Face
BERT directory (WordPiece vocab.txt), a fine-tuned output of this command, or `scratch`
(random weights: a --preset with a WordPiece --vocab, or a basic_english vocabulary built from
the training texts). `--reinit` keeps an --init checkpoint's architecture and vocabulary but
re-draws every weight: the "no pretraining" control with everything else equal.

Long reviews keep their head and their tail (Sun et al. 2019, "How to Fine-Tune BERT for Text
Classification": 128 + 382 tokens was best on IMDb). Batches group texts of similar length, which
on a CPU roughly halves the time spent on padding. With `--budget-minutes` the learning-rate
schedule follows whichever is further along, steps or time, so the decay ends when the budget does.
`--layer-lr-decay` gives each layer below the head a smaller learning rate than the one above
(ULMFiT's discriminative fine-tuning; Sun et al. 2019 use 0.95 on BERT-base, ELECTRA 0.8).

Under `torchrun --nproc_per_node N -m annotated_bert.finetune ...` it trains with
DistributedDataParallel (gloo on CPU, nccl on GPU): `--batch-size` is the global batch, each process
takes every N-th example of it, and evaluation is split between the processes and gathered.

Writes OUT/metrics.jsonl (epoch, step, split and the task's metrics), OUT/curves.png (loss and
validation metrics against steps), OUT/best/ (the best model by the validation metric, in the
Hugging Face layout, with vocab.txt and finetune.json) and OUT/checkpoint.pt (to --resume), all
atomically.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from annotated_bert import ner, squad
from annotated_bert.checkpoints import (CHECKPOINT, CheckpointError, load_training_checkpoint, save_pretrained,
                                        save_training_checkpoint)
from annotated_bert.config import PRESETS, BertConfig, preset
from annotated_bert.data import TEXT_COLUMNS, DataError, pick_column
from annotated_bert.files import append_jsonl, atomic_torch_save, drop_records_after, atomic_write, atomic_write_json, read_jsonl
from annotated_bert.model import (BertForQuestionAnswering, BertForSequenceClassification,
                                  BertForTokenClassification, BertPreTrainedModel)
from annotated_bert.tokenization import Vocab, WordTokenizer, basic_english
from annotated_bert.train import (EXIT_INTERRUPTED, POSITIVE, PROBABILITY, HelpFormatter, all_reduce_sum, at_least, autocast,
                                  check_ranges, is_main, parameter_groups, resume_settings, setup_device)
from annotated_bert.wordpiece import WordPieceTokenizer

TASKS = ("sentiment", "pair", "ner", "qa")
MAIN_METRIC = {"sentiment": "accuracy", "pair": "accuracy", "ner": "f1", "qa": "f1"}
FINETUNE_META = "finetune.json"
# flag -> (test, what it must be), as train.TRAIN_RANGES
FINETUNE_RANGES = {
    "val_fraction": PROBABILITY, "limit": at_least(1), "max_length": at_least(8), "head_tokens": at_least(0),
    "doc_stride": at_least(1), "max_answer_length": at_least(1), "dropout": PROBABILITY,
    "attention_dropout": PROBABILITY, "epochs": at_least(1), "batch_size": at_least(1), "lr": POSITIVE,
    "warmup": PROBABILITY, "weight_decay": at_least(0), "clip": POSITIVE, "budget_minutes": POSITIVE,
    "layer_lr_decay": ((lambda x: 0 < x <= 1), "in (0, 1] (1 turns it off)"), "eval_every": at_least(0),
    "eval_batch_size": at_least(1), "threads": at_least(1),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m annotated_bert.finetune",
                                description=__doc__.split("\n\n")[0] + " See the module docstring or the README.",
                                formatter_class=HelpFormatter)
    g = p.add_argument_group("task and data")
    g.add_argument("--task", choices=TASKS, help="what to fine-tune for (read from --init with --eval-only)")
    g.add_argument("--data", help="training file: a CSV (sentiment: review/text/sentence + label/sentiment columns; pair: "
                                  "sentence1, sentence2, label), a GLUE TSV (MRPC), CoNLL-2003 (ner), SQuAD JSON (qa)")
    g.add_argument("--eval-data", help="evaluation file; default: a held-out slice of --data")
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


# ------------------------------------------------------------------------------ reading data

def read_classification(path: str, task: str, text_column: str | None = None, label_column: str | None = None,
                        ) -> tuple[list[str], list[str] | None, list[str]]:
    """(texts A, texts B or None, label strings) from a CSV or a GLUE TSV. The columns are
    found by name (`TEXT_COLUMNS`; label, else sentiment) unless `text_column` / `label_column`
    name them."""
    if not os.path.exists(path):
        raise DataError(f"data not found: {path}")
    if path.endswith(".tsv"):  # GLUE: MRPC's "Quality  #1 ID  #2 ID  #1 String  #2 String", or sentence1/sentence2/label
        df = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
        df = df.rename(columns={"Quality": "label", "#1 String": "sentence1", "#2 String": "sentence2"})
    else:
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise DataError(f"cannot read {path} as CSV: {str(e).splitlines()[0]}") from None
    columns = list(df.columns)
    if task == "pair":
        text_a, text_b = "sentence1", "sentence2"
        if not {"sentence1", "sentence2"} <= set(columns):
            raise DataError(f"{path}: a pair task needs 'sentence1' and 'sentence2' columns (or MRPC's TSV); "
                            f"found {sorted(columns)}")
    else:
        text_a, text_b = pick_column(path, columns, text_column, TEXT_COLUMNS, "text", "--text-column"), None
    label = pick_column(path, columns, label_column, ("label", "sentiment"), "label", "--label-column")
    df = df[df[text_a].str.strip() != ""]
    if len(df) == 0:
        raise DataError(f"{path} has no rows with text")
    labels = df[label].str.strip()
    empty = np.flatnonzero(labels == "")
    if len(empty):  # an empty label would otherwise become a class of its own
        raise DataError(f"{path}: {len(empty):,} rows with text have no {label!r} (the first is data row "
                        f"{df.index[empty[0]] + 1}); fill in their labels or drop those rows")
    return (df[text_a].tolist(), df[text_b].tolist() if text_b else None, labels.tolist())


def head_tail(ids: list[int], budget: int, truncation: str, head: int | None) -> list[int]:
    """Keep `budget` tokens of a long text: its start, its end, or both."""
    if len(ids) <= budget:
        return ids
    if truncation == "head":
        return ids[:budget]
    if truncation == "tail":
        return ids[-budget:]
    head = budget // 4 if head is None else min(head, budget)
    return ids[:head] + (ids[len(ids) - (budget - head):] if budget > head else [])


def encode_classification(tok, a: list[str], b: list[str] | None, max_length: int, truncation: str,
                          head: int | None, progress: bool = True) -> tuple[list[list[int]], list[list[int]]]:
    """[CLS] A [SEP] (or [CLS] A [SEP] B [SEP], the longer side truncated first) per example."""
    all_ids, all_types = [], []
    for i, text in enumerate(tqdm(a, desc="tokenizing", unit=" texts", mininterval=1.0, leave=False,
                                  disable=not progress)):
        x = tok.encode(text)
        if b is None:
            x = head_tail(x, max_length - 2, truncation, head)
            ids, types = [tok.cls_token_id, *x, tok.sep_token_id], [0] * (len(x) + 2)
        else:
            y = tok.encode(b[i])
            while len(x) + len(y) > max_length - 3:       # longest-first, one token at a time
                if len(x) >= len(y):
                    x.pop()
                else:
                    y.pop()
            ids = [tok.cls_token_id, *x, tok.sep_token_id, *y, tok.sep_token_id]
            types = [0] * (len(x) + 2) + [1] * (len(y) + 1)
        all_ids.append(ids)
        all_types.append(types)
    return all_ids, all_types


@dataclass
class TaskData:
    """Encoded examples of one split: ragged id lists plus what the task's loss and metric need."""
    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    labels: list = field(default_factory=list)          # int (classification), list[int] (ner), (start, end) (qa)
    word_ids: list = field(default_factory=list)        # ner: piece -> word
    gold: list = field(default_factory=list)            # ner: gold word tags; qa: the examples
    features: list = field(default_factory=list)        # qa: SquadFeature per row

    def __len__(self) -> int:
        return len(self.input_ids)


def build_task_data(task: str, path: str, tok, args, labels: list[str] | None, split: str,
                    limit: int | None = None) -> tuple[TaskData, TaskData | None, list[str]]:
    """Read `path` for `task`; return the encoded split(s) and the label list. With split="train"
    and no --eval-data a validation part is held out (by row, sentence, or article for QA)."""
    rng = np.random.default_rng(args.seed)
    hold_out = split == "train" and not args.eval_data

    if task in ("sentiment", "pair"):
        a, b, raw = read_classification(path, task, args.text_column, args.label_column)
        if limit:
            a, b, raw = a[:limit], (b[:limit] if b else None), raw[:limit]
        if labels is None:
            labels = sorted(set(raw))
            if len(labels) < 2:
                raise DataError(f"{path}: every example has the label {labels[0]!r}; classification needs "
                                "at least two classes in the training data")
        unknown = set(raw) - set(labels)
        if unknown:
            raise DataError(f"{path}: labels {sorted(unknown)[:5]} were not seen in training ({labels})")
        y = [labels.index(r) for r in raw]
        ids, types = encode_classification(tok, a, b, args.max_length, args.truncation, args.head_tokens,
                                           progress=not args.quiet and is_main())
        data = TaskData(ids, types, y)
        order = np.arange(len(data))

    elif task == "ner":
        sentences = [ner.Sentence(s.words, ner.convert_tags(s.tags, "IOB1", args.ner_scheme))
                     for s in ner.read_conll(path)]
        if limit:
            sentences = sentences[:limit]
        labels = labels or ner.label_list(ner.entity_types(sentences), args.ner_scheme)
        to_id = {t: i for i, t in enumerate(labels)}
        data = TaskData([], [])
        for s in sentences:
            enc = tok.encode_words(s.words, max_length=args.max_length)
            word_labels = [to_id.get(t, 0) for t in s.tags]
            data.input_ids.append(enc["input_ids"])
            data.token_type_ids.append([0] * len(enc["input_ids"]))
            data.labels.append(ner.align_labels_to_pieces(enc["word_ids"], word_labels))
            data.word_ids.append(enc["word_ids"])
            data.gold.append(s.tags)
        order = np.arange(len(data))

    else:  # qa
        if not hasattr(tok, "tokenize_with_offsets"):
            raise DataError("question answering needs character offsets, which only the WordPiece tokenizer "
                            "gives: use an --init with a WordPiece vocabulary")
        examples = squad.read_squad(path)
        val_ex = None
        if hold_out:  # by article, so no passage is seen in both
            n_articles = len({e.title for e in examples})
            if n_articles < 2:
                raise DataError(f"{path} has {n_articles} article: pass --eval-data to evaluate on other passages")
            examples, val_ex = squad.split_by_article(examples, n_eval_articles=min(8, n_articles // 5 or 1),
                                                      seed=args.seed)
        if limit:
            examples = examples[:limit]
        qa = lambda ex: qa_data(ex, tok, args.max_length, args.doc_stride)
        return qa(examples), (qa(val_ex) if val_ex else None), ["start", "end"]

    if not hold_out:
        return data, None, labels
    order = rng.permutation(order)
    n_val = max(1, int(round(args.val_fraction * len(order))))
    return subset(data, order[n_val:]), subset(data, np.sort(order[:n_val])), labels


def qa_data(examples: list, tok, max_length: int, doc_stride: int, labeled: bool = True) -> TaskData:
    """SQuAD examples -> one input per passage window; `labeled`: with the answer span as the target."""
    feats = squad.make_features(examples, tok.tokenize_with_offsets, tok.cls_token_id, tok.sep_token_id,
                                tok.pad_token_id, tok.convert_tokens_to_ids, max_length=max_length,
                                doc_stride=doc_stride)
    return TaskData([f.input_ids[:sum(f.attention_mask)] for f in feats],
                    [f.token_type_ids[:sum(f.attention_mask)] for f in feats],
                    [(f.start_position, f.end_position) for f in feats] if labeled else [],
                    gold=list(examples), features=feats)


def subset(d: TaskData, idx: np.ndarray) -> TaskData:
    pick = lambda xs: [xs[i] for i in idx] if xs else xs
    return TaskData(pick(d.input_ids), pick(d.token_type_ids), pick(d.labels), pick(d.word_ids), pick(d.gold),
                    pick(d.features))


# ----------------------------------------------------------------------------------- batching

def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffle, sort within chunks of 50 batches by length, cut into batches, shuffle the batches:
    random order, little padding (Hugging Face's group_by_length)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    lengths = np.asarray(lengths)
    chunk = 50 * batch_size  # a multiple of the batch size: every batch but the last one is full
    chunks = [order[i:i + chunk] for i in range(0, len(order), chunk)]
    grouped = [c[np.argsort(-lengths[c], kind="stable")] for c in chunks]
    batches = [c[i:i + batch_size] for c in grouped for i in range(0, len(c), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(d: TaskData, idx: Sequence[int], task: str, pad_id: int) -> dict[str, torch.Tensor]:
    T = max(len(d.input_ids[i]) for i in idx)
    ids = torch.full((len(idx), T), pad_id, dtype=torch.long)
    types = torch.zeros((len(idx), T), dtype=torch.long)
    mask = torch.zeros((len(idx), T), dtype=torch.long)
    for row, i in enumerate(idx):
        n = len(d.input_ids[i])
        ids[row, :n] = torch.tensor(d.input_ids[i])
        types[row, :n] = torch.tensor(d.token_type_ids[i])
        mask[row, :n] = 1
    batch = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
    if not d.labels:  # unlabeled inputs (annotated_bert.predict): logits only
        return batch
    if task in ("sentiment", "pair"):
        batch["labels"] = torch.tensor([d.labels[i] for i in idx])
    elif task == "ner":
        labels = torch.full((len(idx), T), ner.IGNORE_INDEX, dtype=torch.long)
        for row, i in enumerate(idx):
            labels[row, :len(d.labels[i])] = torch.tensor(d.labels[i])
        batch["labels"] = labels
    else:
        batch["start_positions"] = torch.tensor([d.labels[i][0] for i in idx])
        batch["end_positions"] = torch.tensor([d.labels[i][1] for i in idx])
    return batch


# --------------------------------------------------------------------------------- evaluation

@torch.no_grad()
def task_outputs(model, d: TaskData, task: str, batch_size: int, device, pad_id: int, precision: str = "fp32",
                 progress: bool = False) -> tuple[list[torch.Tensor], float]:
    """Every input's logits, in input order and cut to its length ((num_labels,), (T, num_labels)
    or (T, 2) each, float32 on the CPU), and the summed loss (0 without labels). Under torchrun
    each process runs every world-th input and all of them get every output."""
    was_training = model.training
    model.eval()
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    order = np.argsort([len(x) for x in d.input_ids], kind="stable")[rank::world]  # little padding
    loss_sum, outputs = 0.0, {}
    for start in tqdm(range(0, len(order), batch_size), desc="evaluating", leave=False,
                      disable=not progress or not is_main(), mininterval=1.0):
        idx = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in collate(d, idx, task, pad_id).items()}
        with autocast(device, precision):
            out = model(**batch)
        if out.loss is not None:
            loss_sum += out.loss.item() * len(idx)
        for row, i in enumerate(idx):
            outputs[int(i)] = out.logits[row, :len(d.input_ids[i])].float().cpu()
    model.train(was_training)
    if world > 1:
        parts = [None] * world
        dist.all_gather_object(parts, (loss_sum, outputs))
        loss_sum, outputs = sum(p[0] for p in parts), {i: o for p in parts for i, o in p[1].items()}
    return [outputs[i] for i in range(len(d))], loss_sum


def word_tags(outputs: list[torch.Tensor], d: TaskData, labels: list[str]) -> list[list[str]]:
    """NER: one tag per word of each sentence, from its first piece's prediction ('O' where a word
    has no piece left after truncation)."""
    return [[labels[w] for w in ner.pieces_to_word_predictions(word_ids, o.argmax(-1).tolist(), n_words, fill=0)]
            for o, word_ids, n_words in zip(outputs, d.word_ids, (len(g) for g in d.gold))]


def qa_answers(outputs: list[torch.Tensor], d: TaskData, max_answer_length: int) -> dict[str, str]:
    """QA: {question id: answer text}, the best span over each question's windows."""
    # logits were cut to each input's length; the decoder expects the padded window length
    pad = lambda x, f: np.pad(x.numpy(), (0, len(f.input_ids) - len(x)), constant_values=-1e9)
    starts = [pad(o[:, 0], f) for o, f in zip(outputs, d.features)]
    ends = [pad(o[:, 1], f) for o, f in zip(outputs, d.features)]
    return squad.postprocess_predictions(d.gold, d.features, starts, ends, max_answer_length=max_answer_length)


def evaluate(model, d: TaskData, task: str, labels: list[str], args, device, pad_id: int) -> dict[str, float]:
    """The validation loss and the task's metrics (every process computes the same ones)."""
    outputs, loss_sum = task_outputs(model, d, task, args.eval_batch_size, device, pad_id, args.precision,
                                     progress=not args.quiet)
    metrics = {"loss": loss_sum / max(len(d), 1)}
    if task in ("sentiment", "pair"):
        pred = np.array([int(o.argmax()) for o in outputs])
        gold = np.array(d.labels)
        metrics["accuracy"] = float((pred == gold).mean())
        if task == "pair" or len(labels) == 2:  # F1 of the positive (second) class
            tp = int(((pred == 1) & (gold == 1)).sum())
            metrics["f1"] = 2 * tp / max(int((pred == 1).sum()) + int((gold == 1).sum()), 1)
    elif task == "ner":
        scores = ner.entity_scores(d.gold, word_tags(outputs, d, labels), scheme=args.ner_scheme)
        metrics |= {k: scores[k] for k in ("precision", "recall", "f1")}
    else:
        scores = squad.squad_evaluate(d.gold, qa_answers(outputs, d, args.max_answer_length))
        metrics |= {"exact_match": scores["exact_match"] / 100, "f1": scores["f1"] / 100}
    return metrics


def plot_curves(metrics_path: str, png_path: str, task: str) -> None:
    """Loss (training and validation) and the validation metrics against steps, as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    records = read_jsonl(metrics_path)
    fig = Figure(figsize=(11, 4))
    ax_loss, ax_metric = fig.subplots(1, 2)
    for split, style in (("train", "-"), ("val", "o-")):
        pts = [(r["step"], r["loss"]) for r in records if r["split"] == split]
        if pts:
            ax_loss.plot(*zip(*pts), style, label=split, alpha=0.8 if split == "train" else 1.0)
    ax_loss.set(title="loss", xlabel="optimizer step", ylabel="cross-entropy")
    ax_loss.legend()
    val = [r for r in records if r["split"] == "val"]
    for name in [k for k in (val[0] if val else {}) if k not in ("epoch", "step", "split", "loss")]:
        ax_metric.plot([r["step"] for r in val], [r[name] for r in val], "o-", label=name)
    ax_metric.set(title=f"validation ({task}; best model kept by {MAIN_METRIC[task]})", xlabel="optimizer step")
    if val:
        ax_metric.legend()
    fig.tight_layout()
    atomic_write(png_path, lambda f: fig.savefig(f, format="png", dpi=110))


# ------------------------------------------------------------------------ tokenizer and model

def task_model_class(task: str):
    return {"sentiment": BertForSequenceClassification, "pair": BertForSequenceClassification,
            "ner": BertForTokenClassification, "qa": BertForQuestionAnswering}[task]


def load_tokenizer(path: str):
    """The tokenizer a checkpoint was trained with: a pretraining run's (basic_english or
    WordPiece), a fine-tuned output's (finetune.json says), or a Hugging Face directory's vocab.txt."""
    meta_path = os.path.join(path, FINETUNE_META)
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        vocab = Vocab.load(os.path.join(path, "vocab.txt"))
        return WordTokenizer(vocab) if meta["tokenizer"] == "basic_english" else WordPieceTokenizer(vocab.itos)
    if os.path.exists(os.path.join(path, "vocab.txt")) and any(
            os.path.exists(os.path.join(path, f)) for f in ("model.safetensors", "pytorch_model.bin")):
        lower = True
        config_path = os.path.join(path, "tokenizer_config.json")
        if os.path.exists(config_path):
            with open(config_path) as f:
                lower = json.load(f).get("do_lower_case", True)
        return WordPieceTokenizer.from_file(os.path.join(path, "vocab.txt"), do_lower_case=lower)
    if not os.path.exists(os.path.join(path, CHECKPOINT)):
        raise CheckpointError(f"--init {path} is none of: a pretraining run ({CHECKPOINT}), a Hugging Face "
                              f"BERT directory (vocab.txt with model.safetensors or pytorch_model.bin), a "
                              f"fine-tuned output ({FINETUNE_META}), or 'scratch'")
    state = load_training_checkpoint(path)
    if state["data"]["tokenizer"] == "basic_english":
        return WordTokenizer(Vocab(state["vocab"]))
    return WordPieceTokenizer(state["vocab"])


def tokenizer_kind(tok) -> str:
    return "basic_english" if isinstance(tok, WordTokenizer) else "wordpiece"


def build_model(task: str, n_labels: int, tok, args) -> BertPreTrainedModel:
    cls = task_model_class(task)
    kwargs = {} if task == "qa" else {"num_labels": n_labels}
    dropout = {} if args.dropout is None else {"hidden_dropout_prob": args.dropout,
                                               "attention_probs_dropout_prob": args.dropout}
    if args.attention_dropout is not None:
        dropout["attention_probs_dropout_prob"] = args.attention_dropout
    if args.init == "scratch":
        config = preset(args.preset, vocab_size=len(tok.ids_to_tokens), pad_token_id=tok.pad_token_id,
                        max_position_embeddings=max(512, args.max_length), position_embedding_type="learned",
                        **dropout)
        return cls(config, **kwargs)
    model = cls.from_pretrained(args.init, **kwargs, **dropout)
    if args.reinit:
        torch.manual_seed(args.seed)
        model.init_weights()
    if len(tok.ids_to_tokens) != model.config.vocab_size:
        raise CheckpointError(f"{args.init}: the vocabulary has {len(tok.ids_to_tokens)} tokens but the model "
                              f"{model.config.vocab_size} rows")
    if args.max_length > model.config.max_position_embeddings:
        raise DataError(f"--max-length {args.max_length} exceeds the model's {model.config.max_position_embeddings} "
                        f"positions (grow them with model.resize_position_embeddings)")
    return model


def scratch_tokenizer(args):
    if args.vocab:
        return WordPieceTokenizer.from_file(args.vocab)
    if args.task in ("sentiment", "pair"):
        a, b, _ = read_classification(args.data, args.task, args.text_column, args.label_column)
        texts = a + (b or [])
    elif args.task == "ner":
        texts = [" ".join(s.words) for s in ner.read_conll(args.data)]
    else:
        raise DataError("--init scratch for qa needs a WordPiece --vocab (offsets come from WordPiece)")
    return WordTokenizer(Vocab.build((basic_english(t) for t in texts), min_freq=2))


def save_best(model, tok, directory: str, meta: dict) -> None:
    save_pretrained(model, directory, tok.ids_to_tokens)
    atomic_write_json(os.path.join(directory, FINETUNE_META), meta)


# ------------------------------------------------------------------------------------- main

def main(argv: Sequence[str] | None = None) -> int:
    args = get_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        code = eval_only(args) if args.eval_only else finetune(args)
        if dist.is_initialized():
            dist.barrier()  # rank 0 may still be saving: no rank leaves the group before it is done
        return code
    except (DataError, CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def read_finetune_meta(directory: str) -> dict:
    """A fine-tuned output's settings (finetune.json): task, labels, tokenizer, max_length, ..."""
    meta_path = os.path.join(directory, FINETUNE_META)
    if not os.path.exists(meta_path):
        raise CheckpointError(f"{directory} is not a fine-tuned output (no {FINETUNE_META}); pass OUT/best")
    with open(meta_path) as f:
        return json.load(f)


def load_finetuned(directory: str, device: str | torch.device = "cpu") -> tuple[BertPreTrainedModel, Any, dict]:
    """A fine-tuned output (OUT/best): its task model (on `device`, in eval mode), its tokenizer
    and its settings."""
    meta = read_finetune_meta(directory)
    n_labels = {} if meta["task"] == "qa" else {"num_labels": len(meta["labels"])}
    model = task_model_class(meta["task"]).from_pretrained(directory, **n_labels).to(device).eval()
    return model, load_tokenizer(directory), meta


def eval_only(args) -> int:
    meta = read_finetune_meta(args.init)
    for k in ("task", "max_length", "truncation", "head_tokens", "ner_scheme", "doc_stride"):
        setattr(args, k, meta.get(k, getattr(args, k)))
    device = setup_device(args.device, args.precision)
    model, tok, _ = load_finetuned(args.init, device)
    d, _, labels = build_task_data(args.task, args.eval_data, tok, args, meta["labels"], split="eval")
    metrics = evaluate(model, d, args.task, labels, args, device, tok.pad_token_id)
    if is_main():
        print(json.dumps({"task": args.task, "eval_data": args.eval_data, "n": len(d), **metrics}, sort_keys=True))
    return 0


def shard(idx: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This process's part of a global batch: every `world`-th example (a batch is sorted by length,
    so the parts pad alike). A last batch smaller than `world` repeats examples: no process is idle."""
    if len(idx) < world:
        idx = np.resize(idx, world)
    return idx[rank::world]


def finetune(args) -> int:
    # ---- setup
    state, args = resume_settings(args)
    device = setup_device(args.device, args.precision)
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    if args.batch_size % world:
        raise DataError(f"--batch-size {args.batch_size} must be divisible by the {world} processes")
    say = print if is_main() else (lambda *_, **__: None)
    torch.manual_seed(args.seed)

    # ---- tokenizer, data, model
    tok = scratch_tokenizer(args) if args.init == "scratch" else load_tokenizer(args.init)
    if state is not None:  # the run's own vocabulary (a scratch vocabulary is rebuilt identically, but be sure)
        tok = WordTokenizer(Vocab(state["vocab"])) if state["tokenizer"] == "basic_english" else WordPieceTokenizer(state["vocab"])
    train_d, val_d, labels = build_task_data(args.task, args.data, tok, args, None, "train", args.limit)
    if args.eval_data:
        val_d, _, _ = build_task_data(args.task, args.eval_data, tok, args, labels, "eval")
    if len(train_d) == 0:
        raise DataError(f"{args.data} leaves no training examples ({len(val_d):,} held out for validation): "
                        "give more data, or a separate --eval-data")
    if len(val_d) == 0:
        raise DataError(f"{args.eval_data or args.data} gives no validation examples: "
                        "check the file, or pass another --eval-data")
    model = build_model(args.task, len(labels), tok, args).to(device).train()
    forward = model
    if world > 1:  # gradients averaged over the processes; no buffer to sync (the sin/cos table is fixed)
        forward = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)
    batches_per_epoch = math.ceil(len(train_d) / args.batch_size)
    total_steps = batches_per_epoch * args.epochs
    budget_s = args.budget_minutes * 60 if args.budget_minutes else None

    optimizer = torch.optim.AdamW(parameter_groups(model, args.weight_decay, args.layer_lr_decay), lr=args.lr,
                                  eps=1e-6, fused=device.type in ("cpu", "cuda") or None)
    step, elapsed, best = 0, 0.0, -1.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed, best = state["step"], state["elapsed"], state["best"]
        torch.set_rng_state(state["rng"])
    os.makedirs(args.out, exist_ok=True)
    metrics_path = os.path.join(args.out, "metrics.jsonl")
    if is_main() and state is None and os.path.exists(metrics_path):
        os.remove(metrics_path)
    elif is_main() and state is not None:
        drop_records_after(metrics_path, step)  # the steps after the checkpoint are redone: log them once
    meta = {"task": args.task, "labels": labels, "tokenizer": tokenizer_kind(tok), "max_length": args.max_length,
            "truncation": args.truncation, "head_tokens": args.head_tokens, "ner_scheme": args.ner_scheme,
            "doc_stride": args.doc_stride, "init": args.init, "reinit": args.reinit}
    say(f"{args.task}: {len(train_d):,} training and {len(val_d):,} validation inputs, {len(labels)} labels; "
        f"model {model.num_parameters():,} parameters from {args.init}{' (re-initialised)' if args.reinit else ''}; "
        f"{total_steps:,} steps of {args.batch_size}" + (f" over {world} processes" if world > 1 else "")
        + (f", budget {args.budget_minutes:g} min" if budget_s else ""))

    def lr_at(progress: float) -> float:  # linear warmup, then linear decay to 0 at progress 1
        if progress < args.warmup:
            return args.lr * progress / args.warmup
        return args.lr * max(0.0, (1 - progress) / (1 - args.warmup))

    def checkpoint(epoch_done: int) -> None:
        if not is_main():
            return
        save_training_checkpoint(args.out, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
            "step": step, "epoch": epoch_done, "elapsed": elapsed, "best": best, "args": vars(args),
            "config": model.config.to_dict(), "vocab": list(tok.ids_to_tokens), "tokenizer": tokenizer_kind(tok),
            "data": {"tokenizer": tokenizer_kind(tok)}})

    last_validated = None  # the step of the latest evaluation: an --eval-every step that ends an epoch counts once

    def validate(epoch: int) -> dict:
        nonlocal best, last_validated
        last_validated = step
        metrics = evaluate(model, val_d, args.task, labels, args, device, tok.pad_token_id)  # the same on every process
        main_value = metrics[MAIN_METRIC[args.task]]
        improved = main_value > best
        best = max(best, main_value)
        if is_main():
            append_jsonl(metrics_path, {"epoch": epoch, "step": step, "split": "val", **metrics})
            plot_curves(metrics_path, os.path.join(args.out, "curves.png"), args.task)
            if improved:
                save_best(model, tok, os.path.join(args.out, "best"), {**meta, "step": step, "metrics": metrics})
        say(f"step {step}: validation " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            + (" (best so far, saved)" if improved else ""))
        return metrics

    stop = {"requested": False}
    previous = signal.signal(signal.SIGINT, lambda *_: stop.update(requested=True))
    try:
        epoch = step // batches_per_epoch
        out_of_time = False
        while epoch < args.epochs and not out_of_time:
            batches = length_grouped_batches([len(x) for x in train_d.input_ids], args.batch_size, args.seed, epoch)
            skip = step - epoch * batches_per_epoch
            bar = tqdm(batches[skip:], desc=f"epoch {epoch + 1}/{args.epochs}", disable=args.quiet or not is_main(),
                       initial=skip, total=len(batches), dynamic_ncols=True)
            t_last = time.perf_counter()
            window_loss, window_n = 0.0, 0  # the logged training loss is the mean since the last record
            for idx in bar:
                progress = step / total_steps if budget_s is None else max(step / total_steps, elapsed / budget_s)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(progress) * group.get("lr_scale", 1.0)  # 1.0: older checkpoints
                idx = shard(idx, rank, world)
                batch = {k: v.to(device) for k, v in collate(train_d, idx, args.task, tok.pad_token_id).items()}
                with autocast(device, args.precision):
                    out = forward(**batch)
                optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
                if not torch.isfinite(norm):  # the norm of the averaged gradients: every process stops here
                    say(f"error: non-finite loss at step {step}; stopped, the best model in {args.out}/best is "
                        f"kept; try a lower --lr", file=sys.stderr)
                    return 1
                optimizer.step()
                step += 1
                now = time.perf_counter()
                elapsed += now - t_last
                t_last = now
                # one collective for what every process must agree on: the loss (logged as the mean of the
                # processes'), and whether to stop (a Ctrl-C, or the budget, seen by any process)
                flags = [out.loss.item(), float(stop["requested"]), float(budget_s is not None and elapsed >= budget_s)]
                loss, stop_now, out_of_time = all_reduce_sum(flags, device) if world > 1 else flags
                loss /= world
                window_loss, window_n = window_loss + loss, window_n + 1
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr_at(progress):.2e}")
                if step % 50 == 0:
                    if is_main():
                        append_jsonl(metrics_path, {"epoch": epoch + 1, "step": step, "split": "train", "loss":
                                                    window_loss / window_n, "lr": lr_at(progress), "elapsed_s": elapsed})
                    window_loss, window_n = 0.0, 0
                if args.eval_every and step % args.eval_every == 0:
                    validate(epoch + 1)
                    t_last = time.perf_counter()  # evaluation time is not training time
                if stop_now:
                    checkpoint(epoch)
                    say(f"interrupted: saved {args.out}/checkpoint.pt; continue with "
                        f"python -m annotated_bert.finetune --resume {args.out}")
                    return EXIT_INTERRUPTED
                if out_of_time:
                    say(f"time budget of {args.budget_minutes:g} minutes reached at step {step}")
                    break
            bar.close()
            epoch += 1
            if last_validated != step:
                validate(epoch)
            checkpoint(epoch if not out_of_time else epoch - 1)
    finally:
        signal.signal(signal.SIGINT, previous)
    say(f"done: best validation {MAIN_METRIC[args.task]} {best:.4f}; model in {args.out}/best")
    return 0


if __name__ == "__main__":
    sys.exit(main())
