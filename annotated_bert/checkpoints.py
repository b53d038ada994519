"""Checkpoints: the training checkpoint, and Hugging Face BERT weights in and out.

1. The training checkpoint (everything needed to resume exactly, or to predict). A run directory holds
    checkpoint.pt   model, optimizer, RNG states, position in the data (and training time so
                    far), vocabulary, model config and the data settings (context length,
                    layout, tokenizer)
    config.json     the model config, readable
    vocab.txt       one token per line, the line number is the id
All three are written atomically; checkpoints are loaded with `torch.load(weights_only=True)`,
which refuses arbitrary pickled code.

2. The safetensors format (https://github.com/huggingface/safetensors), read and written here in a
few lines so the library does not depend on the package: an 8-byte little-endian header length,
a JSON header {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
then the raw little-endian bytes of every tensor.

3. Hugging Face BERT directories (config.json + model.safetensors or pytorch_model.bin, the layout
of the BERT paper's weights on the Hub): `from_pretrained` maps them onto this project's modules,
`save_pretrained` writes a directory that `transformers.BertForPreTraining.from_pretrained` loads
with no missing weights, and `resize_position_embeddings` grows the position table past 512.
Parameter names are already Hugging Face's (see model.py); what differs at the boundary is listed
in `_normalize_keys` and `save_pretrained`.
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from annotated_bert.config import ACTIVATIONS, BertConfig
from annotated_bert.files import atomic_torch_save, atomic_write, atomic_write_json, atomic_write_text
from annotated_bert.tokenization import Vocab

CHECKPOINT = "checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------
# 1. Training checkpoints
# ---------------------------------------------------------------------------------------------

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
    if state.get("args", {}).get("objective") == "electra":
        raise CheckpointError(f"{directory} is an ELECTRA run: its encoder was trained to detect replaced tokens "
                              f"and has no MLM or NSP head to query; fine-tune it "
                              f"(python -m annotated_bert.finetune --init {directory}) or take its features")
    model = BertForPreTraining(BertConfig.from_dict(state["config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), Vocab(state["vocab"]), state["data"]


# ---------------------------------------------------------------------------------------------
# 2. safetensors, without the dependency
# ---------------------------------------------------------------------------------------------

SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
_DTYPE_NAMES = {v: k for k, v in SAFETENSORS_DTYPES.items()}


def _to_little_endian_bytes(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes as a flat uint8 tensor, in little-endian order whatever the machine."""
    raw = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)    # (numel * itemsize,)
    if sys.byteorder == "big" and t.element_size() > 1:
        raw = raw.view(-1, t.element_size()).flip(1).reshape(-1)
    return raw


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike,
                     metadata: dict[str, str] | None = None) -> None:
    """Write `tensors` as a .safetensors file, atomically. Tensors are laid out largest element
    first (as the reference writer does), so every tensor starts at an offset aligned to its size."""
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a tensor, got {type(t).__name__}")
        if t.dtype not in _DTYPE_NAMES:
            raise ValueError(f"{name}: dtype {t.dtype} has no safetensors name; "
                             f"supported: {', '.join(str(d) for d in _DTYPE_NAMES)}")
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("safetensors metadata must map strings to strings")
    names = sorted(tensors, key=lambda n: (-tensors[n].element_size(), n))
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name in names:
        t = tensors[name]
        size = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)                                      # pad so the data starts 8-aligned

    def write(f):
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for name in names:
            f.write(_to_little_endian_bytes(tensors[name]).numpy().tobytes())

    atomic_write(path, write)


def _read_safetensors_header(f, path) -> tuple[dict, int]:
    f.seek(0, os.SEEK_END)
    file_size = f.tell()
    f.seek(0)
    first = f.read(8)
    if len(first) < 8:
        raise CheckpointError(f"{path} is not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", first)
    if n > min(file_size - 8, 100_000_000):
        raise CheckpointError(f"{path} is not a safetensors file (header length {n} does not fit in the file)")
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable safetensors header ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the safetensors header is not a JSON object")
    return header, file_size - 8 - n


