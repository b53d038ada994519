"""How many texts a fine-tuning --max-length cuts: the share of a sentiment file's texts longer
than each length in word pieces (with [CLS] and [SEP]), in the vocabulary of a checkpoint.

    python benchmarks/review_lengths.py                          # imdb_train, runs/imdb-pretrain-m40
    python benchmarks/review_lengths.py --data reviews.csv --init DIR --max-length 128 256 512
"""

import argparse
import os
import sys

import numpy as np
from tqdm import tqdm

from annotated_bert.checkpoints import CheckpointError
from annotated_bert.data import DataError, read_classification
from annotated_bert.interop import load_tokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.join(os.environ.get("ANNOTATED_BERT_SHARED_DATA", os.path.join(REPO, "..", "shared", "data")),
                                         "imdb_train.csv.gz"),
                   help="a CSV with a review/text column (default: imdb_train.csv.gz in $ANNOTATED_BERT_SHARED_DATA, else ../shared/data)")
    p.add_argument("--init", default=os.path.join(REPO, "runs", "imdb-pretrain-m40"),
                   help="whose vocabulary: a pretraining run, fine-tuned output or Hugging Face directory")
    p.add_argument("--max-length", type=int, nargs="+", default=[256, 384, 512])
    args = p.parse_args(argv)
    try:
        tok = load_tokenizer(args.init)
        texts, _, _ = read_classification(args.data, "sentiment")
    except (CheckpointError, DataError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    lengths = np.array([len(tok.encode(t)) + 2 for t in tqdm(texts, desc="tokenizing", unit=" texts")])
    print(f"{len(texts):,} texts of {args.data}; word pieces with [CLS] and [SEP]: median {np.median(lengths):.0f}, "
          f"90th percentile {np.percentile(lengths, 90):.0f}")
    for m in args.max_length:
        print(f"--max-length {m}: {(lengths > m).mean():.1%} of the texts are cut")
    return 0


if __name__ == "__main__":
    sys.exit(main())
