"""Pretraining samples from reviews: sentences, the context length, the vocabulary, sentence pairs
(NSP, SOP) and the layouts they are written in. Masking and the datasets are annotated_bert.pretraining.

Follows the Annotated BERT walkthrough and the BERT paper (Devlin et al. 2018, section 3.1 and
appendix A.1), without the walkthrough code's defects:

- context length L: the 90th percentile of sentence lengths in tokens (`inverted_cdf`: the
  smallest L such that 90% of sentences have at most L tokens; lengths 10, 20, ..., 100 give 90);
- vocabulary: [CLS]=0 [PAD]=1 [MASK]=2 [SEP]=3 [UNK]=4, then every token seen `min_freq` times;
- NSP: every adjacent sentence pair of a review is a positive ("is next" = 1); each positive
  (A, B) gets a twin negative (A, B') whose B' is a sentence of a *different* review (label 0).
  B' is drawn among sentences that have a predecessor, so B has the same distribution in
  positives and negatives and "B is a review's first sentence" is no shortcut;
- SOP (ALBERT): each positive (A, B) gets the twin (B, A), label 0: order, not topic, tells them apart;
- everything is vectorised with numpy so 75,000 reviews build in seconds.

Layouts (all 2L+1 positions):
    walkthrough: [CLS] A [PAD].. [SEP] [CLS] B [PAD]..   (each half is L long)
    standard:    [CLS] A [SEP] B [SEP] [PAD]..            (BERT's own layout)
    packed:      [CLS] a review's sentences ... [SEP]     (MLM only, long reviews in several chunks),
                 or with a pair task [CLS] A [SEP] B [SEP], A and B whole sentences of one chunk
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from annotated_bert.data import DataError
from annotated_bert.tokenization import WALKTHROUGH_SPECIALS, Vocab

LAYOUTS = ("walkthrough", "standard", "packed")


# ------------------------------------------------------------------- sentences and vocabulary

@dataclass
class Sentences:
    """All sentences of a set of reviews, as one flat id array (CSR layout: sentence s is
    `ids[starts[s]:starts[s] + lengths[s]]`) plus the review each sentence comes from."""
    ids: np.ndarray       # (total tokens,) int32
    starts: np.ndarray    # (S,) int64
    lengths: np.ndarray   # (S,) int64
    review: np.ndarray    # (S,) int64: index of the review in the slice

    def __len__(self) -> int:
        return len(self.starts)

    def tokens(self, s: int) -> np.ndarray:
        return self.ids[self.starts[s]:self.starts[s] + self.lengths[s]]


def tokenize_reviews(reviews: Sequence[str], tokenizer: Callable[[str], list[str]],
                     progress: bool = True) -> tuple[Sentences, list[str]]:
    """Tokenize every review once, give each distinct token a provisional id (first-seen order,
    by pandas' hash-table `factorize`), and split at "." tokens into sentences, dropping empty
    ones. Returns the sentences in provisional ids and the provisional id -> token table;
    `build_vocab` remaps them.

    Splitting the token stream at "." equals the walkthrough's split of the raw text on "." then
    tokenizing each piece: `basic_english` turns every "." into its own token and no other rule
    can merge across it (WordPiece likewise splits punctuation off).
    """
    token_lists = [tokenizer(text) for text in tqdm(reviews, desc="tokenizing", unit=" reviews",
                                                      disable=not progress, mininterval=1.0)]
    review_lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    flat = np.array(list(chain.from_iterable(token_lists)), dtype=object)
    del token_lists
    codes, uniques = pd.factorize(flat)
    ids = codes.astype(np.int32)
    itos = uniques.tolist()
    review_of_token = np.repeat(np.arange(len(reviews)), review_lengths)

    is_dot = ids == (itos.index(".") if "." in itos else -1)
    new_sentence = np.ones(len(ids), dtype=bool)            # a sentence starts at a review start
    new_sentence[1:] = is_dot[:-1] | (review_of_token[1:] != review_of_token[:-1])  # or after a "."
    sentence_of_token = np.cumsum(new_sentence) - 1
    keep = ~is_dot
    ids, sentence_of_token, review_of_token = ids[keep], sentence_of_token[keep], review_of_token[keep]
    # renumber so empty sentences ("...", a trailing ".") disappear
    _, first, lengths = np.unique(sentence_of_token, return_index=True, return_counts=True)
    sentences = Sentences(ids=ids, starts=first.astype(np.int64), lengths=lengths.astype(np.int64),
                          review=review_of_token[first].astype(np.int64))
    return sentences, itos


def build_vocab(sentences: Sentences, itos: list[str], reviews_mask: np.ndarray, min_freq: int,
                vocab: Vocab | None = None, extra: tuple[str, ...] = ()) -> tuple[Vocab, np.ndarray]:
    """Count tokens over the sentences whose review is in `reviews_mask` (the training reviews),
    build the vocabulary (or use the given one; `extra` tokens go right after the specials) and
    return it with the provisional -> final id map."""
    if vocab is None:
        in_train = reviews_mask[np.repeat(sentences.review, sentences.lengths)]
        counts = np.bincount(sentences.ids[in_train], minlength=len(itos))
        # most frequent first; a stable sort keeps first-seen order among equal counts
        order = np.argsort(-counts, kind="stable")
        order = order[counts[order] >= min_freq]
        skip = set(WALKTHROUGH_SPECIALS) | set(extra)
        vocab = Vocab([*WALKTHROUGH_SPECIALS, *extra, *(itos[i] for i in order if itos[i] not in skip)])
    remap = np.fromiter((vocab[t] for t in itos), dtype=np.int32, count=len(itos))
    return vocab, remap


def find_context_length(lengths: np.ndarray, percentile: float = 90) -> int:
    """The smallest L such that `percentile`% of the sentences have at most L tokens."""
    if len(lengths) == 0:
        raise DataError("no sentences to measure: the reviews are empty after tokenization")
    if not 0 < percentile <= 100:
        raise DataError(f"percentile must be in (0, 100], got {percentile}")
    return int(np.percentile(lengths, percentile, method="inverted_cdf"))


# --------------------------------------------------------------------------- pairs and layout

@dataclass(frozen=True)
class SpecialIds:
    cls: int
    pad: int
    mask: int
    sep: int
    unk: int

    @classmethod
    def from_vocab(cls, vocab: Vocab) -> "SpecialIds":
        missing = [t for t in WALKTHROUGH_SPECIALS if t not in vocab]
        if missing:
            raise DataError(f"vocabulary lacks the special tokens {missing}")
        return cls(*(vocab.stoi[t] for t in WALKTHROUGH_SPECIALS))


PAIR_TASKS = ("nsp", "sop")  # next-sentence prediction (BERT), sentence-order prediction (ALBERT)


def make_nsp_pairs(sentences: Sentences, in_split: np.ndarray, rng: np.random.Generator,
                   negatives: bool | str = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sentence-index pairs (a, b) and pair labels for the sentences whose review is in the split.
    Positives (label 1): (s, s+1) within one review. Negatives (label 0), one per positive: NSP
    (`negatives` True or "nsp"): (s, t), t from another review of the split; SOP ("sop"): the same
    two sentences swapped, (s+1, s). Without negatives (False), the positives alone.
    Order: positive 0, negative 0, positive 1, ... (the walkthrough interleaves them)."""
    idx = np.flatnonzero(in_split[sentences.review])
    review = sentences.review[idx]
    consecutive = (review[1:] == review[:-1]) & (idx[1:] == idx[:-1] + 1)
    a, b = idx[:-1][consecutive], idx[1:][consecutive]
    if len(a) == 0:
        raise DataError("no review in this slice has two sentences, so there are no NSP pairs; "
                        "use more reviews (--ds-to) or reviews with '.'-separated sentences")
    if not negatives:
        return a, b, np.ones(len(a), dtype=np.int64)
    labels = np.tile(np.array([1, 0], dtype=np.int64), len(a))
    if negatives == "sop":  # the same two sentences, in order then swapped
        return np.stack([a, b], axis=1).reshape(-1), np.stack([b, a], axis=1).reshape(-1), labels
    pool = b  # sentences that follow another one: B has the same distribution for both labels
    if len(np.unique(sentences.review[pool])) < 2:
        raise DataError("NSP negatives need sentences from at least two reviews in each split; "
                        "use more reviews (--ds-to), or --no-nsp")
    neg_b = pool[rng.integers(0, len(pool), size=len(a))]
    clash = sentences.review[neg_b] == sentences.review[a]
    while clash.any():  # redraw those that landed in A's own review
        neg_b[clash] = pool[rng.integers(0, len(pool), size=int(clash.sum()))]
        clash = sentences.review[neg_b] == sentences.review[a]
    return np.repeat(a, 2), np.stack([b, neg_b], axis=1).reshape(-1), labels


def gather_padded(sentences: Sentences, which: np.ndarray, width: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of sentence ids truncated to `width` and right-padded: (N, width) ids and (N,) lengths."""
    lengths = np.minimum(sentences.lengths[which], width)
    cols = np.arange(width)
    valid = cols[None, :] < lengths[:, None]                                # (N, width)
    pos = sentences.starts[which][:, None] + np.where(valid, cols[None, :], 0)
    return np.where(valid, sentences.ids[pos], pad).astype(np.int32), lengths


def layout_pairs(a: np.ndarray, a_len: np.ndarray, b: np.ndarray, b_len: np.ndarray,
                 special: SpecialIds, layout: str = "walkthrough") -> tuple[np.ndarray, np.ndarray]:
    """Assemble (N, 2L+1) input ids and token type ids from padded sentence rows of width L-1.

    walkthrough: [CLS] A [PAD].. [SEP] [CLS] B [PAD]..   token types 0 up to the [SEP], then 1
    standard:    [CLS] A [SEP] B [SEP] [PAD]..           token types 0 for [CLS] A [SEP], 1 for B [SEP],
                                                         0 for padding (the Hugging Face convention)
    """
    n, w = a.shape                                    # w = L - 1
    T = 2 * w + 3                                     # 2L + 1
    if layout == "walkthrough":
        col = lambda x: np.full((n, 1), x, dtype=np.int32)
        ids = np.concatenate([col(special.cls), a, col(special.sep), col(special.cls), b], axis=1)
        types = np.zeros((n, T), dtype=np.uint8)
        types[:, w + 2:] = 1
        return ids, types
    if layout != "standard":
        raise DataError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
    cols = np.arange(T)[None, :]                      # (1, T)
    a_len, b_len = a_len[:, None], b_len[:, None]     # (N, 1)
    b_start = a_len + 2
    end = b_start + b_len                             # position of the final [SEP]
    ids = np.full((n, T), special.pad, dtype=np.int32)
    in_a = (cols >= 1) & (cols <= a_len)
    in_b = (cols >= b_start) & (cols < end)
    ids = np.where(in_a, np.take_along_axis(a, np.clip(cols - 1, 0, w - 1).repeat(n, 0), 1), ids)
    ids = np.where(in_b, np.take_along_axis(b, np.clip(cols - b_start, 0, w - 1), 1), ids)
    ids[:, 0] = special.cls
    has_b = b_len > 0                                 # a single text is [CLS] A [SEP]
    ids = np.where((cols == a_len + 1) | ((cols == end) & has_b), special.sep, ids)
    types = ((cols >= b_start) & (cols <= end) & has_b).astype(np.uint8)
    return ids.astype(np.int32), types


def make_chunks(sentences: Sentences, in_split: np.ndarray, seq_len: int, special: SpecialIds,
                separator: int | None) -> np.ndarray:
    """The "packed" layout (close to RoBERTa's DOC-SENTENCES: one review at a time, never crossing
    into the next, but cut at fixed token counts rather than sentence boundaries): each review's
    sentences end to end (joined by `separator`, the "." they were split at), cut into chunks of
    seq_len - 2 tokens, each `[CLS] chunk [SEP] [PAD]..`. Returns (N, seq_len) ids, one segment."""
    idx = np.flatnonzero(in_split[sentences.review])                       # sentences of the split
    lengths = sentences.lengths[idx]
    with_sep = lengths + (separator is not None)
    out_start = np.cumsum(with_sep) - with_sep                              # where each sentence goes
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    stream = np.empty(with_sep.sum(), dtype=np.int32)
    stream[np.repeat(out_start, lengths) + within] = sentences.ids[np.repeat(sentences.starts[idx], lengths) + within]
    if separator is not None:
        stream[out_start + lengths] = separator
    review = np.repeat(sentences.review[idx], with_sep)                    # (total,) review of each token
    first = np.ones(len(review), dtype=bool)
    first[1:] = review[1:] != review[:-1]
    review_start = np.maximum.accumulate(np.where(first, np.arange(len(review)), 0))
    width = seq_len - 2
    pos = np.arange(len(review)) - review_start                             # position within its review
    new_chunk = first | (pos % width == 0)
    chunk = np.cumsum(new_chunk) - 1                                        # (total,) chunk of each token
    ids = np.full((chunk[-1] + 1, seq_len), special.pad, dtype=np.int32)
    ids[chunk, pos % width + 1] = stream
    ids[:, 0] = special.cls
    ids[np.arange(len(ids)), np.bincount(chunk) + 1] = special.sep
    return ids


def make_segment_pairs(sentences: Sentences, in_split: np.ndarray, seq_len: int, special: SpecialIds,
                       separator: int | None, task: str, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """The packed layout with a pair task (BERT's own pretraining data, and ALBERT's): each review's
    sentences packed into chunks of whole sentences, up to seq_len - 3 tokens, and each chunk of two
    or more sentences cut at a random sentence boundary into segments A and B:
    `[CLS] A [SEP] B [SEP] [PAD]..`. Half the pairs, chosen at random, are negatives (label 0):
    NSP gives them the B of a chunk of another review (cut to fit), SOP swaps their A and B.
    Returns (N, seq_len) ids, token types (0 up to the first [SEP], 1 after, 0 on padding), labels."""
    width = seq_len - 3
    sep_len = separator is not None
    chunks, current, used, review = [], [], 0, -1                         # chunks: lists of sentence indices
    for s in np.flatnonzero(in_split[sentences.review]):
        n = min(int(sentences.lengths[s]), width - sep_len) + sep_len
        if current and (sentences.review[s] != review or used + n > width):
            chunks.append(current)
            current, used = [], 0
        current.append(s)
        used, review = used + n, sentences.review[s]
    chunks = [c for c in chunks + [current] if len(c) >= 2]
    if len({sentences.review[c[0]] for c in chunks}) < 2:
        raise DataError("sentence-pair pretraining needs reviews of two or more sentences, from at least two "
                        "reviews in each split; use more reviews (--ds-to), or --pair-task none")

    def tokens(which: list[int]) -> list[int]:
        out = []
        for s in which:
            out += sentences.tokens(s)[:width - sep_len].tolist() + ([separator] if sep_len else [])
        return out

    cuts = [int(rng.integers(1, len(c))) for c in chunks]
    a_parts = [tokens(c[:k]) for c, k in zip(chunks, cuts)]
    b_parts = [tokens(c[k:]) for c, k in zip(chunks, cuts)]
    labels = rng.permutation(np.arange(len(chunks)) % 2).astype(np.int64)  # exactly half positives
    ids = np.full((len(chunks), seq_len), special.pad, dtype=np.int32)
    types = np.zeros((len(chunks), seq_len), dtype=np.uint8)
    for i, (a, b) in enumerate(zip(a_parts, b_parts)):
        if labels[i] == 0 and task == "sop":
            a, b = b, a
        elif labels[i] == 0:  # NSP: the B of a chunk of another review
            j = int(rng.integers(len(chunks)))
            while sentences.review[chunks[j][0]] == sentences.review[chunks[i][0]]:
                j = int(rng.integers(len(chunks)))
            b = b_parts[j][:width - len(a)]
        row = [special.cls, *a, special.sep, *b, special.sep]
        ids[i, :len(row)] = row
        types[i, len(a) + 2:len(row)] = 1
    return ids, types, labels
