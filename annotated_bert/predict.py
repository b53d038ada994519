"""Inference with a pretrained checkpoint: fill in the blank, next-sentence probability, and the
walkthrough's closed-set answer selection (rank candidate answers by the NSP head).

    python -m annotated_bert.predict --checkpoint runs/pretrain fill "this movie was [MASK] good"
    python -m annotated_bert.predict --checkpoint runs/pretrain nsp "I loved it." "The acting was great."

Inputs are tokenized and laid out exactly as in training (same tokenizer, context length and
layout, read from the checkpoint). "[MASK]" written in the text is a mask token.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from annotated_bert.checkpoints import CheckpointError, load_pretrained_for_inference
from annotated_bert.data import DataError, encode_for_model
from annotated_bert.model import BertForPreTraining
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


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m annotated_bert.predict",
                                description="Query a model trained by annotated_bert.train.")
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="the --out directory of a training run")
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
    args = p.parse_args(argv)
    if args.command == "fill" and args.top_k < 1:
        f.error(f"--top-k must be at least 1, got {args.top_k}")
    try:
        predictor = Predictor.load(args.checkpoint, args.device)
        if args.command == "fill":
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
