"""Named-entity recognition: CoNLL-2003 data, tag schemes, word-piece alignment, entity-level F1.

The model-independent half of fine-tuning BERT for NER (BERT paper, Devlin et al. 2019, §5.3:
"we use the representation of the first sub-token as the input to the token-level classifier
over the NER label set"). It follows:

- Tjong Kim Sang & De Meulder (2003), the CoNLL-2003 shared task: four columns
  `word POS chunk NER`, `-DOCSTART-` document markers, IOB1 tags for PER, ORG, LOC, MISC.
- `conlleval`, the shared task's Perl scorer, and seqeval's default mode (its Python port, which
  adds the E- and S- tags): how a tag sequence is read into entities, and micro-averaged
  entity-level precision, recall and F1 (an entity counts only if type, start and end all match).

Every tag sequence here *means* its set of entities as conlleval reads it, so converting between
schemes is "read the entities, write them out in the other scheme". Invalid sequences therefore
convert the way the scorer would read them: an `I-X` after `O` or after another type starts a new
entity, a `B-X` not followed by `E-X` in BIOES still ends an entity, and so on (see
`extract_entities`). Entities are `(type, start, end)` with `end` exclusive: `words[start:end]`.
"""
from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from annotated_bert.config import IGNORE_INDEX
from annotated_bert.data import sniff_file

# Allowed prefixes per scheme. IOB1 (CoNLL-2003's own tags): I-X everywhere, B-X only to start an
# entity that directly follows one of the same type. BIO (IOB2): every entity starts with B-X.
# BIOES: B-egin, I-nside, E-nd of multi-word entities, S-ingle-word entities.
SCHEMES: dict[str, tuple[str, ...]] = {
    "IOB1": ("B", "I"),
    "BIO": ("B", "I"),
    "BIOES": ("B", "I", "E", "S"),
}

Entity = tuple[str, int, int]  # (type, start, end), end exclusive

CONLL_HINT = (
    "CoNLL-2003 is not shipped with this project (Reuters text, research use only): the annotations "
    "and build scripts are at https://www.clips.uantwerpen.be/conll2003/ner/ (the text needs the "
    "Reuters RCV1 corpus from NIST); the result is eng.train, eng.testa and eng.testb."
)

NOT_CONLL = {  # what read_conll says about a file that is something else (see data.sniff_format)
    "table": "looks like a CSV/TSV table (a header line with commas or tabs), not CoNLL-2003 NER data "
             "(`word POS chunk NER` per line); a table of texts and labels is for --task sentiment or pair",
    "squad": "is SQuAD JSON, not CoNLL-2003 NER data; use --task qa",
    "json": "is JSON, not CoNLL-2003 NER data (`word POS chunk NER` per line, blank lines between sentences)",
    "binary": "is a binary file (it has NUL bytes), not CoNLL-2003 text; save it as UTF-8 text",
    "tar": "is a tar archive, not CoNLL-2003 text; unpack it and pass eng.train (or eng.testa)",
}


@dataclass
class Sentence:
    words: list[str]
    tags: list[str]  # one tag per word, in the file's scheme (IOB1 for the original CoNLL-2003)


