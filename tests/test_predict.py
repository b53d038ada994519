import pytest
import torch

from annotated_bert import predict, train
from annotated_bert.data import DataError


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import pandas as pd
    from conftest import synthetic_reviews
    folder = tmp_path_factory.mktemp("predict")
    csv = folder / "reviews.csv"
    pd.DataFrame({"review": synthetic_reviews(60)}).to_csv(csv, index=False)
    out = folder / "run"
    assert train.main(["--data", str(csv), "--ds-to", "60", "--out", str(out), "--context-length", "10",
                       "--batch-size", "8", "--epochs", "1", "--quiet"]) == 0
    return str(out)


def test_fill_mask_top_k(checkpoint):
    p = predict.Predictor.load(checkpoint)
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


def test_nsp_probability_and_answer_ranking(checkpoint):
    p = predict.Predictor.load(checkpoint)
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


def test_cli(checkpoint, capsys):
    assert predict.main(["--checkpoint", checkpoint, "fill", "the [MASK] was great", "--top-k", "2"]) == 0
    assert capsys.readouterr().out.startswith("[MASK] 1: ")
    assert predict.main(["--checkpoint", checkpoint, "nsp", "the film was great", "i loved it"]) == 0
    assert "P(B follows A) = " in capsys.readouterr().out
    assert predict.main(["--checkpoint", "/nonexistent", "nsp", "a", "b"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        predict.main(["--checkpoint", checkpoint, "fill", "the [MASK] was great", "--top-k", "0"])
    assert "--top-k must be at least 1, got 0" in capsys.readouterr().err
    assert predict.main(["--checkpoint", checkpoint, "classify", "a text"]) == 2
    assert "is not a fine-tuned model (no finetune.json)" in capsys.readouterr().err
