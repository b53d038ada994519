"""The classical baseline a practitioner would try first on IMDb sentiment: TF-IDF over word
unigrams and bigrams, then logistic regression (scikit-learn: `pip install -e ".[bench]"`).

    python benchmarks/tfidf_baseline.py --data path/to/imdb_train.csv.gz                 # validation only
    python benchmarks/tfidf_baseline.py --data path/to/imdb_train.csv.gz --test-data path/to/imdb_test.csv.gz

The validation slice is the one `python -m annotated_bert.finetune --seed 0` holds out (2,500 of
the 25,000 training reviews, the same permutation), so the numbers sit beside runs 1-3 of
benchmarks/IMDB.md. The regularisation strength C is chosen on that slice; with --test-data the
chosen model is then evaluated once on the test file. The tokenizer is scikit-learn's default
word pattern after removing the reviews' `<br />` line breaks and lowercasing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from annotated_bert.data import read_classification


def split(n: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) exactly as annotated_bert.tasks.build_task_data holds them out."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    return order[n_val:], np.sort(order[:n_val])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the training CSV (review, sentiment)")
    p.add_argument("--test-data", help="a test CSV, evaluated once with the C chosen on validation")
    p.add_argument("--seed", type=int, default=0, help="which validation slice (as finetune --seed)")
    p.add_argument("--grid", default="1,4,16,64", help="the values of C tried on validation")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        print("error: this baseline needs scikit-learn: pip install -e '.[bench]'", file=sys.stderr)
        return 2

    clean = lambda texts: [t.replace("<br />", " ") for t in texts]  # noqa: E731
    texts, _, labels = read_classification(args.data, "sentiment")
    texts, y = np.array(clean(texts), dtype=object), np.array([label == "positive" for label in labels])
    train, val = split(len(texts), seed=args.seed)
    t0 = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_df=0.9, sublinear_tf=True)
    x_train = vectorizer.fit_transform(texts[train])
    x_val = vectorizer.transform(texts[val])
    scores = {}
    for c in (float(x) for x in args.grid.split(",")):
        model = LogisticRegression(C=c, max_iter=2000).fit(x_train, y[train])
        scores[c] = float((model.predict(x_val) == y[val]).mean())
        print(f"C={c:g}: validation accuracy {scores[c]:.4f} ({len(val):,} reviews)")
    best_c = max(scores, key=scores.get)
    result = {"features": x_train.shape[1], "train": len(train), "val": len(val), "val_accuracy": scores,
              "chosen_C": best_c}
    if args.test_data:
        model = LogisticRegression(C=best_c, max_iter=2000).fit(x_train, y[train])
        test_texts, _, test_labels = read_classification(args.test_data, "sentiment")
        y_test = np.array([label == "positive" for label in test_labels])
        result["test_accuracy"] = float((model.predict(vectorizer.transform(clean(test_texts))) == y_test).mean())
        result["test"] = len(y_test)
        print(f"C={best_c:g} (chosen on validation): test accuracy {result['test_accuracy']:.4f} "
              f"({len(y_test):,} reviews)")
    result["seconds"] = time.perf_counter() - t0
    print(f"{x_train.shape[1]:,} features; {result['seconds']:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