def read_conll(path: str | Path) -> list[Sentence]:
    """Read a CoNLL-2003 file (`word POS chunk NER` per line, blank lines between sentences).

    `-DOCSTART-` lines are document markers, not sentences, and are skipped. Tags are returned as
    written (IOB1 in the original release); convert them with `convert_tags(tags, "IOB1", "BIO")` (or "BIOES").
    The file may be gzipped; one that is a table, JSON or binary is named as such (a ValueError).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CoNLL-2003 file not found: {path}. {CONLL_HINT}")
    kind, gzipped = sniff_file(path)
    if kind in NOT_CONLL:
        raise ValueError(f"{path} {NOT_CONLL[kind]}")
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    with (gzip.open(path, "rt", encoding="utf-8-sig") if gzipped else path.open(encoding="utf-8-sig")) as f:
        for lineno, line in enumerate(f, start=1):
            fields = line.split()
            if not fields or fields[0] == "-DOCSTART-":
                if words:  # a blank line (or a document marker) closes the current sentence
                    sentences.append(Sentence(words, tags))
                    words, tags = [], []
                continue
            if len(fields) != 4:
                raise ValueError(f"{path}:{lineno}: expected 4 columns 'word POS chunk NER', "
                                 f"got {len(fields)}: {line.rstrip()!r}")
            prefix, _, etype = fields[3].partition("-")
            if fields[3] != "O" and (prefix not in SCHEMES["BIOES"] or not etype):
                raise ValueError(f"{path}:{lineno}: NER tag {fields[3]!r} is neither 'O' nor "
                                 f"B/I/E/S-TYPE: {line.rstrip()!r}")
            words.append(fields[0])
            tags.append(fields[3])
    if words:  # the file may not end with a blank line
        sentences.append(Sentence(words, tags))
    return sentences


# ----------------------------------------------------------------------------- tags and entities

def _split_tag(tag: str, scheme: str) -> tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', ''). Rejects prefixes the scheme does not use."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {sorted(SCHEMES)}")
    if tag == "O":
        return "O", ""
    prefix, sep, etype = tag.partition("-")
    if not sep or not etype or prefix not in SCHEMES[scheme]:
        raise ValueError(f"invalid {scheme} tag {tag!r} (expected 'O' or one of "
                         f"{'/'.join(SCHEMES[scheme])} + '-TYPE')")
    return prefix, etype


def extract_entities(tags: Sequence[str], scheme: str = "BIO") -> set[Entity]:
    """The entities a tag sequence encodes, read exactly as conlleval / seqeval's default mode do.

    One rule set serves IOB1, BIO and BIOES (it is seqeval's `end_of_chunk` / `start_of_chunk`):
    - an entity ends before the current tag if the previous tag was inside one and either the
      previous tag is E/S, the current tag is B/S/O, or the type changes;
    - an entity starts at the current tag if it is not O and either it is B/S, the previous tag is
      O/E/S, or the type changes.
    So `O I-PER` starts a PER entity (lenient, as conlleval) and `B-PER I-LOC` is two entities.
    `scheme` only decides which prefixes are legal. Returns {(type, start, end)}, end exclusive.
    """
    entities: set[Entity] = set()
    prev, prev_type, begin = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):  # a trailing O closes an entity that reaches the end
        cur, cur_type = _split_tag(tag, scheme)
        if prev != "O" and (prev in ("E", "S") or cur in ("B", "S", "O") or cur_type != prev_type):
            entities.add((prev_type, begin, i))
        if cur != "O" and (cur in ("B", "S") or prev in ("O", "E", "S") or cur_type != prev_type):
            begin = i
        prev, prev_type = cur, cur_type
    return entities


def entities_to_tags(entities: Iterable[Entity], length: int, scheme: str = "BIO") -> list[str]:
    """Write non-overlapping entities (type, start, end exclusive) as a tag sequence in `scheme`."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {sorted(SCHEMES)}")
    tags = ["O"] * length
    prev_end, prev_type = -1, ""
    for etype, start, end in sorted(entities, key=lambda e: (e[1], e[2])):
        if not 0 <= start < end <= length or start < prev_end:
            raise ValueError(f"entity {(etype, start, end)} is empty, out of range or overlaps "
                             f"another (sequence length {length})")
        if scheme == "BIOES":
            if end - start == 1:
                tags[start] = f"S-{etype}"
            else:
                tags[start:end] = [f"B-{etype}"] + [f"I-{etype}"] * (end - start - 2) + [f"E-{etype}"]
        else:
            tags[start:end] = [f"I-{etype}"] * (end - start)
            # BIO marks every start; IOB1 only a start that touches a same-type entity.
            if scheme == "BIO" or (start == prev_end and etype == prev_type):
                tags[start] = f"B-{etype}"
        prev_end, prev_type = end, etype
    return tags


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Re-encode a tag sequence from one scheme to another, keeping its (conlleval) entities."""
    return entities_to_tags(extract_entities(tags, source), len(tags), target)








# ----------------------------------------------------------------------------- metrics

def _prf(n_correct: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    # conlleval's conventions: 0 when there is nothing to divide by, F1 = 0 when P + R = 0.
    precision = n_correct / n_pred if n_pred else 0.0
    recall = n_correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def entity_scores(gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]],
                  scheme: str = "BIO") -> dict:
    """Micro-averaged entity-level precision, recall and F1 over sentences, as conlleval.

    A predicted entity is correct only if its type, start and end all equal a gold entity's, so a
    wrong type is one false positive plus one false negative, and so is a wrong boundary.
    Returns fractions in [0, 1]: {precision, recall, f1, support (gold entities),
    per_type: {type: {precision, recall, f1, support}}}.
    """
    if len(gold_seqs) != len(pred_seqs):
        raise ValueError(f"{len(gold_seqs)} gold sentences but {len(pred_seqs)} predicted")
    if gold_seqs and isinstance(gold_seqs[0], str):
        raise ValueError("expected a list of tag sequences (one per sentence), got one sequence")
    gold: set[tuple[int, str, int, int]] = set()  # (sentence, type, start, end)
    pred: set[tuple[int, str, int, int]] = set()
    for s, (g, p) in enumerate(zip(gold_seqs, pred_seqs)):
        if len(g) != len(p):
            raise ValueError(f"sentence {s}: {len(g)} gold tags but {len(p)} predicted")
        gold |= {(s, *e) for e in extract_entities(g, scheme)}
        pred |= {(s, *e) for e in extract_entities(p, scheme)}
    correct = gold & pred

    per_type = {}
    for etype in sorted({e[1] for e in gold | pred}):
        n = [sum(e[1] == etype for e in group) for group in (correct, pred, gold)]
        precision, recall, f1 = _prf(*n)
        per_type[etype] = dict(precision=precision, recall=recall, f1=f1, support=n[2])
    precision, recall, f1 = _prf(len(correct), len(pred), len(gold))
    return dict(precision=precision, recall=recall, f1=f1, support=len(gold), per_type=per_type)


# ----------------------------------------------------------------------------- labels and pieces

def entity_types(sentences: Iterable[Sentence]) -> set[str]:
    """The entity types that occur in a dataset, e.g. {'LOC', 'MISC', 'ORG', 'PER'}."""
    return {tag.partition("-")[2] for s in sentences for tag in s.tags if tag != "O"}


def label_list(types: Iterable[str], scheme: str = "BIO") -> list[str]:
    """Every tag of `scheme` for these types, sorted, with 'O' first so that 'O' has id 0."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {sorted(SCHEMES)}")
    return ["O"] + sorted(f"{prefix}-{t}" for t in set(types) for prefix in SCHEMES[scheme])




