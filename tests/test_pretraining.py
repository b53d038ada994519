"""annotated_bert.pretraining: MLM masking and the datasets (held-out reviews, seeds, dynamic masks)."""

import numpy as np
import pandas as pd
import pytest
import torch

from annotated_bert.config import IGNORE_INDEX
from annotated_bert.data import DataError
from annotated_bert.pretraining import IMDBBertDataset
from conftest import synthetic_reviews


def build(reviews, **kw):
    kw.setdefault("verbose", False)
    return IMDBBertDataset(pd.DataFrame({"review": reviews}), 0, None, **kw)


def test_masking_invariants():
    ds = build(synthetic_reviews(200), context_length=10, seed=3)
    s = ds.special
    chosen, orig, inp = ds.chosen, ds.original_ids.long(), ds.input_ids.long()
    special = torch.isin(orig, torch.tensor([s.cls, s.pad, s.sep]))
    assert not (chosen & special).any()                        # specials and padding are never chosen
    assert ((inp != orig) <= chosen).all()                      # only chosen positions change
    for seg in (0, 1):                                          # per sentence: round(15% of n), at least 1
        in_seg = (ds.token_type_ids == seg) & ds.eligible
        n, k = in_seg.sum(1), (chosen & in_seg).sum(1)
        expected = torch.where(n > 0, torch.clamp(torch.floor(n * 0.15 + 0.5), min=1), 0)
        assert torch.equal(k, expected)
    became_mask = (inp[chosen] == s.mask).float().mean().item()
    unchanged = (inp[chosen] == orig[chosen]).float().mean().item()
    assert abs(became_mask - 0.8) < 0.03 and abs(unchanged - 0.1) < 0.03     # 80/10/10 (random may hit itself)
    replaced = inp[chosen & (inp != orig) & (inp != s.mask)]
    assert not torch.isin(replaced, torch.tensor(ds.vocab.special_ids)).any()
    batch = ds.batch(torch.arange(len(ds)))
    labels = batch["mlm_labels"]
    assert torch.equal(labels != IGNORE_INDEX, chosen) and torch.equal(labels[chosen], orig[chosen])
    assert torch.equal(batch["attention_mask"].bool(), orig != s.pad)


def test_truncation_never_loses_a_mask():
    ds = build(synthetic_reviews(100), context_length=4, seed=0)   # sentences cut to 3 tokens
    assert (ds.original_ids.long()[ds.chosen] != ds.special.pad).all()
    assert ds.chosen.sum(1).min() >= 2                              # one per sentence at least, both kept


def test_same_seed_same_dataset_and_dynamic_masking():
    a, b, c = (build(synthetic_reviews(50), seed=s) for s in (7, 7, 8))
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.pair_labels, b.pair_labels)
    assert not torch.equal(a.input_ids, c.input_ids)
    d = build(synthetic_reviews(50), seed=7, masking="dynamic")
    epoch0 = d.input_ids.clone()
    d.set_epoch(1)
    assert not torch.equal(d.input_ids, epoch0)
    d.set_epoch(0)
    assert torch.equal(d.input_ids, epoch0)
    a.set_epoch(3)                                                  # static: the same masks forever
    assert torch.equal(a.input_ids, b.input_ids)


def test_validation_reviews_are_held_out():
    reviews = [f"Review {i} sentence one. Review {i} sentence two. Review {i} sentence three." for i in range(50)]
    ds = build(reviews, seed=0, val_fraction=0.2, min_freq=1)
    val_reviews = set(np.flatnonzero(ds.is_val_review))
    assert len(val_reviews) == 10 and ds.val is not None
    number_of = lambda ds_: {int(ds_.vocab.itos[i]) for i in ds_.original_ids.unique().tolist()
                             if ds_.vocab.itos[i].isdigit()}
    # training samples mention every training review and no validation review; the vocabulary is
    # built from training reviews only, so a validation review's number is [UNK] in ds.val
    assert number_of(ds) == set(range(50)) - val_reviews
    assert number_of(ds.val) == set() and (ds.val.original_ids == ds.special.unk).any()


def test_mlm_only_dataset_has_only_consecutive_pairs():
    ds = build(synthetic_reviews(30), pair_task=None)
    assert (ds.pair_labels == 1).all() and "nsp_labels" not in ds[0]


def test_items_dataframe_and_dataloader():
    ds = build(synthetic_reviews(30), context_length=6)
    item = ds[0]
    assert set(item) == {"input_ids", "token_type_ids", "attention_mask", "mlm_labels", "nsp_labels"}
    assert item["input_ids"].shape == (13,) and item["nsp_labels"].shape == ()
    df = ds.df
    assert list(df.columns) == ["masked_indices", "indices", "token_mask", "is_next"] and len(df) == len(ds)
    assert (df["token_mask"][0] == (~ds.chosen[0]).numpy()).all()
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    assert next(iter(loader))["input_ids"].shape == (4, 13)


def test_real_imdb_first_1000_reviews(imdb_path):
    ds = IMDBBertDataset(str(imdb_path), 0, 1000, verbose=False)
    assert 20 <= ds.context_length <= 60
    assert 5000 < len(ds.vocab) < 15000
    assert len(ds) > 10000 and len(ds.val) > 1000
    assert ds.vocab.itos[:5] == ["[CLS]", "[PAD]", "[MASK]", "[SEP]", "[UNK]"]


# ------------------------------------------------------------------------------ bad input

def test_reviews_without_periods(tmp_path, capsys):
    reviews = ["no period here at all"] * 5 + synthetic_reviews(20)
    ds = build(reviews, verbose=True)
    assert "5 reviews have fewer than two sentences" in capsys.readouterr().out
    assert len(ds) > 0
    with pytest.raises(DataError, match="no review in this slice has two sentences"):
        build(["no period", "none here either", "nor here", "and none", "at all"])


def test_a_vocabulary_of_special_tokens_only_is_an_error():
    reviews = pd.DataFrame({"review": ["Every word here is new. Nothing repeats at all. Quite so."]})
    with pytest.raises(DataError, match="no token appears 2 times in the 1 training review; .* lower --min-freq"):
        IMDBBertDataset(reviews, pair_task=None, verbose=False)


def test_encode_for_model_single_text_and_pair():
    from annotated_bert.pretraining import encode_for_model
    from annotated_bert.tokenization import Vocab
    vocab = Vocab(["[CLS]", "[PAD]", "[MASK]", "[SEP]", "[UNK]", "a", "b", "c"])
    one = encode_for_model(["a", "[MASK]"], None, vocab, context_length=4, layout="standard")
    assert vocab.lookup_tokens(one["input_ids"][0].tolist()) == ["[CLS]", "a", "[MASK]", "[SEP]"] + ["[PAD]"] * 5
    assert one["token_type_ids"].sum() == 0 and one["attention_mask"][0].tolist() == [1] * 4 + [0] * 5
    two = encode_for_model(["a"], ["b", "c"], vocab, context_length=4, layout="walkthrough")
    assert vocab.lookup_tokens(two["input_ids"][0].tolist()) == \
        ["[CLS]", "a", "[PAD]", "[PAD]", "[SEP]", "[CLS]", "b", "c", "[PAD]"]
    assert two["token_type_ids"][0].tolist() == [0] * 5 + [1] * 4


