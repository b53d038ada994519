"""Tests for annotated_bert.ner: CoNLL-2003 reading, tag schemes, entity-level scores, piece alignment.

References: hand-worked cases following the conlleval / seqeval (default mode) definitions, and the
CoNLL-2003 paper's own counts (Tjong Kim Sang & De Meulder 2003, Table 2) on the real files.
"""
import os
from pathlib import Path

import pytest

from annotated_bert.ner import (IGNORE_INDEX, Sentence, align_labels_to_pieces, bio_to_bioes,
                                bioes_to_bio, entities_to_tags, entity_scores, entity_types,
                                extract_entities, iob1_to_bio, label_list, label_maps,
                                pieces_to_word_predictions, read_conll)

# same convention as conftest.py: ../shared/data next to the repo, or $ANNOTATED_BERT_SHARED_DATA
SHARED_DATA = Path(os.environ.get("ANNOTATED_BERT_SHARED_DATA",
                                  Path(__file__).resolve().parents[2] / "shared" / "data"))
CONLL = SHARED_DATA / "conll2003"


# ----------------------------------------------------------------------------- reading

def test_read_conll_skips_docstart_and_splits_on_blank_lines(tmp_path):
    path = tmp_path / "tiny.conll"
    path.write_text("-DOCSTART- -X- O O\n\n"
                    "EU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman JJ I-NP I-MISC\n\n"
                    "Peter NNP I-NP I-PER\nBlackburn NNP I-NP I-PER\n\n\n"
                    "-DOCSTART- -X- O O\n\n"
                    "BRUSSELS NNP I-NP I-LOC\n")  # no trailing blank line
    assert read_conll(path) == [
        Sentence(["EU", "rejects", "German"], ["I-ORG", "O", "I-MISC"]),
        Sentence(["Peter", "Blackburn"], ["I-PER", "I-PER"]),
        Sentence(["BRUSSELS"], ["I-LOC"]),
    ]


