"""Data in: any table of texts (CSV or TSV, recognised by content) and the IMDb reviews (Maas et al. 2011).

- `read_table`: one reader for every CSV/TSV the library takes (plain or gzipped, UTF-8 with or
  without a byte-order mark, comma or tab separated, MRPC's GLUE layout renamed), every cell a
  `str`; files that are something else (CoNLL-2003, SQuAD JSON, binary) are named as such;
- `read_reviews`: pretraining reviews from tables, the Stanford `aclImdb` folder or
  `aclImdb_v1.tar.gz`, concatenated and sliced to rows [ds_from, ds_to) (the walkthrough's
  `ds_from` / `ds_to`); `read_classification`: (texts, pair texts, labels) for fine-tuning;
- `DEFAULT_DATA`: the embedded sample, the first 1,000 reviews of the official train split
  (`data/imdb_sample.csv.gz`, shipped inside the package); `resolve_data` falls back to it;
- `download_imdb`: the full official archive, MD5-checked, written atomically
  (`python -m annotated_bert.data download`);
- `DataError`: bad input, with a message that names the problem and the fix.

What is built from the reviews for pretraining lives in `annotated_bert.pretraining`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.resources
import io
import os
import re
import sys
import tarfile
import urllib.request
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"  # the official archive (as torchtext checks it)
IMDB_ARCHIVE = os.path.join("data", "aclImdb_v1.tar.gz")  # where `download` writes it
SAMPLE = "imdb_sample.csv.gz"  # data/ in the repository, annotated_bert/sample_data/ once installed


class DataError(ValueError):
    """Bad input data; the message names the problem and the fix."""


def _embedded_sample() -> str:
    """The sample's path: inside the installed package (pyproject.toml ships data/ as
    annotated_bert/sample_data), else in the repository's data/ (a clone, an editable install)."""
    packaged = importlib.resources.files("annotated_bert") / "sample_data" / SAMPLE
    if packaged.is_file():
        return str(packaged)
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", SAMPLE)


DEFAULT_DATA = _embedded_sample()

# ----------------------------------------------------------------------------- recognising a file

SNIFF_BYTES = 1 << 16  # what the format is guessed from: the first 64 KiB (decompressed)
IOB_TAG = re.compile(r"O|[BIES]-\S+")
SQUAD_START = re.compile(r'\s*\{\s*(?:"version"\s*:\s*"[^"]*"\s*,\s*)?"data"\s*:\s*\[')

NOT_A_TABLE = {  # what read_table says about a file that is something else
    "empty": "is empty: a table needs a header line and rows",
    "binary": "is a binary file (it has NUL bytes), not a text table; save it as a UTF-8 CSV or TSV",
    "tar": "is a tar archive, not a table; unpack it and pass the CSV/TSV inside",
    "squad": "is SQuAD JSON; use --task qa",
    "json": "is JSON, not a CSV/TSV table; save it as a CSV with a header line",
    "conll": "looks like CoNLL-2003 NER data (word POS chunk tag columns); fine-tune on it with --task ner",
}


def _is_gzip(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"  # gzip's magic bytes


def _read_bytes(path: str | os.PathLike, limit: int | None = None) -> tuple[bytes, bool]:
    """(the file's bytes, or its first `limit`; whether it was gzipped), gunzipped when it starts with
    gzip's magic bytes, whatever its name."""
    gzipped = _is_gzip(path)
    try:
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
            return f.read(-1 if limit is None else limit), gzipped
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path}: it starts like a gzip file but does not decompress ({e})") from None


