"""Tests for annotated_bert.squad: reading, the official v1.1 metric, windows, features, decoding.

References: hand-worked cases of the official `evaluate-v1.1.py` definitions and of run_squad.py's
window / max-context rules; on the real SQuAD file, the gold answer text itself (answer tokens must
map back to it) and oracle logits (must score EM 100).
"""
import gzip
import json
import re

import numpy as np
import pytest
import torch

from annotated_bert.squad import (SquadExample, best_span, exact_match_score, f1_score,
                                  is_max_context, make_features,
                                  metric_max_over_ground_truths, normalize_answer,
                                  passage_windows, postprocess_predictions, read_squad,
                                  split_by_article, squad_evaluate)
from conftest import SHARED_DATA

SQUAD = SHARED_DATA / "squad" / "squad_v1.1_dev_articles_00-39.json.gz"
NO_SQUAD = ("the SQuAD v1.1 dev articles (squad/squad_v1.1_dev_articles_00-39.json.gz) are not here; "
            "set ANNOTATED_BERT_SHARED_DATA to the folder that holds them")
needs_squad = pytest.mark.skipif(not SQUAD.is_file(),
                                 reason=NO_SQUAD)

_WORD_OR_PUNCT = re.compile(r"\w+|[^\w\s]")


def simple_tokenize(text: str) -> list[tuple[str, int, int]]:
    """Words and single punctuation marks with their character spans: a stand-in for WordPiece."""
    return [(m.group(), m.start(), m.end()) for m in _WORD_OR_PUNCT.finditer(text)]


class GrowingVocab:
    """token -> id, adding unseen tokens; ids 0, 1, 2 are [PAD], [CLS], [SEP]."""

    def __init__(self):
        self.ids = {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2}

    def __call__(self, token: str) -> int:
        return self.ids.setdefault(token, len(self.ids))


# ----------------------------------------------------------------------------- reading and splits

SQUAD_JSON = {"version": "1.1", "data": [
    {"title": "Denver", "paragraphs": [{"context": "Denver won the game.", "qas": [
        {"id": "q1", "question": "Who won?",
         "answers": [{"answer_start": 0, "text": "Denver"}, {"answer_start": 0, "text": "Denver"}]},
        {"id": "q2", "question": "What did Denver win?",
         "answers": [{"answer_start": 15, "text": "game"}]}]}]},
    {"title": "Carolina", "paragraphs": [{"context": "Carolina lost.", "qas": [
        {"id": "q3", "question": "Who lost?", "answers": [{"answer_start": 0, "text": "Carolina"}]}]}]},
]}


def test_read_squad_plain_and_gzip(tmp_path):
    plain, packed = tmp_path / "tiny.json", tmp_path / "tiny.json.gz"
    plain.write_text(json.dumps(SQUAD_JSON))
    with gzip.open(packed, "wt", encoding="utf-8") as f:
        json.dump(SQUAD_JSON, f)
    expected = [
        SquadExample("q1", "Denver", "Denver won the game.", "Who won?", ["Denver", "Denver"], [0, 0]),
        SquadExample("q2", "Denver", "Denver won the game.", "What did Denver win?", ["game"], [15]),
        SquadExample("q3", "Carolina", "Carolina lost.", "Who lost?", ["Carolina"], [0]),
    ]
    assert read_squad(plain) == expected
    assert read_squad(packed) == expected


def test_read_squad_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dev-v1\.1\.json.*rajpurkar\.github\.io"):
        read_squad(tmp_path / "dev-v1.1.json")


@pytest.mark.parametrize("content, message", [
    ('{"data": [', "is not SQuAD JSON: Expecting value"),
    ('{"data": [{"title": "x"}]}', "not in the SQuAD layout (missing or malformed 'paragraphs')"),
    (json.dumps({"data": [{"title": "x", "paragraphs": [{"context": "Denver won.", "qas": [
        {"id": "q9", "question": "Who?", "answers": [{"text": "Denver", "answer_start": 3}]}]}]}]}),
     "for 1 of its 1 answers the text is not at answer_start in the context (question ids q9); fix answer_start"),
])
def test_read_squad_bad_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(message)):
        read_squad(path)


