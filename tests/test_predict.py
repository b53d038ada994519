"""The predict CLI: its verbs on a pretraining run, and its one-line errors."""

import pytest

from annotated_bert import predict


def test_cli(pretraining_run, capsys):
    checkpoint = pretraining_run
    assert predict.main(["--checkpoint", checkpoint, "fill", "the [MASK] was great", "--top-k", "2"]) == 0
    assert capsys.readouterr().out.startswith("[MASK] 1: ")
    assert predict.main(["--checkpoint", checkpoint, "nsp", "the film was great", "i loved it"]) == 0
    assert "P(B follows A) = " in capsys.readouterr().out
    assert predict.main(["--checkpoint", "/nonexistent", "nsp", "a", "b"]) == 2
    assert "/nonexistent" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        predict.main(["--checkpoint", checkpoint, "fill", "the [MASK] was great", "--top-k", "0"])
    assert "--top-k must be at least 1, got 0" in capsys.readouterr().err
    assert predict.main(["--checkpoint", checkpoint, "classify", "a text"]) == 2
    assert "is not a fine-tuned model (no finetune.json)" in capsys.readouterr().err