def load_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The `__metadata__` of a .safetensors file ({} when it has none)."""
    with open(path, "rb") as f:
        return _read_safetensors_header(f, path)[0].get("__metadata__") or {}


def load_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read every tensor of a .safetensors file (on the CPU, each in its own writable memory)."""
    tensors = {}
    with open(path, "rb") as f:
        header, data_size = _read_safetensors_header(f, path)
        data_start = f.tell()
        for name, info in header.items():
            if name == "__metadata__":
                continue
            try:
                dtype = SAFETENSORS_DTYPES[info["dtype"]]
                shape = [int(s) for s in info["shape"]]
                begin, end = (int(x) for x in info["data_offsets"])
            except (KeyError, TypeError, ValueError):
                raise CheckpointError(f"{path}: tensor {name!r} has an unsupported or malformed entry {info} "
                                      f"(supported dtypes: {', '.join(SAFETENSORS_DTYPES)})") from None
            itemsize = torch.empty((), dtype=dtype).element_size()
            if not 0 <= begin <= end <= data_size or end - begin != math.prod(shape) * itemsize:
                raise CheckpointError(f"{path}: tensor {name!r} ({info['dtype']} {shape}) has data offsets "
                                      f"[{begin}, {end}] that do not match its size or the file")
            buf = bytearray(end - begin)
            f.seek(data_start + begin)
            f.readinto(buf)
            raw = torch.frombuffer(buf, dtype=torch.uint8) if buf else torch.empty(0, dtype=torch.uint8)
            if sys.byteorder == "big" and itemsize > 1:
                raw = raw.view(-1, itemsize).flip(1).reshape(-1)
            tensors[name] = raw.view(dtype).reshape(shape)
    return tensors


# ---------------------------------------------------------------------------------------------
# 3. Hugging Face BERT directories
# ---------------------------------------------------------------------------------------------

HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_ENCODER_ROOTS = ("embeddings.", "encoder.", "pooler.")
_NSP_KEYS = ("cls.seq_relationship.weight", "cls.seq_relationship.bias")
# BertConfig fields that config.json carries under the same name
_HF_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
              "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id", "tie_word_embeddings")


def config_from_hf(hf: dict, source: str = "config.json") -> BertConfig:
    """A Hugging Face BERT `config.json` (as a dict) -> BertConfig; refuses what this model is not."""
    model_type = hf.get("model_type", "bert")  # very old BERT configs have no model_type
    if model_type != "bert":
        raise CheckpointError(f"{source} describes a {model_type!r} model; only BERT checkpoints "
                              f"(model_type 'bert') are supported, and {model_type} differs from BERT in "
                              f"its layers or its embeddings")
    position_type = hf.get("position_embedding_type", "absolute")
    if position_type not in ("absolute", "learned"):
        raise CheckpointError(f"{source}: position_embedding_type {position_type!r} is not supported; this "
                              f"model has BERT's learned absolute position table ('absolute') only")
    if hf.get("is_decoder") or hf.get("add_cross_attention"):
        raise CheckpointError(f"{source}: a BERT decoder (is_decoder / add_cross_attention) is not "
                              f"supported; this model is BERT's bidirectional encoder")
    if hf.get("hidden_act", "gelu") not in ACTIVATIONS:
        raise CheckpointError(f"{source}: hidden_act {hf['hidden_act']!r} is not supported; "
                              f"choose one of {ACTIVATIONS}")
    fields = {k: hf[k] for k in _HF_FIELDS if k in hf and hf[k] is not None}
    fields.setdefault("tie_word_embeddings", True)
    try:
        return BertConfig(**fields, position_embedding_type="learned")
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: {e}") from None


