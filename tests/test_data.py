"""annotated_bert.data: reading reviews and tables (recognised by content), the embedded sample
and the download."""

import gzip
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from annotated_bert import data
from annotated_bert.data import (DEFAULT_DATA, DataError, download_imdb, read_classification, read_reviews,
                                 read_table, resolve_data)
from conftest import SHARED_DATA


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="data not found.*--data"):
        read_reviews(tmp_path / "nope.csv")


def test_the_text_column_is_review_text_or_sentence_or_the_one_named(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text('id,text,label\n7,"A b. C d.",1\n8,"E f. G h.",0\n')
    df = read_reviews(p)
    assert df["review"].tolist() == ["A b. C d.", "E f. G h."] and df["id"].tolist() == ["7", "8"]  # all str
    both = tmp_path / "both.csv"
    both.write_text('sentence,review\n"not this.","This one."\n')
    assert read_reviews(both)["review"].tolist() == ["This one."]           # review comes first
    assert read_reviews(both, text_column="sentence")["review"].tolist() == ["not this."]
    numeric = tmp_path / "numeric.csv"
    numeric.write_text("body,label\n12,1\n3.50,0\n")
    assert read_reviews(numeric, text_column="body")["review"].tolist() == ["12", "3.50"]  # read as text


def test_csv_without_a_text_column(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("body,label\nhello,1\n")
    with pytest.raises(DataError, match="no text column \\(review, text, sentence; its columns: body, label\\).*--text-column"):
        read_reviews(p)
    with pytest.raises(DataError, match="no column 'comment' \\(its columns: body, label\\); pass --text-column"):
        read_reviews(p, text_column="comment")


@pytest.mark.parametrize("content, match", [("", "is empty"), ("review,sentiment\n", "no rows")])
def test_empty_csv(tmp_path, content, match):
    p = tmp_path / "x.csv"
    p.write_text(content)
    with pytest.raises(DataError, match=match):
        read_reviews(p)


def test_empty_and_nan_reviews_are_skipped_with_a_count(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text('review\n"A b. C d."\n""\n"   "\n"E f. G h."\n')
    messages = []
    df = read_reviews(p, log=messages.append)
    assert len(df) == 2 and any("skipped 2 empty" in m for m in messages)


def test_non_utf8_bytes_are_replaced(tmp_path):
    p = tmp_path / "x.csv.gz"
    with gzip.open(p, "wb") as f:
        f.write(b"review\n\"Caf\xe9 was good. Yes.\"\n\"Fine. Ok.\"\n")
    messages = []
    df = read_reviews(p, log=messages.append)
    assert df["review"][0].startswith("Caf\ufffd") and any("invalid UTF-8" in m for m in messages)


def test_bad_slices(tiny_csv):
    with pytest.raises(DataError, match="must be smaller than ds_to"):
        read_reviews(tiny_csv, 10, 10)
    with pytest.raises(DataError, match="past the end: the data has only 60 reviews"):
        read_reviews(tiny_csv, 0, 1000)
    with pytest.raises(DataError, match="ds_from must be >= 0"):
        read_reviews(tiny_csv, -1, 10)


def test_several_csvs_concatenate(tiny_csv):
    df = read_reviews([tiny_csv, tiny_csv], 50, 70)
    assert len(df) == 20


def _acl_files():
    return {"aclImdb/train/pos/0_9.txt": "Great. Loved it.", "aclImdb/train/neg/1_2.txt": "Bad. Hated it.",
            "aclImdb/train/unsup/2_0.txt": "Saw it. Meh.", "aclImdb/test/pos/3_10.txt": "Test review. Kept out."}


def test_reads_the_official_folder_and_archive(tmp_path):
    for name, text in _acl_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    from_folder = read_reviews(tmp_path / "aclImdb", log=lambda m: None)
    archive = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in _acl_files().items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    from_archive = read_reviews(archive, log=lambda m: None)
    assert sorted(from_folder["review"]) == sorted(from_archive["review"]) == ["Bad. Hated it.", "Great. Loved it.",
                                                                             "Saw it. Meh."]
    assert set(from_archive["sentiment"].dropna()) == {"positive", "negative"}


def test_corrupt_archive(tmp_path):
    p = tmp_path / "aclImdb_v1.tar.gz"
    p.write_bytes(b"not a tarball")
    with pytest.raises(DataError, match="cannot read.*download"):
        read_reviews(p)


def test_the_default_data_is_the_embedded_sample(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "aclImdb_v1.tar.gz").write_bytes(b"the full data is only ever asked for by name")
    assert resolve_data(None) == [DEFAULT_DATA] and Path(DEFAULT_DATA).name == "imdb_sample.csv.gz"
    assert resolve_data(["x.csv"]) == ["x.csv"]
    df = read_reviews(resolve_data(None), log=lambda m: None)
    assert len(df) == 1000 and list(df.columns) == ["review", "sentiment"]
    assert df["sentiment"].value_counts().to_dict() == {"positive": 523, "negative": 477}


def test_the_sample_is_the_first_1000_rows_of_the_train_split(imdb_path):
    sample = read_table(DEFAULT_DATA, log=lambda m: None)
    full = pd.read_csv(imdb_path, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(sample, full.iloc[:1000])
    assert sample["review"][0] == full["review"][0]


def test_a_missing_sample_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEFAULT_DATA", str(tmp_path / "imdb_sample.csv.gz"))
    with pytest.raises(DataError, match="pass --data PATH, or .*: python -m annotated_bert.data download") as e:
        resolve_data(None)
    assert "\n" not in str(e.value)


def test_the_sample_ships_inside_the_wheel(tmp_path):
    """pyproject.toml maps data/ to annotated_bert/sample_data: a wheel holds the sample once, there."""
    pytest.importorskip("setuptools")
    repo = Path(__file__).resolve().parents[1]
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(repo / name, tmp_path / name)
    shutil.copytree(repo / "annotated_bert", tmp_path / "annotated_bert", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(repo / "data", tmp_path / "data", ignore=shutil.ignore_patterns("aclImdb*"))
    build = "from setuptools import build_meta; print(build_meta.build_wheel('dist'))"
    run = subprocess.run([sys.executable, "-c", build], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    names = zipfile.ZipFile(tmp_path / "dist" / run.stdout.split()[-1]).namelist()
    assert [n for n in names if "imdb_sample" in n] == ["annotated_bert/sample_data/imdb_sample.csv.gz"]
    assert "annotated_bert/data.py" in names and not any(n.startswith("data/") for n in names)


def test_download_checks_the_md5_and_writes_to_data(tmp_path, monkeypatch):
    payload = b"pretend this is aclImdb_v1.tar.gz"

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(payload))}

    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout: Response(payload))
    monkeypatch.chdir(tmp_path)
    dest = tmp_path / "data" / "aclImdb_v1.tar.gz"
    with pytest.raises(DataError, match="MD5"):
        download_imdb()
    assert not dest.exists() and not Path(f"{dest}.part").exists()
    monkeypatch.setattr(data, "IMDB_MD5", hashlib.md5(payload).hexdigest())
    assert data.main(["download"]) == 0
    assert dest.read_bytes() == payload


# ------------------------------------------------------------------------------ read_table

MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
BOM = "\ufeff"


def quiet(messages=None):
    return (lambda m: None) if messages is None else messages.append


def test_the_official_mrpc_file_reads_by_content(tmp_path):
    tsv = SHARED_DATA / "mrpc" / "train.tsv"
    if not tsv.exists():
        pytest.skip("MRPC (mrpc/train.tsv) is not here; set ANNOTATED_BERT_SHARED_DATA to the folder that holds it")
    text = tsv.read_text(encoding="utf-8").removeprefix(BOM)
    path = tmp_path / "msr_paraphrase_train.txt"                  # the official file's name and BOM
    path.write_text(BOM + text, encoding="utf-8")
    messages = []
    df = read_table(path, log=messages.append)
    assert messages == [f"read {path} as MRPC (tab-separated, Quality/#1 String/#2 String): 3,668 rows"]
    assert list(df.columns) == ["label", "#1 ID", "#2 ID", "sentence1", "sentence2"]
    assert df.values.tolist() == [line.split("\t") for line in text.splitlines()[1:]]   # quotes kept as written
    assert set(df["label"]) == {"0", "1"}
    a, b, labels = read_classification(path, "pair", log=quiet())
    assert len(a) == len(b) == len(labels) == 3668


def test_a_synthetic_mrpc_file_with_a_bom_and_stray_quotes(tmp_path):
    rows = [MRPC_HEADER, '1\t1\t2\tHe said "no.\tHe said no.', "0\t3\t4\tA, b and c.\tD; e."]
    path = tmp_path / "msr_paraphrase_train.txt"
    path.write_bytes((BOM + "\n".join(rows) + "\n").encode())
    messages = []
    a, b, labels = read_classification(path, "pair", log=messages.append)
    assert a == ['He said "no.', "A, b and c."] and b == ["He said no.", "D; e."] and labels == ["1", "0"]
    assert "as MRPC (tab-separated" in messages[0]


def test_glue_tsv_and_gzipped_csv_whatever_their_names(tmp_path):
    glue = tmp_path / "dev.txt"
    glue.write_text("sentence1\tsentence2\tlabel\nA b.\tA b!\t1\n")
    assert read_table(glue, log=quiet()).to_dict("list") == {"sentence1": ["A b."], "sentence2": ["A b!"],
                                                              "label": ["1"]}
    packed = tmp_path / "reviews.txt"
    with gzip.open(packed, "wt") as f:
        f.write('id,review,label\n007,"Good, really.",pos\n008,,neg\n')
    messages = []
    df = read_table(packed, log=messages.append)
    assert messages == [f"read {packed} as gzipped CSV: 2 rows"]
    assert df.to_dict("list") == {"id": ["007", "008"], "review": ["Good, really.", ""], "label": ["pos", "neg"]}


CONLL_SNIPPET = "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n"
SQUAD_SNIPPET = '{"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": []}]}], "version": "1.1"}'


@pytest.mark.parametrize("content, message", [
    (CONLL_SNIPPET, "looks like CoNLL-2003 NER data (word POS chunk tag columns); fine-tune on it with --task ner"),
    (CONLL_SNIPPET.split("\n\n")[1], "looks like CoNLL-2003 NER data"),                  # no -DOCSTART-
    (SQUAD_SNIPPET, "is SQuAD JSON; use --task qa"),
    ('{"version": "v2.0", "data": []}', "is SQuAD JSON"),
    ('[{"review": "x"}]', "is JSON, not a CSV/TSV table"),
    ("", "is empty"),
    ("\n  \n", "is empty"),
    ("review,label\n", "has a header but no rows"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "is a binary file (it has NUL bytes)"),
    ("review,label\n" + "a,b\n" * 3 + "c,d,e\n",
     "as CSV: Error tokenizing data. C error: Expected 2 fields in line 5, saw 3"),
])
def test_files_that_are_no_table_are_named(tmp_path, content, message):
    path = tmp_path / "train.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=re.escape(f"{path} ") + ".*" + re.escape(message)) as e:
        read_table(path, log=quiet())
    assert "\n" not in str(e.value)


def test_a_tar_archive_is_read_as_aclimdb_by_content(tmp_path):
    archive = tmp_path / "imdb.bin"                                  # no .tar.gz in the name
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in _acl_files().items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    assert len(read_reviews(archive, log=quiet())) == 3
    with pytest.raises(DataError, match="is a tar archive, not a table"):
        read_table(archive, log=quiet())


def test_a_broken_gzip_file_is_named(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes(gzip.compress(b"review\nfine. good.\n")[:-12])
    with pytest.raises(DataError, match="starts like a gzip file but does not decompress"):
        read_table(path, log=quiet())


def test_read_classification_columns_labels_and_errors(tmp_path):
    path = tmp_path / "named.csv"
    path.write_text("verdict,comment,review\npositive ,great film,x\nnegative,dull film,y\n")
    a, b, labels = read_classification(path, "sentiment", "comment", "verdict", log=quiet())
    assert a == ["great film", "dull film"] and b is None and labels == ["positive", "negative"]
    with pytest.raises(DataError, match="no label column \\(label, sentiment;.*pass --label-column NAME"):
        read_classification(path, "sentiment", log=quiet())
    with pytest.raises(DataError, match="a pair task needs 'sentence1' and 'sentence2' columns \\(or MRPC's TSV\\)"):
        read_classification(path, "pair", log=quiet())
    path.write_text("review,label\ngood,a\nbad,b\nmeh,\nok, \n,c\n")
    with pytest.raises(DataError, match="2 rows with text have no 'label' \\(the first is data row 3\\)"):
        read_classification(path, "sentiment", log=quiet())
    with pytest.raises(DataError, match="data not found"):
        read_classification(tmp_path / "nope.csv", "sentiment")


def test_labels_are_stripped(tmp_path):
    path = tmp_path / "spaces.csv"
    path.write_text("review,label\ngood,pos\nbad, neg\nfine,pos \n")
    assert read_classification(str(path), "sentiment")[2] == ["pos", "neg", "pos"]
