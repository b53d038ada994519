"""BERT: embeddings, multi-head self-attention, encoder blocks, pooler and heads.

Follows Devlin et al. 2018 (BERT) and Vaswani et al. 2017 (the Transformer encoder), in the
Hugging Face module layout: every parameter has the name it has in a real BERT checkpoint
(`embeddings.word_embeddings`, `encoder.layer.0.attention.self.query`, `pooler.dense`,
`cls.predictions.transform.dense`, ...), so loading real weights is a plain state-dict load.

Shape legend: B batch, T sequence length, H hidden size, nh heads, hs head size (H / nh),
I feed-forward width, V vocabulary, M masked positions in the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from annotated_bert import interop
from annotated_bert.config import IGNORE_INDEX, BertConfig


def activation(name: str):
    return {
        "gelu": F.gelu,                                                   # exact (erf), as BERT
        "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
        "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "relu": F.relu,
    }[name]


def sinusoidal_positions(n_positions: int, dim: int) -> torch.Tensor:
    """The Transformer's fixed encoding (Vaswani et al. 2017, section 3.5), (n_positions, dim):
    PE[p, 2i] = sin(p / 10000^(2i/dim)),  PE[p, 2i+1] = cos(p / 10000^(2i/dim))."""
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]                  # (P, 1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))  # (dim/2,)
    pe = torch.zeros(n_positions, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return pe.float()


class BertEmbeddings(nn.Module):
    """token + position + segment embeddings, summed, then LayerNorm and dropout.

    With fixed sin/cos positions (values of size 1) the token embeddings are scaled as in the
    Transformer paper (section 3.4): initialised with std H^-1/2 and multiplied by sqrt(H), so
    tokens and positions start at the same magnitude. With BERT's usual N(0, 0.02) token vectors
    and no scaling, the sum is almost pure position and the MLM loss sits on a plateau for an epoch.
    `width` is H, or ALBERT's smaller embedding size E (annotated_bert.albert).
    """

    def __init__(self, config: BertConfig, width: int | None = None):
        super().__init__()
        H = width or config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, H, padding_idx=config.pad_token_id)
        if config.position_embedding_type == "learned":
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, H)
            self.scale = 1.0
        else:  # fixed, so a buffer: saved with the model, never trained
            self.register_buffer("position_encoding", sinusoidal_positions(config.max_position_embeddings, H))
            self.scale = math.sqrt(H)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, H)
        self.LayerNorm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.positions, self.sum = nn.Identity(), nn.Identity()  # taps for annotated_bert.shapes

    def position_table(self) -> torch.Tensor:
        if hasattr(self, "position_embeddings"):
            return self.position_embeddings.weight
        return self.position_encoding

    def resize(self, n_positions: int, init: str = "normal", std: float = 0.02) -> None:
        """Grow the position table to `n_positions` rows: learned rows are kept and the new ones
        drawn from N(0, std) (`"normal"`) or copied from row p mod old_rows (`"tile"`); fixed sin/cos
        positions are recomputed for the longer length."""
        if init not in ("normal", "tile"):
            raise ValueError(f"init must be 'normal' or 'tile', got {init!r}")
        table = self.position_table()
        old = table.shape[0]
        if n_positions < old:
            raise ValueError(f"the position table has {old} rows; shrinking it to {n_positions} would throw "
                             f"away trained positions (truncate inputs instead)")
        if hasattr(self, "position_encoding"):
            self.position_encoding = sinusoidal_positions(n_positions, table.shape[1]).to(table.device, table.dtype)
        elif n_positions > old:
            new = nn.Embedding(n_positions, table.shape[1], device=table.device, dtype=table.dtype)
            with torch.no_grad():
                new.weight[:old] = table
                if init == "normal":
                    nn.init.normal_(new.weight[old:], std=std)
                else:
                    new.weight[old:] = table[torch.arange(old, n_positions, device=table.device) % old]
            new.weight.requires_grad_(table.requires_grad)
            self.position_embeddings = new

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        T = input_ids.shape[1]
        table = self.position_table()
        if T > table.shape[0]:
            raise ValueError(f"input of {T} tokens is longer than the {table.shape[0]} positions of this "
                             f"model; truncate it or grow the table with model.resize_position_embeddings()")
        words = self.word_embeddings(input_ids) * self.scale       # (B, T, H)
        positions = self.positions(table[:T])                      # (T, H), broadcast over the batch
        segments = self.token_type_embeddings(token_type_ids)      # (B, T, H)
        h = self.sum(words + positions + segments)                 # (B, T, H)
        return self.dropout(self.LayerNorm(h))                     # (B, T, H)


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention, softmax(Q K^T / sqrt(hs) + mask) V.

    Two paths that compute the same thing (tests/test_model.py checks it): `eager`, written out,
    which can return the attention maps, and `sdpa`, PyTorch's fused kernel, which is faster.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        H, self.nh, self.hs = config.hidden_size, config.num_attention_heads, config.head_size
        self.query = nn.Linear(H, H)
        self.key = nn.Linear(H, H)
        self.value = nn.Linear(H, H)
        self.dropout_p = config.attention_probs_dropout_prob
        self.implementation = config.attn_implementation
        # identity taps, so a forward hook (annotated_bert.shapes) can see the eager path's tensors
        self.query_heads, self.scores, self.probs = nn.Identity(), nn.Identity(), nn.Identity()

    def forward(self, h: torch.Tensor, mask_bias: torch.Tensor, output_attentions: bool = False):
        B, T, H = h.shape
        q = self.query(h).view(B, T, self.nh, self.hs).transpose(1, 2)    # (B, nh, T, hs)
        k = self.key(h).view(B, T, self.nh, self.hs).transpose(1, 2)      # (B, nh, T, hs)
        v = self.value(h).view(B, T, self.nh, self.hs).transpose(1, 2)    # (B, nh, T, hs)
        dropout_p = self.dropout_p if self.training else 0.0
        if self.implementation == "sdpa" and not output_attentions:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask_bias, dropout_p=dropout_p)  # (B, nh, T, hs)
            probs = None
        else:
            q = self.query_heads(q)
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.hs)          # (B, nh, T, T)
            scores = self.scores(scores + mask_bias)                       # [PAD] keys -> very negative
            probs = self.probs(scores.softmax(dim=-1))                     # (B, nh, T, T), rows sum to 1
            ctx = F.dropout(probs, dropout_p, self.training) @ v           # (B, nh, T, hs)
        ctx = ctx.transpose(1, 2).reshape(B, T, H)                         # (B, T, H): heads side by side
        return ctx, probs


class BertResidualOutput(nn.Module):
    """dense -> dropout -> add the block's input -> LayerNorm (post-LN, as in BERT).
    Used twice per layer: after attention (`attention.output`) and after the feed-forward (`output`)."""

    def __init__(self, d_in: int, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(d_in, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(x)))     # (B, T, H)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertResidualOutput(config.hidden_size, config)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(h))                                    # (B, T, I)


class BertLayer(nn.Module):
    """One encoder block: self-attention and a feed-forward network, each with residual + LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertResidualOutput(config.intermediate_size, config)

    def forward(self, h: torch.Tensor, mask_bias: torch.Tensor, output_attentions: bool = False):
        ctx, probs = self.attention.self(h, mask_bias, output_attentions)  # (B, T, H)
        h = self.attention.output(ctx, h)                                   # (B, T, H)
        h = self.output(self.intermediate(h), h)                            # (B, T, I) -> (B, T, H)
        return h, probs


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])