def test_split_by_article_explicit_indices(tmp_path):
    (tmp_path / "tiny.json").write_text(json.dumps(SQUAD_JSON))
    examples = read_squad(tmp_path / "tiny.json")
    train, held_out = split_by_article(examples, eval_articles=[1])
    assert [e.id for e in train] == ["q1", "q2"] and [e.id for e in held_out] == ["q3"]
    with pytest.raises(ValueError):
        split_by_article(examples, n_eval_articles=2)  # would leave nothing to train on


@needs_squad
def test_split_real_file_32_train_8_eval_articles():
    examples = read_squad(SQUAD)
    assert len(examples) == 8981  # the data README's count
    train, held_out = split_by_article(examples, n_eval_articles=8, seed=0)
    train_titles, eval_titles = {e.title for e in train}, {e.title for e in held_out}
    assert (len(train_titles), len(eval_titles)) == (32, 8)
    assert not train_titles & eval_titles
    assert len(train) + len(held_out) == len(examples)
    assert split_by_article(examples, 8, seed=0)[1] == held_out  # deterministic
    assert {e.title for e in split_by_article(examples, 8, seed=1)[1]} != eval_titles


# ----------------------------------------------------------------------------- official metric

def test_normalize_answer():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a day") == "apple day"
    assert normalize_answer("Theater of the absurd") == "theater of absurd"  # whole words only
    assert normalize_answer("U.S.-based") == "usbased"  # punctuation removed, not replaced
    # articles are replaced by a space (the en dash is not ASCII punctuation, so it stays)
    assert normalize_answer("Rock–the–Boat") == "rock– –boat"


def test_f1_and_exact_match_hand_worked():
    # pred {denver, broncos, team} vs gold {denver, broncos}: P = 2/3, R = 1, F1 = 0.8
    assert f1_score("the Denver Broncos team", "Denver Broncos") == pytest.approx(0.8)
    # bags of words: common = min counts = {x: 1, y: 1}: P = R = 2/3
    assert f1_score("x x y", "x y y") == pytest.approx(2 / 3)
    assert f1_score("Carolina", "Denver") == 0.0
    assert exact_match_score("The Broncos.", "broncos")
    assert not exact_match_score("Broncos team", "Broncos")
    # The official script's quirk: both normalise to "", so EM is 1 but F1 is 0.
    assert exact_match_score("the", "a") and f1_score("the", "a") == 0.0
    assert metric_max_over_ground_truths(f1_score, "Denver", ["Carolina", "Denver Broncos"]) == \
        pytest.approx(2 / 3)


def test_squad_evaluate_hand_worked():
    examples = [SquadExample("q1", "t", "c", "?", ["Denver Broncos", "Broncos"], [0, 7]),
                SquadExample("q2", "t", "c", "?", ["Carolina Panthers"], [0]),
                SquadExample("q3", "t", "c", "?", ["Levi's Stadium"], [0])]
    # q1: EM 1, F1 1. q2: pred {panthers, team} vs {carolina, panthers}: EM 0, F1 0.5.
    # q3: unanswered, scores 0. EM = 1/3, F1 = 1.5/3, in percent.
    scores = squad_evaluate(examples, {"q1": "the Denver Broncos", "q2": "Panthers team"})
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(50.0)


# ----------------------------------------------------------------------------- windows

def test_passage_windows_hand_worked():
    assert passage_windows(10, 4, 3) == [(0, 4), (3, 4), (6, 4)]
    assert passage_windows(10, 4, 2) == [(0, 4), (2, 4), (4, 4), (6, 4)]
    assert passage_windows(10, 4, 6) == [(0, 4), (4, 4), (8, 2)]  # stride > window: no gap
    assert passage_windows(3, 4, 2) == [(0, 3)]
    assert passage_windows(0, 4, 2) == []


