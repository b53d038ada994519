"""Word-level tokenization: the walkthrough's `basic_english`, BERT's `BasicTokenizer` (the first
stage of WordPiece, annotated_bert.wordpiece), vocabularies, and padded batches of ids.

torchtext (deprecated since 0.18, April 2024) no longer loads with a current torch, so this module
carries its `basic_english` normaliser, rule for rule:

    lowercase, then in order:  '  -> " '  "     "  -> ""      .  -> " . "     <br /> -> " "
                               , ( ) ! ?  -> the character with a space on each side
                               ; :  -> " "      runs of whitespace -> one space
    then split on whitespace.

Every pattern but the last is a literal string, and `re.sub` with a literal pattern is exactly
`str.replace` (left to right, non-overlapping); the last one is what `str.split()` does anyway. So
the whole tokenizer is a chain of `str.replace` calls, which runs several times faster than twelve
regex passes and gives identical tokens (tests/test_tokenization.py checks both against each other).

`BasicTokenizer` is Hugging Face's class of the same name, the words WordPiece then cuts into
pieces: drop NUL, U+FFFD and control characters; put spaces around CJK ideographs; NFC; split on
whitespace; then per word: lowercase and strip accents for uncased vocabularies, and split off
every punctuation character (ASCII 33-47, 58-64, 91-96, 123-126 and Unicode P*).

`Vocab` maps tokens to ids with the walkthrough's special tokens in front:
[CLS]=0, [PAD]=1, [MASK]=2, [SEP]=3, [UNK]=4.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

from annotated_bert.files import atomic_write_text

# BERT's five special tokens, in the two orders a vocabulary of this project lists them:
WALKTHROUGH_SPECIALS = ("[CLS]", "[PAD]", "[MASK]", "[SEP]", "[UNK]")  # ids 0-4 of the walkthrough's word vocabulary
WORDPIECE_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")    # the top of a WordPiece vocab.txt trained here

# (pattern, replacement) exactly as torchtext.data.utils._basic_english_normalize lists them.
_BASIC_ENGLISH_RULES = (
    ("'", " '  "),
    ('"', ""),
    (".", " . "),
    ("<br />", " "),
    (",", " , "),
    ("(", " ( "),
    (")", " ) "),
    ("!", " ! "),
    ("?", " ? "),
    (";", " "),
    (":", " "),
)


def basic_english(text: str) -> list[str]:
    """torchtext's `get_tokenizer("basic_english")`: `"You'll be hooked."` -> `you ' ll be hooked .`"""
    text = text.lower()
    for pattern, replacement in _BASIC_ENGLISH_RULES:
        text = text.replace(pattern, replacement)
    return text.split()  # also torchtext's final r"\s+" -> " " rule





# ---------------------------------------------------------------------- BERT's BasicTokenizer

# HF's `_is_chinese_char`: the CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana,
# whose words are space-separated anyway).
CJK_RANGES = ("\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f"
              "\U0002b740-\U0002b81f\U0002b820-\U0002ceaf\uf900-\ufaff\U0002f800-\U0002fa1f")
CJK_RE = re.compile(f"[{CJK_RANGES}]")
# The control characters an ASCII string can hold (tab, newline and CR are whitespace instead).
_ASCII_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _char_class(codepoints: Iterable[int]) -> str:
    """The inside of a regex [...] class matching exactly these (sorted) code points, as ranges."""
    ranges: list[list[int]] = []
    for cp in codepoints:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


def is_dropped(char: str) -> bool:
    """HF's `_clean_text`: NUL, U+FFFD and control characters (Unicode C*, but tab, newline and
    carriage return are whitespace) are removed."""
    return (unicodedata.category(char)[0] == "C" and char not in "\t\n\r") or char == "\ufffd"


def drop_chars(text: str) -> str:
    """`text` without the characters HF's `_clean_text` removes. Testing each distinct character
    once is much faster than a regex class of the ~970k C* code points."""
    dropped = [c for c in set(text) if is_dropped(c)]
    return text.translate(dict.fromkeys(map(ord, dropped))) if dropped else text


