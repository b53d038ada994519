"""ELECTRA pretraining: replaced-token detection (Clark et al. 2020, "ELECTRA: Pre-training Text
Encoders as Discriminators Rather Than Generators").

MLM learns from the ~15% of positions that were masked. ELECTRA learns from all of them: a small
generator (an MLM model a quarter of the width) fills the masked positions with tokens sampled
from its predictions, and the discriminator, a BERT encoder of the size being pretrained, says for
every token whether it is the original or a replacement. The paper's small models gained the most
from this per unit of compute (its section 3.3 and figure 4), which is what a 2-hour CPU budget
needs. After pretraining only the discriminator is kept: it is a plain `BertModel` under `bert.`,
so `python -m annotated_bert.finetune --init RUN` fine-tunes it like any other run of this project.

    loss = generator MLM cross-entropy (masked positions) + 50 * discriminator BCE (every real token)

Sizes follow the paper (its appendix A): the generator has the discriminator's depth and a
quarter of its hidden size, feed-forward width and heads; the two share the token, position and
segment embeddings (section 3.2), which the generator projects down to its width. A sampled token
that happens to be the original counts as original. The generator's samples get no gradient: the
discriminator loss does not reach the generator through them (section 2).

Shape legend: B batch, T sequence length, H discriminator width, G generator width, V vocabulary,
M masked positions in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from annotated_bert.config import IGNORE_INDEX, BertConfig
from annotated_bert.model import BertLayer, BertModel, BertPreTrainedModel, activation, classification_metrics

RTD_WEIGHT = 50.0        # the paper's lambda: the per-token BCE is far smaller than the MLM cross-entropy
GENERATOR_FRACTION = 0.25  # the paper's generator size (appendix A, for small, base and large)


def generator_config(config: BertConfig, fraction: float = GENERATOR_FRACTION) -> BertConfig:
    """The generator's size: `fraction` of the discriminator's hidden size, feed-forward width and
    heads (at least one head), the same depth and vocabulary."""
    heads = max(1, round(config.num_attention_heads * fraction))
    hidden = max(heads, round(config.hidden_size * fraction) // heads * heads)
    return config.replace(hidden_size=hidden, num_attention_heads=heads,
                          intermediate_size=max(1, round(config.intermediate_size * fraction)))


class ElectraGenerator(nn.Module):
    """A small MLM model on top of the shared embeddings: project H -> G, the encoder blocks at
    width G, then the MLM head (dense G -> H, GELU, LayerNorm) and a decoder tied to the word
    embeddings. Hugging Face's names: `embeddings_project`, `generator_predictions`,
    `generator_lm_head`."""

    def __init__(self, config: BertConfig, disc_config: BertConfig):
        super().__init__()
        H, G = disc_config.hidden_size, config.hidden_size
        self.embeddings_project = nn.Linear(H, G)
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])
        self.dense = nn.Linear(G, H)
        self.act = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.lm_bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, embedded: torch.Tensor, mask_bias: torch.Tensor, masked: torch.Tensor,
                word_embeddings: torch.Tensor) -> torch.Tensor:
        g = self.embeddings_project(embedded)                               # (B, T, G)
        for layer in self.layer:
            g, _ = layer(g, mask_bias)                                      # (B, T, G)
        h = self.LayerNorm(self.act(self.dense(g[masked])))                 # (M, H): masked positions only
        return h @ word_embeddings.t() + self.lm_bias                       # (M, V)


class ElectraDiscriminatorHead(nn.Module):
    """dense H -> H, GELU, then one logit per token: > 0 means "replaced"."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.dense_prediction = nn.Linear(config.hidden_size, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.dense_prediction(self.act(self.dense(h))).squeeze(-1)  # (B, T)


