"""The walkthrough's shapes (batch 12, L = 27 so 2L+1 = 55, width 64, 4 heads of 16), as the
shape recorder sees them on the library's real model: the notebook prints these same records."""

import pandas as pd
import torch

from annotated_bert.config import preset
from annotated_bert.pretraining import IMDBBertDataset
from annotated_bert.model import BertForPreTraining
from annotated_bert.shapes import format_shapes, record_shapes, shape_of
from conftest import synthetic_reviews


def test_walkthrough_shapes_at_every_stage():
    ds = IMDBBertDataset(pd.DataFrame({"review": synthetic_reviews(80)}), 0, None, context_length=27,
                         min_freq=1, verbose=False)
    V = len(ds.vocab)
    batch = ds.batch(torch.arange(12))
    assert batch["input_ids"].shape == (12, 55)
    model = BertForPreTraining(preset("seed", vocab_size=V, pad_token_id=ds.special.pad)).eval()
    assert model.config.attn_implementation == "sdpa"

    with record_shapes(model) as dense:
        model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    with record_shapes(model) as sparse:
        out = model(**batch)
    assert model.bert.encoder.layer[0].attention.self.implementation == "sdpa"   # restored

    M = int((batch["mlm_labels"] != -100).sum())
    expected = {
        "embeddings.word_embeddings": (12, 55, 64),
        "embeddings.positions": (55, 64),
        "embeddings.token_type_embeddings": (12, 55, 64),
        "embeddings.sum": (12, 55, 64),
        "embeddings": (12, 55, 64),
        "layer.0.attention.self.query": (12, 55, 64),
        "layer.0.attention.self.query_heads": (12, 4, 55, 16),
        "layer.0.attention.self.scores": (12, 4, 55, 55),
        "layer.0.attention.self.probs": (12, 4, 55, 55),
        "layer.0.attention.self": (12, 55, 64),
        "layer.0.attention.output": (12, 55, 64),
        "layer.0.intermediate": (12, 55, 36),
        "layer.0.output": (12, 55, 64),
        "bert.pooler": (12, 64),
        "cls.seq_relationship": (12, 2),
    }
    for name, shape in expected.items():
        assert shape_of(sparse, name) == shape, name
    assert shape_of(dense, "cls.predictions") == (12, 55, V)           # every position
    assert shape_of(sparse, "cls.predictions") == (M, V)               # only the masked ones
    assert out.mlm_logits.shape == (M, V) and out.nsp_logits.shape == (12, 2)
    assert 12 * 2 <= M < 12 * 55 * 0.2                                 # ~15% of the real tokens
    text = format_shapes(sparse)
    assert "bert.encoder.layer.0.attention.self.scores" in text and "[12, 4, 55, 55]" in text
