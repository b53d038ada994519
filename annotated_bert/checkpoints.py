"""The training checkpoint: everything a run needs to resume exactly, or to predict.

A run directory (the --out of `python -m annotated_bert.train` or `.finetune`) holds
    checkpoint.pt   model, optimizer, RNG states, position in the data (and training time so
                    far), vocabulary, model config, the run's arguments and its data settings
                    (context length, layout, tokenizer)
    config.json     the model config, readable
    vocab.txt       one token per line, the line number is the id
All three are written atomically (annotated_bert.files), so an interrupted run keeps its last
complete checkpoint. checkpoint.pt is read with `torch.load(weights_only=True)`, which rebuilds
tensors and plain containers only and never runs pickled code; a file that is damaged, or was not
written by this project, gets a one-line error that names it and says which.

Hugging Face directories (config.json + model.safetensors) are annotated_bert.interop's.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from annotated_bert.files import atomic_torch_save, atomic_write_json
from annotated_bert.tokenization import Vocab

CHECKPOINT = "checkpoint.pt"
REQUIRED_KEYS = ("model", "config", "vocab", "args")  # what every training run of this project saves


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why and what to do."""


def save_training_checkpoint(directory: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write DIR/checkpoint.pt (then config.json and vocab.txt beside it), each atomically."""
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    atomic_torch_save(os.path.join(directory, CHECKPOINT), state)
    atomic_write_json(os.path.join(directory, "config.json"), state["config"])
    Vocab(state["vocab"]).save(os.path.join(directory, "vocab.txt"))


def load_training_checkpoint(directory_or_pt_path: str | os.PathLike,
                             map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The state a run saved: DIR/checkpoint.pt, or a .pt file given directly."""
    path = os.fspath(directory_or_pt_path)
    if not path.endswith(".pt"):
        path = os.path.join(path, CHECKPOINT)
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}: pass the --out directory of a training run")
    try:
        f = open(path, "rb")
    except OSError as e:  # a folder named *.pt, no permission, ...
        raise CheckpointError(f"cannot read {path}: {e.strerror}") from None
    with f:
        try:
            state = torch.load(f, map_location=map_location, weights_only=True)
        except Exception as e:  # PyTorch's own text would suggest weights_only=False, i.e. running the file's code
            raise CheckpointError(_unreadable(path, e)) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a training checkpoint of this project (it holds a "
                              f"{type(state).__name__}, not the dict of {', '.join(REQUIRED_KEYS)} a run saves)")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a training checkpoint of this project (it lacks {', '.join(missing)})")
    return state


def _unreadable(path: str, error: Exception) -> str:
    """Why `torch.load(weights_only=True)` refused `path`, in one line.

    The safe unpickler names a class it will not rebuild ("GLOBAL argparse.Namespace", "allowlisted
    via add_safe_globals"): the file is a real pickle of arbitrary Python objects, which this
    project never writes. Anything else (a zip without its central directory, an unknown pickle
    opcode, an empty file) is a damaged file."""
    message = str(error)
    if "GLOBAL" in message or "add_safe_globals" in message:
        return (f"{path} holds Python objects other than tensors and plain containers, so it is not a "
                f"checkpoint written by this project; it was not loaded (loading it could run code)")
    return (f"{path} is damaged: not a readable PyTorch checkpoint (truncated or overwritten); "
            f"restore it from a copy or start the run again")