def config_to_hf(config: BertConfig, architecture: str, tie_word_embeddings: bool) -> dict:
    """BertConfig -> the dict of a Hugging Face BERT `config.json` (always learned positions)."""
    return {
        "architectures": [architecture],
        "model_type": "bert",
        "position_embedding_type": "absolute",
        **{k: getattr(config, k) for k in _HF_FIELDS},
        "tie_word_embeddings": tie_word_embeddings,
    }


def _encoder_of(model: nn.Module) -> nn.Module:
    from annotated_bert.model import BertModel

    if isinstance(model, BertModel):
        return model
    bert = getattr(model, "bert", None)
    if not isinstance(bert, BertModel):
        raise TypeError(f"{type(model).__name__} is neither a BertModel nor a model with its encoder at `.bert`")
    return bert


def _read_hf_weights(path: str) -> dict[str, torch.Tensor]:
    """The state dict of a Hugging Face directory: model.safetensors, else pytorch_model.bin (either
    possibly sharded, with a *.index.json naming the file of every tensor)."""
    for name in HF_WEIGHTS:
        index = os.path.join(path, name + ".index.json")
        files = [os.path.join(path, name)]
        if not os.path.exists(files[0]) and os.path.exists(index):
            with open(index, encoding="utf-8") as f:
                files = [os.path.join(path, s) for s in sorted(set(json.load(f)["weight_map"].values()))]
        if not os.path.exists(files[0]):
            continue
        state = {}
        for file in files:
            if file.endswith(".safetensors"):
                state.update(load_safetensors(file))
                continue
            try:  # weights_only: tensors and plain containers, never arbitrary pickled code
                part = torch.load(file, map_location="cpu", weights_only=True)
            except Exception as e:
                raise CheckpointError(f"cannot read {file} as plain tensors: {str(e).splitlines()[0]}") from None
            if not isinstance(part, dict) or not all(isinstance(v, torch.Tensor) for v in part.values()):
                raise CheckpointError(f"{file} is not a state dict (a mapping of names to tensors)")
            state.update(part)
        return state
    found = ", ".join(sorted(os.listdir(path))) or "nothing"
    raise CheckpointError(f"no weights in {path}: expected {' or '.join(HF_WEIGHTS)} (found {found}); "
                          f"TensorFlow checkpoints must be converted to PyTorch first")


def _read_checkpoint(path: str) -> tuple[BertConfig, dict[str, torch.Tensor], str]:
    """(config, state dict, source) where source is "huggingface" or "training run"."""
    path = os.fspath(path)
    if path.endswith(".pt") and os.path.isfile(path):
        state = load_training_checkpoint(path)
        return BertConfig.from_dict(state["config"]), state["model"], "training run"
    if not os.path.isdir(path):
        raise CheckpointError(f"{path} is not a directory: pass a Hugging Face BERT directory (config.json + "
                              f"model.safetensors) or the --out directory of a training run (checkpoint.pt)")
    has_hf_weights = any(os.path.exists(os.path.join(path, name + suffix))
                         for name in HF_WEIGHTS for suffix in ("", ".index.json"))
    if os.path.exists(os.path.join(path, CHECKPOINT)) and not has_hf_weights:
        state = load_training_checkpoint(path)
        return BertConfig.from_dict(state["config"]), state["model"], "training run"
    config_path = os.path.join(path, "config.json")
    if not os.path.exists(config_path):
        raise CheckpointError(f"no config.json in {path}: a Hugging Face checkpoint needs one to say its sizes "
                              f"(or pass a training-run directory, which has {CHECKPOINT})")
    with open(config_path, encoding="utf-8") as f:
        try:
            hf = json.load(f)
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{config_path} is not valid JSON: {e}") from None
    if not isinstance(hf, dict):
        raise CheckpointError(f"{config_path} is not a JSON object of config fields")
    config = config_from_hf(hf, config_path)
    return config, _read_hf_weights(path), "huggingface"


