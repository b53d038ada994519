"""Using a trained model. A pretraining run (`Predictor`): fill in the blank, next-sentence
probability, and the walkthrough's closed-set answer selection (rank candidate answers by the NSP
head). A fine-tuned model, the OUT/best of `python -m annotated_bert.finetune` (`TaskPredictor`):
classify texts or pairs (or a whole CSV), tag words (NER), answer a question from a passage.

Inputs are tokenized and laid out exactly as in training (same tokenizer, context length and
layout, or maximum length and truncation, read from the checkpoint). "[MASK]" written in the text
is a mask token.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from annotated_bert.checkpoints import CheckpointError, load_training_checkpoint
from annotated_bert.config import config_from_dict
from annotated_bert.data import TEXT_COLUMNS, DataError, pick_column, read_table
from annotated_bert.files import atomic_write_text
from annotated_bert.model import BertForPreTraining
from annotated_bert.models import pretraining_class
from annotated_bert.pretraining import encode_for_model
from annotated_bert.squad import SquadExample
from annotated_bert.tasks import (Encoding, TaskData, encode_classification, load_finetuned, qa_answers, qa_data,
                                  task_outputs, word_tags)
from annotated_bert.tokenization import Vocab, WordTokenizer
from annotated_bert.wordpiece import WordPieceTokenizer


def load_pretraining_run(directory: str, device: str | torch.device = "cpu") -> tuple[BertForPreTraining, dict]:
    """A pretraining run's model with its MLM and sentence-pair heads, in eval mode, and its checkpoint."""
    state = load_training_checkpoint(directory, device)
    if state.get("args", {}).get("objective") == "electra":
        raise CheckpointError(f"{directory} is an ELECTRA run: its encoder was trained to detect replaced tokens "
                              f"and has no MLM or NSP head to query; fine-tune it "
                              f"(python -m annotated_bert.finetune --init {directory}) or take its features")
    config = config_from_dict(state["config"])
    model = pretraining_class(config.model_type)(config)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), state


@dataclass
class Predictor:
    """A pretrained model with what it needs to read text as it was trained to."""
    model: BertForPreTraining
    vocab: Vocab
    context_length: int
    layout: str = "walkthrough"
    tokenizer: str = "basic_english"

    @classmethod
    def load(cls, directory: str, device: str = "cpu") -> Predictor:
        model, state = load_pretraining_run(directory, device)
        data = state["data"]
        return cls(model, Vocab(state["vocab"]), data["context_length"], data["layout"],
                   data.get("tokenizer", "basic_english"))

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
        """P(B follows A) from the NSP head (for a model pretrained with SOP: P(A and B in order))."""
        out = self.model(**self.encode(a, b))
        logits = out.nsp_logits if hasattr(out, "nsp_logits") else out.sop_logits   # (1, 2)
        return logits.softmax(-1)[0, 1].item()

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
    def load(cls, directory: str, device: str = "cpu") -> TaskPredictor:
        return cls(*load_finetuned(directory, device))

    @property
    def task(self) -> str:
        return self.meta["task"]

    def _require(self, *tasks: str) -> None:
        if self.task not in tasks:
            raise DataError(f"this model was fine-tuned for {self.task!r}, not for {' or '.join(map(repr, tasks))}")

    def _logits(self, d: TaskData) -> list[torch.Tensor]:
        return task_outputs(self.model, d, self.task, self.batch_size, self.tokenizer.pad_token_id)[0]

    def classify(self, texts: str | Sequence[str], pairs: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """(label, probability) per text, or per (text, pair) for a sentence-pair model."""
        self._require("sentiment", "pair")
        texts = [texts] if isinstance(texts, str) else list(texts)
        pairs = [pairs] if isinstance(pairs, str) else pairs
        if (self.task == "pair") != (pairs is not None) or (pairs is not None and len(pairs) != len(texts)):
            raise DataError("a sentence-pair model needs one second sentence per text, a sentiment model none"
                            f" (this one is {self.task!r})")
        ids, types = encode_classification(self.tokenizer, texts, list(pairs) if pairs else None,
                                           Encoding.from_meta(self.meta), progress=False)
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

    def classify_file(self, path: str, out: str, text_column: str | None = None) -> int:
        """Add `prediction` and `probability` columns to the rows of a CSV and write it to `out`
        (atomically; every input column is kept). Returns the number of rows."""
        df = read_table(path, log=lambda *_: None)
        if self.task == "pair":
            missing = {"sentence1", "sentence2"} - set(df.columns)
            if missing:
                raise DataError(f"{path}: a sentence-pair model needs 'sentence1' and 'sentence2' columns; "
                                f"missing {sorted(missing)}")
            texts, pairs = df["sentence1"].tolist(), df["sentence2"].tolist()
        else:
            column = pick_column(path, list(df.columns), text_column, TEXT_COLUMNS, "text", "--text-column")
            texts, pairs = df[column].tolist(), None
        results = self.classify(texts, pairs) if texts else []
        df["prediction"] = [label for label, _ in results]
        df["probability"] = [round(p, 6) for _, p in results]
        buffer = io.StringIO()
        df.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
        atomic_write_text(out, buffer.getvalue())
        return len(df)
