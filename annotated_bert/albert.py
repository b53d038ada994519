"""ALBERT (Lan et al. 2019, "ALBERT: A Lite BERT for Self-supervised Learning of Language
Representations"): BERT with three changes, each a few lines here.

1. Factorized embedding parameterization (section 3.1): tokens are embedded in a small size E, then projected to
   the hidden size H (`encoder.embedding_hidden_mapping_in`): V·E + E·H parameters instead of V·H.
   With V = 30,000, E = 128 and H = 768 that is 3.9M instead of 23M.
2. Cross-layer parameter sharing (section 3.1): one block, applied `num_hidden_layers` times (or
   `num_hidden_groups` blocks, each applied to a run of consecutive layers). BERT-base's 85M layer
   parameters become 7M: the same compute per token, a tenth of the weights.
3. Sentence-order prediction (section 3.1, "inter-sentence coherence loss"): the pair head learns whether two consecutive segments
   of one text are in order or swapped (`sop_labels`, 1 = in order), a coherence task that topic
   overlap cannot solve, where NSP's random negatives mostly test topic.

Everything else is BERT's (annotated_bert.model): the embeddings module (at width E), the
self-attention (with its output projection, residual and LayerNorm folded into one module, as
ALBERT names it), post-LayerNorm blocks, a tanh pooler over [CLS], an MLM head projecting H -> E
before a decoder tied to the token table. Parameter names are Hugging Face's `AlbertModel` /
`AlbertForPreTraining` ones (`albert.encoder.albert_layer_groups.0.albert_layers.0.attention.query`,
`predictions.decoder`, `sop_classifier.classifier`), so `from_pretrained` / `save_pretrained`
read and write Hugging Face ALBERT directories. As in Hugging Face, the feed-forward output has no
dropout of its own.

Shape legend: B batch, T sequence length, E embedding size, H hidden size, I feed-forward width,
V vocabulary, M masked positions in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from annotated_bert.config import AlbertConfig
from annotated_bert.heads import BertForQuestionAnswering, BertForSequenceClassification, BertForTokenClassification
from annotated_bert.model import (BertEmbeddings, BertModel, BertPreTrainedModel, BertSelfAttention, activation,
                                  pretraining_losses)


class AlbertAttention(BertSelfAttention):
    """BERT's multi-head self-attention (query, key, value; fused or written out), then the output
    projection, dropout, the residual and LayerNorm: BERT's `attention.self` and `attention.output`
    in one module, under ALBERT's names (`attention.query`, ..., `attention.dense`, `attention.LayerNorm`)."""

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.output_dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, mask_bias: torch.Tensor, output_attentions: bool = False):
        ctx, probs = super().forward(h, mask_bias, output_attentions)        # (B, T, H)
        return self.LayerNorm(h + self.output_dropout(self.dense(ctx))), probs  # (B, T, H)


class AlbertLayer(nn.Module):
    """One block: attention, then the feed-forward network with its residual and LayerNorm."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.attention = AlbertAttention(config)
        self.ffn = nn.Linear(config.hidden_size, config.intermediate_size)
        self.ffn_output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.full_layer_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, h: torch.Tensor, mask_bias: torch.Tensor, output_attentions: bool = False):
        a, probs = self.attention(h, mask_bias, output_attentions)            # (B, T, H)
        f = self.ffn_output(self.act(self.ffn(a)))                            # (B, T, I) -> (B, T, H)
        return self.full_layer_layer_norm(f + a), probs                       # (B, T, H)


class AlbertLayerGroup(nn.Module):
    """`inner_group_num` blocks applied in turn: one group's weights."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.albert_layers = nn.ModuleList([AlbertLayer(config) for _ in range(config.inner_group_num)])


