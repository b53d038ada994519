"""Extractive question answering on SQuAD v1.1: data, passage windows, span decoding, official metric.

The model-independent half of fine-tuning BERT for SQuAD (BERT paper, Devlin et al. 2019, §4.2:
the input is `[CLS] question [SEP] passage [SEP]`, a start vector S and an end vector E score
each passage token, and the answer is the span i..j, j >= i, with the largest S·T_i + E·T_j).
It follows:

- Rajpurkar et al. (2016), SQuAD v1.1: the JSON layout and the official scorer
  `evaluate-v1.1.py`, whose normalisation, exact match and token F1 are reproduced line for line.
- Google's BERT `run_squad.py`: passages longer than the window are cut into overlapping windows
  `doc_stride` tokens apart; a token seen in several windows is scored only in the window where
  it has the most context on both sides (`_check_is_max_context`); training targets point at
  `[CLS]` when the answer is not wholly inside the window; decoding pairs the top `n_best` start
  and end positions.

One deliberate difference from `run_squad.py`: instead of whitespace words plus `get_final_text`,
the tokenizer reports each piece's character span in the original text (as Hugging Face's
`run_qa.py` does with offset mappings), so an answer is sliced straight out of the context.
"""
from __future__ import annotations

import gzip
import json
import random
import re
import string
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SQUAD_HINT = ("SQuAD v1.1 is not shipped with this project: train-v1.1.json and dev-v1.1.json "
              "are at https://rajpurkar.github.io/SQuAD-explorer/ (CC BY-SA 4.0).")


@dataclass
class SquadExample:
    id: str
    title: str  # the Wikipedia article the paragraph comes from
    context: str
    question: str
    answers: list[str]  # every annotator's answer (train has one, dev usually three)
    answer_starts: list[int]  # character offset of each answer in `context`


@dataclass
class SquadFeature:
    """One window of one example, laid out `[CLS] question [SEP] passage window [SEP] [PAD]...`."""
    example_index: int  # position of the example in the list given to make_features
    window_index: int  # which window of that example's passage, 0, 1, ...
    tokens: list[str]  # the pieces, for reading; specials shown as [CLS] [SEP] [PAD]
    input_ids: list[int]  # (T,)
    token_type_ids: list[int]  # (T,) 0 for [CLS] question [SEP], 1 for passage [SEP], 0 for pads
    attention_mask: list[int]  # (T,) 1 for real tokens, 0 for pads
    token_to_char: list[tuple[int, int] | None]  # (T,) passage token -> (start, end) in context
    token_is_max_context: list[bool]  # (T,) True where this window is the token's best window
    start_position: int  # answer's first token in this window, 0 ([CLS]) if not wholly inside
    end_position: int  # answer's last token (inclusive), 0 ([CLS]) if not wholly inside


def read_squad(path: str | Path) -> list[SquadExample]:
    """Read SQuAD JSON (`{"data": [{"title", "paragraphs": [{"context", "qas"}]}]}`), plain or .gz."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SQuAD file not found: {path}. {SQUAD_HINT}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            dataset = json.load(f)["data"]
        examples = []
        for article in dataset:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    examples.append(SquadExample(
                        id=qa["id"], title=article["title"], context=paragraph["context"],
                        question=qa["question"], answers=[a["text"] for a in qa["answers"]],
                        answer_starts=[a["answer_start"] for a in qa["answers"]]))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise ValueError(f"{path} is not SQuAD JSON: {e}. {SQUAD_HINT}") from None
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path} is not in the SQuAD layout (missing or malformed {e}). {SQUAD_HINT}") from None
    # an answer_start that does not point at the answer would train the model on the wrong span
    wrong = [ex.id for ex in examples for text, start in zip(ex.answers, ex.answer_starts)
             if ex.context[start:start + len(text)] != text]
    if wrong:
        n_answers = sum(len(ex.answers) for ex in examples)
        raise ValueError(f"{path}: for {len(wrong)} of its {n_answers} answers the text is not at answer_start in "
                         f"the context (question ids {', '.join(map(str, wrong[:3]))}{', ...' if len(wrong) > 3 else ''}); "
                         "fix answer_start, the character offset of the answer in its context")
    return examples


def split_by_article(examples: Sequence[SquadExample], n_eval_articles: int = 8, seed: int = 0,
                     eval_articles: Sequence[int] | None = None,
                     ) -> tuple[list[SquadExample], list[SquadExample]]:
    """(train, eval) split by whole articles, so no passage is seen in both.

    Articles are numbered in file order. The eval articles are `eval_articles` if given, otherwise
    `n_eval_articles` drawn with `random.Random(seed)`.
    """
    titles = list(dict.fromkeys(ex.title for ex in examples))  # unique, in file order
    if eval_articles is None:
        if not 0 < n_eval_articles < len(titles):
            raise ValueError(f"n_eval_articles={n_eval_articles} must be in 1..{len(titles) - 1}")
        eval_articles = random.Random(seed).sample(range(len(titles)), n_eval_articles)
    if any(not 0 <= i < len(titles) for i in eval_articles):
        raise ValueError(f"article indices must be in 0..{len(titles) - 1}, got {eval_articles}")
    eval_titles = {titles[i] for i in eval_articles}
    train = [ex for ex in examples if ex.title not in eval_titles]
    held_out = [ex for ex in examples if ex.title in eval_titles]
    return train, held_out


# ----------------------------------------------------------------------------- official metric
# Reproduces evaluate-v1.1.py (Rajpurkar et al. 2016); scores are in percent.

_PUNCTUATION = set(string.punctuation)  # ASCII punctuation only, as the official script


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-level F1 between the normalised bags of words."""
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:  # also when both normalise to nothing: the official script gives F1 0 then
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def metric_max_over_ground_truths(metric_fn: Callable[[str, str], float], prediction: str,
                                  ground_truths: Sequence[str]) -> float:
    """A prediction gets the best score against any annotator's answer."""
    return max(metric_fn(prediction, gt) for gt in ground_truths)