def test_is_max_context_run_squad_example():
    # run_squad.py's docstring: "the man went to the store and bought a gallon of milk" in
    # windows A = 0..4, B = 3..7, C = 6..10. "bought" (7) has 4 left / 0 right context in B and
    # 1 left / 3 right in C, so C is its max-context window.
    windows = [(0, 5), (3, 5), (6, 5)]
    assert [is_max_context(windows, w, 7) for w in range(3)] == [False, False, True]
    assert [is_max_context(windows, w, 4) for w in range(3)] == [False, True, False]
    # tie on min(left, right) = 1: the longer window wins (+0.01 * length) ...
    assert [is_max_context([(0, 5), (2, 3)], w, 3) for w in range(2)] == [True, False]
    # ... and on a full tie (1 + 0.04 both) the first window does
    assert [is_max_context([(0, 4), (1, 4)], w, 2) for w in range(2)] == [True, False]


VOCAB = {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "Who": 3, "won": 4, "?": 5, "Denver": 6,
         "the": 7, "game": 8, ".": 9, "scored": 10}


def hand_features():
    examples = [SquadExample("long", "t", "Denver won the game. Denver scored.", "Who won?",
                             ["Denver"], [0]),
                SquadExample("short", "t", "Denver.", "Who?", ["Denver"], [0])]
    # passage room = 10 - 3 (question) - 3 = 4 tokens; 8 passage tokens, stride 2 -> 3 windows
    return examples, make_features(examples, simple_tokenize, cls_id=1, sep_id=2, pad_id=0,
                                   token_to_id=VOCAB, max_length=10, doc_stride=2)


def test_make_features_layout_hand_worked():
    examples, features = hand_features()
    assert [(f.example_index, f.window_index) for f in features] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    f0, f1, f2, short = features
    assert f0.tokens == ["[CLS]", "Who", "won", "?", "[SEP]", "Denver", "won", "the", "game", "[SEP]"]
    assert f0.input_ids == [1, 3, 4, 5, 2, 6, 4, 7, 8, 2]
    assert f0.token_type_ids == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert f0.attention_mask == [1] * 10
    assert f0.token_to_char == [None] * 5 + [(0, 6), (7, 10), (11, 14), (15, 19), None]
    assert (f0.start_position, f0.end_position) == (5, 5)  # "Denver" is passage token 0
    # "game" (token 3) has more context in window 1 (2..5) than in window 0 (0..3)
    assert f0.token_is_max_context == [False] * 5 + [True, True, True, False, False]
    assert f1.tokens[5:9] == ["the", "game", ".", "Denver"]
    assert f1.token_is_max_context[5:9] == [False, True, True, False]
    assert (f1.start_position, f1.end_position) == (0, 0)  # answer not in window: point at [CLS]
    assert f2.tokens[5:9] == [".", "Denver", "scored", "."]
    assert f2.token_is_max_context[5:9] == [False, True, True, True]
    assert short.tokens == ["[CLS]", "Who", "?", "[SEP]", "Denver", ".", "[SEP]"] + ["[PAD]"] * 3
    assert short.input_ids == [1, 3, 5, 2, 6, 9, 2, 0, 0, 0]
    assert short.token_type_ids == [0, 0, 0, 0, 1, 1, 1, 0, 0, 0]
    assert short.attention_mask == [1] * 7 + [0] * 3
    assert (short.start_position, short.end_position) == (4, 4)

    assert [len(f.input_ids) for f in features] == [10] * 4                 # every window padded to max_length
    assert [f.start_position for f in features] == [5, 0, 0, 4]


def test_answer_partly_outside_window_points_at_cls():
    ex = SquadExample("q", "t", "a b c d e f", "q", ["c d e"], [4])
    # passage room 10 - 1 - 3 = 6 -> one window holds all; room 4 -> windows 0..3, 2..5
    whole = make_features([ex], simple_tokenize, 1, 2, 0, GrowingVocab(), max_length=10)
    assert (whole[0].start_position, whole[0].end_position) == (5, 7)
    cut = make_features([ex], simple_tokenize, 1, 2, 0, GrowingVocab(), max_length=8, doc_stride=2)
    assert [(f.start_position, f.end_position) for f in cut] == [(0, 0), (3, 5)]


def test_question_truncated_and_too_small_max_length():
    ex = SquadExample("q", "t", "x y", "a b c d e", ["x"], [0])
    [f] = make_features([ex], simple_tokenize, 1, 2, 0, GrowingVocab(), max_length=8,
                        max_query_length=2)
    assert f.tokens[:4] == ["[CLS]", "a", "b", "[SEP]"]
    with pytest.raises(ValueError, match="no room"):
        make_features([ex], simple_tokenize, 1, 2, 0, GrowingVocab(), max_length=5)


