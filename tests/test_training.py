"""annotated_bert.training: the schedule, the parameter groups, one step against a hand-written
AdamW, the evaluation's averages, and the loop on a toy model."""

import os
import time

import pytest
import torch
import torch.nn.functional as F

from annotated_bert.checkpoints import load_training_checkpoint
from annotated_bert.config import preset
from annotated_bert.files import read_jsonl
from annotated_bert.heads import BertForSequenceClassification
from annotated_bert.model import BertForPreTraining
from annotated_bert.runtime import EXIT_INTERRUPTED
from annotated_bert.training import (NonFiniteLoss, Plan, Schedule, TrainState, evaluate, fit, make_optimizer,
                                     parameter_groups, restore, train_step)


def test_schedule_warms_up_then_decays_to_zero():
    s = Schedule(peak_lr=1.0, total_steps=100, warmup=0.1)
    assert [s.lr(s.progress(k)) for k in (0, 5, 10, 55, 100, 120)] == pytest.approx([0, 0.5, 1, 0.5, 0, 0])
    no_warmup = Schedule(peak_lr=2.0, total_steps=10, warmup=0.0)
    assert no_warmup.lr(no_warmup.progress(0)) == 2.0
    # with a budget, how far along is the further of steps and time
    budget = Schedule(peak_lr=1.0, total_steps=1000, warmup=0.0, budget_s=60.0)
    assert budget.progress(10, elapsed_s=30.0) == 0.5 and budget.progress(900, elapsed_s=30.0) == 0.9
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW([{"params": [model.weight], "lr_scale": 0.5}, {"params": [model.bias]}], lr=0.1)
    assert s.set_lr(opt, 10) == 1.0
    assert [g["lr"] for g in opt.param_groups] == [0.5, 1.0]


def test_parameter_groups_decay_and_layer_scales():
    model = BertForSequenceClassification(preset("bert-tiny", vocab_size=50), num_labels=2)  # 2 layers
    groups = parameter_groups(model, weight_decay=0.1, layer_lr_decay=0.5)
    named = {id(p): n for n, p in model.named_parameters()}
    seen = [named[id(p)] for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(named.values())  # every parameter exactly once
    scale = {named[id(p)]: g["lr_scale"] for g in groups for p in g["params"]}
    assert scale["classifier.weight"] == scale["bert.pooler.dense.weight"] == 1.0
    assert scale["bert.encoder.layer.1.output.dense.weight"] == 0.5
    assert scale["bert.encoder.layer.0.attention.self.query.bias"] == 0.25
    assert scale["bert.embeddings.word_embeddings.weight"] == scale["bert.embeddings.LayerNorm.weight"] == 0.125
    decay = {named[id(p)]: g["weight_decay"] for g in groups for p in g["params"]}
    assert decay["bert.encoder.layer.0.intermediate.dense.weight"] == 0.1
    assert decay["bert.encoder.layer.0.intermediate.dense.bias"] == decay["classifier.bias"] == 0.0
    assert {g["lr_scale"] for g in parameter_groups(model, 0.1)} == {1.0}


def _tiny_pretraining_model():
    torch.manual_seed(0)
    config = preset("bert-tiny", vocab_size=40, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForPreTraining(config)


def _batch(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 40, (4, 12), generator=g)
    labels = torch.full_like(ids, -100)
    labels[:, 3:6] = ids[:, 3:6]
    return {"input_ids": ids, "mlm_labels": labels, "nsp_labels": torch.randint(0, 2, (4,), generator=g)}


def test_train_step_equals_a_hand_written_adamw_step():
    """Three train_step calls leave the same parameters as BERT's step written out by hand: the
    schedule's learning rate, the gradient clipped to norm 1, and AdamW's moments, bias
    corrections and decoupled weight decay (no decay on biases and LayerNorm)."""
    model, reference = _tiny_pretraining_model(), _tiny_pretraining_model()
    schedule = Schedule(peak_lr=1e-2, total_steps=10, warmup=0.2)
    optimizer = make_optimizer(model, 1e-2, weight_decay=0.1)
    params = dict(reference.named_parameters())
    m = {k: torch.zeros_like(p) for k, p in params.items()}
    v = {k: torch.zeros_like(p) for k, p in params.items()}
    beta1, beta2, eps, clip = 0.9, 0.999, 1e-6, 1.0
    for step in range(3):
        batch = _batch(step)
        result = train_step(model, batch, optimizer, schedule, step, clip=clip)

        lr = 1e-2 * (step / 10) / 0.2                                       # warmup: 0, 5e-3, 1e-2
        reference.zero_grad()
        reference(**batch).loss.backward()
        grads = {k: p.grad for k, p in params.items()}
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads.values()))
        factor = min(1.0, clip / (float(norm) + 1e-6))
        with torch.no_grad():
            for k, p in params.items():
                g = grads[k] * factor
                decay = 0.1 if p.dim() >= 2 else 0.0
                p.mul_(1 - lr * decay)
                m[k].mul_(beta1).add_(g, alpha=1 - beta1)
                v[k].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                m_hat, v_hat = m[k] / (1 - beta1 ** (step + 1)), v[k] / (1 - beta2 ** (step + 1))
                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
        assert result.lr == pytest.approx(lr) and result.grad_norm == pytest.approx(float(norm), rel=1e-5)
        assert set(result.metrics) == {"mlm_loss", "mlm_acc", "nsp_loss", "nsp_acc"}
    for k, p in model.named_parameters():
        torch.testing.assert_close(p, params[k], rtol=1e-5, atol=1e-6, msg=k)
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), _tiny_pretraining_model().parameters()))


