"""Pretraining data: MLM masking (BERT's 80/10/10 rule) and the datasets that serve masked
samples to the training loop, built from reviews by annotated_bert.samples.

- MLM: 15% of each segment's real tokens (at least one) are chosen, after truncation so that no
  chosen token is cut off; of those 80% become [MASK], 10% a random non-special token, 10% stay;
  [CLS], [PAD], [SEP] are never chosen;
- held-out validation reviews: no sentence of a validation review appears in training, as a
  positive or as a negative's B';
- one seed gives one dataset: the masks are a function of (seed, epoch) only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from annotated_bert.config import IGNORE_INDEX
from annotated_bert.data import DataError, read_reviews
from annotated_bert.samples import (LAYOUTS, PAIR_TASKS, SpecialIds, build_vocab, find_context_length,
                                    gather_padded, layout_pairs, make_chunks, make_nsp_pairs, make_segment_pairs,
                                    tokenize_reviews)
from annotated_bert.tokenization import WALKTHROUGH_SPECIALS, Vocab, basic_english


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
    """Laid-out samples with their MLM masks. Yields dicts of tensors: input_ids (T,),
    token_type_ids (T,), attention_mask (T,), mlm_labels (T,) and, with a pair task, its label ()
    as `nsp_labels` or `sop_labels` (1: B follows A, or A and B are in order).

    masking="static": masks drawn once (the walkthrough, BERT); "dynamic": `set_epoch(e)` draws
    new masks for epoch e (RoBERTa). Either way the masks are a function of (seed, epoch) only.
    """

    def __init__(self, ids: np.ndarray, token_type_ids: np.ndarray, pair_labels: np.ndarray,
                 vocab: Vocab, *, mask_prob: float = 0.15, masking: str = "static", seed: int = 0,
                 pair_task: str | None = "nsp"):
        if masking not in ("static", "dynamic"):
            raise DataError(f"masking must be 'static' or 'dynamic', got {masking!r}")
        if pair_task not in (*PAIR_TASKS, None):
            raise DataError(f"pair_task must be one of {PAIR_TASKS} or None, got {pair_task!r}")
        self.vocab, self.special = vocab, SpecialIds.from_vocab(vocab)
        self.mask_prob, self.masking, self.seed, self.pair_task = mask_prob, masking, seed, pair_task
        self.original_ids = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int32))      # (N, T)
        self.token_type_ids = torch.from_numpy(np.ascontiguousarray(token_type_ids))          # (N, T)
        self.pair_labels = torch.from_numpy(np.ascontiguousarray(pair_labels, dtype=np.int64))  # (N,)
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

    def fingerprint(self) -> str:
        """Identifies the samples (their number, the vocabulary and a sparse sample of the ids), so
        that a run is never resumed on other data."""
        h = hashlib.sha1()
        h.update("\n".join(self.vocab.itos).encode())
        h.update(self.original_ids[:: max(1, len(self) // 1000)].numpy().tobytes())
        return f"{len(self)}-{h.hexdigest()[:16]}"

    def __len__(self) -> int:
        return len(self.pair_labels)

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
        if self.pair_task:
            out[f"{self.pair_task}_labels"] = self.pair_labels[idx]
        return out

    @property
    def df(self) -> pd.DataFrame:
        """The walkthrough's DataFrame: masked ids X, original ids Y, inverse token mask
        (False where a token was chosen for MLM), the pair label (SOP: in order)."""
        return pd.DataFrame({
            "masked_indices": list(self.input_ids.long().numpy()),
            "indices": list(self.original_ids.long().numpy()),
            "token_mask": list((~self.chosen).numpy()),
            "in_order" if self.pair_task == "sop" else "is_next": self.pair_labels.numpy(),
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
                 layout: str = "walkthrough", pair_task: str | None = "nsp", masking: str = "static",
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
        if pair_task and (per_review < 2).any():
            log(f"{int((per_review < 2).sum())} reviews have fewer than two sentences and give no sentence pairs")
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
        vocab, remap = build_vocab(sentences, itos, ~is_val, min_freq, vocab, extra=(".",) if packed else ())
        if len(vocab) <= len(WALKTHROUGH_SPECIALS):  # MLM would have no word to predict or to swap in
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
            rng = np.random.default_rng([seed, seed_offset])
            if packed and pair_task:
                return make_segment_pairs(sentences, in_split, 2 * L + 1, special, vocab.stoi.get("."), pair_task, rng)
            if packed:
                ids = make_chunks(sentences, in_split, 2 * L + 1, special, vocab.stoi.get("."))
                return ids, np.zeros(ids.shape, dtype=np.uint8), np.ones(len(ids), dtype=np.int64)
            a, b, labels = make_nsp_pairs(sentences, in_split, rng, pair_task or False)
            a_ids, a_len = gather_padded(sentences, a, L - 1, special.pad)
            b_ids, b_len = gather_padded(sentences, b, L - 1, special.pad)
            ids, types = layout_pairs(a_ids, a_len, b_ids, b_len, special, layout)
            return ids, types, labels

        kw = dict(mask_prob=mask_prob, masking=masking, pair_task=pair_task)
        super().__init__(*build(~is_val, 0), vocab, seed=seed, **kw)
        self.val = PretrainingDataset(*build(is_val, 1), vocab, seed=seed + 1, **kw) if n_val else None
        self.sentences, self.is_val_review, self.reviews = sentences, is_val, reviews
        what = {"nsp": "50% next-sentence pairs", "sop": "50% in order, 50% swapped",
                None: "MLM only: " + ("whole reviews in chunks" if packed else "consecutive sentence pairs")}
        log(f"{len(self)} training samples" + (f", {len(self.val)} validation samples" if self.val else "")
            + f" ({what[pair_task]}" + (", segments of whole sentences)" if packed and pair_task else ")"))


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
