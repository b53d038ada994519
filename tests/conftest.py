"""Shared fixtures: a small synthetic review corpus (always available), a small pretraining run,
and the real datasets (their folder is $ANNOTATED_BERT_SHARED_DATA, by default ../shared/data
beside the repository; tests that need them skip with a reason when they are absent)."""

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


NO_IMDB = ("the full IMDb train split (imdb_train.csv.gz) is not here; set ANNOTATED_BERT_SHARED_DATA to "
           "the folder that holds it")


@pytest.fixture(scope="session")
def imdb_path() -> Path:
    if not IMDB_TRAIN.exists():
        pytest.skip(NO_IMDB)
    return IMDB_TRAIN


@pytest.fixture(scope="session")
def imdb_sample(imdb_path) -> list[str]:
    """300 real reviews drawn from the full train split, the same ones every run."""
    return pd.read_csv(imdb_path)["review"].sample(n=300, random_state=0).tolist()


@pytest.fixture(scope="session")
def pretraining_run(tmp_path_factory) -> str:
    """A small pretraining run (the walkthrough's model on 60 synthetic reviews, one epoch)."""
    from annotated_bert import train
    folder = tmp_path_factory.mktemp("inference")
    csv = folder / "reviews.csv"
    pd.DataFrame({"review": synthetic_reviews(60)}).to_csv(csv, index=False)
    out = folder / "run"
    assert train.main(["--data", str(csv), "--ds-to", "60", "--out", str(out), "--context-length", "10",
                       "--batch-size", "8", "--epochs", "1", "--quiet"]) == 0
    return str(out)