def _normalize_keys(state: dict[str, torch.Tensor], from_hf: bool) -> dict[str, torch.Tensor]:
    """Checkpoint names -> this project's names, with the encoder always under `bert.`:
    - `LayerNorm.gamma` / `.beta` (TF-era checkpoints) -> `LayerNorm.weight` / `.bias`;
    - encoder-only checkpoints (`embeddings.`, `encoder.`, `pooler.`) get the `bert.` prefix;
    - `embeddings.position_ids` / `token_type_ids` buffers are dropped (they are `arange`/zeros);
    - `cls.predictions.decoder.bias` is the same vector as `cls.predictions.bias`;
    - NSP: Hugging Face's logit 0 is "B follows A", ours is logit 1, so the two rows swap."""
    out = {}
    for key, t in state.items():
        if key.endswith(("embeddings.position_ids", "embeddings.token_type_ids")):
            continue
        if key.endswith(("LayerNorm.gamma", "LayerNorm.beta")):
            key = key[: key.rfind(".")] + (".weight" if key.endswith(".gamma") else ".bias")
        if key.startswith(_ENCODER_ROOTS):
            key = "bert." + key
        out[key] = t
    decoder_bias = out.pop("cls.predictions.decoder.bias", None)
    if decoder_bias is not None:
        out.setdefault("cls.predictions.bias", decoder_bias)
    if from_hf:
        for key in _NSP_KEYS:
            if key in out:
                out[key] = out[key].flip(0)
    return out