def test_a_non_finite_gradient_is_refused_before_the_step():
    model = _tiny_pretraining_model()
    optimizer = make_optimizer(model, 1e-2, 0.0)
    with torch.no_grad():
        model.bert.embeddings.LayerNorm.weight[0] = float("nan")
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(NonFiniteLoss, match="non-finite"):
        train_step(model, _batch(0), optimizer, Schedule(1e-2, 10, 0.0), 0)
    assert optimizer.state == {}                    # no step was taken
    for a, b in zip(before, model.parameters()):
        torch.testing.assert_close(a, b.detach(), equal_nan=True, rtol=0, atol=0)


def test_evaluate_averages_over_every_prediction_not_every_batch():
    """Two batches with 1 and 3 masked positions: the MLM loss is the mean over the 4 positions."""
    model = _tiny_pretraining_model().eval()
    b1, b2 = _batch(1), _batch(2)
    b1["mlm_labels"][:] = -100
    b1["mlm_labels"][0, 2] = b1["input_ids"][0, 2]
    b2["mlm_labels"][:] = -100
    b2["mlm_labels"][1, 1:4] = b2["input_ids"][1, 1:4]
    metrics = evaluate(model, [b1, b2])
    with torch.no_grad():
        losses = torch.cat([F.cross_entropy(model(**b).mlm_logits, b["mlm_labels"][b["mlm_labels"] != -100],
                                             reduction="none") for b in (b1, b2)])
        nsp = torch.cat([F.cross_entropy(model(**b).nsp_logits, b["nsp_labels"], reduction="none") for b in (b1, b2)])
    assert metrics["mlm_loss"] == pytest.approx(losses.mean().item(), rel=1e-6)
    assert metrics["nsp_loss"] == pytest.approx(nsp.mean().item(), rel=1e-6)
    assert model.training is False


