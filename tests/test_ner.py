"""Tests for annotated_bert.ner: CoNLL-2003 reading, tag schemes, entity-level scores, piece alignment.

References: hand-worked cases following the conlleval / seqeval (default mode) definitions, and the
CoNLL-2003 paper's own counts (Tjong Kim Sang & De Meulder 2003, Table 2) on the real files.
"""
import gzip
import re

import pytest

from annotated_bert.config import IGNORE_INDEX
from annotated_bert.ner import (Sentence, align_labels_to_pieces, convert_tags, entities_to_tags, entity_scores,
                                entity_types, extract_entities, label_list, pieces_to_word_predictions, read_conll)
from conftest import SHARED_DATA

CONLL = SHARED_DATA / "conll2003"


def iob1_bio(tags):
    return convert_tags(tags, "IOB1", "BIO")


def to_bioes(tags):
    return convert_tags(tags, "BIO", "BIOES")


def to_bio(tags):
    return convert_tags(tags, "BIOES", "BIO")


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


@pytest.mark.parametrize("content, message", [
    ("review,label\ngreat film,pos\n", "looks like a CSV/TSV table (a header line with commas or tabs), "
                                        "not CoNLL-2003 NER data"),
    ("sentence1\tsentence2\tlabel\nA b.\tA b!\t1\n", "looks like a CSV/TSV table"),
    ('{"version": "1.1", "data": [{"title": "T", "paragraphs": []}]}', "is SQuAD JSON, not CoNLL-2003 NER data; "
                                                                       "use --task qa"),
    ('{"words": ["EU"], "tags": ["I-ORG"]}\n', "is JSON, not CoNLL-2003 NER data"),
    (b"\x00\x01\x02 EU NNP I-NP I-ORG", "is a binary file (it has NUL bytes)"),
])
def test_read_conll_names_what_a_file_is_instead(tmp_path, content, message):
    path = tmp_path / "eng.train"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=re.escape(f"{path} {message}")) as e:
        read_conll(path)
    assert "\n" not in str(e.value)


def test_read_conll_reads_gzip_a_bom_and_commas(tmp_path):
    text = "\ufeff-DOCSTART- -X- O O\n\n, , O O\nEU NNP I-NP I-ORG\n\n"   # a sentence may start with ','
    path = tmp_path / "eng.train.txt"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(text)
    assert read_conll(path) == [Sentence([",", "EU"], ["O", "I-ORG"])]


# ----------------------------------------------------------------------------- schemes

def test_iob1_to_bio_to_bioes_hand_worked():
    # Two adjacent PER entities (IOB1 marks the second with B-), then a LOC, then a type change
    # from LOC to ORG with no O between: IOB1 needs no B- there because the type changes.
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "O", "I-MISC"]
    bio = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG", "O", "B-MISC"]
    bioes = ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "B-ORG", "E-ORG", "O", "S-MISC"]
    assert iob1_bio(iob1) == bio
    assert to_bioes(bio) == bioes
    assert to_bio(bioes) == bio
    assert entities_to_tags(extract_entities(bio), len(bio), "IOB1") == iob1
    expected = {("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5), ("ORG", 5, 7), ("MISC", 8, 9)}
    assert extract_entities(iob1, "IOB1") == extract_entities(bio, "BIO") == expected
    assert extract_entities(bioes, "BIOES") == expected


def test_long_entity_in_bioes():
    assert to_bioes(["B-ORG", "I-ORG", "I-ORG", "I-ORG"]) == ["B-ORG", "I-ORG", "I-ORG", "E-ORG"]


def test_invalid_sequences_convert_the_way_conlleval_reads_them():
    # BIO: an I-X after O or after another type starts an entity (conlleval is lenient).
    assert to_bioes(["O", "I-PER", "I-PER"]) == ["O", "B-PER", "E-PER"]
    assert to_bioes(["B-PER", "I-LOC"]) == ["S-PER", "S-LOC"]
    # IOB1: a B-X after O (strictly invalid) still starts an entity.
    assert iob1_bio(["O", "B-LOC", "I-LOC"]) == ["O", "B-LOC", "I-LOC"]
    # BIOES read as seqeval's default mode: a B-X without E-X still ends where the type stops,
    # an E-X or I-X after O/E/S starts a new entity.
    assert to_bio(["B-PER", "O"]) == ["B-PER", "O"]
    assert to_bio(["B-PER", "I-PER", "O"]) == ["B-PER", "I-PER", "O"]
    assert to_bio(["I-PER", "E-PER"]) == ["B-PER", "I-PER"]
    assert to_bio(["E-PER", "E-PER"]) == ["B-PER", "B-PER"]
    assert to_bio(["S-PER", "I-PER", "E-PER"]) == ["B-PER", "B-PER", "I-PER"]


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
    bioes = entity_scores([to_bioes(t) for t in gold], [to_bioes(t) for t in pred], "BIOES")
    assert bio == bioes
    assert bio["f1"] == pytest.approx(2 / 3)


def test_entity_scores_checks_its_inputs():
    with pytest.raises(ValueError, match="one sequence"):
        entity_scores(["B-PER", "O"], ["B-PER", "O"])
    with pytest.raises(ValueError, match="sentence 0"):
        entity_scores([["B-PER", "O"]], [["B-PER"]])


# ----------------------------------------------------------------------------- labels and pieces

def test_label_list():
    labels = label_list({"PER", "LOC"}, "BIO")
    assert labels == ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
    assert label_list(["PER"], "BIOES") == ["O", "B-PER", "E-PER", "I-PER", "S-PER"]
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
                                 reason="CoNLL-2003 (conll2003/eng.train) is not here (it is not redistributable); "
                                        "set ANNOTATED_BERT_SHARED_DATA to the folder that holds it")


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
        bio = iob1_bio(s.tags)
        bioes = to_bioes(bio)
        assert extract_entities(bio, "BIO") == entities
        assert extract_entities(bioes, "BIOES") == entities
        assert to_bio(bioes) == bio
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
    gold = [iob1_bio(s.tags) for s in sentences]
    s = entity_scores(gold, gold)
    assert (s["precision"], s["recall"], s["f1"]) == (1.0, 1.0, 1.0)
    # Table 2, English development data
    assert {t: v["support"] for t, v in s["per_type"].items()} == {
        "LOC": 1837, "MISC": 922, "ORG": 1341, "PER": 1842}
