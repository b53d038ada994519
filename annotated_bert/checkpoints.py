"""Checkpoints: the training checkpoint (everything needed to resume exactly, or to predict).

A run directory holds
    checkpoint.pt   model, optimizer, scheduler, RNG states, position in the data, vocabulary,
                    model config and the data settings (context length, layout, tokenizer)
    config.json     the model config, readable
    vocab.txt       one token per line, the line number is the id
All three are written atomically; checkpoints are loaded with `torch.load(weights_only=True)`,
which refuses arbitrary pickled code.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from annotated_bert.config import BertConfig
from annotated_bert.io import atomic_torch_save, atomic_write_json
from annotated_bert.tokenization import Vocab

CHECKPOINT = "checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why and what to do."""


def save_training_checkpoint(directory: str, state: dict[str, Any]) -> None:
    """Write DIR/checkpoint.pt (then config.json and vocab.txt beside it), each atomically."""
    os.makedirs(directory, exist_ok=True)
    atomic_torch_save(os.path.join(directory, CHECKPOINT), state)
    atomic_write_json(os.path.join(directory, "config.json"), state["config"])
    Vocab(state["vocab"]).save(os.path.join(directory, "vocab.txt"))


def load_training_checkpoint(directory: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = directory if directory.endswith(".pt") else os.path.join(directory, CHECKPOINT)
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}: pass the --out directory of a training run")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated file, foreign pickle, ...
        raise CheckpointError(f"cannot read {path}: {str(e).splitlines()[0]}") from None


def load_pretrained_for_inference(directory: str, device: str | torch.device = "cpu"):
    """A trained BertForPreTraining in eval mode, its vocabulary and its data settings."""
    from annotated_bert.model import BertForPreTraining

    state = load_training_checkpoint(directory, device)
    model = BertForPreTraining(BertConfig.from_dict(state["config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), Vocab(state["vocab"]), state["data"]