def _summary(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def from_pretrained(cls, path: str | os.PathLike, *, strict_heads: bool = False,
                    output_loading_info: bool = False, device: str | torch.device = "cpu", **overrides):
    """Load `cls` (BertModel, or any model with its encoder at `.bert`) from a Hugging Face BERT
    directory or a training-run directory (checkpoint.pt; a directory that also holds Hugging Face
    weights is read as Hugging Face); returns the model in eval mode (and, with
    `output_loading_info`, a dict of missing_keys / unexpected_keys in the model's own names).

    `overrides`: BertConfig fields replace the checkpoint's (e.g. `attn_implementation="eager"`,
    `hidden_dropout_prob=0.2`); any other keyword goes to `cls(config, ...)` (e.g. `add_pooling_layer`).
    Weights the checkpoint lacks outside the encoder (pretraining or task heads, the pooler) keep
    their fresh initialisation and are reported as newly initialised (an error with
    `strict_heads=True`); missing encoder weights and shape mismatches are errors.
    """
    path = os.fspath(path)
    config, raw, source = _read_checkpoint(path)
    config_fields = {k: v for k, v in overrides.items() if k in BertConfig.__dataclass_fields__}
    model_kwargs = {k: v for k, v in overrides.items() if k not in config_fields}
    try:
        config = config.replace(**config_fields)
    except ValueError as e:
        raise CheckpointError(f"config override: {e}") from None
    if source == "huggingface" and config.position_embedding_type != "learned":
        raise CheckpointError(f"{path} has a learned position table; position_embedding_type="
                              f"{config.position_embedding_type!r} would throw it away")
    try:
        model = cls(config, **model_kwargs)
    except TypeError as e:
        raise TypeError(f"{cls.__name__}.from_pretrained: {e} (keywords that are not BertConfig fields "
                        f"go to {cls.__name__}(config, ...))") from None

    state = _normalize_keys(raw, from_hf=source == "huggingface")
    prefix = "" if _encoder_of(model) is model else "bert."

    def own(key):  # back to the model's naming
        return key[len("bert."):] if prefix == "" and key.startswith("bert.") else key

    # The model's own names, each with the encoder under `bert.`; a tensor shared by two names
    # (the MLM decoder tied to the word embeddings) is loaded once, through its first name.
    current = model.state_dict(keep_vars=True)
    targets, aliases, seen = {}, set(), set()
    for name, t in current.items():
        key = "bert." + name if prefix == "" else name
        if id(t) in seen:
            aliases.add(key)
        else:
            seen.add(id(t))
            targets[key] = name
    mismatched = [f"{name}: checkpoint {tuple(state[key].shape)}, model {tuple(current[name].shape)}"
                  for key, name in targets.items() if key in state and state[key].shape != current[name].shape]
    if mismatched:
        raise CheckpointError(f"{len(mismatched)} tensor(s) of {path} do not fit {cls.__name__} with its "
                              f"config: {'; '.join(mismatched)}. The sizes come from the checkpoint's config; "
                              f"a longer position table is grown after loading (resize_position_embeddings)")
    missing = [key for key in targets if key not in state]
    # the encoder is the point of a pretrained checkpoint: without it, fail rather than half-load
    missing_encoder = [own(k) for k in missing if k.startswith("bert.") and not k.startswith("bert.pooler.")]
    if missing_encoder:
        raise CheckpointError(f"{path} lacks encoder weights {_summary(missing_encoder)}; "
                              f"is it a BERT checkpoint of the sizes in its config?")
    unexpected = [k for k in state if k not in targets and k not in aliases]
    if missing and strict_heads:
        raise CheckpointError(f"{path} has no weights for {_summary([own(k) for k in missing])} "
                              f"(strict_heads=True)")
    model.load_state_dict({targets[k]: state[k] for k in targets if k in state}, strict=False)
    model.to(device).eval()

    info = {"missing_keys": [own(k) for k in missing], "unexpected_keys": [own(k) for k in unexpected],
            "mismatched_keys": [], "source": source}
    if output_loading_info:
        return model, info
    if missing or unexpected:
        print(f"{cls.__name__}.from_pretrained({path}):", file=sys.stderr)
        if missing:
            print(f"  newly initialised, not in the checkpoint (train before use): "
                  f"{_summary(info['missing_keys'])}", file=sys.stderr)
        if unexpected:
            print(f"  unused, in the checkpoint but not in {cls.__name__}: {_summary(info['unexpected_keys'])}",
                  file=sys.stderr)
    return model


def save_pretrained(model: nn.Module, directory: str | os.PathLike,
                    vocab: Vocab | Sequence[str] | Any | None = None) -> None:
    """Write a Hugging Face BERT directory: config.json, model.safetensors and (given a `Vocab`, a
    `WordPieceTokenizer` or a list of tokens) vocab.txt, each atomically.

    Weights are named as in `transformers` (`bert.` prefix for models with heads) with Hugging
    Face's NSP convention. Fixed sin/cos positions are converted exactly: the table becomes
    `position_embeddings.weight`, the sqrt(H) scale is folded into the written word embeddings, and
    the MLM decoder keeps the unscaled matrix (so config.json says tie_word_embeddings: false)."""
    from annotated_bert.model import BertEmbeddings

    bert = _encoder_of(model)
    config = model.config
    state = {k: v.detach() for k, v in model.state_dict().items()}
    emb: BertEmbeddings = bert.embeddings
    prefix = "" if bert is model else "bert."
    word_key = prefix + "embeddings.word_embeddings.weight"
    decoder = getattr(getattr(getattr(model, "cls", None), "predictions", None), "decoder", None)
    tied = decoder is not None and decoder.weight is emb.word_embeddings.weight
    if tied:
        del state["cls.predictions.decoder.weight"]    # transformers ties it back on loading
    sinusoidal = hasattr(emb, "position_encoding")
    if sinusoidal:
        if emb.position_encoding.shape[0] < config.max_position_embeddings:
            raise ValueError(f"the position table has {emb.position_encoding.shape[0]} rows, fewer than "
                             f"max_position_embeddings ({config.max_position_embeddings})")
        state[prefix + "embeddings.position_embeddings.weight"] = state.pop(prefix + "embeddings.position_encoding")
        if tied:  # the decoder reads the unscaled matrix, the input the scaled one: no longer one tensor
            state["cls.predictions.decoder.weight"] = state[word_key]
        state[word_key] = state[word_key] * emb.scale  # words(ids) * scale == (words * scale)(ids), exactly
    if "cls.predictions.bias" in state:  # transformers' decoder carries the same bias under its own name
        state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    for key in _NSP_KEYS:
        if key in state:
            state[key] = state[key].flip(0)              # ours: logit 1 = "B follows A"; HF: logit 0
    if vocab is not None:
        tokens = list(getattr(vocab, "itos", None) or getattr(vocab, "ids_to_tokens", None) or vocab)
        if len(tokens) > config.vocab_size:
            raise ValueError(f"the vocabulary has {len(tokens)} tokens but the model only "
                             f"{config.vocab_size} embeddings")
        bad = [t for t in tokens if not isinstance(t, str) or "\n" in t or "\r" in t]
        if bad:
            raise ValueError(f"vocab.txt holds one token per line; cannot write {bad[:3]}")

    hf_config = config_to_hf(config, type(model).__name__, tie_word_embeddings=tied and not sinusoidal)
    num_labels = getattr(model, "num_labels", None)
    if isinstance(num_labels, int):  # task heads: transformers sizes its classifier from id2label
        id2label = getattr(model, "id2label", None) or [f"LABEL_{i}" for i in range(num_labels)]
        id2label = dict(enumerate(id2label)) if isinstance(id2label, (list, tuple)) else dict(id2label)
        hf_config["id2label"] = {str(i): label for i, label in id2label.items()}
        hf_config["label2id"] = {label: int(i) for i, label in hf_config["id2label"].items()}
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    save_safetensors({k: v.contiguous() for k, v in state.items()},
                     os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
    atomic_write_json(os.path.join(directory, "config.json"), hf_config)
    if vocab is not None:
        atomic_write_text(os.path.join(directory, "vocab.txt"), "".join(t + "\n" for t in tokens))


# ---------------------------------------------------------------------------------------------
# 4. Longer inputs
# ---------------------------------------------------------------------------------------------

def resize_position_embeddings(model: nn.Module, n_positions: int, init: str = "normal") -> None:
    """Grow the position table to `n_positions` rows (BERT section 4 of the brief: past 512 tokens).

    Learned positions: the pretrained rows are copied and the new ones initialised, either
    `"normal"` (std config.initializer_range, like a fresh model) or `"tile"` (row p copies
    pretrained row p mod old_rows, a better start for further training). Fixed sin/cos positions
    are simply recomputed for the longer length. Call it before building the optimizer: the
    learned table is a new Parameter."""
    from annotated_bert.model import sinusoidal_positions

    if init not in ("normal", "tile"):
        raise ValueError(f"init must be 'normal' or 'tile', got {init!r}")
    bert = _encoder_of(model)
    emb = bert.embeddings
    table = emb.position_table()
    old = table.shape[0]
    if n_positions < old:
        raise ValueError(f"the position table has {old} rows; shrinking it to {n_positions} would throw "
                         f"away trained positions (truncate inputs instead)")
    if hasattr(emb, "position_encoding"):
        emb.position_encoding = sinusoidal_positions(n_positions, table.shape[1]).to(table.device, table.dtype)
    elif n_positions > old:
        new = nn.Embedding(n_positions, table.shape[1], device=table.device, dtype=table.dtype)
        with torch.no_grad():
            new.weight[:old] = table
            if init == "normal":
                nn.init.normal_(new.weight[old:], std=model.config.initializer_range)
            else:
                new.weight[old:] = table[torch.arange(old, n_positions, device=table.device) % old]
        new.weight.requires_grad_(table.requires_grad)
        emb.position_embeddings = new
    model.config.max_position_embeddings = n_positions
    bert.config.max_position_embeddings = n_positions
