"""Inference. With a pretraining run (`Predictor`): fill in the blank, next-sentence probability,
and the walkthrough's closed-set answer selection (rank candidate answers by the NSP head). With
a fine-tuned model, the OUT/best of `python -m annotated_bert.finetune` (`TaskPredictor`): classify
texts or pairs, tag words (NER), answer a question from a passage.

    python -m annotated_bert.predict --checkpoint runs/pretrain fill "this movie was [MASK] good"
    python -m annotated_bert.predict --checkpoint runs/pretrain nsp "I loved it." "The acting was great."
    python -m annotated_bert.predict --checkpoint runs/finetune/best classify "a gripping film" "dull"
    python -m annotated_bert.predict --checkpoint runs/finetune/best classify --file new.csv --out scored.csv
    python -m annotated_bert.predict --checkpoint runs/ner/best tag "John lives in New York ."
    python -m annotated_bert.predict --checkpoint runs/qa/best answer "Where?" "The museum opened in Paris."

Inputs are tokenized and laid out exactly as in training (same tokenizer, context length and
layout, or maximum length and truncation, read from the checkpoint). "[MASK]" written in the text
is a mask token.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from annotated_bert.checkpoints import CheckpointError, load_pretrained_for_inference
from annotated_bert.data import TEXT_COLUMNS, DataError, pick_column
from annotated_bert.pretraining import encode_for_model
from annotated_bert.finetune import (FINETUNE_META, TaskData, encode_classification, load_finetuned, qa_answers,
                                     qa_data, task_outputs, word_tags)
from annotated_bert.files import atomic_write_text
from annotated_bert.model import BertForPreTraining
from annotated_bert.squad import SquadExample
from annotated_bert.tokenization import Vocab, WordTokenizer
from annotated_bert.wordpiece import WordPieceTokenizer


@dataclass
class Predictor:
    """A pretrained model with what it needs to read text as it was trained to."""
    model: BertForPreTraining
    vocab: Vocab
    context_length: int
    layout: str = "walkthrough"
    tokenizer: str = "basic_english"

    @classmethod
    def load(cls, directory: str, device: str = "cpu") -> "Predictor":
        model, vocab, data = load_pretrained_for_inference(directory, device)
        return cls(model, vocab, data["context_length"], data["layout"], data.get("tokenizer", "basic_english"))

    def __post_init__(self):
        wordpiece = self.tokenizer == "wordpiece"
        self._tokenizer = WordPieceTokenizer(self.vocab.itos) if wordpiece else WordTokenizer(self.vocab)

    def tokenize(self, text: str) -> list[str]:
        """The training tokenizer; "[MASK]" written in the text stays one token."""
        return self._tokenizer.tokenize(text)

    def encode(self, a: str, b: str | None = None) -> dict[str, torch.Tensor]:
        device = next(self.model.parameters()).device
        enc = encode_for_model(self.tokenize(a), self.tokenize(b) if b else None, self.vocab,
                               self.context_length, self.layout)
        return {k: v.to(device) for k, v in enc.items()}

    @torch.no_grad()
    def fill_mask(self, text: str, text_pair: str | None = None, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """For each [MASK] (in order), the top-k (token, probability) predictions."""
        enc = self.encode(text, text_pair)
        where = enc["input_ids"][0] == self.vocab["[MASK]"]
        if not where.any():
            raise DataError("the text has no [MASK] to fill in; write [MASK] where a word should be predicted")
        logits = self.model(**enc).mlm_logits[0, where]                      # (masks, V)
        probs = logits.softmax(-1)
        probs[:, self.vocab.special_ids] = 0                                # never propose [PAD], [CLS], ...
        top = probs.topk(top_k, dim=-1)
        return [[(self.vocab.itos[i], p) for i, p in zip(ids.tolist(), ps.tolist())]
                for ids, ps in zip(top.indices, top.values)]

    @torch.no_grad()
    def next_sentence_probability(self, a: str, b: str) -> float:
        """P(B follows A) from the NSP head."""
        return self.model(**self.encode(a, b)).nsp_logits.softmax(-1)[0, 1].item()

    def rank_answers(self, question: str, candidates: Sequence[str]) -> list[tuple[str, float]]:
        """The walkthrough's closed-set QA: pair the question with each candidate answer and sort
        the candidates by the NSP "is next" probability, best first."""
        if not candidates:
            raise DataError("give at least one candidate answer")
        scored = [(c, self.next_sentence_probability(question, c)) for c in candidates]
        return sorted(scored, key=lambda x: -x[1])


@dataclass
class TaskPredictor:
    """A fine-tuned model (the OUT/best of `python -m annotated_bert.finetune`) with the tokenizer
    and settings it was trained with (its finetune.json: task, labels, maximum length, truncation)."""
    model: torch.nn.Module
    tokenizer: object
    meta: dict
    batch_size: int = 32

    @classmethod
    def load(cls, directory: str, device: str = "cpu") -> "TaskPredictor":
        return cls(*load_finetuned(directory, device))

    @property
    def task(self) -> str:
        return self.meta["task"]

    def _require(self, *tasks: str) -> None:
        if self.task not in tasks:
            raise DataError(f"this model was fine-tuned for {self.task!r}, not for {' or '.join(map(repr, tasks))}")

    def _logits(self, d: TaskData) -> list[torch.Tensor]:
        device = next(self.model.parameters()).device
        return task_outputs(self.model, d, self.task, self.batch_size, device, self.tokenizer.pad_token_id)[0]

    def classify(self, texts: str | Sequence[str], pairs: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(label, probability) per text, or per (text, pair) for a sentence-pair model."""
        self._require("sentiment", "pair")
        texts = [texts] if isinstance(texts, str) else list(texts)
        pairs = [pairs] if isinstance(pairs, str) else pairs
        if (self.task == "pair") != (pairs is not None) or (pairs is not None and len(pairs) != len(texts)):
            raise DataError("a sentence-pair model needs one second sentence per text, a sentiment model none"
                            f" (this one is {self.task!r})")
        ids, types = encode_classification(self.tokenizer, texts, list(pairs) if pairs else None,
                                           self.meta["max_length"], self.meta["truncation"],
                                           self.meta.get("head_tokens"), progress=False)
        probs = [o.softmax(-1) for o in self._logits(TaskData(ids, types))]
        return [(self.meta["labels"][int(p.argmax())], float(p.max())) for p in probs]

    def tag(self, sentences: str | Sequence[str | Sequence[str]]) -> list[list[tuple[str, str]]]:
        """NER: (word, tag) for every word of every sentence. A sentence is a list of words, or a
        string split at whitespace; one string is one sentence."""
        self._require("ner")
        sentences = [sentences] if isinstance(sentences, str) else sentences
        words = [s.split() if isinstance(s, str) else list(s) for s in sentences]
        encoded = [self.tokenizer.encode_words(w, max_length=self.meta["max_length"]) for w in words]
        d = TaskData([e["input_ids"] for e in encoded], [[0] * len(e["input_ids"]) for e in encoded],
                     word_ids=[e["word_ids"] for e in encoded], gold=words)
        return [list(zip(w, tags)) for w, tags in zip(words, word_tags(self._logits(d), d, self.meta["labels"]))]

    def answer(self, question: str, context: str, max_answer_length: int = 30) -> str:
        """Extractive QA: the span of `context` that answers `question` ("" if no window has one)."""
        self._require("qa")
        example = SquadExample("q", "", context, question, [], [])
        d = qa_data([example], self.tokenizer, self.meta["max_length"], self.meta["doc_stride"], labeled=False)
        return qa_answers(self._logits(d), d, max_answer_length)["q"]