class BertPooler(nn.Module):
    """tanh(dense(h[:, 0])): the [CLS] vector, as BERT feeds it to NSP and sentence classifiers."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(h[:, 0]))                             # (B, H)


@dataclass
class BertOutput:
    last_hidden_state: torch.Tensor                 # (B, T, H)
    pooler_output: torch.Tensor                     # (B, H)
    attentions: tuple[torch.Tensor, ...] | None = None  # per layer (B, nh, T, T), eager path only


class BertPreTrainedModel(nn.Module):
    """Shared by every model here: BERT's initialisation, and loading/saving (annotated_bert.interop)."""

    config: BertConfig
    config_class = BertConfig
    base_model_prefix = "bert"  # Hugging Face's convention: the encoder is `self.bert` (a BertModel is its own)

    @classmethod
    def base_model_class(cls) -> type[nn.Module]:
        return BertModel

    def add_base_model(self, add_pooling_layer: bool = True) -> None:
        """The encoder under Hugging Face's name for it: `self.bert = BertModel(config)` (in ALBERT's
        task models, annotated_bert.albert: `self.albert = AlbertModel(config)`)."""
        setattr(self, self.base_model_prefix, self.base_model_class()(self.config, add_pooling_layer=add_pooling_layer))

    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self)

    def init_weights(self) -> None:
        std = self.config.initializer_range
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=std)
                if m.padding_idx is not None:
                    with torch.no_grad():
                        m.weight[m.padding_idx].zero_()
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            if isinstance(m, BertEmbeddings) and m.scale != 1.0:   # see BertEmbeddings
                nn.init.normal_(m.word_embeddings.weight, std=1.0 / m.scale)
                with torch.no_grad():
                    m.word_embeddings.weight[m.word_embeddings.padding_idx].zero_()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def set_attn_implementation(self, implementation: str) -> None:
        for m in self.modules():
            if isinstance(m, BertSelfAttention):
                m.implementation = implementation
        self.config.attn_implementation = implementation

    @classmethod
    def from_pretrained(cls, path, **kwargs):
        return interop.from_pretrained(cls, path, **kwargs)

    def save_pretrained(self, directory, vocab=None) -> None:
        interop.save_pretrained(self, directory, vocab)

    def resize_position_embeddings(self, n_positions: int, init: str = "normal") -> None:
        """Grow the position table to `n_positions` rows. BERT's learned table has 512 rows; past
        512 tokens an input needs more.

        Learned positions: the pretrained rows are copied and the new ones initialised, either
        `"normal"` (std config.initializer_range, like a fresh model) or `"tile"` (row p copies
        pretrained row p mod old_rows, a better start for further training). Fixed sin/cos positions
        are simply recomputed for the longer length. Call it before building the optimizer: the
        learned table is a new Parameter."""
        encoder = getattr(self, self.base_model_prefix, self)
        encoder.embeddings.resize(n_positions, init, std=self.config.initializer_range)
        self.config.max_position_embeddings = n_positions
        encoder.config.max_position_embeddings = n_positions  # the same object, unless built apart


