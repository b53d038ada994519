"""Reviews in: the IMDb dataset (Maas et al. 2011) and any CSV of texts, read into a DataFrame.

- `read_reviews`: CSV files (plain or .gz), the Stanford `aclImdb` folder or `aclImdb_v1.tar.gz`,
  concatenated and sliced to rows [ds_from, ds_to) (the walkthrough's `ds_from` / `ds_to`);
- `download_imdb`: the official archive, MD5-checked, written atomically
  (`python -m annotated_bert.data download`);
- `DataError`: bad input, with a message that names the problem and the fix.

What is built from the reviews for pretraining lives in `annotated_bert.pretraining`.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile
import urllib.request
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"  # the official archive (as torchtext checks it)
DEFAULT_DATA = os.path.join("data", "aclImdb_v1.tar.gz")


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
