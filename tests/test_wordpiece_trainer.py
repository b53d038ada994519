"""annotated_bert.wordpiece_trainer against a brute-force trainer (the incremental bookkeeping),
hand-worked merges, and Hugging Face `tokenizers`' WordPieceTrainer on real reviews."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from annotated_bert.tokenization import WORDPIECE_SPECIALS as SPECIAL_TOKENS
from annotated_bert.wordpiece import BasicTokenizer
from annotated_bert.wordpiece_trainer import train_wordpiece

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