def key_mask_bias(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The additive key mask: 0 where a key is attended, the dtype's minimum at [PAD] keys, so that
    softmax gives them weight 0. (B, T) -> (B, 1, 1, T), broadcast over heads and queries."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class BertModel(BertPreTrainedModel):
    """The encoder: input ids -> contextual vectors (B, T, H) and the pooled [CLS] vector (B, H)."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.init_weights()

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, output_attentions: bool = False) -> BertOutput:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        h = self.embed(input_ids, token_type_ids)                           # (B, T, H)
        mask_bias = key_mask_bias(attention_mask, h.dtype)                  # (B, 1, 1, T)
        attentions = []
        for layer in self.layers():
            h, probs = layer(h, mask_bias, output_attentions)               # (B, T, H)
            attentions.append(probs)
        pooled = self.pool(h)                                               # (B, H)
        return BertOutput(h, pooled, tuple(attentions) if output_attentions else None)

    # the three steps a variant of the encoder may change (annotated_bert.albert does all three)
    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.embeddings(input_ids, token_type_ids)                   # (B, T, H)

    def layers(self) -> list[nn.Module]:
        return list(self.encoder.layer)

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return self.pooler(h) if self.pooler is not None else h[:, 0]       # (B, H)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(h)))


class BertLMPredictionHead(nn.Module):
    """MLM head: dense, GELU, LayerNorm, then a decoder to the vocabulary (weights tied to the
    token embeddings when config.tie_word_embeddings) plus its own bias."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(h)) + self.bias                  # (..., V)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)  # logit 1 = "B follows A" (walkthrough convention)


def classification_metrics(name: str, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> dict:
    """`{name}_loss` and `{name}_acc` as (sum over the n predictions, n), detached. Sums and counts
    add up across batches and processes, so an evaluation averages over every prediction."""
    n = targets.numel()
    with torch.no_grad():
        correct = (logits.argmax(-1) == targets).sum()
    return {f"{name}_loss": (loss.detach() * n, n), f"{name}_acc": (correct, n)}


def pretraining_losses(h: torch.Tensor, pooled: torch.Tensor, mlm_head: nn.Module, pair_head: nn.Module,
                       mlm_labels: torch.Tensor | None, pair_labels: torch.Tensor | None, pair_task: str,
                       pair_weight: float = 1.0) -> tuple:
    """Both pretraining objectives on an encoder's output h (B, T, H) and pooled [CLS] (B, H):
    MLM at the masked positions, and the sentence-pair task (`pair_task` "nsp" or "sop") on the
    pooled vector. Returns (loss, mlm_loss, pair_loss, mlm_logits, pair_logits, metrics), where
    loss = mlm_loss + pair_weight * pair_loss over whichever labels are given."""
    mlm_loss = pair_loss = loss = None
    metrics = {}
    if mlm_labels is not None:
        # sparse prediction: run the head (V-wide, the costliest matmul) only where a token was masked
        masked = mlm_labels != IGNORE_INDEX                                 # (B, T)
        mlm_logits = mlm_head(h[masked])                                    # (M, V)
        targets = mlm_labels[masked]                                        # (M,)
        mlm_loss = F.cross_entropy(mlm_logits.float(), targets) if len(targets) else h.sum() * 0.0
        loss = mlm_loss
        metrics |= classification_metrics("mlm", mlm_loss, mlm_logits, targets)
    else:
        mlm_logits = mlm_head(h)                                            # (B, T, V)
    pair_logits = pair_head(pooled)                                         # (B, 2)
    if pair_labels is not None:
        pair_loss = F.cross_entropy(pair_logits.float(), pair_labels)
        loss = pair_loss * pair_weight if loss is None else loss + pair_weight * pair_loss
        metrics |= classification_metrics(pair_task, pair_loss, pair_logits, pair_labels)
    return loss, mlm_loss, pair_loss, mlm_logits, pair_logits, metrics


@dataclass
class PreTrainingOutput:
    loss: torch.Tensor | None            # mlm_loss + nsp_weight * nsp_loss (whichever are given)
    mlm_loss: torch.Tensor | None
    nsp_loss: torch.Tensor | None        # the sentence-pair head's: NSP, or SOP when sop_labels were given
    mlm_logits: torch.Tensor             # (M, V) at the masked positions when labels are given, else (B, T, V)
    nsp_logits: torch.Tensor             # (B, 2): logit 1 = "B follows A" (SOP: "A and B in order")
    hidden_states: torch.Tensor          # (B, T, H)
    attentions: tuple[torch.Tensor, ...] | None = None
    metrics: dict = field(default_factory=dict)  # {name: (sum over the batch, count)}, see `classification_metrics`


class BertForPreTraining(BertPreTrainedModel):
    """BERT with its two pretraining heads: masked language modelling and next-sentence prediction."""

    def __init__(self, config: BertConfig, nsp_weight: float = 1.0):
        super().__init__()
        self.config, self.pair_weight = config, nsp_weight   # loss = mlm_loss + nsp_weight * nsp_loss
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config)
        self.init_weights()
        self.tie_weights()

    def tie_weights(self) -> None:
        if self.config.tie_word_embeddings:
            self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, mlm_labels: torch.Tensor | None = None,
                nsp_labels: torch.Tensor | None = None, output_attentions: bool = False,
                sop_labels: torch.Tensor | None = None) -> PreTrainingOutput:
        """`sop_labels` instead of `nsp_labels`: the same head learns sentence order (ALBERT's task)."""
        out = self.bert(input_ids, token_type_ids, attention_mask, output_attentions)
        h = out.last_hidden_state                                           # (B, T, H)
        pair_labels, pair_task = (nsp_labels, "nsp") if sop_labels is None else (sop_labels, "sop")
        loss, mlm_loss, nsp_loss, mlm_logits, nsp_logits, metrics = pretraining_losses(
            h, out.pooler_output, self.cls.predictions, self.cls.seq_relationship, mlm_labels, pair_labels,
            pair_task, self.pair_weight)
        return PreTrainingOutput(loss, mlm_loss, nsp_loss, mlm_logits, nsp_logits, h, out.attentions, metrics)
