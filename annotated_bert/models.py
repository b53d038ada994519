"""The model family: which class does what for each model type ("bert", "albert"), so that code
above the models (training, fine-tuning, inference) picks the right one from a checkpoint's config.

    pretraining_class("albert")        -> AlbertForPreTraining
    task_class("ner", "bert")          -> BertForTokenClassification
    model_type_of("runs/pretrain")     -> "bert"
"""

from __future__ import annotations

from annotated_bert.albert import (AlbertForPreTraining, AlbertForQuestionAnswering, AlbertForSequenceClassification,
                                   AlbertForTokenClassification)
from annotated_bert.interop import read_config
from annotated_bert.heads import BertForQuestionAnswering, BertForSequenceClassification, BertForTokenClassification
from annotated_bert.model import BertForPreTraining, BertPreTrainedModel

PRETRAINING = {"bert": BertForPreTraining, "albert": AlbertForPreTraining}
TASK_HEADS = {
    "bert": {"sentiment": BertForSequenceClassification, "pair": BertForSequenceClassification,
             "ner": BertForTokenClassification, "qa": BertForQuestionAnswering},
    "albert": {"sentiment": AlbertForSequenceClassification, "pair": AlbertForSequenceClassification,
               "ner": AlbertForTokenClassification, "qa": AlbertForQuestionAnswering},
}


def pretraining_class(model_type: str) -> type[BertPreTrainedModel]:
    """The model with MLM and sentence-pair heads for a model type."""
    return PRETRAINING[model_type]


def task_class(task: str, model_type: str = "bert") -> type[BertPreTrainedModel]:
    """The fine-tuning model of a task (sentiment, pair, ner, qa) for a model type."""
    return TASK_HEADS[model_type][task]


def model_type_of(path: str) -> str:
    """The model type of a checkpoint: a training run, a Hugging Face directory or a Hub id."""
    return read_config(path).model_type
