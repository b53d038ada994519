"""How much sentence-pair signal is in the pairs at all? A logistic regression on word overlap.

    python benchmarks/nsp_baseline.py                        # the walkthrough's first 1,000 reviews
    python benchmarks/nsp_baseline.py --ds-to 25000 --layout standard
    python benchmarks/nsp_baseline.py --data a.csv --data b.csv --ds-to -1 --layout packed \
        --tokenizer wordpiece --vocab runs/variants/bert/vocab.txt --context-length 128   # the variants' pairs

For every pair of IMDBBertDataset (same data, same split, same negatives as pretraining), five
features of the two segments' word sets: shared words, the IDF sum of the shared words, Jaccard
similarity, and the two lengths. A logistic regression is fitted on the training pairs and scored
on the held-out pairs: the accuracy a model could reach from lexical overlap alone. For SOP
(`--pair-task sop`) these features are blind to order: a positive and its swapped twin have the
same ones, so the baseline is 0.5 by construction.
"""

import argparse
import math
import os
import sys

import numpy as np
import torch

from annotated_bert.data import read_reviews
from annotated_bert.pretraining import IMDBBertDataset
from annotated_bert.tokenization import Vocab, basic_english
from annotated_bert.wordpiece import WordPieceTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMDB = os.path.join(REPO, "..", "shared", "data", "imdb_train.csv.gz")


def overlap_features(ds, idf: np.ndarray) -> np.ndarray:
    special = set(ds.vocab.special_ids)
    ids, types = ds.original_ids.numpy(), ds.token_type_ids.numpy()
    rows = []
    for x, t in zip(ids, types):
        a = {int(i) for i in x[t == 0] if i not in special}
        b = {int(i) for i in x[t == 1] if i not in special}
        shared = a & b
        rows.append((len(shared), sum(idf[i] for i in shared), len(shared) / max(len(a | b), 1), len(a), len(b)))
    return np.array(rows, dtype=np.float64)


def fit_logistic(x: np.ndarray, y: np.ndarray) -> torch.nn.Linear:
    x, y = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    model = torch.nn.Linear(x.shape[1], 1).double()
    opt = torch.optim.LBFGS(model.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), y)
        loss.backward()
        return loss

    opt.step(closure)
    return model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", help=f"review CSVs (default: {IMDB})")
    p.add_argument("--ds-to", type=int, default=1000, help="reviews to use; -1 for all")
    p.add_argument("--layout", default="walkthrough", choices=("walkthrough", "standard", "packed"))
    p.add_argument("--pair-task", default="nsp", choices=("nsp", "sop"))
    p.add_argument("--tokenizer", default="basic_english", choices=("basic_english", "wordpiece"))
    p.add_argument("--vocab", help="with --tokenizer wordpiece: the vocab.txt the pretraining used")
    p.add_argument("--context-length", type=int, help="L (default: the 90th percentile)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    paths = args.data or [IMDB]
    missing = [d for d in paths if not os.path.exists(d)]
    if missing or (args.tokenizer == "wordpiece" and not args.vocab):
        print(f"error: data not found: {missing}; pass --data" if missing else "error: --tokenizer wordpiece needs "
              "--vocab (the pretraining's vocab.txt)", file=sys.stderr)
        return 2
    reviews = read_reviews(paths, 0, None if args.ds_to == -1 else args.ds_to, log=lambda *_: None)
    tokenizer, vocab = basic_english, None
    if args.tokenizer == "wordpiece":
        wordpiece = WordPieceTokenizer.from_file(args.vocab)
        tokenizer, vocab = wordpiece.tokenize, Vocab(wordpiece.ids_to_tokens)
    ds = IMDBBertDataset(reviews, 0, None, tokenizer=tokenizer, vocab=vocab, layout=args.layout,
                         pair_task=args.pair_task, context_length=args.context_length, seed=args.seed, verbose=False)
    # IDF over the training pairs' first segments
    df_counts = np.zeros(len(ds.vocab))
    for row, types in zip(ds.original_ids.numpy(), ds.token_type_ids.numpy()):
        df_counts[np.unique(row[types == 0])] += 1
    docs = ds.original_ids
    idf = np.log((1 + len(docs)) / (1 + df_counts))

    x_train, x_val = overlap_features(ds, idf), overlap_features(ds.val, idf)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-9
    model = fit_logistic((x_train - mean) / std, ds.pair_labels.numpy())
    with torch.no_grad():
        predict = lambda x: (model(torch.tensor((x - mean) / std)).squeeze(1) > 0).long().numpy()
    train_acc = (predict(x_train) == ds.pair_labels.numpy()).mean()
    val_acc = (predict(x_val) == ds.val.pair_labels.numpy()).mean()
    print(f"{len(ds):,} training / {len(ds.val):,} held-out {args.pair_task.upper()} pairs from {len(reviews):,} "
          f"reviews, layout {args.layout}")
    print(f"word-overlap logistic regression: train accuracy {train_acc:.3f}, held-out accuracy {val_acc:.3f} "
          f"(chance 0.5; ln 2 = {math.log(2):.3f})")
    print(f"| {args.pair_task.upper()} from word overlap alone (logistic regression) | {val_acc:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
