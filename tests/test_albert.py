"""ALBERT (annotated_bert/albert.py) against Hugging Face's AlbertForPreTraining on the same random
weights, its parameter sharing and factorized embedding, and Hugging Face ALBERT directories in
and out."""

import pytest
import torch

from annotated_bert.albert import AlbertForPreTraining, AlbertForSequenceClassification, AlbertModel
from annotated_bert.checkpoints import CheckpointError
from annotated_bert.config import AlbertConfig, preset
from annotated_bert.model import BertForPreTraining

transformers = pytest.importorskip("transformers", reason="the reference implementation: pip install transformers")


def small_config(**kw) -> AlbertConfig:
    return AlbertConfig(**{**dict(vocab_size=97, embedding_size=16, hidden_size=32, num_hidden_layers=3,
                                  num_attention_heads=4, intermediate_size=37, hidden_act="gelu_new"), **kw})


def batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 97, (3, 11), generator=g)
    types = torch.zeros_like(ids)
    types[:, 6:] = 1                                     # two segments
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0                                      # a padded row
    ids[0, 8:] = 0
    return ids, types, mask


def hf_twin(ours: AlbertForPreTraining):
    """transformers.AlbertForPreTraining with our weights, mapped by name (the SOP rows swapped:
    Hugging Face's label 0 is "in order", ours is logit 1)."""
    c = ours.config
    hf = transformers.AlbertForPreTraining(transformers.AlbertConfig(
        vocab_size=c.vocab_size, embedding_size=c.embedding_size, hidden_size=c.hidden_size,
        num_hidden_layers=c.num_hidden_layers, num_hidden_groups=c.num_hidden_groups, inner_group_num=c.inner_group_num,
        num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size, hidden_act=c.hidden_act,
        max_position_embeddings=c.max_position_embeddings, layer_norm_eps=c.layer_norm_eps, pad_token_id=c.pad_token_id))
    state = dict(ours.state_dict())
    state["predictions.decoder.bias"] = state["predictions.bias"]
    for k in ("sop_classifier.classifier.weight", "sop_classifier.classifier.bias"):
        state[k] = state[k].flip(0)
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))] and not unexpected
    return hf.eval()


@pytest.mark.parametrize("groups", [1, 3])
def test_matches_hugging_face_albert_for_pretraining(groups):
    torch.manual_seed(0)
    ours = AlbertForPreTraining(small_config(num_hidden_groups=groups)).eval()
    hf = hf_twin(ours)
    ids, types, mask = batch()
    with torch.no_grad():
        a = ours(ids, types, mask)
        b = hf(input_ids=ids, token_type_ids=types, attention_mask=mask, output_hidden_states=True)
    real = mask.bool()
    torch.testing.assert_close(a.hidden_states[real], b.hidden_states[-1][real], atol=1e-5, rtol=0)
    torch.testing.assert_close(a.mlm_logits[real], b.prediction_logits[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(a.sop_logits, b.sop_logits.flip(-1), atol=1e-5, rtol=0)


def test_one_block_serves_every_layer_and_the_embedding_is_factorized():
    config = small_config()
    model = AlbertModel(config)
    layers = model.encoder.layers()
    assert len(layers) == 3 and all(layer is layers[0] for layer in layers)
    assert model.embeddings.word_embeddings.weight.shape == (97, 16)            # V x E
    assert model.encoder.embedding_hidden_mapping_in.weight.shape == (32, 16)   # E -> H
    encoder = AlbertModel(small_config(num_hidden_layers=4, num_hidden_groups=2)).encoder
    group_of = {id(g.albert_layers[0]): i for i, g in enumerate(encoder.albert_layer_groups)}
    assert [group_of[id(layer)] for layer in encoder.layers()] == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="num_hidden_groups"):
        small_config(num_hidden_groups=4)


def test_albert_base_has_a_tenth_of_bert_base_s_parameters():
    with torch.device("meta"):
        albert, bert = AlbertModel(preset("albert-base")), BertForPreTraining(preset("bert-base")).bert
    assert 11_000_000 < albert.num_parameters() < 12_000_000 < 100_000_000 < bert.num_parameters()


def test_losses_metrics_and_nsp_labels_on_the_same_head():
    torch.manual_seed(0)
    model = AlbertForPreTraining(small_config()).train()
    ids, types, mask = batch()
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    sop = torch.tensor([1, 0, 1])
    out = model(ids, types, mask, mlm_labels=labels, sop_labels=sop)
    assert out.loss.item() == pytest.approx((out.mlm_loss + out.sop_loss).item())
    assert set(out.metrics) == {"mlm_loss", "mlm_acc", "sop_loss", "sop_acc"} and out.mlm_logits.shape == (3, 97)
    out.loss.backward()
    assert model.albert.encoder.albert_layer_groups[0].albert_layers[0].ffn.weight.grad.abs().sum() > 0
    nsp = model(ids, types, mask, mlm_labels=labels, nsp_labels=sop)
    assert set(nsp.metrics) == {"mlm_loss", "mlm_acc", "nsp_loss", "nsp_acc"}


def test_hugging_face_directories_in_and_out(tmp_path):
    """save_pretrained writes what transformers loads with no missing weights and the same outputs;
    from_pretrained reads it back; task models load the encoder; a BERT class refuses it."""
    torch.manual_seed(0)
    ours = AlbertForPreTraining(small_config()).eval()
    ours.save_pretrained(tmp_path / "albert", vocab=[f"t{i}" for i in range(92)] + ["[PAD]", "[UNK]", "[CLS]",
                                                                                   "[SEP]", "[MASK]"])
    hf, info = transformers.AlbertForPreTraining.from_pretrained(tmp_path / "albert", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ids, types, mask = batch()
    with torch.no_grad():
        a, b = ours(ids, types, mask), hf.eval()(input_ids=ids, token_type_ids=types, attention_mask=mask)
    torch.testing.assert_close(a.sop_logits, b.sop_logits.flip(-1), atol=1e-5, rtol=0)
    again = AlbertForPreTraining.from_pretrained(tmp_path / "albert")
    assert all(torch.equal(x, y) for x, y in zip(again.state_dict().values(), ours.state_dict().values()))
    classifier, info = AlbertForSequenceClassification.from_pretrained(tmp_path / "albert", num_labels=3,
                                                                       output_loading_info=True)
    assert info["missing_keys"] == ["classifier.weight", "classifier.bias"]
    assert classifier(ids, types, mask).logits.shape == (3, 3)
    with pytest.raises(CheckpointError, match="holds a model of type 'albert'"):
        BertForPreTraining.from_pretrained(tmp_path / "albert")