@functools.cache
def unicode_tables() -> tuple[re.Pattern, re.Pattern]:
    """Regexes for HF's `_is_punctuation` and for nonspacing marks (category Mn), built once from
    this Python's Unicode database, the one HF's slow tokenizer consults too. Scanning all 1.1M
    code points takes about 0.2 s, so it happens on first use, not at import."""
    punct, marks = [], []
    for cp in range(sys.maxunicode + 1):
        cat = unicodedata.category(chr(cp))
        if cat[0] == "P" or 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            punct.append(cp)  # all non-alphanumeric ASCII counts, e.g. "$", "^", "`"
        if cat == "Mn":
            marks.append(cp)
    return (re.compile(f"([{_char_class(punct)}])"),  # the group makes re.split keep the punctuation
            re.compile(f"[{_char_class(marks)}]+"))


def special_tokens_re(tokens: Iterable[str]) -> re.Pattern:
    """Splits text around literal special tokens, longest first (what HF's trie does for these)."""
    return re.compile("(" + "|".join(map(re.escape, sorted(tokens, key=len, reverse=True))) + ")")


class BasicTokenizer:
    """HF's `BasicTokenizer`: cleaning, CJK spacing, lowercasing and accent stripping, punctuation.

    Split in two so the expensive half runs once per distinct word: `split_whitespace(text)` does
    the whole-text steps, `split_word(word)` the per-word ones; `tokenize` chains them.
    """

    def __init__(self, do_lower_case: bool = True, never_split: Iterable[str] | None = None,
                 tokenize_chinese_chars: bool = True, strip_accents: bool | None = None):
        self.do_lower_case = do_lower_case
        self.never_split = frozenset(never_split or ())  # kept as is: no lowercasing, no splitting
        self.tokenize_chinese_chars = tokenize_chinese_chars
        # None means "follow do_lower_case", as in the original BERT: uncased models strip accents.
        self.strip_accents = strip_accents

    def split_whitespace(self, text: str) -> list[str]:
        """Drop control characters, space out CJK ideographs, NFC, split on whitespace."""
        if text.isascii():  # nearly all English text: nothing to normalise, no CJK
            if _ASCII_CONTROL_RE.search(text):
                text = _ASCII_CONTROL_RE.sub("", text)
            return text.split()
        text = drop_chars(text)
        if self.tokenize_chinese_chars:
            text = CJK_RE.sub(r" \g<0> ", text)
        # One character written two ways (precomposed or with a combining mark) tokenizes the same.
        return unicodedata.normalize("NFC", text).split()

    def normalize(self, word: str) -> str:
        """Lowercase and/or strip accents, as configured."""
        if self.do_lower_case:
            word = word.lower()
            if self.strip_accents is not False:
                word = self._strip_accents(word)
        elif self.strip_accents:
            word = self._strip_accents(word)
        return word

    @staticmethod
    def _strip_accents(word: str) -> str:
        if word.isascii():
            return word
        return unicode_tables()[1].sub("", unicodedata.normalize("NFD", word))

    def split_word(self, word: str) -> list[str]:
        """One whitespace-separated word -> its basic tokens (punctuation split off)."""
        if word not in self.never_split:
            word = self.normalize(word)
        if word in self.never_split:
            return [word]
        # .split() as HF's final whitespace pass does: normalising can, rarely, create whitespace.
        return [token for part in unicode_tables()[0].split(word) if part for token in part.split()]

    def tokenize(self, text: str) -> list[str]:
        return [token for word in self.split_whitespace(text) for token in self.split_word(word)]