# ----------------------------------------------------------------------------- decoding

def test_best_span_constraints_hand_worked():
    _, (f0, *_) = hand_features()
    # positions: 0 [CLS], 1-3 question, 4 [SEP], 5 Denver, 6 won, 7 the, 8 game (not max
    # context here), 9 [SEP]. Highest start is a question token, highest end is [SEP]: both ignored.
    start = [0, 10, 0, 0, 0, 1, 2, 0, 5, 0]
    end = [0, 0, 0, 0, 0, 3, 0, 4, 6, 10]
    # valid starts 5 (1), 6 (2); valid ends 5 (3), 7 (4), 8 (6): best 6..8 = 2 + 6
    assert best_span(start, end, f0) == (8.0, 6, 8)
    # at most 2 tokens: 6..7 = 2 + 4 beats 5..5 = 1 + 3
    assert best_span(start, end, f0, max_answer_length=2) == (6.0, 6, 7)
    # only the single best start (a question token) is considered: nothing valid
    assert best_span(start, end, f0, n_best=1) is None
    # end before start is never chosen
    assert best_span([0] * 6 + [5, 0, 0, 0], [0] * 5 + [5, 0, 0, 0, 0], f0) == (5.0, 6, 6)
    assert best_span(torch.tensor(start), torch.tensor(end), f0) == (8.0, 6, 8)


def test_postprocess_best_window_and_text_from_context():
    examples, features = hand_features()
    logits = [np.zeros(10) for _ in features]
    start, end = [x.copy() for x in logits], [x.copy() for x in logits]
    start[0][5], end[0][5] = 3, 3  # window 0: "Denver" (0..6), score 6
    start[2][6], end[2][7] = 5, 5  # window 2: "Denver scored" (21..34), score 10
    start[3][4], end[3][5] = 1, 1  # short example: "Denver." keeps the original punctuation
    predictions = postprocess_predictions(examples, features, start, end)
    assert predictions == {"long": "Denver scored", "short": "Denver."}
    start[0][5] = 8
    assert postprocess_predictions(examples, features, start, end)["long"] == "Denver"
    # an example with no feature (empty passage) gets an empty answer
    empty = SquadExample("empty", "t", "", "Who?", [], [])
    assert postprocess_predictions([*examples, empty], features, start, end)["empty"] == ""


# ----------------------------------------------------------------------------- real SQuAD

def answer_is_token_aligned(example: SquadExample, tokenize) -> bool:
    """Does the first gold answer start and end on piece boundaries? If not (e.g. "8" inside
    "20–18"), no span of pieces can reproduce it exactly."""
    pieces = tokenize(example.context)
    start = example.answer_starts[0]
    end = start + len(example.answers[0])
    return start in {s for _, s, _ in pieces} and end in {e for _, _, e in pieces}


