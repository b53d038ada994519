"""WordPiece: the subword tokenizer BERT reads with, and a trainer for its vocabulary.

BERT (Devlin et al. 2019, §3) uses "WordPiece embeddings (Wu et al., 2016) with a 30,000 token
vocabulary". This module encodes exactly as Hugging Face's slow, pure-Python `BertTokenizer`
(called `BertTokenizerLegacy` since transformers 5; it is a port of Google's `tokenization.py`)
does, in two stages:

1. `BasicTokenizer` (HF's class of the same name, in annotated_bert.tokenization): drop NUL, U+FFFD and control characters; put
   spaces around CJK ideographs; NFC; split on whitespace; then per word: lowercase and strip
   accents (NFD, drop the Mn marks) for uncased vocabularies, and split off every punctuation
   character (ASCII 33-47, 58-64, 91-96, 123-126 and Unicode P*).
2. WordPiece: greedy longest-match-first against the vocabulary, continuation pieces written
   `##piece`; a word longer than 100 characters, or with any part that matches nothing, becomes
   `[UNK]`. The line number in vocab.txt is the id.

Special tokens written in the text ("a [MASK] b", even "a[MASK]b") are cut out before either stage
and kept whole, as HF's added-token trie does; tokens in `never_split` are kept whole only when
whitespace separates them, as in HF. `tests/test_wordpiece.py` checks the ids against HF on tricky
strings and on real IMDb reviews, and `benchmarks/bench_wordpiece.py` on all 25,000 of them.

Where this deliberately differs from HF, it is in refusing bad input that HF lets through: a pair
that cannot be truncated to `max_length` raises ValueError (HF logs an error and returns an
over-long sequence), and decoding an id outside the vocabulary raises (HF returns [UNK]).
`decode` returns HF's `decode(..., clean_up_tokenization_spaces=False)`; pass
`clean_up_tokenization_spaces=True` for HF's default (" ." -> ".", " n't" -> "n't", ...).

Speed: the same word comes back again and again in real text, so each whitespace-separated word
is turned into pieces once and cached, and everything before that is regex and str methods
running in C. Encoding is several times faster than HF's slow tokenizer (see the benchmark).

Its vocabulary can be learned from raw text with `annotated_bert.wordpiece_trainer.train_wordpiece`.
"""

from __future__ import annotations

import operator
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from itertools import chain

from annotated_bert.files import atomic_write_text
from annotated_bert.tokenization import (CJK_RANGES, WORDPIECE_SPECIALS, BasicTokenizer, drop_chars,
                                        encode_words, is_dropped, special_tokens_re)


