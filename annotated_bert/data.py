"""Pretraining data: IMDb reviews -> sentences -> vocabulary -> NSP pairs -> MLM masks.

Follows the Annotated BERT walkthrough (../shared/BRIEF.md section 1) and the BERT paper
(Devlin et al. 2018, section 3.1 and appendix A.1), without the walkthrough code's defects:

- context length L: the 90th percentile of sentence lengths in tokens (`inverted_cdf`: the
  smallest L such that 90% of sentences have at most L tokens; lengths 10, 20, ..., 100 give 90);
- vocabulary: [CLS]=0 [PAD]=1 [MASK]=2 [SEP]=3 [UNK]=4, then every token seen `min_freq` times;
- NSP: every adjacent sentence pair of a review is a positive ("is next" = 1); each positive
  (A, B) gets a twin negative (A, B') whose B' is a sentence of a *different* review (label 0).
  B' is drawn among sentences that have a predecessor, so B has the same distribution in
  positives and negatives and "B is a review's first sentence" is no shortcut;
- MLM: 15% of each sentence's real tokens (at least one) are chosen, after truncation so that no
  chosen token is cut off; of those 80% become [MASK], 10% a random non-special token, 10% stay;
  [CLS], [PAD], [SEP] are never chosen;
- held-out validation reviews: no sentence of a validation review appears in training, as a
  positive or as a negative's B';
- one seed gives one dataset; everything is vectorised with numpy/torch so 75,000 reviews build
  in seconds.

Layouts (all 2L+1 positions):
    walkthrough: [CLS] A [PAD].. [SEP] [CLS] B [PAD]..   (each half is L long)
    standard:    [CLS] A [SEP] B [SEP] [PAD]..            (BERT's own layout)
    packed:      [CLS] a review's sentences ... [SEP]     (MLM only, long reviews in several chunks)
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import tarfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from annotated_bert.tokenization import SPECIAL_TOKENS, Vocab, basic_english

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"  # the official archive (as torchtext checks it)
DEFAULT_DATA = os.path.join("data", "aclImdb_v1.tar.gz")
LAYOUTS = ("walkthrough", "standard", "packed")
IGNORE_INDEX = -100  # label of positions the MLM loss skips (PyTorch's cross_entropy default)


class DataError(ValueError):
    """Bad input data; the message names the problem and the fix."""


# ----------------------------------------------------------------------------- reading reviews

TEXT_COLUMNS = ("review", "text", "sentence")  # a CSV's text column: the first of these it has
TEXT_COLUMN_HINT = f"a text column ({', '.join(TEXT_COLUMNS[:-1])} or {TEXT_COLUMNS[-1]})"  # for error messages


def pick_column(path: str, columns: Sequence[str], given: str | None, candidates: Sequence[str],
                what: str, flag: str) -> str:
    """The column a CSV reader uses: `given` (the user's --text-column / --label-column), else the
    first of `candidates` present; a DataError naming `flag` when there is none."""
    listing = ", ".join(map(str, columns))
    if given is not None:
        if given not in columns:
            raise DataError(f"{path} has no column {given!r} (its columns: {listing}); pass {flag} with one of them")
        return given
    found = next((c for c in candidates if c in columns), None)
    if found is None:
        raise DataError(f"{path} has no {what} column ({', '.join(candidates)}; its columns: {listing}); "
                        f"pass {flag} NAME to name the one with the {what}")
    return found


def read_reviews(paths: str | os.PathLike | Sequence[str | os.PathLike],
                 ds_from: int = 0, ds_to: int | None = None, log: Callable[[str], None] = print,
                 text_column: str | None = None) -> pd.DataFrame:
    """Read reviews from CSV files (plain or .gz), the Stanford `aclImdb` folder or
    `aclImdb_v1.tar.gz`; concatenate them in order and keep rows [ds_from, ds_to).

    A CSV's text is its `text_column`, by default the first of `TEXT_COLUMNS` it has; the result
    calls it `review`. Empty and NaN reviews are dropped (with a printed count); invalid UTF-8
    bytes become U+FFFD.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise DataError(f"no data file given: pass --data PATH (a CSV with {TEXT_COLUMN_HINT})")
    frames = [_read_one(os.fspath(p), log, text_column) for p in paths]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    n = len(df)
    if ds_from < 0:
        raise DataError(f"ds_from must be >= 0, got {ds_from}")
    if ds_to is None:
        ds_to = n
    if ds_from >= ds_to:
        raise DataError(f"empty slice: ds_from ({ds_from}) must be smaller than ds_to ({ds_to})")
    if ds_to > n:
        raise DataError(f"slice [{ds_from}, {ds_to}) is past the end: the data has only {n} reviews; "
                        f"use --ds-to {n} or less")
    df = df.iloc[ds_from:ds_to]
    text = df["review"]
    empty = text.isna() | (text.astype(str).str.strip() == "")
    if empty.any():
        log(f"skipped {int(empty.sum())} empty or missing reviews")
        df = df[~empty]
    return df.reset_index(drop=True)


def _read_one(path: str, log: Callable[[str], None], text_column: str | None = None) -> pd.DataFrame:
    if not os.path.exists(path):
        raise DataError(f"data not found: {path}. Pass --data PATH (a CSV with {TEXT_COLUMN_HINT}, "
                        f"or the aclImdb folder / aclImdb_v1.tar.gz), or fetch the official IMDb "
                        f"archive with: python -m annotated_bert.data download")
    if os.path.isdir(path):
        return _read_acl_imdb(path, log)
    if path.endswith((".tar.gz", ".tgz")):
        return _read_acl_imdb(path, log)
    text_dtypes = {text_column: str} if text_column else dict.fromkeys(TEXT_COLUMNS, str)
    replaced = False
    try:
        df = pd.read_csv(path, dtype=text_dtypes, encoding="utf-8")
    except UnicodeDecodeError:
        df = pd.read_csv(path, dtype=text_dtypes, encoding="utf-8", encoding_errors="replace")
        replaced = True
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: it needs a header line with {TEXT_COLUMN_HINT} and rows") from None
    except (pd.errors.ParserError, OSError, EOFError) as e:
        raise DataError(f"cannot parse {path} as CSV: {str(e).splitlines()[0]}") from None
    column = pick_column(path, list(df.columns), text_column, TEXT_COLUMNS, "text", "--text-column")
    if column != "review":
        df = df.drop(columns="review", errors="ignore").rename(columns={column: "review"})
    if replaced:
        bad = int(df["review"].astype(str).str.contains("\ufffd", regex=False).sum())
        log(f"{path}: invalid UTF-8 bytes in {bad} reviews were replaced by U+FFFD")
    if len(df) == 0:
        raise DataError(f"{path} has a header but no rows")
    return df


def _read_acl_imdb(path: str, log: Callable[[str], None],
                   subsets: tuple[str, ...] = ("train/pos", "train/neg", "train/unsup")) -> pd.DataFrame:
    """The official release: one review per .txt file under aclImdb/{train,test}/{pos,neg,unsup}.
    Rows are shuffled with a fixed seed so any slice mixes labels (as in the CSV version)."""
    sentiment = {"pos": "positive", "neg": "negative", "unsup": None}
    rows: list[tuple[str, str, str | None]] = []
    if os.path.isdir(path):
        root = path if os.path.basename(os.path.normpath(path)) == "aclImdb" else os.path.join(path, "aclImdb")
        for sub in subsets:
            folder = os.path.join(root, sub)
            if not os.path.isdir(folder):
                continue
            for name in os.listdir(folder):
                if name.endswith(".txt"):
                    with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
                        rows.append((f"{sub}/{name}", f.read(), sentiment[sub.split("/")[1]]))
    else:
        try:
            with tarfile.open(path, "r:gz") as tar:
                for member in tqdm(tar, desc=f"reading {os.path.basename(path)}", unit=" files", leave=False):
                    parts = member.name.split("/")  # aclImdb/train/pos/123_4.txt
                    if member.isfile() and len(parts) == 4 and "/".join(parts[1:3]) in subsets:
                        data = tar.extractfile(member).read().decode("utf-8", errors="replace")
                        rows.append(("/".join(parts[1:]), data, sentiment[parts[2]]))
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"cannot read {path} as the aclImdb_v1.tar.gz archive ({e}); download it "
                            f"again with: python -m annotated_bert.data download") from None
    if not rows:
        raise DataError(f"{path} holds no reviews under aclImdb/{{{','.join(subsets)}}}")
    rows.sort()  # file order differs between file systems; sort, then shuffle with a fixed seed
    order = np.random.default_rng(0).permutation(len(rows))
    df = pd.DataFrame([rows[i][1:] for i in order], columns=["review", "sentiment"])
    log(f"read {len(df)} reviews from {path}")
    return df


