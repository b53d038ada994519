"""Time building the pretraining data from all 75,000 IMDb reviews (train + unsup).

    python benchmarks/bench_data.py
    python benchmarks/bench_data.py --data a.csv --data b.csv --layout standard

Reports the wall time of each stage (read, tokenize, pairs + masks) and the whole build, with the
resulting sizes. Vectorised numpy/torch after a single tokenization pass is what keeps it in seconds.
"""

import argparse
import os
import sys
import time

from annotated_bert.data import read_reviews
from annotated_bert.pretraining import IMDBBertDataset, tokenize_reviews
from annotated_bert.tokenization import basic_english

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("ANNOTATED_BERT_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", help="CSV files (default: imdb_train + imdb_unsup from $ANNOTATED_BERT_SHARED_DATA, else ../shared/data)")
    p.add_argument("--layout", default="walkthrough", choices=("walkthrough", "standard"))
    args = p.parse_args(argv)
    paths = args.data or [os.path.join(SHARED, "imdb_train.csv.gz"), os.path.join(SHARED, "imdb_unsup.csv.gz")]
    if not all(os.path.exists(x) for x in paths):
        print(f"error: data not found: {paths}; pass --data", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    df = read_reviews(paths, log=lambda m: None)
    t1 = time.perf_counter()
    tokenize_reviews(df["review"].tolist(), basic_english, progress=False)
    t2 = time.perf_counter()
    print(f"read {len(df):,} reviews: {t1 - t0:.1f} s; tokenize + split into sentences: {t2 - t1:.1f} s")

    t0 = time.perf_counter()
    ds = IMDBBertDataset(paths, 0, None, layout=args.layout, verbose=False)
    total = time.perf_counter() - t0
    print(f"IMDBBertDataset, all stages (read, tokenize, vocabulary, pairs, layout, masks): {total:.1f} s")
    print(f"  {len(ds.reviews):,} reviews, {len(ds.sentences):,} sentences, L = {ds.context_length}, "
          f"vocabulary {len(ds.vocab):,}, {len(ds):,} training + {len(ds.val):,} validation samples")
    print(f"| build pretraining data from {len(ds.reviews):,} reviews | {total:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