class Toy(torch.nn.Module):
    """y = w x, its squared error as the loss and |error| < 0.5 as an 'accuracy'."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.config = type("Config", (), {"num_hidden_layers": 0})()

    def forward(self, input_ids, target):
        err = self.w * input_ids - target
        out = type("Out", (), {})()
        out.loss = (err ** 2).mean()
        out.metrics = {"close": ((err.abs() < 0.5).sum(), err.numel())}
        return out


def _toy_run(tmp_path, epochs=3, state=None, checkpoint=None, **plan_kw):
    model = Toy()
    optimizer = make_optimizer(model, 0.1, 0.0)
    if checkpoint is not None:
        state = restore(checkpoint, model, optimizer)
    x = torch.linspace(1, 2, 8)
    data = [(x[i:i + 2], 3 * x[i:i + 2]) for i in range(0, 8, 2)]        # 4 batches: w should reach 3
    plan = Plan(out=str(tmp_path), epochs=epochs, steps_per_epoch=4, batch_size=2,
                schedule=Schedule(0.1, 4 * epochs, 0.0), quiet=True, log_every=2, **plan_kw)
    code = fit(model, optimizer, plan, state or TrainState(), batches=lambda epoch: data,
               load=lambda item: {"input_ids": item[0], "target": item[1]},
               validate=lambda: {"loss": float(((model.w.detach() * x - 3 * x) ** 2).mean())},
               checkpoint_extra={"kind": "toy", "args": {}, "config": {}, "vocab": ["[UNK]"]})
    return code, model, read_jsonl(os.path.join(tmp_path, "metrics.jsonl"))


def test_fit_logs_validates_checkpoints_and_learns(tmp_path):
    code, model, records = _toy_run(tmp_path)
    assert code == 0
    train = [r for r in records if r["split"] == "train"]
    val = [r for r in records if r["split"] == "val"]
    assert [r["step"] for r in train] == [2, 4, 6, 8, 10, 12] and [r["step"] for r in val] == [4, 8, 12]
    assert {"loss", "close", "lr", "samples_per_s", "elapsed_s"} <= set(train[0])
    assert val[-1]["loss"] < val[0]["loss"]
    state = load_training_checkpoint(str(tmp_path))
    assert state["step"] == 12 and state["finished"] and state["kind"] == "toy"
    assert torch.equal(state["model"]["w"], model.w.detach())


def test_fit_resumes_exactly_from_a_checkpoint_in_the_middle(tmp_path, monkeypatch):
    full_code, full_model, full = _toy_run(tmp_path / "full")
    assert full_code == 0
    # stop after step 6 (mid-epoch 2) as Ctrl-C does, then resume from the checkpoint it saved
    import annotated_bert.training as training
    calls = {"n": 0}
    real_check = training.StopFlag.check

    def interrupt_at_6(self, elapsed_s, device):
        calls["n"] += 1
        return (calls["n"] == 6, False) if calls["n"] <= 6 else real_check(self, elapsed_s, device)

    monkeypatch.setattr(training.StopFlag, "check", interrupt_at_6)
    code, _, _ = _toy_run(tmp_path / "cut")
    assert code == EXIT_INTERRUPTED and load_training_checkpoint(str(tmp_path / "cut"))["step"] == 6
    monkeypatch.setattr(training.StopFlag, "check", real_check)
    code, model, cut = _toy_run(tmp_path / "cut", checkpoint=load_training_checkpoint(str(tmp_path / "cut")))
    assert code == 0 and torch.equal(model.w, full_model.w)
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("samples_per_s", "elapsed_s")} for r in rs]
    assert strip(cut) == strip(full)


def test_fit_keeps_the_best_and_stops_on_the_budget(tmp_path):
    model = Toy()
    optimizer = make_optimizer(model, 0.1, 0.0)
    x = torch.linspace(1, 2, 8)
    scores = iter([0.5, 0.7, 0.6, 0.9] + [0.1] * 100)
    best = []
    plan = Plan(out=str(tmp_path), epochs=1000, steps_per_epoch=1, batch_size=8, quiet=True,
                schedule=Schedule(0.1, 1000, 0.0, budget_s=0.5))
    code = fit(model, optimizer, plan, TrainState(), batches=lambda epoch: [0],
               load=lambda item: (time.sleep(0.05), {"input_ids": x, "target": 3 * x})[1],
               validate=lambda: {"accuracy": next(scores)}, checkpoint_extra={"args": {}, "config": {}, "vocab": ["[UNK]"]},
               main_metric="accuracy",
               on_best=lambda metrics: best.append(metrics["accuracy"]))
    assert code == 0 and best[:3] == [0.5, 0.7, 0.9]
    state = load_training_checkpoint(str(tmp_path))
    assert state["finished"] and 1 <= state["step"] < 1000 and state["best"] == max(best)
    assert state["elapsed"] >= 0.5