def sniff_format(data: bytes) -> str:
    """What a file's (decompressed) bytes look like, from their first SNIFF_BYTES: 'empty',
    'binary' (NUL bytes), 'tar', 'squad' (a JSON object with a "data" list), 'json', 'conll'
    (`-DOCSTART-`, or lines of `word POS chunk TAG` ending in an IOB tag), 'table' (a first line
    with tabs or commas, and no CoNLL line) or 'text'."""
    head = data[:SNIFF_BYTES]
    if head[257:262] == b"ustar":  # the POSIX tar header's magic
        return "tar"
    if b"\0" in head:  # also UTF-16 text, which is no UTF-8 table either
        return "binary"
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if not text.strip():
        return "empty"
    if text.lstrip()[0] in "{[":
        return "squad" if SQUAD_START.match(text) else "json"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(data) > SNIFF_BYTES:
        lines = lines[:-1]  # cut mid-line
    if not lines:
        return "text"
    conll = [len(f) == 4 and bool(IOB_TAG.fullmatch(f[3])) for f in (line.split() for line in lines[:20])]
    if lines[0].startswith("-DOCSTART-") or all(conll):
        return "conll"
    return "table" if ("\t" in lines[0] or "," in lines[0]) and not conll[0] else "text"


def sniff_file(path: str | os.PathLike) -> tuple[str, bool]:
    """(`sniff_format` of a file's first bytes, whether it is gzipped)."""
    data, gzipped = _read_bytes(path, SNIFF_BYTES + 1)
    return sniff_format(data), gzipped


# ----------------------------------------------------------------------------- reading tables

MRPC_COLUMNS = {"Quality": "label", "#1 String": "sentence1", "#2 String": "sentence2"}  # GLUE's names


