"""Hugging Face interop: BERT checkpoints in the directory layout of Hugging Face transformers.

A Hugging Face BERT directory, as `transformers` writes it and the Hub serves it:
    config.json            sizes and switches (model_type "bert")
    model.safetensors      the weights (or pytorch_model.bin; either may be split into shards,
                           with a *.index.json naming the file of every tensor)
    vocab.txt              the WordPiece vocabulary (tokenizer_config.json: do_lower_case)
A fine-tuned output of this project is one of these plus finetune.json (task, labels, tokenizer).

`from_pretrained` loads such a directory, a Hub id ("bert-base-uncased") or a training run of this
project (checkpoint.pt) into any model here; `save_pretrained` writes a directory that
`transformers.BertForPreTraining.from_pretrained` loads with no missing weights; `path_kind` and
`load_tokenizer` say what a path holds and which tokenizer goes with it. Parameter names are
already Hugging Face's (model.py); the few places where they differ are the table just below.

Models are known here only through Hugging Face's convention, never by class: a model class
names the attribute that holds its encoder in `base_model_prefix` ("bert"), and an encoder, which
has no such attribute, is its own encoder. So this module does not import model.py; model.py
imports it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save as safetensors_bytes

from annotated_bert.checkpoints import CHECKPOINT, CheckpointError, load_training_checkpoint
from annotated_bert.config import ACTIVATIONS, BertConfig, config_class, config_from_dict
from annotated_bert.files import atomic_write, atomic_write_json, atomic_write_text
from annotated_bert.tokenization import Vocab, WordTokenizer
from annotated_bert.wordpiece import WordPieceTokenizer

# ---------------------------------------------------------------------------------------------
# Where Hugging Face's names differ from this project's modules
#
#   Hugging Face checkpoint                      this project                        when
#   *.LayerNorm.gamma / *.LayerNorm.beta         *.LayerNorm.weight / .bias          reading (TF-era files)
#   embeddings.*, encoder.*, pooler.*            bert.embeddings.*, ...              reading (encoder-only files)
#   embeddings.position_ids / token_type_ids     dropped (buffers: arange / zeros)   reading
#   MLM.decoder.bias                             MLM.bias                            both: one vector, two names
#   PAIR, row 0 = "B follows A" / "in order"     the rows swapped: row 1             both
#
# where MLM and PAIR are each model type's heads (HEADS): BERT's cls.predictions and
# cls.seq_relationship (NSP), ALBERT's predictions and sop_classifier.classifier (SOP).
# ---------------------------------------------------------------------------------------------
LEGACY_NAMES = {"LayerNorm.gamma": "LayerNorm.weight", "LayerNorm.beta": "LayerNorm.bias"}
DROPPED_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
ENCODER_ROOTS = ("embeddings.", "encoder.", "pooler.")
HEADS = {"bert": ("cls.predictions", "cls.seq_relationship"), "albert": ("predictions", "sop_classifier.classifier")}


def _head_keys(model_type: str) -> tuple[str, str, tuple[str, str]]:
    """(the MLM decoder's bias name, the MLM bias name, the pair head's two names) of a model type."""
    mlm, pair = HEADS[model_type]
    return f"{mlm}.decoder.bias", f"{mlm}.bias", (f"{pair}.weight", f"{pair}.bias")


def _normalize_keys(state: dict[str, torch.Tensor], from_hf: bool, prefix: str = "bert",
                    model_type: str = "bert") -> dict[str, torch.Tensor]:
    """Checkpoint names -> this project's, with the encoder always under `prefix.` (the rows above,
    read left to right; the pair rows swap only for Hugging Face checkpoints, not training runs)."""
    DECODER_BIAS, MLM_BIAS, PAIR_KEYS = _head_keys(model_type)
    out = {}
    for key, t in state.items():
        if key.endswith(DROPPED_BUFFERS):
            continue
        for old, new in LEGACY_NAMES.items():
            if key.endswith(old):
                key = key[: -len(old)] + new
        if key.startswith(ENCODER_ROOTS):
            key = f"{prefix}.{key}"
        out[key] = t
    decoder_bias = out.pop(DECODER_BIAS, None)
    if decoder_bias is not None:
        out.setdefault(MLM_BIAS, decoder_bias)
    if from_hf:
        for key in PAIR_KEYS:
            if key in out:
                out[key] = out[key].flip(0)
    return out


def _to_hf_conventions(state: dict[str, torch.Tensor], model_type: str = "bert") -> dict[str, torch.Tensor]:
    """The last two rows of the table, right to left (writing)."""
    DECODER_BIAS, MLM_BIAS, PAIR_KEYS = _head_keys(model_type)
    if MLM_BIAS in state:  # its own copy: a safetensors file holds no two names for one memory
        state[DECODER_BIAS] = state[MLM_BIAS].clone()
    for key in PAIR_KEYS:
        if key in state:
            state[key] = state[key].flip(0)
    return state


# ---------------------------------------------------------------------------------------------
# The files of a directory, and config.json
# ---------------------------------------------------------------------------------------------

HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # in the order they are preferred
FINETUNE_META = "finetune.json"  # a fine-tuned output's settings (task, labels, tokenizer, lengths)
# the config fields that config.json carries under the same name, per model type
_HF_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
              "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id", "tie_word_embeddings")
HF_FIELDS = {"bert": _HF_FIELDS,
             "albert": _HF_FIELDS + ("embedding_size", "num_hidden_groups", "inner_group_num", "classifier_dropout_prob")}


def config_from_hf(hf: dict, source: str = "config.json") -> BertConfig:
    """A Hugging Face BERT or ALBERT `config.json` (as a dict) -> BertConfig or AlbertConfig;
    refuses what these models are not."""
    model_type = hf.get("model_type", "bert")  # very old BERT configs have no model_type
    if model_type not in HF_FIELDS:
        raise CheckpointError(f"{source} describes a {model_type!r} model; only BERT and ALBERT checkpoints "
                              f"(model_type 'bert' or 'albert') are supported, and {model_type} differs from "
                              f"them in its layers or its embeddings")
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
    fields = {k: hf[k] for k in HF_FIELDS[model_type] if k in hf and hf[k] is not None}
    fields.setdefault("tie_word_embeddings", True)
    try:
        return config_class(model_type)(**fields, position_embedding_type="learned")
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: {e}") from None


def config_to_hf(config: BertConfig, architecture: str, tie_word_embeddings: bool) -> dict:
    """A config -> the dict of a Hugging Face `config.json` of its model type (always learned positions)."""
    return {
        "architectures": [architecture],
        "model_type": config.model_type,
        "position_embedding_type": "absolute",
        **{k: getattr(config, k) for k in HF_FIELDS[config.model_type]},
        "tie_word_embeddings": tie_word_embeddings,
    }


def _read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        try:
            obj = json.load(f)
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    return obj


# ---------------------------------------------------------------------------------------------
# What a path is: a Hub id, a training run, a Hugging Face directory, a fine-tuned output
# ---------------------------------------------------------------------------------------------

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")  # "bert-base-uncased", "org/name"
_HUB_FILES = ["config.json", "vocab.txt", "tokenizer_config.json", FINETUNE_META]
# safetensors when the repository has it; pytorch_model.bin only otherwise (many have both)
_HUB_WEIGHTS = (["model*.safetensors", "model.safetensors.index.json"],
                ["pytorch_model*.bin", "pytorch_model.bin.index.json"])


def _looks_like_hub_id(path: str) -> bool:
    """"name" or "org/name" as the Hub allows them (no "--" or ".."), and not a training-run file."""
    return bool(_HUB_ID.fullmatch(path)) and "--" not in path and ".." not in path and not path.endswith(".pt")


def resolve_pretrained_path(path_or_id: str | os.PathLike) -> str:
    """A local file or directory as it is; a Hugging Face Hub id that is not a local path -> the
    folder of its snapshot in the Hugging Face cache, downloaded first if need be (huggingface_hub
    decides, honouring HF_HOME and HF_HUB_OFFLINE). Only the files loading needs are fetched."""
    path = os.fspath(path_or_id)
    if os.path.exists(path) or not _looks_like_hub_id(path):
        return path
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.utils import LocalEntryNotFoundError, RepositoryNotFoundError
    except ImportError:
        raise CheckpointError(f"{path} is not a local directory; to load it from the Hugging Face Hub install "
                              f"huggingface_hub (pip install huggingface_hub) or download it and pass its "
                              f"directory") from None
    try:
        for weights in _HUB_WEIGHTS:
            folder = snapshot_download(path, allow_patterns=_HUB_FILES + weights)
            if _hf_weight_files(folder):
                break
        return folder
    except LocalEntryNotFoundError:  # not in the cache, and the Hub unreachable (or HF_HUB_OFFLINE=1)
        raise CheckpointError(f"{path} is not a local directory, and as a Hugging Face Hub id it could be neither "
                              f"found in the local cache nor downloaded (the Hub is unreachable, or "
                              f"HF_HUB_OFFLINE is set); download it where the Hub can be reached and pass "
                              f"its directory") from None
    except RepositoryNotFoundError:
        raise CheckpointError(f"{path} is neither a local directory nor a model on the Hugging Face Hub "
                              f"(or the model is private or gated: log in with `hf auth login`)") from None
    except Exception as e:  # a revision that does not exist, a proxy error, ...
        raise CheckpointError(f"{path}: could not be fetched from the Hugging Face Hub "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def _hf_weight_files(directory: str) -> list[str]:
    """The weight files (or shard indexes) of a Hugging Face directory, preferred first."""
    names = [name + suffix for name in HF_WEIGHTS for suffix in ("", ".index.json")]
    return [name for name in names if os.path.exists(os.path.join(directory, name))]


def path_kind(path: str | os.PathLike) -> str:
    """What a local path holds: "training run" (a .pt file, or a directory with checkpoint.pt and no
    Hugging Face weights), "fine-tuned" (a Hugging Face directory with finetune.json) or
    "huggingface" (config.json with model.safetensors or pytorch_model.bin, possibly sharded)."""
    path = os.fspath(path)
    if path.endswith(".pt") and os.path.isfile(path):
        return "training run"
    if not os.path.isdir(path):
        raise CheckpointError(f"{path} is not a directory: pass a Hugging Face BERT directory (config.json + "
                              f"model.safetensors), a Hub id, or the --out directory of a training run ({CHECKPOINT})")
    weights = _hf_weight_files(path)
    names = set(os.listdir(path))
    if CHECKPOINT in names and not weights:
        return "training run"
    found = _summary(sorted(names)) or "nothing"
    if "config.json" not in names:
        raise CheckpointError(f"no config.json in {path} (found {found}): it is neither a Hugging Face BERT "
                              f"directory (config.json with {' or '.join(HF_WEIGHTS)}) nor a training run "
                              f"({CHECKPOINT})")
    if not weights:
        raise CheckpointError(f"no weights in {path}: expected {' or '.join(HF_WEIGHTS)} (found {found}); "
                              f"TensorFlow checkpoints must be converted to PyTorch first")
    return "fine-tuned" if FINETUNE_META in names else "huggingface"


def load_tokenizer(path: str | os.PathLike):
    """The tokenizer a checkpoint was trained with: a training run's (basic_english or WordPiece,
    as its data settings say), a fine-tuned output's (as finetune.json says), or a Hugging Face
    directory's vocab.txt (lowercasing as tokenizer_config.json says, else lowercase)."""
    path = resolve_pretrained_path(path)
    kind = path_kind(path)
    if kind == "training run":
        state = load_training_checkpoint(path)
        # a pretraining run keeps it with its data settings, a fine-tuning run beside them
        tokenizer = state["data"]["tokenizer"] if "data" in state else state.get("tokenizer")
        if tokenizer == "basic_english":
            return WordTokenizer(Vocab(state["vocab"]))
        return WordPieceTokenizer(state["vocab"])
    vocab_file = os.path.join(path, "vocab.txt")
    if not os.path.exists(vocab_file):
        raise CheckpointError(f"{path} has no vocab.txt: the checkpoint's own vocabulary is needed to read "
                              f"text with it")
    if kind == "fine-tuned":
        vocab = Vocab.load(vocab_file)
        basic = _read_json(os.path.join(path, FINETUNE_META)).get("tokenizer") == "basic_english"
        return WordTokenizer(vocab) if basic else WordPieceTokenizer(vocab.itos)
    config_path = os.path.join(path, "tokenizer_config.json")
    lower = _read_json(config_path).get("do_lower_case", True) if os.path.exists(config_path) else True
    return WordPieceTokenizer.from_file(vocab_file, do_lower_case=lower)