def check_features_against_gold(examples, tokenize, token_to_id, cls_id, sep_id, pad_id,
                                max_length, doc_stride, max_query_length):
    features = make_features(examples, tokenize, cls_id, sep_id, pad_id, token_to_id,
                             max_length=max_length, doc_stride=doc_stride,
                             max_query_length=max_query_length)
    by_example = {}
    for f in features:
        by_example.setdefault(f.example_index, []).append(f)
    assert sorted(by_example) == list(range(len(examples)))

    n_aligned = 0
    for i, ex in enumerate(examples):
        pieces = tokenize(ex.context)
        all_spans = [(s, e) for _, s, e in pieces]
        answer_start = ex.answer_starts[0]
        answer_end = answer_start + len(ex.answers[0])
        aligned = answer_is_token_aligned(ex, tokenize)
        n_aligned += aligned
        covered, best_window_of = [], {}
        contained = 0
        for f in by_example[i]:
            assert len(f.input_ids) == len(f.attention_mask) == len(f.token_type_ids) == max_length
            assert f.input_ids[0] == cls_id and f.input_ids[sum(f.attention_mask) - 1] == sep_id
            spans = [c for c in f.token_to_char if c is not None]
            first = all_spans.index(spans[0])
            assert spans == all_spans[first:first + len(spans)]  # a contiguous run of the passage
            covered.append((first, first + len(spans)))
            for c, best in zip(f.token_to_char, f.token_is_max_context):
                if c is not None and best:
                    assert all_spans.index(c) not in best_window_of
                    best_window_of[all_spans.index(c)] = f.window_index
            inside = spans[0][0] <= answer_start and answer_end <= spans[-1][1]
            if f.start_position == 0:
                assert f.end_position == 0
                assert not (aligned and inside)
                continue
            contained += 1
            char_start = f.token_to_char[f.start_position][0]
            char_end = f.token_to_char[f.end_position][1]
            if aligned:  # the answer tokens give back exactly the gold answer text
                assert ex.context[char_start:char_end] == ex.answers[0]
            else:  # the smallest run of pieces holding the answer
                assert char_start <= answer_start < answer_end <= char_end
        # windows start at 0, leave no gap, end at the last token; each token has one best window
        assert covered[0][0] == 0 and covered[-1][1] == len(pieces)
        assert all(b[0] <= a[1] for a, b in zip(covered, covered[1:]))
        assert sorted(best_window_of) == list(range(len(pieces)))
        assert contained >= 1
    return features, n_aligned


def oracle_predictions(examples, features, max_length):
    """One-hot logits at each feature's gold start and end ([CLS] where the answer is outside)."""
    start = np.zeros((len(features), max_length))
    end = np.zeros((len(features), max_length))
    for k, f in enumerate(features):
        start[k, f.start_position] = end[k, f.end_position] = 1.0
    return postprocess_predictions(examples, features, start, end)


@pytest.fixture(scope="module")
def first_300():
    if not SQUAD.is_file():
        pytest.skip(NO_SQUAD)
    return read_squad(SQUAD)[:300]


@pytest.mark.parametrize("max_length,doc_stride,max_query_length", [(384, 128, 64), (64, 16, 16)])
def test_real_squad_windows_and_oracle(first_300, max_length, doc_stride, max_query_length):
    vocab = GrowingVocab()
    features, n_aligned = check_features_against_gold(
        first_300, simple_tokenize, vocab, 1, 2, 0, max_length, doc_stride, max_query_length)
    if max_length == 64:
        assert len(features) > 5 * len(first_300)  # short windows really do split passages
    assert n_aligned >= 280  # a few answers cut inside a token, e.g. "8" from "20–18"
    predictions = oracle_predictions(first_300, features, max_length)
    aligned = [ex for ex in first_300 if answer_is_token_aligned(ex, simple_tokenize)]
    assert squad_evaluate(aligned, predictions) == {"exact_match": 100.0, "f1": 100.0}


def test_real_squad_with_wordpiece_offsets(first_300):
    """The same checks with real WordPiece offsets (Hugging Face `tokenizers`, trained here on
    these passages: lower-cased, accents stripped, '##' continuation pieces)."""
    tokenizers = pytest.importorskip("tokenizers")
    wordpiece = tokenizers.BertWordPieceTokenizer(lowercase=True)
    texts = list(dict.fromkeys(ex.context for ex in first_300)) + [ex.question for ex in first_300]
    wordpiece.train_from_iterator(texts, vocab_size=2000, show_progress=False)

    def tokenize(text):
        encoding = wordpiece.encode(text, add_special_tokens=False)
        return [(t, s, e) for t, (s, e) in zip(encoding.tokens, encoding.offsets)]

    assert any(t.startswith("##") for t, _, _ in tokenize(first_300[0].context))
    ids = [wordpiece.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")]
    features, n_aligned = check_features_against_gold(
        first_300, tokenize, wordpiece.token_to_id, *ids, max_length=128, doc_stride=32,
        max_query_length=32)
    assert n_aligned >= 280
    predictions = oracle_predictions(first_300, features, 128)
    aligned = [ex for ex in first_300 if answer_is_token_aligned(ex, tokenize)]
    assert squad_evaluate(aligned, predictions) == {"exact_match": 100.0, "f1": 100.0}
