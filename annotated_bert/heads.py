"""Fine-tuning heads (BERT paper section 4 and figure 4): one small layer on top of the
pretrained encoder, trained with it.

    BertForSequenceClassification   [CLS] A [SEP] (B [SEP]) -> pooled [CLS] -> dropout -> linear -> (B, num_labels)
    BertForTokenClassification      every token's vector -> dropout -> linear -> (B, T, num_labels)
    BertForQuestionAnswering        every token's vector -> linear -> a start and an end logit (B, T, 2)

The encoder is `self.bert` (a BertModel), under Hugging Face's names, so a pretrained checkpoint
loads into it; ALBERT's task models (annotated_bert.albert) reuse these heads on `self.albert`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from annotated_bert.config import IGNORE_INDEX, BertConfig
from annotated_bert.model import BertPreTrainedModel


def classifier_dropout(config: BertConfig) -> float:
    """Dropout before a task classifier: ALBERT's classifier_dropout_prob, else BERT's hidden dropout."""
    return getattr(config, "classifier_dropout_prob", config.hidden_dropout_prob)


@dataclass
class TaskOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor                 # (B, num_labels) or (B, T, num_labels); QA: (B, T, 2)
    metrics: dict = field(default_factory=dict)  # {name: (sum over the batch, count)}


class BertForSequenceClassification(BertPreTrainedModel):
    """Single sentences ([CLS] A [SEP]) or pairs ([CLS] A [SEP] B [SEP]): the pooled [CLS] vector
    -> dropout -> linear, trained with cross-entropy over `num_labels` classes."""

    def __init__(self, config: BertConfig, num_labels: int = 2):
        super().__init__()
        self.config, self.num_labels = config, num_labels
        self.add_base_model()                                       # self.bert = BertModel(config)
        self.dropout = nn.Dropout(classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        self.init_weights()

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None) -> TaskOutput:
        pooled = self.base_model(input_ids, token_type_ids, attention_mask).pooler_output    # (B, H)
        logits = self.classifier(self.dropout(pooled))                                # (B, num_labels)
        if labels is None:
            return TaskOutput(None, logits)
        loss = F.cross_entropy(logits.float(), labels)
        with torch.no_grad():
            metrics = {"accuracy": ((logits.argmax(-1) == labels).sum(), labels.numel())}
        return TaskOutput(loss, logits, metrics)


class BertForTokenClassification(BertPreTrainedModel):
    """Sequence labelling (NER): every token's vector -> dropout -> linear; labels of IGNORE_INDEX
    (word continuations, specials, padding) are ignored by the loss."""

    def __init__(self, config: BertConfig, num_labels: int = 9):
        super().__init__()
        self.config, self.num_labels = config, num_labels
        self.add_base_model(add_pooling_layer=False)                # self.bert = BertModel(config, ...)
        self.dropout = nn.Dropout(classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        self.init_weights()

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None) -> TaskOutput:
        h = self.base_model(input_ids, token_type_ids, attention_mask).last_hidden_state     # (B, T, H)
        logits = self.classifier(self.dropout(h))                                     # (B, T, num_labels)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
        return TaskOutput(loss, logits)


class BertForQuestionAnswering(BertPreTrainedModel):
    """Extractive QA ([CLS] question [SEP] passage [SEP]): a start and an end logit per token;
    the loss is the mean of the two cross-entropies over positions."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.add_base_model(add_pooling_layer=False)                # self.bert = BertModel(config, ...)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.init_weights()

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, start_positions=None,
                end_positions=None) -> TaskOutput:
        h = self.base_model(input_ids, token_type_ids, attention_mask).last_hidden_state     # (B, T, H)
        logits = self.qa_outputs(h)                                                   # (B, T, 2)
        loss = None
        if start_positions is not None and end_positions is not None:
            start, end = logits.float().unbind(-1)                                    # (B, T) each
            loss = (F.cross_entropy(start, start_positions) + F.cross_entropy(end, end_positions)) / 2
        return TaskOutput(loss, logits)
