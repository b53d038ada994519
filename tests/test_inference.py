"""annotated_bert.inference: a pretraining run queried through Predictor (fill in the blank,
next-sentence probability, answer ranking)."""

import pytest
import torch

from annotated_bert import train
from annotated_bert.data import DataError
from annotated_bert.inference import Predictor


def test_fill_mask_top_k(pretraining_run):
    p = Predictor.load(pretraining_run)
    result = p.fill_mask("the film was [MASK] and the [MASK] was great", top_k=3)
    assert len(result) == 2 and all(len(r) == 3 for r in result)
    for options in result:
        probs = [prob for _, prob in options]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
        assert all(tok not in ("[PAD]", "[CLS]", "[SEP]", "[MASK]") for tok, _ in options)
    with pytest.raises(DataError, match="no \\[MASK\\]"):
        p.fill_mask("nothing hidden here")
    with pytest.raises(DataError, match="past the context length"):
        p.fill_mask("the " * 20 + "[MASK]")


def test_nsp_probability_and_answer_ranking(pretraining_run):
    p = Predictor.load(pretraining_run)
    prob = p.next_sentence_probability("the film was great", "the music was good")
    assert 0 < prob < 1
    ranked = p.rank_answers("was the film good", ["yes it was great", "the actor never watch", "boring"])
    assert sorted(c for c, _ in ranked) == sorted(["yes it was great", "the actor never watch", "boring"])
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    # the same pair scored through the model directly
    enc = p.encode("was the film good", ranked[0][0])
    with torch.no_grad():
        direct = p.model(**enc).nsp_logits.softmax(-1)[0, 1].item()
    assert direct == pytest.approx(ranked[0][1])


def test_an_electra_run_has_no_heads_to_query(tmp_path):
    from annotated_bert.checkpoints import CheckpointError
    from annotated_bert.inference import load_pretraining_run
    import pandas as pd
    from conftest import synthetic_reviews
    csv = tmp_path / "reviews.csv"
    pd.DataFrame({"review": synthetic_reviews(60)}).to_csv(csv, index=False)
    out = tmp_path / "electra"
    assert train.main(["--data", str(csv), "--ds-to", "60", "--out", str(out), "--context-length", "10",
                       "--batch-size", "8", "--epochs", "1", "--quiet", "--objective", "electra"]) == 0
    with pytest.raises(CheckpointError, match="ELECTRA run"):
        load_pretraining_run(str(out))
