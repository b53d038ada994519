"""annotated_bert.samples: sentences, the percentile context length, NSP and SOP pairs, and the
layouts, read back from datasets built on small synthetic corpora."""

import numpy as np
import pandas as pd
import pytest

from annotated_bert.data import DataError
from annotated_bert.pretraining import IMDBBertDataset
from annotated_bert.samples import SpecialIds, find_context_length, make_nsp_pairs, tokenize_reviews
from annotated_bert.tokenization import basic_english
from conftest import synthetic_reviews


def build(reviews, **kw):
    kw.setdefault("verbose", False)
    return IMDBBertDataset(pd.DataFrame({"review": reviews}), 0, None, **kw)


def test_context_length_is_the_percentile():
    assert find_context_length(np.arange(10, 101, 10), 90) == 90   # the walkthrough's example
    assert find_context_length(np.array([3, 1, 2]), 100) == 3
    assert find_context_length(np.array([5] * 10 + [50]), 90) == 5
    with pytest.raises(DataError):
        find_context_length(np.array([]), 90)


def test_sentences_split_on_periods_and_drop_empty_ones():
    sentences, itos = tokenize_reviews(["One two. Three... Four!", "Five"], basic_english, progress=False)
    words = [[itos[i] for i in sentences.tokens(s)] for s in range(len(sentences))]
    assert words == [["one", "two"], ["three"], ["four", "!"], ["five"]]
    assert sentences.review.tolist() == [0, 0, 0, 1]


def test_nsp_pairs_positives_negatives_and_split():
    reviews = synthetic_reviews(40)
    sentences, _ = tokenize_reviews(reviews, basic_english, progress=False)
    in_split = np.zeros(40, dtype=bool)
    in_split[:30] = True
    a, b, labels = make_nsp_pairs(sentences, in_split, np.random.default_rng(0))
    rev = sentences.review
    assert labels.mean() == 0.5 and (labels[0::2] == 1).all() and (labels[1::2] == 0).all()
    pos, neg = labels == 1, labels == 0
    assert (b[pos] == a[pos] + 1).all() and (rev[a[pos]] == rev[b[pos]]).all()      # adjacent, same review
    assert (rev[a[neg]] != rev[b[neg]]).all()                                       # another review
    assert (a[neg] == a[pos]).all()                                                  # each positive's twin
    assert in_split[rev[a]].all() and in_split[rev[b]].all()                         # never leaves the split
    # every adjacent pair of a review in the split is a positive
    expected = sum(max(0, c - 1) for c in np.bincount(rev, minlength=40)[:30])
    assert pos.sum() == expected


def test_sop_pairs_are_consecutive_sentences_in_order_or_swapped():
    reviews = synthetic_reviews(40)
    sentences, _ = tokenize_reviews(reviews, basic_english, progress=False)
    in_split = np.ones(40, dtype=bool)
    a, b, labels = make_nsp_pairs(sentences, in_split, np.random.default_rng(0), "sop")
    rev = sentences.review
    assert labels.mean() == 0.5 and (labels[0::2] == 1).all() and (labels[1::2] == 0).all()
    pos, neg = labels == 1, labels == 0
    assert (b[pos] == a[pos] + 1).all() and (rev[a] == rev[b]).all()       # one review, consecutive, in order
    assert (a[neg] == b[pos]).all() and (b[neg] == a[pos]).all()           # each negative: its positive swapped
    ds = build(reviews, pair_task="sop", layout="standard")
    assert set(ds[0]) == {"input_ids", "token_type_ids", "attention_mask", "mlm_labels", "sop_labels"}
    assert "in_order" in ds.df.columns