class AlbertTransformer(nn.Module):
    """The E -> H projection, then `num_hidden_layers` layers drawn from `num_hidden_groups` groups
    of shared weights: layer i uses group i * groups // layers (all of them group 0 by default)."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.config = config
        self.embedding_hidden_mapping_in = nn.Linear(config.embedding_size, config.hidden_size)
        self.albert_layer_groups = nn.ModuleList([AlbertLayerGroup(config) for _ in range(config.num_hidden_groups)])

    def layers(self) -> list[AlbertLayer]:
        """The block each of the num_hidden_layers layers runs, in order (the same object, shared)."""
        L, G = self.config.num_hidden_layers, self.config.num_hidden_groups
        return [block for i in range(L) for block in self.albert_layer_groups[int(i / (L / G))].albert_layers]


class AlbertPreTrainedModel(BertPreTrainedModel):
    """BERT's initialisation, loading and saving, with ALBERT's config and the encoder at `self.albert`."""

    config_class = AlbertConfig
    base_model_prefix = "albert"

    @classmethod
    def base_model_class(cls) -> type[nn.Module]:
        return AlbertModel


class AlbertModel(AlbertPreTrainedModel, BertModel):
    """The encoder: BERT's forward pass (annotated_bert.model.BertModel) with ALBERT's three steps:
    embeddings of width E projected to H, one block for every layer, a tanh pooler over [CLS]."""

    def __init__(self, config: AlbertConfig, add_pooling_layer: bool = True):
        nn.Module.__init__(self)   # not BertModel's: ALBERT's own modules, under its names
        self.config = config
        self.embeddings = BertEmbeddings(config, width=config.embedding_size)   # a V x E table
        self.encoder = AlbertTransformer(config)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if add_pooling_layer else None
        self.init_weights()

    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        e = self.embeddings(input_ids, token_type_ids)                       # (B, T, E)
        return self.encoder.embedding_hidden_mapping_in(e)                   # (B, T, H)

    def layers(self) -> list[AlbertLayer]:
        return self.encoder.layers()                                         # the shared block, L times

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pooler(h[:, 0])) if self.pooler is not None else h[:, 0]   # (B, H)


class AlbertMLMHead(nn.Module):
    """dense H -> E, activation, LayerNorm, then a decoder E -> V tied to the token table, plus a bias."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.act = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.embedding_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.LayerNorm(self.act(self.dense(h)))) + self.bias   # (..., E) -> (..., V)


class AlbertSOPHead(nn.Module):
    """The sentence-order classifier on the pooled [CLS]: logit 1 = "the two segments are in order"
    (Hugging Face's label 0; interop swaps the rows at the boundary, as it does for NSP)."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled))                        # (B, 2)


@dataclass
class AlbertPreTrainingOutput:
    loss: torch.Tensor | None            # mlm_loss + sop_weight * sop_loss (whichever are given)
    mlm_loss: torch.Tensor | None
    sop_loss: torch.Tensor | None        # the pair head's: SOP, or NSP when nsp_labels were given
    mlm_logits: torch.Tensor             # (M, V) at the masked positions when labels are given, else (B, T, V)
    sop_logits: torch.Tensor             # (B, 2)
    hidden_states: torch.Tensor          # (B, T, H)
    attentions: tuple[torch.Tensor, ...] | None = None
    metrics: dict = field(default_factory=dict)  # {name: (sum over the batch, count)}


class AlbertForPreTraining(AlbertPreTrainedModel):
    """ALBERT with its two pretraining heads: masked language modelling and sentence order."""

    def __init__(self, config: AlbertConfig, sop_weight: float = 1.0):
        super().__init__()
        self.config, self.pair_weight = config, sop_weight   # loss = mlm_loss + sop_weight * sop_loss
        self.albert = AlbertModel(config)
        self.predictions = AlbertMLMHead(config)
        self.sop_classifier = AlbertSOPHead(config)
        self.init_weights()
        if config.tie_word_embeddings:
            self.predictions.decoder.weight = self.albert.embeddings.word_embeddings.weight

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, mlm_labels: torch.Tensor | None = None,
                sop_labels: torch.Tensor | None = None, output_attentions: bool = False,
                nsp_labels: torch.Tensor | None = None) -> AlbertPreTrainingOutput:
        """`nsp_labels` instead of `sop_labels`: the same head learns BERT's next-sentence task."""
        out = self.albert(input_ids, token_type_ids, attention_mask, output_attentions)
        h = out.last_hidden_state                                            # (B, T, H)
        pair_labels, pair_task = (sop_labels, "sop") if nsp_labels is None else (nsp_labels, "nsp")
        loss, mlm_loss, sop_loss, mlm_logits, sop_logits, metrics = pretraining_losses(
            h, out.pooler_output, self.predictions, self.sop_classifier, mlm_labels, pair_labels, pair_task,
            self.pair_weight)
        return AlbertPreTrainingOutput(loss, mlm_loss, sop_loss, mlm_logits, sop_logits, h, out.attentions, metrics)


# Fine-tuning: BERT's task heads on ALBERT's encoder (`self.albert`), with ALBERT's classifier dropout.

class AlbertForSequenceClassification(AlbertPreTrainedModel, BertForSequenceClassification):
    """Single texts or pairs: the pooled [CLS] vector -> dropout -> linear (Hugging Face's names)."""


class AlbertForTokenClassification(AlbertPreTrainedModel, BertForTokenClassification):
    """Sequence labelling: every token's vector -> dropout -> linear."""


class AlbertForQuestionAnswering(AlbertPreTrainedModel, BertForQuestionAnswering):
    """Extractive QA: a start and an end logit per token."""
