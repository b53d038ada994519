"""Fine-tuning tasks (BERT paper section 4): their data encoded for a model, batches, evaluation
with each task's official metric, and the fine-tuned model on disk.

    task       input                                      head (annotated_bert.model)      metric
    sentiment  [CLS] text [SEP]                           BertForSequenceClassification   accuracy
    pair       [CLS] A [SEP] B [SEP]                      BertForSequenceClassification   accuracy, F1
    ner        [CLS] word pieces [SEP]                    BertForTokenClassification      entity F1 (conlleval)
    qa         [CLS] question [SEP] passage window [SEP]  BertForQuestionAnswering        EM, F1 (SQuAD v1.1)

Long single texts keep their head and their tail (Sun et al. 2019, "How to Fine-Tune BERT for
Text Classification": 128 + 382 tokens was best on IMDb). Batches group texts of similar length,
which on a CPU roughly halves the time spent on padding. A fine-tuned model is a Hugging Face
directory plus `finetune.json` (the task, its labels and how its inputs were encoded).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from annotated_bert import ner, squad
from annotated_bert.checkpoints import CheckpointError
from annotated_bert.config import IGNORE_INDEX, preset
from annotated_bert.data import DataError, read_classification
from annotated_bert.files import atomic_write_json
from annotated_bert.interop import FINETUNE_META, load_tokenizer
from annotated_bert.model import BertPreTrainedModel
from annotated_bert.models import model_type_of, task_class
from annotated_bert.runtime import autocast, is_main, rank_and_world
from annotated_bert.tokenization import Vocab, WordTokenizer, basic_english, pad_batch

TASKS = ("sentiment", "pair", "ner", "qa")
MAIN_METRIC = {"sentiment": "accuracy", "pair": "accuracy", "ner": "f1", "qa": "f1"}


@dataclass
class Encoding:
    """How a task's examples become model inputs; saved with the fine-tuned model so that
    evaluation and prediction read text exactly as training did."""
    max_length: int = 256                # tokens per input, [CLS] and [SEP] included
    truncation: str = "head+tail"        # which part of a long single text to keep: head+tail, head, tail
    head_tokens: int | None = None       # head+tail: tokens kept from the start (None: a quarter of the budget)
    ner_scheme: str = "BIO"              # the tags an NER head predicts: BIO or BIOES
    doc_stride: int = 128                # qa: overlap between passage windows

    @classmethod
    def from_meta(cls, meta: dict) -> Encoding:
        return cls(**{k: meta[k] for k in asdict(cls()) if k in meta})


# ------------------------------------------------------------------------------ encoding

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


def encode_classification(tok, a: list[str], b: list[str] | None, enc: Encoding,
                          progress: bool = True) -> tuple[list[list[int]], list[list[int]]]:
    """[CLS] A [SEP] (or [CLS] A [SEP] B [SEP], the longer side truncated first) per example."""
    all_ids, all_types = [], []
    for i, text in enumerate(tqdm(a, desc="tokenizing", unit=" texts", mininterval=1.0, leave=False,
                                  disable=not progress)):
        x = tok.encode(text)
        if b is None:
            x = head_tail(x, enc.max_length - 2, enc.truncation, enc.head_tokens)
            ids, types = [tok.cls_token_id, *x, tok.sep_token_id], [0] * (len(x) + 2)
        else:
            y = tok.encode(b[i])
            while len(x) + len(y) > enc.max_length - 3:       # longest-first, one token at a time
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

    def subset(self, idx: np.ndarray) -> TaskData:
        pick = lambda xs: [xs[i] for i in idx] if xs else xs  # noqa: E731
        return TaskData(pick(self.input_ids), pick(self.token_type_ids), pick(self.labels), pick(self.word_ids),
                        pick(self.gold), pick(self.features))


def ner_data(sentences: Sequence[ner.Sentence], tok, labels: list[str], max_length: int) -> TaskData:
    """NER sentences -> [CLS] pieces [SEP], each word's label on its first piece (IGNORE_INDEX elsewhere)."""
    to_id = {t: i for i, t in enumerate(labels)}
    data = TaskData([], [])
    for s in sentences:
        e = tok.encode_words(s.words, max_length=max_length)
        data.input_ids.append(e["input_ids"])
        data.token_type_ids.append([0] * len(e["input_ids"]))
        data.labels.append(ner.align_labels_to_pieces(e["word_ids"], [to_id.get(t, 0) for t in s.tags]))
        data.word_ids.append(e["word_ids"])
        data.gold.append(s.tags)
    return data


def qa_data(examples: list, tok, max_length: int, doc_stride: int, labeled: bool = True) -> TaskData:
    """SQuAD examples -> one input per passage window; `labeled`: with the answer span as the target."""
    feats = squad.make_features(examples, tok.tokenize_with_offsets, tok.cls_token_id, tok.sep_token_id,
                                tok.pad_token_id, tok.convert_tokens_to_ids, max_length=max_length,
                                doc_stride=doc_stride)
    return TaskData([f.input_ids[:sum(f.attention_mask)] for f in feats],
                    [f.token_type_ids[:sum(f.attention_mask)] for f in feats],
                    [(f.start_position, f.end_position) for f in feats] if labeled else [],
                    gold=list(examples), features=feats)


