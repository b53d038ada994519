"""Shared fixtures: a small synthetic review corpus (always available) and the real IMDb data
(used when ../shared/data is present, skipped with a reason otherwise)."""

import os
import random
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ANNOTATED_BERT_SHARED_DATA", REPO.parent / "shared" / "data"))
IMDB_TRAIN = SHARED_DATA / "imdb_train.csv.gz"

WORDS = ("the film movie actor plot story scene great bad boring funny music director script "
         "character ending love hate watch again never always really very quite good").split()


def synthetic_reviews(n: int = 60, seed: int = 0) -> list[str]:
    """Reviews of 2 to 6 sentences of 3 to 12 words, with commas, quotes and <br /> breaks."""
    rng = random.Random(seed)
    reviews = []
    for _ in range(n):
        sentences = []
        for _ in range(rng.randint(2, 6)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(3, 12))]
            if rng.random() < 0.3:
                words[rng.randrange(len(words))] += ","
            sentences.append(" ".join(words).capitalize())
        reviews.append(". ".join(sentences) + "." + (" <br /><br />I'd say so." if rng.random() < 0.3 else ""))
    return reviews


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"review": synthetic_reviews(), "sentiment": "positive"}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def imdb_path() -> Path:
    if not IMDB_TRAIN.exists():
        pytest.skip(f"real IMDb data not found at {IMDB_TRAIN} (set ANNOTATED_BERT_SHARED_DATA)")
    return IMDB_TRAIN