def download_imdb(dest: str = DEFAULT_DATA, url: str = IMDB_URL) -> str:
    """Download the official aclImdb_v1.tar.gz (84 MB), check its MD5, write it atomically."""
    if os.path.exists(dest):
        return dest
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    tmp = dest + ".part"
    md5 = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=30) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length", 0)) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {os.path.basename(dest)}") as bar:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
                    md5.update(chunk)
                    bar.update(len(chunk))
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise DataError(f"could not download {url} ({e}). Download it by hand to {dest}, or pass "
                        f"--data PATH to a CSV with {TEXT_COLUMN_HINT}") from None
    if md5.hexdigest() != IMDB_MD5:
        os.unlink(tmp)
        raise DataError(f"downloaded file has MD5 {md5.hexdigest()}, expected {IMDB_MD5}; try again")
    os.replace(tmp, dest)
    return dest


def resolve_data(paths: Sequence[str] | None) -> list[str]:
    """The --data paths, or the default archive under data/ (downloaded when missing)."""
    if paths:
        return list(paths)
    if not os.path.exists(DEFAULT_DATA):
        print(f"no --data given and {DEFAULT_DATA} is missing: downloading the IMDb archive")
        try:
            download_imdb(DEFAULT_DATA)
        except DataError as e:
            raise DataError(f"IMDb data not found at {DEFAULT_DATA} and the download failed: {e}") from None
    return [DEFAULT_DATA]


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
        skip = set(SPECIAL_TOKENS) | set(extra)
        vocab = Vocab([*SPECIAL_TOKENS, *extra, *(itos[i] for i in order if itos[i] not in skip)])
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
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise DataError(f"vocabulary lacks the special tokens {missing}")
        return cls(*(vocab.stoi[t] for t in SPECIAL_TOKENS))