# One word of the cleaned text: a single CJK ideograph, or a run of anything but whitespace and CJK.
_WORDCJK_RE = re.compile(rf"[{CJK_RANGES}]|[^\s{CJK_RANGES}]+")
_WORD_RE = re.compile(r"\S+")
_CLEANUP_SPACES = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
                   (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


class _WordCache(dict):
    """word -> tuple computed by `compute(word)` on first sight; emptied when it reaches `cap`
    entries so that memory stays bounded on endless streams of new words."""

    def __init__(self, compute, cap: int):
        super().__init__()
        self.compute, self.cap = compute, cap

    def __missing__(self, word: str) -> tuple:
        if len(self) >= self.cap:
            self.clear()
        value = self[word] = self.compute(word)
        return value


class WordPieceTokenizer:
    """BERT's WordPiece tokenizer with the Hugging Face interface (`tok(text)`, `tokenize`, `decode`).

        tok = WordPieceTokenizer.from_file("vocab.txt")
        tok.tokenize("Unaffable!")              # ['una', '##ffa', '##ble', '!'] with BERT's vocab
        tok("Hello", "world")["token_type_ids"]  # [0, 0, 0, 1, 1]: [CLS] hello [SEP] world [SEP]
    """

    pad_token, unk_token, cls_token, sep_token, mask_token = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
    all_special_tokens = ("[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]")  # HF's order
    max_input_chars_per_word = 100  # longer "words" (URLs, "!!!!...") become [UNK], as in BERT
    cache_size = 1 << 20  # distinct words remembered; IMDb has ~100k

    def __init__(self, vocab_tokens: Sequence[str], do_lower_case: bool = True,
                 strip_accents: bool | None = None, tokenize_chinese_chars: bool = True,
                 never_split: Iterable[str] | None = None):
        self.ids_to_tokens: list[str] = list(vocab_tokens)
        # A token listed twice keeps its last line's id, as HF's load_vocab does.
        self.vocab: dict[str, int] = {t: i for i, t in enumerate(self.ids_to_tokens)}
        missing = [t for t in WORDPIECE_SPECIALS if t not in self.vocab]
        if missing:
            raise ValueError(f"the vocabulary ({len(self.ids_to_tokens)} tokens) lacks the special "
                             f"token(s) {missing}; BERT needs all of {list(WORDPIECE_SPECIALS)}")
        self.pad_token_id, self.unk_token_id, self.cls_token_id, self.sep_token_id, self.mask_token_id = (
            self.vocab[t] for t in WORDPIECE_SPECIALS)
        self.all_special_ids = frozenset(self.vocab[t] for t in self.all_special_tokens)
        self.do_lower_case = do_lower_case
        self.never_split = frozenset(never_split or ())
        # HF hands the special tokens to the basic tokenizer as never_split too; that matters only
        # for one the trie misses and cleaning reassembles, e.g. "[MA\x00SK]" -> [MASK].
        self.basic_tokenizer = BasicTokenizer(do_lower_case, self.never_split | set(self.all_special_tokens),
                                              tokenize_chinese_chars, strip_accents)
        self._special_re = special_tokens_re(self.all_special_tokens)
        # Longest possible match at the start of a word and after it ("##" not counted): bounds the
        # greedy search, which would otherwise try every end position of a long word.
        self._max_first = max(map(len, self.vocab))
        self._max_next = max((len(t) - 2 for t in self.vocab if t.startswith("##")), default=0)
        self._reset_caches()

    @classmethod
    def from_file(cls, vocab_path: str | os.PathLike, do_lower_case: bool = True,
                  strip_accents: bool | None = None, tokenize_chinese_chars: bool = True,
                  never_split: Iterable[str] | None = None) -> "WordPieceTokenizer":
        """Load a BERT vocab.txt (one token per line; a directory holding vocab.txt also works)."""
        if os.path.isdir(vocab_path):
            vocab_path = os.path.join(vocab_path, "vocab.txt")
        if not os.path.isfile(vocab_path):
            raise FileNotFoundError(f"vocabulary not found: {vocab_path} (expected a BERT vocab.txt, one token per line)")
        with open(vocab_path, encoding="utf-8") as f:
            tokens = [line.rstrip("\n") for line in f]
        return cls(tokens, do_lower_case=do_lower_case, strip_accents=strip_accents,
                   tokenize_chinese_chars=tokenize_chinese_chars, never_split=never_split)

    def _reset_caches(self) -> None:
        self._pieces = _WordCache(self._word_pieces, self.cache_size)
        self._ids = _WordCache(self._word_ids, self.cache_size)

    def __getstate__(self) -> dict:  # DataLoader workers get a copy without the caches
        return {k: v for k, v in self.__dict__.items() if k not in ("_pieces", "_ids")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset_caches()

    def __len__(self) -> int:
        return len(self.ids_to_tokens)

    def __repr__(self) -> str:
        return (f"WordPieceTokenizer(vocab_size={len(self)}, do_lower_case={self.do_lower_case}, "
                f"strip_accents={self.basic_tokenizer.strip_accents})")

    # ------------------------------------------------------------------ text -> pieces

    def _wordpiece(self, token: str) -> list[str]:
        """Greedy longest-match-first: take the longest vocabulary entry that starts the rest."""
        if len(token) > self.max_input_chars_per_word:
            return [self.unk_token]
        vocab = self.vocab
        if token in vocab:  # most words are one piece
            return [token]
        pieces, start, n = [], 0, len(token)
        while start < n:
            end = min(n, start + (self._max_first if start == 0 else self._max_next))
            while end > start:
                piece = token[start:end] if start == 0 else "##" + token[start:end]
                if piece in vocab:
                    break
                end -= 1
            else:  # nothing matches here: the whole word is unknown, not just this part
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces

    def _word_pieces(self, word: str) -> tuple[str, ...]:
        """One whitespace-separated word (or a special token) -> its pieces. Cached."""
        pieces = []
        for token in self.basic_tokenizer.split_word(word):
            if token in self.never_split:  # kept verbatim, even if not in the vocab (then [UNK]'s id)
                pieces.append(token)
            else:
                pieces += self._wordpiece(token)
        return tuple(pieces)

    def _word_ids(self, word: str) -> tuple[int, ...]:
        get, unk = self.vocab.get, self.unk_token_id
        return tuple(get(p, unk) for p in self._pieces[word])

    def _words(self, text: str) -> list[str]:
        """Special tokens and whitespace-separated words, in order: the keys of the word caches."""
        if not isinstance(text, str):
            raise TypeError(f"expected a string, got {type(text).__name__}")
        words: list[str] = []
        for i, part in enumerate(self._special_re.split(text)):
            if i % 2:  # re.split puts the matched special tokens at the odd positions
                words.append(part)
            elif part:
                words += self.basic_tokenizer.split_whitespace(part)
        return words

    def tokenize(self, text: str) -> list[str]:
        """Text -> WordPiece tokens, without [CLS]/[SEP]."""
        return list(chain.from_iterable(map(self._pieces.__getitem__, self._words(text))))

    def encode(self, text: str) -> list[int]:
        """Text -> token ids, without [CLS]/[SEP] (HF: `encode(text, add_special_tokens=False)`)."""
        return list(chain.from_iterable(map(self._ids.__getitem__, self._words(text))))

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | list[int]:
        """A token or a list of tokens -> id(s); tokens not in the vocabulary get [UNK]'s id."""
        get, unk = self.vocab.get, self.unk_token_id
        if isinstance(tokens, str):
            return get(tokens, unk)
        return [get(t, unk) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Iterable[int]) -> str | list[str]:
        """An id or a list of ids (or a 1-d tensor) -> token(s)."""
        if hasattr(ids, "tolist"):  # torch tensors and numpy arrays
            ids = ids.tolist()
        if isinstance(ids, Iterable):
            return [self._id_to_token(i) for i in ids]
        return self._id_to_token(ids)

    def _id_to_token(self, i) -> str:
        i = operator.index(i)
        if not 0 <= i < len(self.ids_to_tokens):
            raise ValueError(f"token id {i} is outside the vocabulary (ids 0..{len(self.ids_to_tokens) - 1})")
        return self.ids_to_tokens[i]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool = False) -> str:
        """Ids -> text: HF's `convert_tokens_to_string`, pieces joined by spaces with " ##" removed.

        With the defaults this equals HF's `decode(ids, clean_up_tokenization_spaces=False)`;
        `clean_up_tokenization_spaces=True` applies HF's default clean-up (" ," -> "," etc.).
        Lowercasing and stripped accents cannot be undone: decode(encode("Café")) is "cafe".
        `skip_special_tokens` drops [CLS], [SEP], [PAD], [MASK] and, as in HF, [UNK].
        """
        if hasattr(ids, "tolist"):  # torch tensors and numpy arrays
            ids = ids.tolist()
        ids = [ids] if isinstance(ids, int) else list(ids)
        if skip_special_tokens:
            ids = [i for i in ids if i not in self.all_special_ids]
        tokens = self.convert_ids_to_tokens(ids)
        text = " ".join(tokens).replace(" ##", "").strip()
        if clean_up_tokenization_spaces:
            for before, after in _CLEANUP_SPACES:
                text = text.replace(before, after)
        return text

    # ------------------------------------------------------------------ model inputs

    def __call__(self, text: str | Sequence[str], text_pair: str | Sequence[str] | None = None,
                 max_length: int | None = None, padding: bool | str = False,
                 truncation: bool | str = False, return_tensors: str | None = None) -> dict:
        """Model inputs for one text, a text pair, or a batch (a list of texts, `text_pair` a list).

        Returns `input_ids` (`[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`), `token_type_ids` (0 for
        [CLS] A [SEP], 1 for B [SEP]) and `attention_mask` (0 on padding), as lists, or as (B, T)
        torch tensors with `return_tensors="pt"` (B = 1 for a single text, as in HF).
        padding: False | True/"longest" (to the batch's longest) | "max_length".
        truncation: False | True/"longest_first" | "only_first" | "only_second", to `max_length`.
        As in HF, `max_length` without `truncation` truncates nothing.
        """
        pad_to = _padding_strategy(padding, max_length)
        truncation = _truncation_strategy(truncation, max_length)
        if return_tensors not in (None, "pt"):
            raise ValueError(f"return_tensors must be None or 'pt', got {return_tensors!r}")
        batched = isinstance(text, (list, tuple))
        if batched:
            if text_pair is not None and (not isinstance(text_pair, (list, tuple))
                                          or len(text_pair) != len(text)):
                raise ValueError("for a batch of texts, text_pair must be a list of the same length "
                                 f"({len(text)}), got {type(text_pair).__name__}")
            pairs = text_pair if text_pair is not None else [None] * len(text)
            texts = text
        else:
            if text_pair is not None and not isinstance(text_pair, str):
                raise TypeError("text is one string, so text_pair must be one too, "
                                f"got {type(text_pair).__name__}")
            texts, pairs = [text], [text_pair]

        rows = [self._build_inputs(self.encode(a), None if b is None else self.encode(b),
                                   max_length, truncation) for a, b in zip(texts, pairs)]
        target = 0
        if pad_to == "max_length":
            target = max_length
        elif pad_to == "longest":
            target = max((len(ids) for ids, _ in rows), default=0)
        out: dict[str, list[list[int]]] = {"input_ids": [], "token_type_ids": [], "attention_mask": []}
        for ids, types in rows:
            n_pad = max(0, target - len(ids))  # a sequence already longer stays as it is (HF)
            out["input_ids"].append(ids + [self.pad_token_id] * n_pad)
            out["token_type_ids"].append(types + [0] * n_pad)
            out["attention_mask"].append([1] * len(ids) + [0] * n_pad)
        if return_tensors == "pt":
            import torch

            if len({len(ids) for ids in out["input_ids"]}) > 1:
                raise ValueError("the sequences have different lengths, so they cannot be stacked into a "
                                 "tensor: pass padding=True (or padding='max_length' with max_length)")
            return {k: torch.tensor(v, dtype=torch.long) if rows else torch.empty((0, 0), dtype=torch.long)
                    for k, v in out.items()}
        return out if batched else {k: v[0] for k, v in out.items()}

    def _build_inputs(self, a: list[int], b: list[int] | None, max_length: int | None,
                      truncation: str | None) -> tuple[list[int], list[int]]:
        """Truncate, then add [CLS]/[SEP]: (input_ids, token_type_ids)."""
        if truncation is not None:
            a, b = _truncate(a, b, max_length, truncation)
        ids = [self.cls_token_id, *a, self.sep_token_id]
        types = [0] * len(ids)
        if b is not None:
            ids += [*b, self.sep_token_id]
            types += [1] * (len(b) + 1)
        return ids, types

    def encode_words(self, words: Sequence[str], max_length: int | None = None) -> dict:
        """Pre-split words (NER) -> `[CLS] pieces [SEP]` with `word_ids`: the index of the word
        each piece came from, None for [CLS]/[SEP], as HF's `is_split_into_words=True` +
        `word_ids()`. A word that yields no piece (e.g. only a control character) gets none; with
        `max_length`, pieces past max_length - 2 are cut."""
        if isinstance(words, str):
            raise TypeError("encode_words takes a list of words (e.g. text.split()), not one string")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 2):
            raise ValueError(f"max_length must be an int of at least 2 ([CLS] and [SEP]), got {max_length!r}")
        return encode_words(self, words, max_length)

    # ------------------------------------------------------------------ offsets

    def tokenize_with_offsets(self, text: str) -> list[tuple[str, int, int]]:
        """`tokenize(text)` with each piece's (start, end) character span in `text` itself.

        What lowercasing and accent stripping do to lengths is undone per character: "Ça" gives
        ("ca", 0, 2), and a combining accent belongs to the piece of the letter it sits on. Spans
        agree with HF's fast tokenizer (`return_offsets_mapping=True`) on ordinary text.
        """
        out: list[tuple[str, int, int]] = []
        pos = 0
        for i, part in enumerate(self._special_re.split(text)):
            if i % 2:
                out.append((part, pos, pos + len(part)))
            elif part:
                out += self._offsets(part, pos)
            pos += len(part)
        return out

    def _offsets(self, text: str, base: int) -> list[tuple[str, int, int]]:
        bt = self.basic_tokenizer
        if drop_chars(text) != text:  # rare: remember where each surviving character came from
            index = [k for k, ch in enumerate(text) if not is_dropped(ch)]
            text = "".join(text[k] for k in index)
        else:
            index = None
        out = []
        word_re = _WORDCJK_RE if bt.tokenize_chinese_chars else _WORD_RE
        for m in word_re.finditer(text):
            s, e = m.span()
            positions = [base + k for k in (index[s:e] if index else range(s, e))]
            raw = m.group()
            word = unicodedata.normalize("NFC", raw)
            verbatim = word in bt.never_split
            norm = word if verbatim else bt.normalize(word)
            spans = self._char_spans(raw, positions, norm, verbatim)
            cursor = 0
            for token in bt.split_word(word):
                start = norm.index(token, cursor)  # tokens are `norm` in order, minus whitespace
                cursor = start + len(token)
                if token in self.never_split:
                    pieces = [token]
                else:
                    pieces = self._wordpiece(token)
                if pieces == [self.unk_token] and token != self.unk_token:
                    out.append((self.unk_token, spans[start][0], spans[cursor - 1][1]))
                    continue
                k = start
                for j, piece in enumerate(pieces):
                    n = len(piece) - 2 if j else len(piece)
                    out.append((piece, spans[k][0], spans[k + n - 1][1]))
                    k += n
        return out

    def _char_spans(self, raw: str, positions: list[int], norm: str, verbatim: bool) -> list[tuple[int, int]]:
        """For each character of `norm` (the word after NFC, lowercasing, accent stripping), the
        span of original characters it came from."""
        if raw.isascii():  # lowercasing ASCII keeps every character in place
            return [(p, p + 1) for p in positions]

        def transform(s: str) -> str:
            s = unicodedata.normalize("NFC", s)
            return s if verbatim else self.basic_tokenizer.normalize(s)

        # Character by character first: exact unless NFC composes across characters, or a
        # character's lowercase depends on its neighbours (Greek final sigma keeps the length).
        outs = [transform(ch) for ch in raw]
        if sum(map(len, outs)) == len(norm):
            return [(p, p + 1) for p, o in zip(positions, outs) for _ in o]
        # Else by base character plus the combining marks after it, which is what NFC composes.
        groups: list[list[int]] = []
        for k, ch in enumerate(raw):
            if groups and unicodedata.combining(ch):
                groups[-1].append(k)
            else:
                groups.append([k])
        outs = [transform("".join(raw[k] for k in g)) for g in groups]
        if sum(map(len, outs)) == len(norm):
            return [(positions[g[0]], positions[g[-1]] + 1) for g, o in zip(groups, outs) for _ in o]
        return [(positions[0], positions[-1] + 1)] * len(norm)  # give up on finer spans: the whole word

    # ------------------------------------------------------------------ saving

    def save_vocabulary(self, directory: str | os.PathLike) -> str:
        """Write `directory/vocab.txt` (one token per line, the id is the line number) atomically."""
        bad = [t for t in self.ids_to_tokens if "\n" in t or "\r" in t]
        if bad:
            raise ValueError(f"tokens containing a line break cannot be saved one per line: {bad[:3]}")
        path = os.path.join(os.fspath(directory), "vocab.txt")
        atomic_write_text(path, "".join(t + "\n" for t in self.ids_to_tokens))
        return path