@dataclass
class ElectraOutput:
    loss: torch.Tensor                   # mlm_loss + rtd_weight * rtd_loss
    mlm_loss: torch.Tensor               # the generator's, over the masked positions
    rtd_loss: torch.Tensor               # the discriminator's BCE, over the real (non-[PAD]) tokens
    rtd_acc: torch.Tensor                # the discriminator's accuracy over the same tokens
    replaced_frac: torch.Tensor          # share of the real tokens the generator actually changed
    mlm_logits: torch.Tensor             # (M, V), the generator's
    rtd_logits: torch.Tensor             # (B, T)
    corrupted_ids: torch.Tensor          # (B, T): what the discriminator read (the original, masked positions sampled)
    replaced: torch.Tensor               # (B, T): its targets, 1.0 where corrupted_ids differ from the original
    metrics: dict = field(default_factory=dict)  # {name: (sum over the batch, count)}: mlm_*, rtd_*


class ElectraForPreTraining(BertPreTrainedModel):
    """Generator + discriminator. `bert` is the discriminator's encoder (what fine-tuning keeps),
    named as in every other model here so that `from_pretrained(run)` loads it."""

    def __init__(self, config: BertConfig, generator_fraction: float = GENERATOR_FRACTION,
                 rtd_weight: float = RTD_WEIGHT):
        super().__init__()
        self.config, self.rtd_weight = config, rtd_weight
        self.generator_fraction = generator_fraction
        self.bert = BertModel(config)  # the pooler is not trained here; fine-tuning trains it
        self.discriminator_predictions = ElectraDiscriminatorHead(config)
        self.generator = ElectraGenerator(generator_config(config, generator_fraction), config)
        self.init_weights()

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, mlm_labels: torch.Tensor | None = None,
                nsp_labels: None = None) -> ElectraOutput:
        if mlm_labels is None:
            raise ValueError("ELECTRA pretraining needs mlm_labels: the masked positions and their original tokens")
        if nsp_labels is not None:
            raise ValueError("ELECTRA has no next-sentence prediction; build the data without NSP")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        embeddings = self.bert.embeddings
        mask_bias = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min  # (B, 1, 1, T)

        # 1. the generator predicts the masked tokens (an MLM loss, as BERT's)
        masked = mlm_labels != IGNORE_INDEX                                           # (B, T)
        targets = mlm_labels[masked]                                                  # (M,)
        mlm_logits = self.generator(embeddings(input_ids, token_type_ids), mask_bias, masked,
                                    embeddings.word_embeddings.weight)                # (M, V)
        mlm_loss = F.cross_entropy(mlm_logits.float(), targets) if len(targets) else mlm_logits.sum() * 0.0

        # 2. replace the masked tokens by samples from it (Gumbel-max; no gradient through sampling)
        with torch.no_grad():
            gumbel = -torch.log(-torch.log(torch.rand_like(mlm_logits, dtype=torch.float32).clamp_(1e-9, 1.0)))
            sampled = (mlm_logits.float() + gumbel).argmax(-1)                        # (M,)
            original = torch.where(masked, mlm_labels, input_ids)                     # (B, T)
            corrupted = original.clone()
            corrupted[masked] = sampled
            replaced = (corrupted != original).float()                                # (B, T), 1 = replaced

        # 3. the discriminator tells, for every token, original from replaced
        h = self.bert(corrupted, token_type_ids, attention_mask).last_hidden_state    # (B, T, H)
        rtd_logits = self.discriminator_predictions(h)                                # (B, T)
        real = attention_mask.bool()                                                  # (B, T), no [PAD]
        rtd_loss = F.binary_cross_entropy_with_logits(rtd_logits.float()[real], replaced[real])
        with torch.no_grad():
            rtd_acc = ((rtd_logits[real] > 0).float() == replaced[real]).float().mean()
            replaced_frac = replaced[real].mean()
        loss = mlm_loss + self.rtd_weight * rtd_loss
        n_real = int(real.sum())
        metrics = classification_metrics("mlm", mlm_loss, mlm_logits, targets) | {
            "rtd_loss": (rtd_loss.detach() * n_real, n_real), "rtd_acc": (rtd_acc * n_real, n_real),
            "rtd_replaced": (replaced_frac * n_real, n_real)}
        return ElectraOutput(loss, mlm_loss, rtd_loss, rtd_acc, replaced_frac, mlm_logits, rtd_logits, corrupted,
                             replaced, metrics)