def test_read_conll_names_file_and_line_of_a_malformed_line(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("EU NNP I-NP I-ORG\nrejects VBZ O\n")
    with pytest.raises(ValueError, match=r"bad\.conll:2: expected 4 columns"):
        read_conll(path)
    path.write_text("EU NNP I-NP I-ORG\n\nrejects VBZ I-VP X-ORG\n")
    with pytest.raises(ValueError, match=r"bad\.conll:3: NER tag 'X-ORG'"):
        read_conll(path)


def test_read_conll_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.train.*clips\.uantwerpen\.be/conll2003"):
        read_conll(tmp_path / "nope.train")


# ----------------------------------------------------------------------------- schemes

def test_iob1_to_bio_to_bioes_hand_worked():
    # Two adjacent PER entities (IOB1 marks the second with B-), then a LOC, then a type change
    # from LOC to ORG with no O between: IOB1 needs no B- there because the type changes.
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "O", "I-MISC"]
    bio = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "O", "B-MISC"]
    bioes = ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "B-ORG", "E-ORG", "O", "S-MISC"]
    assert iob1_to_bio(iob1) == bio
    assert bio_to_bioes(bio) == bioes
    assert bioes_to_bio(bioes) == bio
    assert entities_to_tags(extract_entities(bio), len(bio), "IOB1") == iob1
    expected = {("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5), ("ORG", 5, 7), ("MISC", 8, 9)}
    assert extract_entities(iob1, "IOB1") == extract_entities(bio, "BIO") == expected
    assert extract_entities(bioes, "BIOES") == expected


def test_long_entity_in_bioes():
    assert bio_to_bioes(["B-ORG", "I-ORG", "I-ORG", "I-ORG"]) == ["B-ORG", "I-ORG", "I-ORG", "E-ORG"]


def test_invalid_sequences_convert_the_way_conlleval_reads_them():
    # BIO: an I-X after O or after another type starts an entity (conlleval is lenient).
    assert bio_to_bioes(["O", "I-PER", "I-PER"]) == ["O", "B-PER", "E-PER"]
    assert bio_to_bioes(["B-PER", "I-LOC"]) == ["S-PER", "S-LOC"]
    # IOB1: a B-X after O (strictly invalid) still starts an entity.
    assert iob1_to_bio(["O", "B-LOC", "I-LOC"]) == ["O", "B-LOC", "I-LOC"]
    # BIOES read as seqeval's default mode: a B-X without E-X still ends where the type stops,
    # an E-X or I-X after O/E/S starts a new entity.
    assert bioes_to_bio(["B-PER", "O"]) == ["B-PER", "O"]
    assert bioes_to_bio(["B-PER", "I-PER", "O"]) == ["B-PER", "I-PER", "O"]
    assert bioes_to_bio(["I-PER", "E-PER"]) == ["B-PER", "I-PER"]
    assert bioes_to_bio(["E-PER", "E-PER"]) == ["B-PER", "B-PER"]
    assert bioes_to_bio(["S-PER", "I-PER", "E-PER"]) == ["B-PER", "B-PER", "I-PER"]


def test_tags_outside_the_scheme_are_rejected():
    with pytest.raises(ValueError, match="invalid BIO tag 'S-PER'"):
        extract_entities(["S-PER"], "BIO")
    with pytest.raises(ValueError, match="invalid BIOES tag 'PER'"):
        extract_entities(["PER"], "BIOES")
    with pytest.raises(ValueError, match="unknown tag scheme"):
        extract_entities(["O"], "BILOU")


def test_extract_entities_conlleval_semantics():
    assert extract_entities([]) == set()
    assert extract_entities(["O", "O"]) == set()
    # end is exclusive: words[1:3]
    assert extract_entities(["O", "B-PER", "I-PER", "O"]) == {("PER", 1, 3)}
    # an entity running to the end of the sentence is closed
    assert extract_entities(["O", "B-LOC", "I-LOC"]) == {("LOC", 1, 3)}
    # B after B of the same type: two entities; I after O: a new entity; type change: new entity
    assert extract_entities(["B-PER", "B-PER", "O", "I-PER", "I-ORG"]) == {
        ("PER", 0, 1), ("PER", 1, 2), ("PER", 3, 4), ("ORG", 4, 5)}
    # BIOES: an S-X ends whatever came before it, even an unfinished entity of the same type
    assert extract_entities(["B-PER", "S-PER", "I-PER", "S-PER"], "BIOES") == {
        ("PER", 0, 1), ("PER", 1, 2), ("PER", 2, 3), ("PER", 3, 4)}


def test_entities_to_tags_rejects_overlaps():
    with pytest.raises(ValueError, match="overlaps"):
        entities_to_tags({("PER", 0, 2), ("LOC", 1, 3)}, 3)


# ----------------------------------------------------------------------------- scores

def test_entity_scores_hand_worked_two_of_three():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    # gold {PER 0:2, LOC 3:4, ORG 0:1}, pred {PER 0:2, ORG 3:4, ORG 0:1}: 2 correct of 3 and 3.
    # The LOC tagged as ORG is both a false negative (LOC) and a false positive (ORG).
    s = entity_scores(gold, pred)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["support"] == 3
    assert s["per_type"]["PER"] == dict(precision=1.0, recall=1.0, f1=1.0, support=1)
    assert s["per_type"]["LOC"] == dict(precision=0.0, recall=0.0, f1=0.0, support=1)
    org = s["per_type"]["ORG"]  # 1 correct of 2 predicted, 1 gold: P=1/2, R=1, F1=2/3
    assert (org["precision"], org["recall"], org["support"]) == (0.5, 1.0, 1)
    assert org["f1"] == pytest.approx(2 / 3)


def test_entity_scores_unequal_precision_and_recall():
    # 4 gold, 3 predicted, 2 correct: P = 2/3, R = 1/2, F1 = 2PR/(P+R) = (2/3)/(7/6) = 4/7.
    gold = [["B-PER", "O", "B-LOC", "I-LOC", "O", "B-ORG", "O", "B-MISC"]]
    pred = [["B-PER", "O", "B-LOC", "O", "O", "B-ORG", "O", "O"]]  # LOC boundary wrong, MISC missed
    s = entity_scores(gold, pred)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(1 / 2)
    assert s["f1"] == pytest.approx(4 / 7)


def test_entity_scores_boundaries_must_match_exactly_and_empty_cases():
    s = entity_scores([["B-PER", "I-PER"]], [["B-PER", "O"]])
    assert (s["precision"], s["recall"], s["f1"]) == (0.0, 0.0, 0.0)
    s = entity_scores([["B-PER", "O"]], [["O", "O"]])  # no predictions: P = 0 by convention
    assert (s["precision"], s["recall"], s["f1"], s["support"]) == (0.0, 0.0, 0.0, 1)
    s = entity_scores([["O"]], [["O"]])
    assert (s["precision"], s["recall"], s["f1"], s["support"]) == (0.0, 0.0, 0.0, 0)


def test_entity_scores_same_in_bio_and_bioes():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG"]]
    bio = entity_scores(gold, pred, "BIO")
    bioes = entity_scores([bio_to_bioes(t) for t in gold], [bio_to_bioes(t) for t in pred], "BIOES")
    assert bio == bioes
    assert bio["f1"] == pytest.approx(2 / 3)


def test_entity_scores_checks_its_inputs():
    with pytest.raises(ValueError, match="one sequence"):
        entity_scores(["B-PER", "O"], ["B-PER", "O"])
    with pytest.raises(ValueError, match="sentence 0"):
        entity_scores([["B-PER", "O"]], [["B-PER"]])


# ----------------------------------------------------------------------------- labels and pieces

def test_label_list_and_maps():
    labels = label_list({"PER", "LOC"}, "BIO")
    assert labels == ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
    assert label_list(["PER"], "BIOES") == ["O", "B-PER", "E-PER", "I-PER", "S-PER"]
    label2id, id2label = label_maps(labels)
    assert label2id["O"] == 0 and label2id["I-PER"] == 4
    assert all(id2label[label2id[t]] == t for t in labels)
    sentences = [Sentence(["a", "b"], ["I-PER", "O"]), Sentence(["c"], ["B-MISC"])]
    assert entity_types(sentences) == {"PER", "MISC"}


def test_align_labels_first_piece_only():
    # [CLS] Johan ##son lives in Gothen ##burg ##s [SEP]: words 0..3, word 3 in three pieces
    word_ids = [None, 0, 0, 1, 2, 3, 3, 3, None]
    word_labels = [2, 0, 0, 1]
    assert align_labels_to_pieces(word_ids, word_labels) == [
        IGNORE_INDEX, 2, IGNORE_INDEX, 0, 0, 1, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]
    assert align_labels_to_pieces(word_ids, word_labels, label_all_pieces=True) == [
        IGNORE_INDEX, 2, 2, 0, 0, 1, 1, 1, IGNORE_INDEX]


def test_pieces_to_word_predictions_takes_first_piece():
    word_ids = [None, 0, 0, 1, 2, 3, 3, 3, None]
    piece_predictions = [9, 2, 7, 0, 0, 1, 8, 8, 9]
    assert pieces_to_word_predictions(word_ids, piece_predictions) == [2, 0, 0, 1]
    # a sentence of 6 words truncated after word 3: the cut words are filled with 'O' (id 0)
    assert pieces_to_word_predictions(word_ids, piece_predictions, n_words=6) == [2, 0, 0, 1, 0, 0]
    # round trip: labels placed on first pieces come back as the word labels
    labels = align_labels_to_pieces(word_ids, [3, 1, 4, 1])
    assert pieces_to_word_predictions(word_ids, labels) == [3, 1, 4, 1]


# ----------------------------------------------------------------------------- real CoNLL-2003

needs_conll = pytest.mark.skipif(not (CONLL / "eng.train").is_file(),
                                 reason=f"CoNLL-2003 not found at {CONLL} (not redistributable; "
                                        "set ANNOTATED_BERT_SHARED_DATA)")


@needs_conll
def test_real_eng_train_counts_and_scheme_round_trip():
    sentences = read_conll(CONLL / "eng.train")
    # the data README's counts
    assert len(sentences) == 14_041
    assert sum(len(s.words) for s in sentences) == 203_621
    n_entities = {"PER": 0, "ORG": 0, "LOC": 0, "MISC": 0}
    n_not_canonical = 0
    for s in sentences:
        entities = extract_entities(s.tags, "IOB1")
        bio = iob1_to_bio(s.tags)
        bioes = bio_to_bioes(bio)
        assert extract_entities(bio, "BIO") == entities
        assert extract_entities(bioes, "BIOES") == entities
        assert bioes_to_bio(bioes) == bio
        n_not_canonical += entities_to_tags(entities, len(s.tags), "IOB1") != s.tags
        for etype, _, _ in entities:
            n_entities[etype] += 1
    # Two sentences put B-MISC after O or after another type ("... Pinsent Atlanta/B-MISC Games"),
    # which strict IOB1 would write as I-MISC; conlleval still reads it as an entity start.
    assert n_not_canonical == 2
    # Tjong Kim Sang & De Meulder (2003), Table 2, English training data
    assert n_entities == {"LOC": 7140, "MISC": 3438, "ORG": 6321, "PER": 6600}


@needs_conll
def test_real_eng_testa_gold_against_gold():
    sentences = read_conll(CONLL / "eng.testa")
    assert (len(sentences), sum(len(s.words) for s in sentences)) == (3250, 51_362)
    gold = [iob1_to_bio(s.tags) for s in sentences]
    s = entity_scores(gold, gold)
    assert (s["precision"], s["recall"], s["f1"]) == (1.0, 1.0, 1.0)
    # Table 2, English development data
    assert {t: v["support"] for t, v in s["per_type"].items()} == {
        "LOC": 1837, "MISC": 922, "ORG": 1341, "PER": 1842}
