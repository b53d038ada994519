"""ELECTRA pretraining (annotated_bert/electra.py): the generator's size, what the discriminator
reads and is trained to predict, the shared embeddings, and a run of the training CLI whose
discriminator fine-tuning then loads."""

import math

import pandas as pd
import pytest
import torch

from annotated_bert import finetune, train
from annotated_bert.checkpoints import CheckpointError
from annotated_bert.config import preset
from annotated_bert.electra import ElectraForPreTraining, generator_config
from annotated_bert.files import read_jsonl
from annotated_bert.heads import BertForSequenceClassification
from annotated_bert.inference import Predictor
from annotated_bert.plots import binary_entropy
from annotated_bert.runtime import EXIT_INTERRUPTED
from test_train import _interrupt_at  # tests/ is on sys.path under pytest

V = 50


def tiny_model(**kw) -> ElectraForPreTraining:
    torch.manual_seed(0)
    config = preset("bert-mini", vocab_size=V, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return ElectraForPreTraining(config, **kw)


def masked_batch(B=3, T=12, seed=0):
    """Random ids (>= 5: no specials), the last two positions of row 0 [PAD], positions 2 and 7
    masked ([MASK] = 2 in the input, the original as the label)."""
    g = torch.Generator().manual_seed(seed)
    original = torch.randint(5, V, (B, T), generator=g)
    attention_mask = torch.ones_like(original)
    original[0, -2:], attention_mask[0, -2:] = 0, 0
    labels = torch.full_like(original, -100)
    labels[:, [2, 7]] = original[:, [2, 7]]
    input_ids = original.clone()
    input_ids[:, [2, 7]] = 2
    return original, dict(input_ids=input_ids, attention_mask=attention_mask, mlm_labels=labels)


def test_generator_is_a_quarter_of_the_discriminator():
    mini = generator_config(preset("bert-mini"))       # ELECTRA's appendix A: 1/4 of width, FFN and heads
    assert (mini.hidden_size, mini.num_attention_heads, mini.intermediate_size, mini.num_hidden_layers) == (64, 1, 256, 4)
    base = generator_config(preset("bert-base"))
    assert (base.hidden_size, base.num_attention_heads, base.intermediate_size) == (192, 3, 768)
    half = generator_config(preset("bert-base"), 0.5)
    assert (half.hidden_size, half.num_attention_heads) == (384, 6)


def test_discriminator_reads_the_original_with_samples_at_the_masked_positions():
    model = tiny_model()
    original, batch = masked_batch()
    with torch.no_grad():
        model.generator.lm_bias[7] = 1e4                # the generator now always proposes token 7
    out = model(**batch)
    masked = batch["mlm_labels"] != -100
    assert torch.equal(out.corrupted_ids[~masked], original[~masked])   # unmasked: the original, not [MASK]
    assert (out.corrupted_ids[masked] == 7).all()
    assert torch.equal(out.replaced, (out.corrupted_ids != original).float())
    assert out.replaced[~masked].sum() == 0 and out.replaced[masked].sum() == (original[masked] != 7).sum()
    assert out.mlm_logits.shape == (masked.sum(), V) and out.rtd_logits.shape == original.shape
    real = batch["attention_mask"].bool()
    assert out.replaced_frac.item() == pytest.approx(out.replaced[real].mean().item())
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.rtd_logits[real], out.replaced[real])
    assert out.rtd_loss.item() == pytest.approx(expected.item(), rel=1e-5)   # [PAD] positions are not scored
    assert out.loss.item() == pytest.approx(out.mlm_loss.item() + 50 * out.rtd_loss.item(), rel=1e-5)


def test_a_sampled_original_counts_as_original():
    model = tiny_model()
    original, batch = masked_batch()
    with torch.no_grad():   # the generator proposes the right token at every masked position of row 0 ...
        model.generator.lm_bias[original[0, 2]] = 1e4
    out = model(**batch)
    assert out.corrupted_ids[0, 2] == original[0, 2] and out.replaced[0, 2] == 0


def test_embeddings_are_shared_and_samples_carry_no_gradient():
    model = tiny_model()
    assert not any(isinstance(m, torch.nn.Embedding) for m in model.generator.modules())
    _, batch = masked_batch()
    out = model(**batch)
    out.mlm_loss.backward(retain_graph=True)            # the generator's loss reaches the shared embeddings ...
    assert model.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert model.discriminator_predictions.dense.weight.grad is None      # ... but not the discriminator
    model.zero_grad()
    (out.loss - out.mlm_loss).backward()                # the discriminator's loss does not reach the generator
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.generator.layer.parameters())
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