def build_task_data(task: str, path: str, tok, enc: Encoding, labels: list[str] | None = None, *,
                    hold_out: float = 0.0, seed: int = 0, limit: int | None = None, text_column: str | None = None,
                    label_column: str | None = None, progress: bool = True,
                    ) -> tuple[TaskData, TaskData | None, list[str]]:
    """Read `path` for `task`: (the encoded examples, a held-out part or None, the label list).
    `labels` None: learned from this file (training data). `hold_out` > 0: that fraction is held
    out for validation (by row or sentence; QA holds out whole articles, 8 of 40)."""
    if task in ("sentiment", "pair"):
        a, b, raw = read_classification(path, task, text_column, label_column, log=print if progress else _quiet)
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
        ids, types = encode_classification(tok, a, b, enc, progress=progress and is_main())
        data = TaskData(ids, types, [labels.index(r) for r in raw])
    elif task == "ner":
        sentences = [ner.Sentence(s.words, ner.convert_tags(s.tags, "IOB1", enc.ner_scheme))
                     for s in ner.read_conll(path)]
        if limit:
            sentences = sentences[:limit]
        labels = labels or ner.label_list(ner.entity_types(sentences), enc.ner_scheme)
        data = ner_data(sentences, tok, labels, enc.max_length)
    else:  # qa
        if not hasattr(tok, "tokenize_with_offsets"):
            raise DataError("question answering needs character offsets, which only the WordPiece tokenizer "
                            "gives: use an --init with a WordPiece vocabulary")
        examples, val_ex = squad.read_squad(path), None
        if hold_out:  # by article, so no passage is seen in both
            n_articles = len({e.title for e in examples})
            if n_articles < 2:
                raise DataError(f"{path} has {n_articles} article: pass --eval-data to evaluate on other passages")
            examples, val_ex = squad.split_by_article(examples, n_eval_articles=min(8, n_articles // 5 or 1),
                                                      seed=seed)
        if limit:
            examples = examples[:limit]
        qa = lambda ex: qa_data(ex, tok, enc.max_length, enc.doc_stride)  # noqa: E731
        return qa(examples), (qa(val_ex) if val_ex else None), ["start", "end"]
    if not hold_out:
        return data, None, labels
    order = np.random.default_rng(seed).permutation(len(data))
    n_val = max(1, int(round(hold_out * len(order))))
    return data.subset(order[n_val:]), data.subset(np.sort(order[:n_val])), labels


def _quiet(*_args, **_kwargs) -> None:
    pass


# ------------------------------------------------------------------------------ batches

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


def shard(idx: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This process's part of a global batch: every `world`-th example (a batch is sorted by length,
    so the parts pad alike). A last batch smaller than `world` repeats examples: no process is idle."""
    if len(idx) < world:
        idx = np.resize(idx, world)
    return idx[rank::world]


def collate(d: TaskData, idx: Sequence[int], task: str, pad_id: int) -> dict[str, torch.Tensor]:
    """The examples `idx` of `d` as one padded batch, with the task's targets when `d` has labels."""
    batch = pad_batch([d.input_ids[i] for i in idx], pad_id, [d.token_type_ids[i] for i in idx])
    if not d.labels:  # unlabeled inputs (prediction): logits only
        return batch
    if task in ("sentiment", "pair"):
        batch["labels"] = torch.tensor([d.labels[i] for i in idx])
    elif task == "ner":
        labels = torch.full(batch["input_ids"].shape, IGNORE_INDEX, dtype=torch.long)   # (B, T)
        for row, i in enumerate(idx):
            labels[row, :len(d.labels[i])] = torch.tensor(d.labels[i])
        batch["labels"] = labels
    else:
        batch["start_positions"] = torch.tensor([d.labels[i][0] for i in idx])
        batch["end_positions"] = torch.tensor([d.labels[i][1] for i in idx])
    return batch


# ------------------------------------------------------------------------------ evaluation

@torch.no_grad()
def task_outputs(model, d: TaskData, task: str, batch_size: int, pad_id: int, precision: str = "fp32",
                 progress: bool = False) -> tuple[list[torch.Tensor], float]:
    """Every input's logits, in input order and cut to its length ((num_labels,), (T, num_labels)
    or (T, 2) each, float32 on the CPU), and the summed loss (0 without labels). Under torchrun
    each process runs every world-th input and all of them get every output."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rank, world = rank_and_world()
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
    pad = lambda x, f: np.pad(x.numpy(), (0, len(f.input_ids) - len(x)), constant_values=-1e9)  # noqa: E731
    starts = [pad(o[:, 0], f) for o, f in zip(outputs, d.features)]
    ends = [pad(o[:, 1], f) for o, f in zip(outputs, d.features)]
    return squad.postprocess_predictions(d.gold, d.features, starts, ends, max_answer_length=max_answer_length)


def evaluate(model, d: TaskData, task: str, labels: list[str], *, ner_scheme: str = "BIO",
             max_answer_length: int = 30, batch_size: int = 64, pad_id: int = 0, precision: str = "fp32",
             progress: bool = False) -> dict[str, float]:
    """The loss and the task's metrics (every process computes the same ones). `n` is what the
    metric averages over: texts, pairs, sentences or questions; a QA question split into several
    passage windows is one question (`n_inputs` counts the windows)."""
    outputs, loss_sum = task_outputs(model, d, task, batch_size, pad_id, precision, progress)
    metrics = {"loss": loss_sum / max(len(d), 1)}
    if task in ("sentiment", "pair"):
        pred = np.array([int(o.argmax()) for o in outputs])
        gold = np.array(d.labels)
        metrics["accuracy"] = float((pred == gold).mean())
        if task == "pair" or len(labels) == 2:  # F1 of the positive (second) class
            tp = int(((pred == 1) & (gold == 1)).sum())
            metrics["f1"] = 2 * tp / max(int((pred == 1).sum()) + int((gold == 1).sum()), 1)
        metrics["n"] = len(d)
    elif task == "ner":
        scores = ner.entity_scores(d.gold, word_tags(outputs, d, labels), scheme=ner_scheme)
        metrics |= {k: scores[k] for k in ("precision", "recall", "f1")} | {"n": len(d)}
    else:
        scores = squad.squad_evaluate(d.gold, qa_answers(outputs, d, max_answer_length))
        metrics |= {"exact_match": scores["exact_match"] / 100, "f1": scores["f1"] / 100, "n": len(d.gold),
                    "n_inputs": len(d)}
    return metrics


# ------------------------------------------------------------------------------ models

def build_task_model(task: str, n_labels: int, tok, init: str, *, preset_name: str = "bert-mini",
                     reinit: bool = False, seed: int = 0, max_length: int = 256,
                     dropout: dict | None = None) -> BertPreTrainedModel:
    """The task's model: from `init` (a pretraining run, a Hugging Face directory or a fine-tuned
    output; `reinit`: same architecture, new weights), or `init="scratch"` at `preset_name`.
    `dropout`: BertConfig dropout fields to override."""
    dropout = dropout or {}
    kwargs = {} if task == "qa" else {"num_labels": n_labels}
    if init == "scratch":
        config = preset(preset_name, vocab_size=len(tok.ids_to_tokens), pad_token_id=tok.pad_token_id,
                        max_position_embeddings=max(512, max_length), position_embedding_type="learned", **dropout)
        return task_class(task, config.model_type)(config, **kwargs)
    model = task_class(task, model_type_of(init)).from_pretrained(init, **kwargs, **dropout)
    if reinit:
        torch.manual_seed(seed)
        model.init_weights()
    if len(tok.ids_to_tokens) != model.config.vocab_size:
        raise CheckpointError(f"{init}: the vocabulary has {len(tok.ids_to_tokens)} tokens but the model "
                              f"{model.config.vocab_size} rows")
    if max_length > model.config.max_position_embeddings:
        raise DataError(f"--max-length {max_length} exceeds the model's {model.config.max_position_embeddings} "
                        f"positions (grow them with model.resize_position_embeddings)")
    return model


def scratch_tokenizer(task: str, path: str, text_column: str | None = None, label_column: str | None = None):
    """A basic_english word vocabulary built from the training texts (tokens seen twice or more)."""
    if task in ("sentiment", "pair"):
        a, b, _ = read_classification(path, task, text_column, label_column, log=_quiet)
        texts = a + (b or [])
    elif task == "ner":
        texts = [" ".join(s.words) for s in ner.read_conll(path)]
    else:
        raise DataError("--init scratch for qa needs a WordPiece --vocab (offsets come from WordPiece)")
    return WordTokenizer(Vocab.build((basic_english(t) for t in texts), min_freq=2))


def tokenizer_kind(tok) -> str:
    return "basic_english" if isinstance(tok, WordTokenizer) else "wordpiece"


def save_finetuned(model, tok, directory: str, meta: dict) -> None:
    """A fine-tuned model: a Hugging Face directory (weights, config.json, vocab.txt) plus finetune.json."""
    model.save_pretrained(directory, tok.ids_to_tokens)
    atomic_write_json(os.path.join(directory, FINETUNE_META), meta)


def read_finetune_meta(directory: str) -> dict:
    """A fine-tuned output's settings (finetune.json): task, labels, tokenizer, encoding, ..."""
    path = os.path.join(directory, FINETUNE_META)
    if not os.path.exists(path):
        raise CheckpointError(f"{directory} is not a fine-tuned output (no {FINETUNE_META}); pass OUT/best")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is damaged: not valid JSON ({e})") from None


def load_finetuned(directory: str, device: str | torch.device = "cpu") -> tuple[BertPreTrainedModel, object, dict]:
    """A fine-tuned output (OUT/best): its task model (on `device`, in eval mode), its tokenizer
    and its settings."""
    meta = read_finetune_meta(directory)
    n_labels = {} if meta["task"] == "qa" else {"num_labels": len(meta["labels"])}
    model = task_class(meta["task"], model_type_of(directory)).from_pretrained(directory, **n_labels).to(device).eval()
    return model, load_tokenizer(directory), meta
