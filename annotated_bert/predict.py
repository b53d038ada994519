"""Query a trained model from the command line (the library side is annotated_bert.inference).

    python -m annotated_bert.predict --checkpoint runs/pretrain fill "this movie was [MASK] good"
    python -m annotated_bert.predict --checkpoint runs/pretrain nsp "I loved it." "The acting was great."
    python -m annotated_bert.predict --checkpoint runs/finetune/best classify "a gripping film" "dull"
    python -m annotated_bert.predict --checkpoint runs/finetune/best classify --file new.csv --out scored.csv
    python -m annotated_bert.predict --checkpoint runs/ner/best tag "John lives in New York ."
    python -m annotated_bert.predict --checkpoint runs/qa/best answer "Where?" "The museum opened in Paris."

fill, nsp and rank read a pretraining run (its MLM and NSP heads); classify, tag and answer a
fine-tuned model (OUT/best of `python -m annotated_bert.finetune`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from annotated_bert.checkpoints import CheckpointError
from annotated_bert.data import DataError
from annotated_bert.inference import Predictor, TaskPredictor
from annotated_bert.interop import FINETUNE_META, path_kind
from annotated_bert.runtime import run_cli


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
    return run_cli(lambda: predict(args), (DataError, CheckpointError))


def predict(args: argparse.Namespace) -> int:
    """Load the model the command needs (a pretraining run, or a fine-tuned one) and print its answer."""
    finetuned = path_kind(args.checkpoint) == "fine-tuned"
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
        n = predictor.classify_file(args.file, args.out, args.text_column)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
