"""Word-level tokenization for the walkthrough: torchtext's `basic_english` and a vocabulary.

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

`Vocab` maps tokens to ids with the walkthrough's special tokens in front:
[CLS]=0, [PAD]=1, [MASK]=2, [SEP]=3, [UNK]=4.
"""

from __future__ import annotations

import os
import re
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