def squad_evaluate(examples: Sequence[SquadExample], predictions: Mapping[str, str]) -> dict:
    """{"exact_match", "f1"} in percent over all examples; an unanswered question scores 0."""
    exact_match = f1 = 0.0
    missing = 0
    for ex in examples:
        if ex.id not in predictions:
            missing += 1
            continue
        exact_match += metric_max_over_ground_truths(exact_match_score, predictions[ex.id], ex.answers)
        f1 += metric_max_over_ground_truths(f1_score, predictions[ex.id], ex.answers)
    if missing:  # the official script prints one line per unanswered question to stderr
        print(f"{missing} unanswered question(s) will receive score 0.", file=sys.stderr)
    total = len(examples)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


# ----------------------------------------------------------------------------- windows

def passage_windows(n_tokens: int, window: int, stride: int) -> list[tuple[int, int]]:
    """(start, length) of overlapping windows over n_tokens passage tokens, as run_squad.py.

    Each window starts `stride` tokens after the previous one (or right after it ends, if the
    stride is longer than the window); the last window ends exactly at the last token.
    """
    if window <= 0 or stride <= 0:
        raise ValueError(f"window ({window}) and stride ({stride}) must be positive")
    windows = []
    start = 0
    while start < n_tokens:
        length = min(n_tokens - start, window)
        windows.append((start, length))
        if start + length == n_tokens:
            break
        start += min(length, stride)
    return windows


def is_max_context(windows: Sequence[tuple[int, int]], window_index: int, position: int) -> bool:
    """Is `window_index` the window where passage token `position` has the most context?

    Score = min(tokens to its left, tokens to its right) inside the window, plus 0.01 * the
    window's length to prefer longer windows on ties; the first best window wins (run_squad.py's
    `_check_is_max_context`).
    """
    best_score, best_index = None, None
    for i, (start, length) in enumerate(windows):
        end = start + length - 1
        if not start <= position <= end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, i
    return best_index == window_index


def make_features(examples: Sequence[SquadExample],
                  tokenize_with_offsets: Callable[[str], list[tuple[str, int, int]]],
                  cls_id: int, sep_id: int, pad_id: int,
                  token_to_id: Callable[[str], int] | Mapping[str, int],
                  max_length: int = 384, doc_stride: int = 128, max_query_length: int = 64,
                  ) -> list[SquadFeature]:
    """Cut every example into `[CLS] question [SEP] passage window [SEP] [PAD]...` features.

    `tokenize_with_offsets(text)` returns (piece, char_start, char_end) for each piece of `text`.
    Training targets use the first answer, as run_squad.py does. An example can give several
    features (long passages) or none (an empty passage).
    """
    to_id = token_to_id.__getitem__ if isinstance(token_to_id, Mapping) else token_to_id
    features: list[SquadFeature] = []
    last_context, doc = None, []
    for ex_index, ex in enumerate(examples):
        question = tokenize_with_offsets(ex.question)[:max_query_length]
        if ex.context != last_context:  # questions on one paragraph come together: tokenize once
            last_context, doc = ex.context, tokenize_with_offsets(ex.context)
        max_doc = max_length - len(question) - 3  # room left after [CLS], [SEP], [SEP]
        if max_doc <= 0:
            raise ValueError(f"max_length={max_length} leaves no room for the passage after a "
                             f"{len(question)}-token question")

        # The answer's token span over the whole passage: every piece overlapping its characters.
        answer_start = answer_end = None
        if ex.answers:
            char_start = ex.answer_starts[0]
            char_end = char_start + len(ex.answers[0])
            covering = [i for i, (_, s, e) in enumerate(doc) if s < char_end and e > char_start]
            if covering:
                answer_start, answer_end = covering[0], covering[-1]

        windows = passage_windows(len(doc), max_doc, doc_stride)
        for w, (start, length) in enumerate(windows):
            passage = doc[start:start + length]
            tokens = ["[CLS]", *(t for t, _, _ in question), "[SEP]", *(t for t, _, _ in passage), "[SEP]"]
            input_ids = [cls_id, *(to_id(t) for t, _, _ in question), sep_id,
                         *(to_id(t) for t, _, _ in passage), sep_id]
            token_type_ids = [0] * (len(question) + 2) + [1] * (length + 1)
            offset = len(question) + 2  # index of the window's first passage token
            token_to_char: list[tuple[int, int] | None] = [None] * len(input_ids)
            max_context = [False] * len(input_ids)
            for k, (_, s, e) in enumerate(passage):
                token_to_char[offset + k] = (s, e)
                max_context[offset + k] = is_max_context(windows, w, start + k)

            n_pad = max_length - len(input_ids)
            attention_mask = [1] * len(input_ids) + [0] * n_pad
            tokens += ["[PAD]"] * n_pad
            input_ids += [pad_id] * n_pad
            token_type_ids += [0] * n_pad
            token_to_char += [None] * n_pad
            max_context += [False] * n_pad

            # Target inside this window only if the whole answer is; otherwise [CLS] (index 0).
            start_position = end_position = 0
            if answer_start is not None and start <= answer_start and answer_end < start + length:
                start_position = answer_start - start + offset
                end_position = answer_end - start + offset

            features.append(SquadFeature(
                example_index=ex_index, window_index=w, tokens=tokens, input_ids=input_ids,
                token_type_ids=token_type_ids, attention_mask=attention_mask,
                token_to_char=token_to_char, token_is_max_context=max_context,
                start_position=start_position, end_position=end_position))
    return features