def make_nsp_pairs(sentences: Sentences, in_split: np.ndarray, rng: np.random.Generator,
                   negatives: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sentence-index pairs (a, b) and NSP labels for the sentences whose review is in the split.
    Positives: (s, s+1) within one review. Negatives: (s, t), t from another review of the split.
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
    pool = b  # sentences that follow another one: B has the same distribution for both labels
    if len(np.unique(sentences.review[pool])) < 2:
        raise DataError("NSP negatives need sentences from at least two reviews in each split; "
                        "use more reviews (--ds-to), or --no-nsp")
    neg_b = pool[rng.integers(0, len(pool), size=len(a))]
    clash = sentences.review[neg_b] == sentences.review[a]
    while clash.any():  # redraw those that landed in A's own review
        neg_b[clash] = pool[rng.integers(0, len(pool), size=int(clash.sum()))]
        clash = sentences.review[neg_b] == sentences.review[a]
    pair_a = np.repeat(a, 2)
    pair_b = np.stack([b, neg_b], axis=1).reshape(-1)
    labels = np.tile(np.array([1, 0], dtype=np.int64), len(a))
    return pair_a, pair_b, labels


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
    """The "packed" layout (RoBERTa's FULL-SENTENCES, one review at a time): each review's
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


# ------------------------------------------------------------------------------------ masking

def choose_mlm_positions(eligible: torch.Tensor, token_type_ids: torch.Tensor, mask_prob: float,
                         generator: torch.Generator) -> torch.Tensor:
    """Choose round(mask_prob * n) (at least 1) of the n eligible positions of each sentence.

    Exact counts per sentence, with no position chosen twice: give every position a random key,
    push sentence B's keys above A's and ineligible ones above both, sort each row once; the
    k_A-th smallest key is A's threshold and the (n_A + k_B)-th is B's.
    """
    seg = token_type_ids.bool()                                              # (N, T) False: A, True: B
    keys = torch.rand(eligible.shape, generator=generator, dtype=torch.float64) + seg  # A in [0,1), B in [1,2); float64: no ties
    keys.masked_fill_(~eligible, 3.0)
    ordered = keys.sort(dim=1).values                                        # (N, T)
    n_a = (eligible & ~seg).sum(1, keepdim=True)                             # (N, 1)
    n_b = (eligible & seg).sum(1, keepdim=True)
    k = lambda n: torch.where(n > 0, torch.clamp(torch.floor(n * mask_prob + 0.5), min=1), 0).long()
    k_a, k_b = k(n_a), k(n_b)
    last = ordered.shape[1] - 1
    threshold_a = torch.where(k_a > 0, ordered.gather(1, (k_a - 1).clamp(0, last)), -1.0)        # (N, 1)
    threshold_b = torch.where(k_b > 0, ordered.gather(1, (n_a + k_b - 1).clamp(0, last)), -1.0)
    return eligible & (keys <= torch.where(seg, threshold_b, threshold_a))


def apply_mlm_mask(ids: torch.Tensor, chosen: torch.Tensor, special: SpecialIds, vocab_size: int,
                   generator: torch.Generator, special_ids: Sequence[int] = ()) -> torch.Tensor:
    """BERT's 80/10/10 rule on the chosen positions: [MASK], a random non-special token, unchanged."""
    u = torch.rand(ids.shape, generator=generator)
    normal = torch.ones(vocab_size, dtype=torch.bool)
    normal[list(set(special_ids) | {special.cls, special.pad, special.mask, special.sep, special.unk})] = False
    candidates = normal.nonzero().squeeze(1)
    random_tokens = candidates[torch.randint(len(candidates), ids.shape, generator=generator)]
    out = torch.where(chosen & (u < 0.8), special.mask, ids)
    out = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_tokens.to(ids.dtype), out)
    return out


