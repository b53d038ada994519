"""The training checkpoint (annotated_bert/checkpoints.py): what a run directory holds, that it
is written atomically and read back as saved, and that a damaged or foreign checkpoint.pt is one
clear line naming the file, never PyTorch's advice to load it unsafely."""

import argparse
import collections
import json
import os

import pytest
import torch

from annotated_bert import files
from annotated_bert.checkpoints import CHECKPOINT, CheckpointError, load_training_checkpoint, save_training_checkpoint
from annotated_bert.config import BertConfig
from annotated_bert.model import BertForPreTraining

TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "was", "good", "bad"]


def run_state(seed=0) -> dict:
    """What a training run saves, in small: model, optimizer, RNG, config, vocabulary, args, data settings."""
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(TOKENS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=24, max_position_embeddings=16)
    model = BertForPreTraining(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randint(0, len(TOKENS), (2, 8))).mlm_logits.sum().backward()
    optimizer.step()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
            "global_step": 1, "config": config.to_dict(), "vocab": TOKENS, "args": {"lr": 1e-3, "objective": "mlm"},
            "data": {"context_length": 8, "layout": "walkthrough", "tokenizer": "basic_english"}}


def test_round_trip_and_the_files_beside_it(tmp_path):
    state = run_state()
    save_training_checkpoint(tmp_path / "run", state)
    assert sorted(os.listdir(tmp_path / "run")) == ["checkpoint.pt", "config.json", "vocab.txt"]
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == state["config"]
    assert (tmp_path / "run" / "vocab.txt").read_text().splitlines() == TOKENS
    for path in (tmp_path / "run", str(tmp_path / "run"), tmp_path / "run" / CHECKPOINT):
        back = load_training_checkpoint(path)
        assert back["global_step"] == 1 and back["args"] == state["args"] and back["data"] == state["data"]
        assert all(torch.equal(back["model"][k], v) for k, v in state["model"].items())
        assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])
        assert torch.equal(back["rng"], state["rng"])
    # a plain PyTorch file: the reference reader, in its safe mode, reads it too
    plain = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert torch.equal(plain["model"]["bert.embeddings.word_embeddings.weight"],
                       state["model"]["bert.embeddings.word_embeddings.weight"])


def test_save_is_atomic(tmp_path, monkeypatch):
    """A save that fails part-way keeps the previous checkpoint whole, with no temporary file left."""
    save_training_checkpoint(tmp_path, run_state(seed=0))
    before = (tmp_path / CHECKPOINT).read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_training_checkpoint(tmp_path, run_state(seed=1))
    assert (tmp_path / CHECKPOINT).read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt", "config.json", "vocab.txt"]


class Settings(collections.OrderedDict):
    """An OrderedDict subclass: pickled by class name, so loading it would import and build that class."""


def refusal(path) -> str:
    with pytest.raises(CheckpointError) as e:
        load_training_checkpoint(path)
    message = str(e.value)
    assert "\n" not in message and "weights_only" not in message and str(path) in message
    return message


def test_missing_checkpoint(tmp_path):
    assert refusal(tmp_path / "nowhere").startswith(f"no checkpoint at {tmp_path / 'nowhere' / CHECKPOINT}")


def test_damaged_checkpoints_say_so(tmp_path):
    save_training_checkpoint(tmp_path / "cut", run_state())
    path = tmp_path / "cut" / CHECKPOINT
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])                               # a copy cut short
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))               # overwritten
    (tmp_path / "empty.pt").write_bytes(b"")
    for damaged in (path, tmp_path / "random.pt", tmp_path / "empty.pt"):
        message = refusal(damaged)
        assert message == (f"{damaged} is damaged: not a readable PyTorch checkpoint (truncated or overwritten); "
                           f"restore it from a copy or start the run again")


@pytest.mark.parametrize("obj", [argparse.Namespace(lr=0.1), Settings(model=torch.ones(2))],
                         ids=["namespace", "ordereddict-subclass"])
def test_pickled_python_objects_are_not_loaded(tmp_path, obj):
    torch.save(obj, tmp_path / "foreign.pt")
    message = refusal(tmp_path / "foreign.pt")
    assert message == (f"{tmp_path / 'foreign.pt'} holds Python objects other than tensors and plain containers, "
                       f"so it is not a checkpoint written by this project; it was not loaded "
                       f"(loading it could run code)")


def test_readable_files_that_are_not_training_checkpoints(tmp_path):
    torch.save(run_state()["model"], tmp_path / "weights.pt")            # a bare state dict
    assert refusal(tmp_path / "weights.pt").endswith(
        "is not a training checkpoint of this project (it lacks model, config, vocab, args)")
    torch.save([torch.ones(2)], tmp_path / "list.pt")
    assert "is not a training checkpoint of this project (it holds a list" in refusal(tmp_path / "list.pt")
    state = run_state()
    del state["args"]
    torch.save(state, tmp_path / "no-args.pt")
    assert refusal(tmp_path / "no-args.pt").endswith("(it lacks args)")
