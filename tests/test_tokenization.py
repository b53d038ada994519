import random
import re

import pandas as pd
import pytest

from annotated_bert.tokenization import WALKTHROUGH_SPECIALS as SPECIAL_TOKENS, Vocab, basic_english


def basic_english_regex(text: str) -> list[str]:
    """The same tokenizer written as torchtext writes it (twelve regex passes); the reference for tests."""
    patterns = [r"\'", r"\"", r"\.", r"<br \/>", r",", r"\(", r"\)", r"\!", r"\?", r"\;", r"\:", r"\s+"]
    replacements = [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "]
    text = text.lower()
    for pattern, replacement in zip(patterns, replacements):
        text = re.sub(pattern, replacement, text)
    return text.split()


@pytest.mark.parametrize("text, tokens", [
    # the walkthrough's example and torchtext's documented one
    ("you'll be hooked", ["you", "'", "ll", "be", "hooked"]),
    ("You can now install TorchText using pip!", ["you", "can", "now", "install", "torchtext", "using", "pip", "!"]),
    ('He said "wow".<br /><br />Great (really)?', ["he", "said", "wow", ".", "great", "(", "really", ")", "?"]),
    ("a;b:c, d", ["a", "b", "c", ",", "d"]),
    ("  \t\n ", []),
    ("", []),
])
def test_basic_english_examples(text, tokens):
    assert basic_english(text) == tokens
    assert basic_english_regex(text) == tokens


def test_basic_english_equals_torchtext_rules_on_random_text():
    alphabet = "ab AB'\".,()!?;:<>/br\t\n\u00a0é"
    rng = random.Random(0)
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        text = text.replace("<>", "<br />") if rng.random() < 0.5 else text
        assert basic_english(text) == basic_english_regex(text), repr(text)


def test_basic_english_equals_torchtext_rules_on_imdb(imdb_path):
    reviews = pd.read_csv(imdb_path, nrows=500)["review"]
    for text in reviews:
        assert basic_english(text) == basic_english_regex(text)


def test_vocab_specials_first_and_min_freq(tmp_path):
    vocab = Vocab.build([["b", "a", "b", "c"], ["a", "b", "d"]], min_freq=2)
    assert vocab.itos[:5] == list(SPECIAL_TOKENS)
    assert [vocab[t] for t in ("[CLS]", "[PAD]", "[MASK]", "[SEP]", "[UNK]")] == [0, 1, 2, 3, 4]
    assert vocab.itos[5:] == ["b", "a"]          # most frequent first; c and d are seen once
    assert vocab(["a", "zzz"]) == [6, 4]         # unknown -> [UNK]
    assert len(Vocab.build([["b", "a", "c"]], min_freq=1)) == 8
    vocab.save(tmp_path / "vocab.txt")
    assert Vocab.load(tmp_path / "vocab.txt").itos == vocab.itos


def test_vocab_rejects_bad_input():
    with pytest.raises(ValueError, match="duplicate"):
        Vocab(["[UNK]", "a", "a"])
    with pytest.raises(ValueError, match="unknown token"):
        Vocab(["a"])
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build([["a"]], min_freq=0)
