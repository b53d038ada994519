"""annotated-bert: BERT built from scratch in PyTorch, step by step.

The names most experiments need can be imported from the package itself,

    from annotated_bert import BertConfig, BertForSequenceClassification, WordPieceTokenizer

and each lives in the module `_HOME` names (one module per concept; the README's table lists them).
A module is loaded on first use of one of its names, not when the package is imported, so that
`python -m annotated_bert.train` (or `.finetune`, `.predict`, `.data`) runs its module exactly once.
"""

from importlib import import_module

_HOME = {
    "BertConfig": "config", "AlbertConfig": "config", "PRESETS": "config", "preset": "config",
    "BertModel": "model", "BertForPreTraining": "model", "BertForSequenceClassification": "heads",
    "BertForTokenClassification": "heads", "BertForQuestionAnswering": "heads",
    "ElectraForPreTraining": "electra", "AlbertModel": "albert", "AlbertForPreTraining": "albert",
    "AlbertForSequenceClassification": "albert",
    "Vocab": "tokenization", "WordTokenizer": "tokenization", "basic_english": "tokenization",
    "WordPieceTokenizer": "wordpiece", "train_wordpiece": "wordpiece_trainer",
    "IMDBBertDataset": "pretraining", "read_reviews": "data",
    "Predictor": "inference", "TaskPredictor": "inference", "train_step": "training",
    "encode": "features",
    "record_shapes": "shapes",
}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
