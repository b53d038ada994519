"""`BertConfig` and `AlbertConfig`: every size and switch of the models, with Hugging Face field
names, plus named presets.

Field names match `transformers.BertConfig` / `AlbertConfig` so a `config.json` maps one to one;
the fields this project adds (`position_embedding_type="sinusoidal"`, `attn_implementation`) say so
in their comment. Implementation settings (device, precision) are not here: they belong to the run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")
IGNORE_INDEX = -100  # the label of positions a loss skips (PyTorch cross_entropy's default ignore_index)


@dataclass
class BertConfig:
    model_type: ClassVar[str] = "bert"   # config.json's model_type
    vocab_size: int = 30522              # BERT's uncased WordPiece vocabulary; set from the data when pretraining
    hidden_size: int = 768               # H: width of every token vector
    num_hidden_layers: int = 12          # encoder blocks
    num_attention_heads: int = 12        # nh; head size hs = H / nh
    intermediate_size: int = 3072        # feed-forward inner width (4H in BERT)
    hidden_act: str = "gelu"             # exact erf GELU, as BERT; "gelu_new" is the tanh approximation
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512   # rows of the position table: the longest input
    type_vocab_size: int = 2             # segment A / B (the walkthrough's code wrongly used vocab_size rows)
    initializer_range: float = 0.02      # std of the normal init
    layer_norm_eps: float = 1e-12        # BERT's value; matters for exact parity with real checkpoints
    pad_token_id: int = 0                # [PAD] id: 0 in BERT's vocab.txt, 1 in the walkthrough's vocabulary
    position_embedding_type: str = "learned"  # "learned" (BERT: a trained table) or "sinusoidal" (the walkthrough: fixed sin/cos)
    tie_word_embeddings: bool = True     # MLM decoder shares the token embedding matrix (BERT does)
    attn_implementation: str = "sdpa"    # this project: "sdpa" (fused kernel) or "eager" (written out, returns attention maps)

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by "
                             f"num_attention_heads ({self.num_attention_heads})")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported; choose one of {ACTIVATIONS}")
        if self.position_embedding_type not in ("learned", "sinusoidal"):
            raise ValueError(f"position_embedding_type must be 'learned' or 'sinusoidal', "
                             f"got {self.position_embedding_type!r}")
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ValueError(f"attn_implementation must be 'sdpa' or 'eager', got {self.attn_implementation!r}")

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_dict(self) -> dict:
        return {"model_type": self.model_type, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "BertConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes) -> "BertConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class AlbertConfig(BertConfig):
    """ALBERT (Lan et al. 2019): BERT's fields, ALBERT's defaults, and its three additions."""
    model_type: ClassVar[str] = "albert"
    vocab_size: int = 30000              # ALBERT's SentencePiece vocabulary; set from the data when pretraining
    embedding_size: int = 128            # E: the token table is V x E, then projected E -> H (factorized embedding)
    num_hidden_groups: int = 1           # distinct sets of layer weights; 1: every layer shares one
    inner_group_num: int = 1             # layers inside a group, applied in turn
    hidden_act: str = "gelu_new"         # ALBERT's checkpoints use the tanh approximation
    hidden_dropout_prob: float = 0.0     # ALBERT v2 trains without dropout
    attention_probs_dropout_prob: float = 0.0
    classifier_dropout_prob: float = 0.1  # before the SOP and task classifiers

    def __post_init__(self):
        super().__post_init__()
        if not 1 <= self.num_hidden_groups <= self.num_hidden_layers:
            raise ValueError(f"num_hidden_groups ({self.num_hidden_groups}) must be between 1 and "
                             f"num_hidden_layers ({self.num_hidden_layers})")


def config_from_dict(d: dict) -> BertConfig:
    """A config saved with `to_dict` (a training checkpoint's), as the class its model_type names."""
    return config_class(d.get("model_type", "bert")).from_dict(d)


def config_class(model_type: str) -> type[BertConfig]:
    """The config class of a model type ("bert", "albert")."""
    classes = {c.model_type: c for c in (BertConfig, AlbertConfig)}
    if model_type not in classes:
        raise ValueError(f"model type {model_type!r} is not supported; choose one of {sorted(classes)}")
    return classes[model_type]


# Parameter counts are for the model with its pretraining heads (tied decoder); the encoder-only
# count of bert-base with a 30,522 vocabulary is the familiar 110M.
PRESETS: dict[str, dict] = {
    # the walkthrough: EMB_SIZE 64, HIDDEN_SIZE 36 (feed-forward), 4 heads, 1 layer, fixed sin/cos
    # positions; 0.6M parameters with its ~9k vocabulary. No dropout: a model this small underfits
    # (held-out MLM accuracy after 4 epochs on 1,000 reviews: 0.16 with dropout 0.1, 0.20 without)
    "seed": dict(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, intermediate_size=36,
                 position_embedding_type="sinusoidal", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
    # Google's BERT miniatures (Turc et al. 2019): sizes that train on a laptop CPU
    "bert-tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512),    # 4.4M
    "bert-mini": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),   # 11.3M
    "bert-small": dict(hidden_size=512, num_hidden_layers=4, num_attention_heads=8, intermediate_size=2048),  # 29.1M
    "bert-medium": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, intermediate_size=2048),  # 41.7M
    # the paper's two sizes
    "bert-base": dict(),                                                                                      # 110M
    "bert-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),  # 336M
    # ALBERT: embeddings of width 128 and one block shared by every layer. Counts with its 30,000
    # vocabulary: albert-mini is bert-mini's width and depth at under half its parameters, and
    # albert-base the paper's base size, 12M against bert-base's 110M.
    "albert-mini": dict(model_type="albert", hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=1024),                                                               # 4.9M
    "albert-base": dict(model_type="albert", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072),                                                               # 11.8M
    "albert-large": dict(model_type="albert", hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                         intermediate_size=4096),                                                              # 17.8M
}


def preset(name: str, **overrides) -> BertConfig:
    """A named size, e.g. `preset("seed", vocab_size=len(vocab), pad_token_id=vocab["[PAD]"])`;
    ALBERT presets give an `AlbertConfig`."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    fields = {**PRESETS[name], **overrides}
    return config_class(fields.pop("model_type", "bert"))(**fields)