# ----------------------------------------------------------------------------- decoding

def best_span(start_logits, end_logits, feature: SquadFeature, max_answer_length: int = 30,
              n_best: int = 20) -> tuple[float, int, int] | None:
    """The best (score, start, end) answer span in one feature, or None if no span is valid.

    Candidates pair the `n_best` highest start logits with the `n_best` highest end logits
    (run_squad.py's `_get_best_indexes`); a pair is valid if both ends are passage tokens,
    start <= end, the span has at most `max_answer_length` tokens, and this window is the start
    token's max-context window. Score = start_logit + end_logit. Logits: (T,) arrays or tensors.
    """
    start_logits = np.asarray(start_logits, dtype=np.float64)  # (T,)
    end_logits = np.asarray(end_logits, dtype=np.float64)  # (T,)
    if not len(start_logits) == len(end_logits) == len(feature.input_ids):
        raise ValueError(f"logits of length {len(start_logits)}/{len(end_logits)} for a feature "
                         f"of length {len(feature.input_ids)}")
    # stable sort: equal logits keep position order, as Python's sorted(reverse=True) does
    top_starts = np.argsort(-start_logits, kind="stable")[:n_best]
    top_ends = np.argsort(-end_logits, kind="stable")[:n_best]
    best = None
    for s in top_starts:
        for e in top_ends:
            if feature.token_to_char[s] is None or feature.token_to_char[e] is None:
                continue  # [CLS], question, [SEP] or padding
            if e < s or e - s + 1 > max_answer_length:
                continue
            if not feature.token_is_max_context[s]:
                continue  # another window sees this token with more context
            score = start_logits[s] + end_logits[e]
            if best is None or score > best[0]:
                best = (float(score), int(s), int(e))
    return best


def postprocess_predictions(examples: Sequence[SquadExample], features: Sequence[SquadFeature],
                            all_start_logits, all_end_logits, max_answer_length: int = 30,
                            n_best: int = 20) -> dict[str, str]:
    """{example id: answer text}: the best span over all of an example's windows, cut from the
    original context by character offsets ("" if no window has a valid span).

    `all_start_logits[i]` / `all_end_logits[i]` are the (T,) logits of `features[i]`.
    """
    if not len(features) == len(all_start_logits) == len(all_end_logits):
        raise ValueError(f"{len(features)} features but {len(all_start_logits)} start and "
                         f"{len(all_end_logits)} end logit rows")
    best: dict[int, tuple[float, int, int, SquadFeature]] = {}  # example index -> best span
    for feature, start_logits, end_logits in zip(features, all_start_logits, all_end_logits):
        span = best_span(start_logits, end_logits, feature, max_answer_length, n_best)
        current = best.get(feature.example_index)
        if span is not None and (current is None or span[0] > current[0]):
            best[feature.example_index] = (*span, feature)
    predictions = {}
    for i, ex in enumerate(examples):
        if i not in best:
            predictions[ex.id] = ""
            continue
        _, s, e, feature = best[i]
        predictions[ex.id] = ex.context[feature.token_to_char[s][0]:feature.token_to_char[e][1]]
    return predictions