# ---------------------------------------------------------------------------------------------
# Reading weights
# ---------------------------------------------------------------------------------------------

def _read_hf_weights(path: str) -> dict[str, torch.Tensor]:
    """The state dict of a Hugging Face directory: model.safetensors, else pytorch_model.bin (either
    possibly sharded, with a *.index.json naming the file of every tensor)."""
    first = _hf_weight_files(path)[0]
    files = [os.path.join(path, first)]
    if first.endswith(".index.json"):
        weight_map = _read_json(files[0]).get("weight_map", {})
        files = [os.path.join(path, name) for name in sorted(set(weight_map.values()))]
    state = {}
    for file in files:
        if not os.path.exists(file):
            raise CheckpointError(f"{file} is missing: the shard index of {path} names it")
        if file.endswith(".safetensors"):
            try:
                state.update(load_safetensors(file))
            except (SafetensorError, OSError) as e:
                raise CheckpointError(f"{file} is damaged: not a readable safetensors file "
                                      f"({str(e).splitlines()[0]}); download or save it again") from None
            continue
        try:  # weights_only: tensors and plain containers, never arbitrary pickled code
            part = torch.load(file, map_location="cpu", weights_only=True)
        except Exception:
            raise CheckpointError(f"{file} is damaged, or holds more than tensors: it cannot be read "
                                  f"as a plain state dict and was not loaded; download it again") from None
        if not isinstance(part, dict) or not all(isinstance(v, torch.Tensor) for v in part.values()):
            raise CheckpointError(f"{file} is not a state dict (a mapping of names to tensors)")
        state.update(part)
    return state