def test_constant_guess_loss_is_the_binary_entropy():
    """The plot's baseline: always predicting the replaced share p costs the entropy of p."""
    assert binary_entropy(0.5) == pytest.approx(math.log(2))
    assert binary_entropy(0.0) == binary_entropy(1.0) == 0.0
    replaced = (torch.rand(10_000, generator=torch.Generator().manual_seed(0)) < 0.14).float()
    p = replaced.mean().item()
    constant = torch.full_like(replaced, math.log(p / (1 - p)))  # the logit of p
    bce = torch.nn.functional.binary_cross_entropy_with_logits(constant, replaced).item()
    assert bce == pytest.approx(binary_entropy(p), rel=1e-5)


def test_training_cli_learns_and_fine_tuning_loads_the_discriminator(tiny_csv, tmp_path, capsys):
    out = tmp_path / "electra"
    assert train.main(["--data", str(tiny_csv), "--ds-to", "60", "--out", str(out), "--objective", "electra",
                       "--preset", "bert-tiny", "--layout", "packed", "--context-length", "16", "--dropout", "0",
                       "--batch-size", "8", "--epochs", "4", "--lr", "3e-3", "--log-every", "5", "--quiet"]) == 0
    assert "ELECTRA: the model above is the discriminator" in capsys.readouterr().out
    records = read_jsonl(out / "metrics.jsonl")
    val = [r for r in records if r["split"] == "val"]
    assert len(val) == 4 and all({"mlm_loss", "mlm_acc", "rtd_loss", "rtd_acc", "rtd_replaced"} <= set(r) for r in val)
    assert all(0 < r["rtd_replaced"] < 0.3 for r in records)  # about 15% are masked; most samples differ
    assert not any("nsp_loss" in r for r in records)
    trained = [r for r in records if r["split"] == "train"]
    assert trained[-1]["rtd_loss"] < trained[0]["rtd_loss"] and trained[-1]["mlm_loss"] < trained[0]["mlm_loss"]
    assert (out / "loss_curve.png").stat().st_size > 0
    # the run's discriminator is what a task model loads: every encoder weight, only the head is new
    model, info = BertForSequenceClassification.from_pretrained(str(out), num_labels=2, output_loading_info=True)
    assert info["missing_keys"] == ["classifier.weight", "classifier.bias"]
    assert all(k.startswith(("generator.", "discriminator_predictions.")) for k in info["unexpected_keys"])
    state = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    assert torch.equal(model.bert.encoder.layer[1].output.dense.weight, state["bert.encoder.layer.1.output.dense.weight"])
    # and the fine-tuning CLI runs from it
    labeled = tmp_path / "labeled.csv"
    reviews = pd.read_csv(tiny_csv)
    reviews.assign(sentiment=["positive", "negative"] * (len(reviews) // 2)).to_csv(labeled, index=False)
    assert finetune.main(["--task", "sentiment", "--data", str(labeled), "--init", str(out), "--out",
                          str(tmp_path / "ft"), "--epochs", "1", "--batch-size", "8", "--max-length", "32",
                          "--quiet"]) == 0
    with pytest.raises(CheckpointError, match="is an ELECTRA run"):
        Predictor.load(str(out))


def test_electra_resumes_exactly(tiny_csv, tmp_path, monkeypatch):
    """Interrupted mid-epoch and resumed, an ELECTRA run logs what an uninterrupted one does: the
    generator's samples come from the RNG state the checkpoint carries."""
    args = ["--data", str(tiny_csv), "--ds-to", "60", "--objective", "electra", "--preset", "bert-tiny",
            "--layout", "packed", "--context-length", "16", "--batch-size", "8", "--epochs", "2",
            "--log-every", "2", "--save-every", "0", "--quiet"]
    assert train.main([*args, "--out", str(tmp_path / "full")]) == 0
    with monkeypatch.context() as m:
        _interrupt_at(5, m)
        assert train.main([*args, "--out", str(tmp_path / "cut")]) == EXIT_INTERRUPTED
    assert train.main(["--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    full, cut = (read_jsonl(tmp_path / run / "metrics.jsonl") for run in ("full", "cut"))
    keys = ("mlm_loss", "mlm_acc", "rtd_loss", "rtd_acc")
    assert [[r[k] for k in keys] for r in full if r["split"] == "val"] == \
           [[r[k] for k in keys] for r in cut if r["split"] == "val"]
    # train records from the first whole logging window after the resume point (step 5) on
    later = lambda rs: [[r[k] for k in keys] for r in rs if r["split"] == "train" and r["step"] > 6]
    assert later(full) == later(cut)


def test_electra_flags_are_checked(capsys):
    with pytest.raises(SystemExit):
        train.main(["--objective", "electra", "--init", "some/run"])
    assert "--objective electra starts from random weights" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--objective", "electra", "--generator-size", "1.5"])
    assert "--generator-size must be in (0, 1]" in capsys.readouterr().err
