"""Record the shape of every tensor a model computes, in the order it computes them.

Forward hooks on every submodule (the attention module's written-out path has identity "taps"
for Q split into heads, the scores and the softmax, so those are recorded too). The notebook
prints these records at every stage and tests/test_shapes.py checks them, so the shapes a reader
sees are the model's real ones.

    with record_shapes(model) as shapes:
        model(**batch)
    print(format_shapes(shapes))
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class ShapeRecord:
    name: str              # the module's name in the model, e.g. "bert.encoder.layer.0.attention.self.scores"
    module: str            # its class
    shape: tuple[int, ...]


@contextlib.contextmanager
def record_shapes(model: nn.Module) -> Iterator[list[ShapeRecord]]:
    """Inside the block every module's output shape is appended to the yielded list. Attention runs
    its written-out ("eager") path meanwhile, so its internals can be seen; it is restored after."""
    records: list[ShapeRecord] = []

    def hook(name: str):
        def fn(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            out = getattr(out, "last_hidden_state", out)
            if isinstance(out, torch.Tensor):
                records.append(ShapeRecord(name, type(module).__name__, tuple(out.shape)))
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    implementations = {}
    for m in model.modules():
        if hasattr(m, "implementation"):
            implementations[m] = m.implementation
            m.implementation = "eager"
    try:
        yield records
    finally:
        for h in handles:
            h.remove()
        for m, impl in implementations.items():
            m.implementation = impl


def shape_of(records: list[ShapeRecord], suffix: str, occurrence: int = 0) -> tuple[int, ...]:
    """The shape recorded for the first (or n-th) module whose name ends with `suffix`."""
    found = [r.shape for r in records if r.name == suffix or r.name.endswith("." + suffix)]
    if len(found) <= occurrence:
        raise KeyError(f"no module named ...{suffix} was recorded")
    return found[occurrence]


def format_shapes(records: list[ShapeRecord], skip: tuple[str, ...] = ("dropout", "act")) -> str:
    """One line per recorded module: name, class, shape."""
    rows = [r for r in records if r.name.rsplit(".", 1)[-1] not in skip]
    width = max((len(r.name) for r in rows), default=0)
    return "\n".join(f"{r.name:<{width}}  {r.module:<22} {list(r.shape)}" for r in rows)