def classify_file(predictor: TaskPredictor, path: str, out: str, text_column: str | None = None) -> int:
    """Add `prediction` and `probability` columns to the rows of a CSV and write it to `out`
    (atomically; every input column is kept). Returns the number of rows."""
    if not os.path.exists(path):
        raise DataError(f"data not found: {path}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path} as CSV: {str(e).splitlines()[0]}") from None
    if predictor.task == "pair":
        missing = {"sentence1", "sentence2"} - set(df.columns)
        if missing:
            raise DataError(f"{path}: a sentence-pair model needs 'sentence1' and 'sentence2' columns; "
                            f"missing {sorted(missing)}")
        texts, pairs = df["sentence1"].tolist(), df["sentence2"].tolist()
    else:
        column = pick_column(path, list(df.columns), text_column, TEXT_COLUMNS, "text", "--text-column")
        texts, pairs = df[column].tolist(), None
    results = predictor.classify(texts, pairs) if texts else []
    df["prediction"] = [label for label, _ in results]
    df["probability"] = [round(p, 6) for _, p in results]
    buffer = io.StringIO()
    df.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
    atomic_write_text(out, buffer.getvalue())
    return len(df)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m annotated_bert.predict",
                                description="Query a model trained by annotated_bert.train.")
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="fill, nsp, rank: the --out directory of a pretraining run; classify, tag, answer: "
                        "the OUT/best of a fine-tuning run")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fill", help="predict the words hidden behind [MASK]")
    f.add_argument("text", help='e.g. "this movie was [MASK] good"')
    f.add_argument("--pair", help="an optional second sentence (segment B)")
    f.add_argument("--top-k", type=int, default=5, help="candidates shown per [MASK] (default: %(default)s)")
    n = sub.add_parser("nsp", help="probability that sentence B follows sentence A")
    n.add_argument("a")
    n.add_argument("b")
    r = sub.add_parser("rank", help="rank candidate answers to a question by NSP probability")
    r.add_argument("question")
    r.add_argument("candidates", nargs="+")
    c = sub.add_parser("classify", help="label texts with a sentiment or sentence-pair model")
    c.add_argument("texts", nargs="*", help="texts to label (or --file)")
    c.add_argument("--pair", action="append", help="a pair model: the second sentence of each text, in order")
    c.add_argument("--file", help="a CSV to label: its text column (or sentence1 and sentence2 for pairs)")
    c.add_argument("--text-column", metavar="NAME", help="with --file: the column holding the text")
    c.add_argument("--out", help="with --file: the CSV to write, the input's columns plus prediction and probability")
    t = sub.add_parser("tag", help="tag the words of sentences with an NER model")
    t.add_argument("sentences", nargs="+", help="sentences, words separated by spaces")
    a = sub.add_parser("answer", help="answer a question from a passage with a QA model")
    a.add_argument("question")
    a.add_argument("context", help="the passage holding the answer")
    args = p.parse_args(argv)
    if args.command == "classify" and (bool(args.texts) == bool(args.file) or bool(args.file) != bool(args.out)):
        c.error("give texts, or --file CSV with --out CSV")
    if args.command == "fill" and args.top_k < 1:
        f.error(f"--top-k must be at least 1, got {args.top_k}")
    try:
        finetuned = os.path.exists(os.path.join(args.checkpoint, FINETUNE_META))
        if args.command in ("classify", "tag", "answer"):
            if not finetuned:
                raise CheckpointError(f"{args.checkpoint} is not a fine-tuned model (no {FINETUNE_META}); "
                                      f"{args.command} needs the OUT/best of python -m annotated_bert.finetune")
            predictor = TaskPredictor.load(args.checkpoint, args.device)
        elif finetuned:
            raise CheckpointError(f"{args.checkpoint} is a fine-tuned model; {args.command} needs a pretraining "
                                  "run (its heads are gone): use classify, tag or answer")
        else:
            predictor = Predictor.load(args.checkpoint, args.device)
        if args.command == "classify" and args.file:
            n = classify_file(predictor, args.file, args.out, args.text_column)
            print(f"wrote {args.out}: {n:,} rows with prediction and probability")
        elif args.command == "classify":
            for text, (label, prob) in zip(args.texts, predictor.classify(args.texts, args.pair)):
                print(f"{label} ({prob:.3f})  {text}")
        elif args.command == "tag":
            for tagged in predictor.tag(args.sentences):
                print(" ".join(f"{w}/{tag}" for w, tag in tagged))
        elif args.command == "answer":
            print(predictor.answer(args.question, args.context))
        elif args.command == "fill":
            for i, options in enumerate(predictor.fill_mask(args.text, args.pair, args.top_k), 1):
                print(f"[MASK] {i}: " + ", ".join(f"{t} ({p:.3f})" for t, p in options))
        elif args.command == "nsp":
            print(f"P(B follows A) = {predictor.next_sentence_probability(args.a, args.b):.3f}")
        else:
            for c, prob in predictor.rank_answers(args.question, args.candidates):
                print(f"{prob:.3f}  {c}")
    except (DataError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