def align_labels_to_pieces(word_ids: Sequence[int | None], word_labels: Sequence[int],
                           label_all_pieces: bool = False) -> list[int]:
    """Per-piece label ids from per-word ones (BERT §5.3: classify from each word's first piece).

    `word_ids[k]` is the word that piece k came from, None for [CLS]/[SEP]/[PAD]. The first piece
    of each word gets the word's label; later pieces and specials get IGNORE_INDEX (-100) so the
    loss skips them. `label_all_pieces=True` copies the word's label onto its later pieces too
    (extra training signal; decoding still reads only first pieces).
    """
    labels: list[int] = []
    seen: set[int] = set()
    for w in word_ids:
        if w is None:
            labels.append(IGNORE_INDEX)
        elif w not in seen:
            seen.add(w)
            labels.append(word_labels[w])
        else:
            labels.append(word_labels[w] if label_all_pieces else IGNORE_INDEX)
    return labels


def pieces_to_word_predictions(word_ids: Sequence[int | None], piece_predictions: Sequence[int],
                               n_words: int | None = None, fill: int = 0) -> list[int]:
    """Per-word predictions from per-piece ones: each word takes its first piece's prediction.

    Words with no piece (cut off by truncation, or dropped by the tokenizer) get `fill`, id 0 =
    'O' with `label_list`, so a sentence's prediction always has `n_words` tags.
    """
    if len(word_ids) != len(piece_predictions):
        raise ValueError(f"{len(word_ids)} word ids but {len(piece_predictions)} predictions")
    if n_words is None:
        n_words = max((w for w in word_ids if w is not None), default=-1) + 1
    words: list[int | None] = [None] * n_words
    for w, p in zip(word_ids, piece_predictions):
        if w is not None and w < n_words and words[w] is None:
            words[w] = int(p)
    return [fill if p is None else p for p in words]