def read_config(path: str | os.PathLike) -> BertConfig:
    """The config of a checkpoint (a training run, a Hugging Face directory or Hub id), without its weights."""
    path = resolve_pretrained_path(path)
    if path_kind(path) == "training run":
        return config_from_dict(load_training_checkpoint(path)["config"])
    config_path = os.path.join(path, "config.json")
    return config_from_hf(_read_json(config_path), config_path)


def _read_checkpoint(path: str) -> tuple[BertConfig, dict[str, torch.Tensor], str]:
    """(config, state dict, source) where source is "huggingface" or "training run"."""
    if path_kind(path) == "training run":
        state = load_training_checkpoint(path)
        return config_from_dict(state["config"]), state["model"], "training run"
    config_path = os.path.join(path, "config.json")
    return config_from_hf(_read_json(config_path), config_path), _read_hf_weights(path), "huggingface"


def _encoder_of(model: nn.Module) -> nn.Module:
    """Hugging Face's convention: the encoder sits at `base_model_prefix`; an encoder has none."""
    prefix = getattr(model, "base_model_prefix", None)
    if prefix is None:
        raise TypeError(f"{type(model).__name__} has no base_model_prefix naming the attribute of its encoder")
    return getattr(model, prefix, model)


def _summary(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def from_pretrained(cls, path: str | os.PathLike, *, strict_heads: bool = False,
                    output_loading_info: bool = False, device: str | torch.device = "cpu", **overrides):
    """Load `cls` (an encoder, or a model with its encoder at `cls.base_model_prefix`) from a Hugging
    Face BERT directory, a Hub id, or a training-run directory (checkpoint.pt; a directory that also
    holds Hugging Face weights is read as Hugging Face); returns the model in eval mode (and, with
    `output_loading_info`, a dict of missing_keys / unexpected_keys in the model's own names).

    `overrides`: BertConfig fields replace the checkpoint's (e.g. `attn_implementation="eager"`,
    `hidden_dropout_prob=0.2`); any other keyword goes to `cls(config, ...)` (e.g. `add_pooling_layer`).
    Weights the checkpoint lacks outside the encoder (pretraining or task heads, the pooler) keep
    their fresh initialisation and are reported as newly initialised (an error with
    `strict_heads=True`); missing encoder weights and shape mismatches are errors.
    """
    path = resolve_pretrained_path(path)
    config, raw, source = _read_checkpoint(path)
    expected = getattr(cls, "config_class", BertConfig).model_type
    if config.model_type != expected:
        raise CheckpointError(f"{path} holds a model of type {config.model_type!r} and {cls.__name__} is of type "
                              f"{expected!r}; load it with the {config.model_type} class of the same head")
    config_fields = {k: v for k, v in overrides.items() if k in type(config).__dataclass_fields__}
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

    base = model.base_model_prefix + "."
    state = _normalize_keys(raw, from_hf=source == "huggingface", prefix=model.base_model_prefix,
                            model_type=config.model_type)
    is_encoder = _encoder_of(model) is model

    def own(key):  # back to the model's naming
        return key[len(base):] if is_encoder and key.startswith(base) else key

    # The model's own names, each with the encoder under `bert.`; a tensor shared by two names
    # (the MLM decoder tied to the word embeddings) is loaded once, through its first name.
    current = model.state_dict(keep_vars=True)
    targets, aliases, seen = {}, set(), set()
    for name, t in current.items():
        key = base + name if is_encoder else name
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
    missing_encoder = [own(k) for k in missing if k.startswith(base) and not k.startswith(base + "pooler.")]
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


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def save_pretrained(model: nn.Module, directory: str | os.PathLike,
                    vocab: Vocab | Sequence[str] | Any | None = None) -> None:
    """Write a Hugging Face BERT directory: config.json, model.safetensors and (given a `Vocab`, a
    `WordPieceTokenizer` or a list of tokens) vocab.txt, each atomically.

    Weights are named as in `transformers` (`bert.` prefix for models with heads) with Hugging
    Face's NSP convention. Fixed sin/cos positions are converted exactly: the table becomes
    `position_embeddings.weight`, the sqrt(H) scale is folded into the written word embeddings, and
    the MLM decoder keeps the unscaled matrix (so config.json says tie_word_embeddings: false)."""
    bert = _encoder_of(model)
    config = model.config
    state = {k: v.detach() for k, v in model.state_dict().items()}
    emb = bert.embeddings
    prefix = "" if bert is model else model.base_model_prefix + "."
    word_key = prefix + "embeddings.word_embeddings.weight"
    decoder_key = HEADS[config.model_type][0] + ".decoder.weight"
    decoder = model.get_submodule(decoder_key.rsplit(".", 1)[0]) if decoder_key in state else None
    tied = decoder is not None and decoder.weight is emb.word_embeddings.weight
    if tied:
        del state[decoder_key]                         # transformers ties it back on loading
    sinusoidal = hasattr(emb, "position_encoding")
    if sinusoidal:
        if emb.position_encoding.shape[0] < config.max_position_embeddings:
            raise ValueError(f"the position table has {emb.position_encoding.shape[0]} rows, fewer than "
                             f"max_position_embeddings ({config.max_position_embeddings})")
        state[prefix + "embeddings.position_embeddings.weight"] = state.pop(prefix + "embeddings.position_encoding")
        if tied:  # the decoder reads the unscaled matrix, the input the scaled one: no longer one tensor
            state[decoder_key] = state[word_key]
        state[word_key] = state[word_key] * emb.scale  # words(ids) * scale == (words * scale)(ids), exactly
    state = _to_hf_conventions(state, config.model_type)
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
    data = safetensors_bytes({k: v.contiguous() for k, v in state.items()}, metadata={"format": "pt"})
    atomic_write(os.path.join(directory, "model.safetensors"), lambda f: f.write(data))
    atomic_write_json(os.path.join(directory, "config.json"), hf_config)
    if vocab is not None:
        atomic_write_text(os.path.join(directory, "vocab.txt"), "".join(t + "\n" for t in tokens))