def _padding_strategy(padding: bool | str | None, max_length: int | None) -> str | None:
    if padding in (False, None, "do_not_pad"):
        return None
    if padding is True or padding == "longest":
        return "longest"
    if padding == "max_length":
        _check_max_length(max_length, "padding='max_length'")
        return "max_length"
    raise ValueError(f"padding must be False, True, 'longest' or 'max_length', got {padding!r}")


def _truncation_strategy(truncation: bool | str | None, max_length: int | None) -> str | None:
    if truncation in (False, None, "do_not_truncate"):
        return None
    if truncation is True:
        truncation = "longest_first"
    if truncation not in ("longest_first", "only_first", "only_second"):
        raise ValueError("truncation must be False, True, 'longest_first', 'only_first' or "
                         f"'only_second', got {truncation!r}")
    _check_max_length(max_length, f"truncation={truncation!r}")
    return truncation


def _check_max_length(max_length: int | None, what: str) -> None:
    if max_length is None:
        raise ValueError(f"{what} needs max_length")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be a positive int, got {max_length!r}")


def _truncate(a: list[int], b: list[int] | None, max_length: int,
              strategy: str) -> tuple[list[int], list[int] | None]:
    """Cut tokens off the right end so that a (+ b) plus [CLS]/[SEP] fits in max_length (HF's rules)."""
    n_special = 2 if b is None else 3
    if max_length < n_special:
        raise ValueError(f"max_length={max_length} leaves no room: [CLS] and [SEP] alone take {n_special}")
    excess = len(a) + (len(b) if b is not None else 0) + n_special - max_length
    if excess <= 0:
        return a, b
    if strategy == "longest_first" and b is not None:
        # HF removes one token at a time from the longer sequence, from the second on a tie. In
        # closed form: first bring the longer down to the shorter's length, then alternate.
        first = min(abs(len(a) - len(b)), excess)
        rest = excess - first
        if len(a) > len(b):
            cut_a, cut_b = first + rest // 2, rest - rest // 2
        else:
            cut_a, cut_b = rest // 2, first + rest - rest // 2
        return a[:len(a) - cut_a], b[:len(b) - cut_b]
    if strategy == "only_second":
        if b is None:
            raise ValueError("truncation='only_second' needs a text_pair to truncate")
        if excess > len(b):
            raise ValueError(f"cannot fit into max_length={max_length} by truncating only the second "
                             f"sequence: it has {len(b)} tokens but {excess} must go "
                             "(use truncation='longest_first')")
        return a, b[:len(b) - excess]
    # only_first, or longest_first on a single sequence
    if excess > len(a):
        raise ValueError(f"cannot fit into max_length={max_length} by truncating only the first "
                         f"sequence: it has {len(a)} tokens but {excess} must go "
                         "(use truncation='longest_first')")
    return a[:len(a) - excess], b