@pytest.mark.parametrize("task", ["nsp", "sop"])
def test_packed_segment_pairs_cut_chunks_at_sentence_boundaries(task):
    """--layout packed with a pair task: [CLS] A [SEP] B [SEP], A and B whole sentences of one
    review (SOP negatives: swapped; NSP negatives: B from another review), exactly half positives.
    Every word names its review ("r7w3" is a word of review 7), so a segment's source can be read."""
    rng = np.random.default_rng(0)
    reviews = [". ".join(" ".join(f"r{r}w{rng.integers(9)}" for _ in range(rng.integers(2, 6)))
                         for _ in range(rng.integers(2, 7))) + "." for r in range(60)]
    ds = build(reviews, layout="packed", context_length=12, min_freq=1, pair_task=task)   # 25 positions
    s, dot = ds.special, ds.vocab["."]
    ids, types = ds.original_ids.long(), ds.token_type_ids.long()
    assert ds.pair_labels.float().mean() == 0.5 and f"{task}_labels" in ds[0]
    review_of = lambda part: {int(t[1:t.index("w")]) for t in ds.vocab.lookup_tokens(part) if t != "."}  # noqa: E731
    for row, t, label in zip(ids.tolist(), types.tolist(), ds.pair_labels.tolist()):
        first = row.index(s.sep)
        second = row.index(s.sep, first + 1)
        assert row[0] == s.cls and t[:first + 1] == [0] * (first + 1) and t[first + 1:second + 1] == [1] * (second - first)
        a, b = row[1:first], row[first + 1:second]
        assert a[-1] == dot and len(review_of(a)) == 1                   # whole sentences of one review
        if task == "nsp" and label == 0:
            assert len(review_of(b)) == 1 and review_of(b) != review_of(a)   # B from another review
            continue
        assert b[-1] == dot and review_of(b) == review_of(a)
        (r,) = review_of(a)
        stream = " ".join(f"{t} ." for i in np.flatnonzero(ds.sentences.review == r)
                          for t in [" ".join(map(str, ds.sentences.tokens(i).tolist()))])
        in_order = a + b if label == 1 else b + a                         # SOP negatives: the two swapped
        assert f" {' '.join('.' if t == dot else str(t) for t in in_order)} " in f" {stream} "


def test_layouts_walkthrough_and_standard():
    for layout in ("walkthrough", "standard"):
        ds = build(synthetic_reviews(30), layout=layout, context_length=8, seed=1)
        s = ds.special
        ids, types = ds.original_ids.long(), ds.token_type_ids.long()
        L = 8
        assert ids.shape[1] == 2 * L + 1
        assert (ids[:, 0] == s.cls).all()
        if layout == "walkthrough":
            assert (ids[:, L] == s.sep).all() and (ids[:, L + 1] == s.cls).all()
            assert (types[:, :L + 1] == 0).all() and (types[:, L + 1:] == 1).all()
        else:
            for row, tt in zip(ids, types):
                seps = (row == s.sep).nonzero().squeeze(1).tolist()
                assert len(seps) == 2 and (row == s.cls).sum() == 1
                real = row != s.pad
                assert real[: seps[1] + 1].all() and not real[seps[1] + 1:].any()     # padding only at the end
                assert (tt[1: seps[0] + 1] == 0).all() and (tt[seps[0] + 1: seps[1] + 1] == 1).all()


def test_special_ids_need_every_special_token():
    from annotated_bert.tokenization import Vocab
    with pytest.raises(DataError, match="lacks the special tokens"):
        SpecialIds.from_vocab(Vocab(["[UNK]", "[PAD]", "a"]))


def test_packed_layout_cuts_whole_reviews_into_chunks():
    reviews = synthetic_reviews(40)
    ds = build(reviews, layout="packed", context_length=6, min_freq=1, pair_task=None)   # 13 positions, 11 tokens a chunk
    s = ds.special
    assert ds.pair_task is None and "nsp_labels" not in ds[0] and (ds.token_type_ids == 0).all()
    ids = ds.original_ids.long()
    assert (ids[:, 0] == s.cls).all() and ((ids == s.sep).sum(1) == 1).all()
    # the training chunks, read in order, are the training reviews' sentences joined by "."
    dot = ds.vocab["."]
    stream = [t for row in ids.tolist() for t in row[1:row.index(s.sep)]]
    expected = []
    for r in np.flatnonzero(~ds.is_val_review):
        for sent in np.flatnonzero(ds.sentences.review == r):
            expected += ds.sentences.tokens(sent).tolist() + [dot]
    assert stream == expected
    full = ((ids != s.pad).sum(1) == 13)
    assert full.sum() > 0 and (ids[~full] == s.pad).any()        # long reviews fill chunks, the last is padded
    assert len(ds.val) > 0


# ------------------------------------------------------------------------------ the embedded sample