def read_table(path: str | os.PathLike, log: Callable[[str], None] = print) -> pd.DataFrame:
    """A CSV or TSV as a DataFrame of strings (an empty cell is ""), recognised by its content.

    Plain or gzipped (by the magic bytes, not the name); UTF-8 with or without a byte-order mark,
    invalid bytes replaced by U+FFFD (with a logged count); comma or tab separated, as the header
    line says (TSVs are read unquoted, as GLUE's files need); MRPC's `Quality`, `#1 String`,
    `#2 String` become `label`, `sentence1`, `sentence2`. Logs one line naming the format found.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path} is a folder, not a CSV/TSV file" if os.path.isdir(path) else f"data not found: {path}")
    data, gzipped = _read_bytes(path)
    kind = sniff_format(data)
    if kind in NOT_A_TABLE:
        raise DataError(f"{path} {NOT_A_TABLE[kind]}")
    header = data[:SNIFF_BYTES].decode("utf-8", errors="replace").removeprefix("\ufeff").lstrip("\r\n")
    header = header.partition("\n")[0]
    name = "TSV" if header.count("\t") > header.count(",") else "CSV"
    try:
        df, replaced = _parse(path, name, data, "strict"), False
    except UnicodeDecodeError:
        df, replaced = _parse(path, name, data, "replace"), True
    if len(df) == 0:
        raise DataError(f"{path} has a header but no rows")
    if set(MRPC_COLUMNS) <= set(df.columns):
        df = df.rename(columns=MRPC_COLUMNS)
        name = f"MRPC ({'tab' if name == 'TSV' else 'comma'}-separated, {'/'.join(MRPC_COLUMNS)})"
    log(f"read {path} as {'gzipped ' * gzipped}{name}: {len(df):,} rows")
    if replaced:
        bad = int(df.apply(lambda column: column.str.contains("\ufffd", regex=False)).any(axis=1).sum())
        log(f"{path}: invalid UTF-8 bytes in {bad:,} rows were replaced by U+FFFD")
    return df


def _parse(path: str, name: str, data: bytes, errors: str) -> pd.DataFrame:
    tsv = name == "TSV"  # read unquoted: GLUE's sentences hold stray quote characters
    try:
        return pd.read_csv(io.BytesIO(data), sep="\t" if tsv else ",", dtype=str, keep_default_na=False,
                           quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL,
                           encoding="utf-8-sig", encoding_errors=errors)  # -sig: drop a byte-order mark
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as e:
        raise DataError(f"cannot read {path} as {name}: {str(e).strip().splitlines()[0]}") from None


TEXT_COLUMNS = ("review", "text", "sentence")  # a table's text column: the first of these it has
TEXT_COLUMN_HINT = f"a text column ({', '.join(TEXT_COLUMNS[:-1])} or {TEXT_COLUMNS[-1]})"  # for error messages
LABEL_COLUMNS = ("label", "sentiment")


def pick_column(path: str, columns: Sequence[str], given: str | None, candidates: Sequence[str],
                what: str, flag: str) -> str:
    """The column a reader uses: `given` (the user's --text-column / --label-column), else the
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


def read_classification(path: str | os.PathLike, task: str, text_column: str | None = None,
                        label_column: str | None = None, log: Callable[[str], None] = print,
                        ) -> tuple[list[str], list[str] | None, list[str]]:
    """(texts A, texts B or None, label strings) from a CSV or TSV (`read_table`). The columns are
    found by name (`TEXT_COLUMNS`; label, else sentiment; sentence1 and sentence2 for the pair
    task, which MRPC's file has once read) unless `text_column` / `label_column` name them."""
    path = os.fspath(path)
    df = read_table(path, log)
    columns = list(df.columns)
    if task == "pair":
        text_a, text_b = "sentence1", "sentence2"
        if not {"sentence1", "sentence2"} <= set(columns):
            raise DataError(f"{path}: a pair task needs 'sentence1' and 'sentence2' columns (or MRPC's TSV); "
                            f"found {sorted(columns)}")
    else:
        text_a, text_b = pick_column(path, columns, text_column, TEXT_COLUMNS, "text", "--text-column"), None
    label = pick_column(path, columns, label_column, LABEL_COLUMNS, "label", "--label-column")
    df = df[df[text_a].str.strip() != ""]
    if len(df) == 0:
        raise DataError(f"{path} has no rows with text")
    labels = df[label].str.strip()
    empty = np.flatnonzero(labels == "")
    if len(empty):  # an empty label would otherwise become a class of its own
        raise DataError(f"{path}: {len(empty):,} rows with text have no {label!r} (the first is data row "
                        f"{df.index[empty[0]] + 1}); fill in their labels or drop those rows")
    return (df[text_a].tolist(), df[text_b].tolist() if text_b else None, labels.tolist())


# ----------------------------------------------------------------------------- reading reviews

def read_reviews(paths: str | os.PathLike | Sequence[str | os.PathLike],
                 ds_from: int = 0, ds_to: int | None = None, log: Callable[[str], None] = print,
                 text_column: str | None = None) -> pd.DataFrame:
    """Read reviews from CSV/TSV files (`read_table`), the Stanford `aclImdb` folder or
    `aclImdb_v1.tar.gz`; concatenate them in order and keep rows [ds_from, ds_to).

    A table's text is its `text_column`, by default the first of `TEXT_COLUMNS` it has; the result
    calls it `review`. Empty reviews are dropped (with a printed count); invalid UTF-8 bytes
    become U+FFFD.
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
    if os.path.isdir(path) or path.endswith((".tar.gz", ".tgz")) or sniff_file(path)[0] == "tar":
        return _read_acl_imdb(path, log)
    df = read_table(path, log)
    column = pick_column(path, list(df.columns), text_column, TEXT_COLUMNS, "text", "--text-column")
    if column != "review":
        df = df.drop(columns="review", errors="ignore").rename(columns={column: "review"})
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
            with tarfile.open(path, "r:gz" if _is_gzip(path) else "r:") as tar:
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


# ----------------------------------------------------------------------------- the data to use

def download_imdb(dest: str = IMDB_ARCHIVE, url: str = IMDB_URL) -> str:
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
    """The --data paths, or else the embedded sample (`DEFAULT_DATA`, 1,000 reviews). The full
    dataset is always named: --data data/aclImdb_v1.tar.gz once `download` has fetched it."""
    if paths:
        return list(paths)
    if not os.path.isfile(DEFAULT_DATA):
        raise DataError(f"no --data given and the embedded IMDb sample is missing ({DEFAULT_DATA}): pass "
                        f"--data PATH, or fetch the full IMDb archive with: python -m annotated_bert.data download")
    return [DEFAULT_DATA]


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m annotated_bert.data",
                                description="IMDb data utilities.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help=f"download the official IMDb archive ({IMDB_URL})")
    d.add_argument("--dest", default=IMDB_ARCHIVE, help="where to write it (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        path = download_imdb(args.dest)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"IMDb archive at {path}; read it with --data {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