class Vocab:
    """Token <-> id mapping; unknown tokens map to [UNK]. The API follows torchtext's `Vocab`."""

    def __init__(self, tokens: Iterable[str], unk_token: str = "[UNK]"):
        self.itos: list[str] = list(tokens)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            seen = Counter(self.itos)
            dupes = [t for t, c in seen.items() if c > 1][:5]
            raise ValueError(f"vocabulary has duplicate tokens, e.g. {dupes}")
        if unk_token not in self.stoi:
            raise ValueError(f"vocabulary has no unknown token {unk_token!r}")
        self.unk_token = unk_token
        self.unk_id = self.stoi[unk_token]

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], min_freq: int = 2,
              specials: tuple[str, ...] = WALKTHROUGH_SPECIALS) -> "Vocab":
        """Specials first, then every token seen at least `min_freq` times, most frequent first
        (ties in first-seen order, so the same corpus always gives the same ids)."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        kept = [t for t, c in counts.most_common() if c >= min_freq and t not in specials]
        return cls([*specials, *kept])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, self.unk_id)

    def __call__(self, tokens: Iterable[str]) -> list[int]:
        get, unk = self.stoi.get, self.unk_id
        return [get(t, unk) for t in tokens]

    def lookup_tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    @property
    def special_ids(self) -> list[int]:
        return [self.stoi[t] for t in WALKTHROUGH_SPECIALS if t in self.stoi]

    def save(self, path: str | os.PathLike) -> None:
        """One token per line; the line number is the id (the layout of BERT's vocab.txt)."""
        atomic_write_text(path, "".join(t + "\n" for t in self.itos))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        with open(path, encoding="utf-8") as f:
            return cls(line.rstrip("\n") for line in f)


class WordTokenizer:
    """`basic_english` with a `Vocab`, behind the interface of `WordPieceTokenizer` that fine-tuning
    uses (tokenize, encode, encode_words, convert_tokens_to_ids, the special ids), so a model
    pretrained with the walkthrough's word vocabulary fine-tunes like one with WordPiece.
    Special tokens written in the text ("[MASK]") stay whole."""

    def __init__(self, vocab: Vocab):
        self.vocab = vocab
        self.ids_to_tokens = vocab.itos
        self.cls_token_id, self.pad_token_id, self.mask_token_id, self.sep_token_id, self.unk_token_id = (
            vocab.stoi[t] for t in WALKTHROUGH_SPECIALS)
        self._specials = re.compile("(" + "|".join(re.escape(t) for t in WALKTHROUGH_SPECIALS) + ")")

    def __len__(self) -> int:
        return len(self.vocab)

    def tokenize(self, text: str) -> list[str]:
        return [t for piece in self._specials.split(text)
                for t in ([piece] if piece in self.vocab.stoi and piece in WALKTHROUGH_SPECIALS else basic_english(piece))]

    def encode(self, text: str) -> list[int]:
        return self.vocab(self.tokenize(text))

    def convert_tokens_to_ids(self, tokens):
        return self.vocab[tokens] if isinstance(tokens, str) else self.vocab(tokens)

    def encode_words(self, words: list[str], max_length: int | None = None) -> dict:
        """Pre-split words -> `[CLS] tokens [SEP]` with `word_ids`, as WordPieceTokenizer.encode_words;
        a word basic_english splits ("don't") gives several tokens."""
        return encode_words(self, words, max_length)


def encode_words(tokenizer, words: list[str], max_length: int | None = None) -> dict:
    """`[CLS] tokens of word 0, tokens of word 1, ... [SEP]` with `word_ids`: the index of the word
    each token came from, None for [CLS]/[SEP] (Hugging Face's `is_split_into_words` + `word_ids()`).
    With `max_length`, tokens past max_length - 2 are cut. `tokenizer` has `encode`, `cls_token_id`
    and `sep_token_id`."""
    ids, word_ids = [tokenizer.cls_token_id], [None]
    for w, word in enumerate(words):
        pieces = tokenizer.encode(word)
        ids += pieces
        word_ids += [w] * len(pieces)
    if max_length is not None:
        ids, word_ids = ids[:max_length - 1], word_ids[:max_length - 1]
    ids.append(tokenizer.sep_token_id)
    word_ids.append(None)
    return {"input_ids": ids, "token_type_ids": [0] * len(ids), "attention_mask": [1] * len(ids),
            "word_ids": word_ids}


def pad_batch(input_ids: Sequence[Sequence[int]], pad_id: int,
              token_type_ids: Sequence[Sequence[int]] | None = None) -> dict[str, torch.Tensor]:
    """Ragged id lists -> right-padded (B, T) `input_ids`, `token_type_ids` and `attention_mask`
    (1 on real tokens, 0 on padding), T the longest list's length."""
    B, T = len(input_ids), max((len(x) for x in input_ids), default=0)
    ids = torch.full((B, T), pad_id, dtype=torch.long)                       # (B, T)
    types = torch.zeros((B, T), dtype=torch.long)                            # (B, T)
    mask = torch.zeros((B, T), dtype=torch.long)                             # (B, T)
    for row, x in enumerate(input_ids):
        ids[row, :len(x)] = torch.tensor(x, dtype=torch.long)
        if token_type_ids is not None:
            types[row, :len(x)] = torch.tensor(token_type_ids[row], dtype=torch.long)
        mask[row, :len(x)] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
