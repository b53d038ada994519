"""annotated_bert.heads: each fine-tuning head's logits and loss, against the formula written out."""

import torch
import torch.nn.functional as F

from annotated_bert.config import IGNORE_INDEX, preset
from annotated_bert.heads import BertForQuestionAnswering, BertForSequenceClassification, BertForTokenClassification


def inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randint(5, 50, (3, 7), generator=g), torch.ones(3, 7, dtype=torch.long)


def test_sequence_classification_reads_the_pooled_cls_and_counts_accuracy():
    torch.manual_seed(0)
    model = BertForSequenceClassification(preset("bert-tiny", vocab_size=50), num_labels=3).eval()
    ids, mask = inputs()
    labels = torch.tensor([0, 2, 1])
    out = model(ids, attention_mask=mask, labels=labels)
    pooled = model.bert(ids, attention_mask=mask).pooler_output                         # (B, H)
    torch.testing.assert_close(out.logits, model.classifier(pooled))                     # eval: no dropout
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))
    correct, n = out.metrics["accuracy"]
    assert n == 3 and int(correct) == int((out.logits.argmax(-1) == labels).sum())


def test_token_classification_skips_ignored_labels():
    torch.manual_seed(0)
    model = BertForTokenClassification(preset("bert-tiny", vocab_size=50), num_labels=4).eval()
    ids, mask = inputs()
    labels = torch.full((3, 7), IGNORE_INDEX)
    labels[:, 1:3] = torch.tensor([1, 2])
    out = model(ids, attention_mask=mask, labels=labels)
    kept = labels != IGNORE_INDEX
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[kept], labels[kept]))
    assert out.logits.shape == (3, 7, 4) and model.bert.pooler is None


def test_question_answering_averages_the_start_and_end_losses():
    torch.manual_seed(0)
    model = BertForQuestionAnswering(preset("bert-tiny", vocab_size=50)).eval()
    ids, mask = inputs()
    start, end = torch.tensor([1, 2, 0]), torch.tensor([3, 2, 0])
    out = model(ids, attention_mask=mask, start_positions=start, end_positions=end)
    expected = (F.cross_entropy(out.logits[..., 0], start) + F.cross_entropy(out.logits[..., 1], end)) / 2
    torch.testing.assert_close(out.loss, expected)