# ------------------------------------------------------------------------------------ datasets

class PretrainingDataset(torch.utils.data.Dataset):
    """Laid-out NSP pairs with their MLM masks. Yields dicts of tensors:
    input_ids (T,), token_type_ids (T,), attention_mask (T,), mlm_labels (T,), nsp_labels ().

    masking="static": masks drawn once (the walkthrough, BERT); "dynamic": `set_epoch(e)` draws
    new masks for epoch e (RoBERTa). Either way the masks are a function of (seed, epoch) only.
    """

    def __init__(self, ids: np.ndarray, token_type_ids: np.ndarray, nsp_labels: np.ndarray,
                 vocab: Vocab, *, mask_prob: float = 0.15, masking: str = "static", seed: int = 0,
                 nsp: bool = True):
        if masking not in ("static", "dynamic"):
            raise DataError(f"masking must be 'static' or 'dynamic', got {masking!r}")
        self.vocab, self.special = vocab, SpecialIds.from_vocab(vocab)
        self.mask_prob, self.masking, self.seed, self.nsp = mask_prob, masking, seed, nsp
        self.original_ids = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int32))      # (N, T)
        self.token_type_ids = torch.from_numpy(np.ascontiguousarray(token_type_ids))          # (N, T)
        self.nsp_labels = torch.from_numpy(np.ascontiguousarray(nsp_labels, dtype=np.int64))  # (N,)
        s = self.special
        self.eligible = ~(torch.isin(self.original_ids, torch.tensor([s.cls, s.pad, s.sep, s.mask])))
        self.epoch = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw the masks for `epoch` (static masking: always epoch 0's)."""
        epoch = epoch if self.masking == "dynamic" else 0
        if epoch == self.epoch:
            return
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        self.chosen = choose_mlm_positions(self.eligible, self.token_type_ids, self.mask_prob, g)
        self.input_ids = apply_mlm_mask(self.original_ids, self.chosen, self.special, len(self.vocab), g,
                                        self.vocab.special_ids)
        self.epoch = epoch

    @property
    def seq_len(self) -> int:
        return self.original_ids.shape[1]

    def __len__(self) -> int:
        return len(self.nsp_labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.batch(torch.tensor([i])).items()}

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """A batch by index in one gather (no per-sample Python work)."""
        original = self.original_ids[idx].long()                             # (B, T)
        out = {
            "input_ids": self.input_ids[idx].long(),
            "token_type_ids": self.token_type_ids[idx].long(),
            "attention_mask": (original != self.special.pad).long(),
            "mlm_labels": torch.where(self.chosen[idx], original, IGNORE_INDEX),
        }
        if self.nsp:
            out["nsp_labels"] = self.nsp_labels[idx]
        return out

    @property
    def df(self) -> pd.DataFrame:
        """The walkthrough's DataFrame: masked ids X, original ids Y, inverse token mask
        (False where a token was chosen for MLM), NSP label."""
        return pd.DataFrame({
            "masked_indices": list(self.input_ids.long().numpy()),
            "indices": list(self.original_ids.long().numpy()),
            "token_mask": list((~self.chosen).numpy()),
            "is_next": self.nsp_labels.numpy(),
        })

    def tokens(self, i: int, masked: bool = True) -> list[str]:
        ids = (self.input_ids if masked else self.original_ids)[i].tolist()
        return self.vocab.lookup_tokens(ids)


class IMDBBertDataset(PretrainingDataset):
    """The walkthrough's dataset: reviews [ds_from, ds_to) of an IMDb CSV -> training pairs.

    `self` holds the training samples, `self.val` the samples of the held-out reviews.

        ds = IMDBBertDataset("imdb_train.csv.gz", ds_from=0, ds_to=1000)
        ds.context_length, len(ds.vocab), len(ds), len(ds.val), ds.df.head()
    """

    def __init__(self, path: str | Sequence[str] | pd.DataFrame, ds_from: int = 0, ds_to: int | None = 1000, *,
                 tokenizer: Callable[[str], list[str]] = basic_english, vocab: Vocab | None = None,
                 min_freq: int = 2, percentile: float = 90, context_length: int | None = None,
                 layout: str = "walkthrough", nsp: bool = True, masking: str = "static",
                 mask_prob: float = 0.15, val_fraction: float = 0.1, seed: int = 0,
                 verbose: bool = True, progress: bool = True):
        log = print if verbose else (lambda *_: None)  # progress: the tokenizing bar, when verbose
        if layout not in LAYOUTS:
            raise DataError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
        if not 0 <= val_fraction < 1:
            raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if isinstance(path, pd.DataFrame):
            df = path.iloc[ds_from:ds_to]
        else:
            df = read_reviews(path, ds_from, ds_to, log=log)
        reviews = df["review"].astype(str).tolist()
        if not reviews:
            raise DataError("no reviews left to build pretraining data from")
        rng = np.random.default_rng(seed)

        # 1. sentences, with the held-out reviews chosen by review, never by sample
        sentences, itos = tokenize_reviews(reviews, tokenizer, progress=verbose and progress)
        per_review = np.bincount(sentences.review, minlength=len(reviews))
        if layout != "packed" and (per_review < 2).any():                 # packed: no pairs at all
            log(f"{int((per_review < 2).sum())} reviews have fewer than two sentences and give no NSP pairs")
        # validation reviews are drawn among those that give pairs, at least two (NSP negatives
        # need another review), leaving at least two for training
        usable = np.flatnonzero(per_review >= 2)
        n_val = int(round(val_fraction * len(reviews)))
        if val_fraction > 0:
            n_val = min(max(n_val, 2), len(usable) - 2) if len(usable) >= 4 else 0
        is_val = np.zeros(len(reviews), dtype=bool)
        is_val[rng.permutation(usable)[:n_val]] = True

        # 2. context length and vocabulary, from the training reviews only
        train_sentences = ~is_val[sentences.review]
        self.sentence_lengths = sentences.lengths[train_sentences]
        self.percentile = percentile
        L = context_length or find_context_length(self.sentence_lengths, percentile)
        if L < 2:
            raise DataError(f"context length {L} is too short: need at least 2 ([CLS] and one token)")
        packed = layout == "packed"
        nsp = nsp and not packed
        vocab, remap = build_vocab(sentences, itos, ~is_val, min_freq, vocab, extra=(".",) if packed else ())
        if len(vocab) <= len(SPECIAL_TOKENS):  # MLM would have no word to predict or to swap in
            n_train = len(reviews) - n_val
            raise DataError(f"the vocabulary has only the special tokens: no token appears {min_freq} times in the "
                            f"{n_train} training review{'s' if n_train != 1 else ''}; use more reviews, "
                            "or a lower --min-freq")
        sentences.ids = remap[sentences.ids]
        self.context_length, self.layout = L, layout
        why = "as given" if context_length else f"the {percentile:g}th percentile of sentence lengths"
        log(f"{len(reviews)} reviews ({len(reviews) - n_val} train, {n_val} validation), "
            f"{len(sentences)} sentences; context length L = {L} ({why}), "
            f"sequence length 2L+1 = {2 * L + 1}; vocabulary {len(vocab)} tokens")

        # 3. pairs, laid out, then masked (by PretrainingDataset)
        special = SpecialIds.from_vocab(vocab)

        def build(in_split: np.ndarray, seed_offset: int):
            if packed:
                ids = make_chunks(sentences, in_split, 2 * L + 1, special, vocab.stoi.get("."))
                return ids, np.zeros(ids.shape, dtype=np.uint8), np.ones(len(ids), dtype=np.int64)
            a, b, labels = make_nsp_pairs(sentences, in_split, np.random.default_rng([seed, seed_offset]), nsp)
            a_ids, a_len = gather_padded(sentences, a, L - 1, special.pad)
            b_ids, b_len = gather_padded(sentences, b, L - 1, special.pad)
            ids, types = layout_pairs(a_ids, a_len, b_ids, b_len, special, layout)
            return ids, types, labels

        kw = dict(mask_prob=mask_prob, masking=masking, nsp=nsp)
        super().__init__(*build(~is_val, 0), vocab, seed=seed, **kw)
        self.val = PretrainingDataset(*build(is_val, 1), vocab, seed=seed + 1, **kw) if n_val else None
        self.sentences, self.is_val_review, self.reviews = sentences, is_val, reviews
        log(f"{len(self)} training samples" + (f", {len(self.val)} validation samples" if self.val else "")
            + (" (50% next-sentence pairs)" if nsp else " (MLM only: " +
               ("whole reviews in chunks)" if packed else "consecutive sentence pairs)")))


def encode_for_model(tokens_a: list[str], tokens_b: list[str] | None, vocab: Vocab, context_length: int,
                     layout: str = "walkthrough") -> dict[str, torch.Tensor]:
    """One pair of token lists -> model inputs of shape (1, 2L+1), laid out exactly as in training.
    Tokens equal to "[MASK]" stay masks. Raises DataError if a [MASK] would be truncated away."""
    special = SpecialIds.from_vocab(vocab)
    width = context_length - 1
    rows = []
    for tokens in (tokens_a, tokens_b or []):
        if "[MASK]" in tokens[width:]:
            raise DataError(f"a [MASK] lies past the context length ({width} tokens per sentence); "
                            f"shorten the text")
        ids = vocab(tokens[:width])
        rows.append((np.array([ids + [special.pad] * (width - len(ids))], dtype=np.int32), np.array([len(ids)])))
    (a, a_len), (b, b_len) = rows
    ids, types = layout_pairs(a, a_len, b, b_len, special, "standard" if layout == "packed" else layout)
    ids_t = torch.from_numpy(ids).long()
    return {"input_ids": ids_t, "token_type_ids": torch.from_numpy(types).long(),
            "attention_mask": (ids_t != special.pad).long()}


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m annotated_bert.data",
                                description="IMDb data utilities.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help=f"download the official IMDb archive ({IMDB_URL})")
    d.add_argument("--dest", default=DEFAULT_DATA, help="where to write it (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        path = download_imdb(args.dest)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"IMDb archive at {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
