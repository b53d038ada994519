"""annotated_bert.files: atomic writes and the JSON-lines log."""

import json
import os

import pytest

from annotated_bert.files import append_jsonl, atomic_write, atomic_write_json, drop_records_after, read_jsonl


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "state.json"
    atomic_write_json(path, {"step": 1})

    def fails_half_way(f):
        f.write(b'{"step": 2, "trunc')
        raise KeyboardInterrupt  # as Ctrl-C in the middle of a save

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fails_half_way)
    assert json.loads(path.read_text()) == {"step": 1}
    assert os.listdir(tmp_path) == ["state.json"]
    atomic_write(tmp_path / "new" / "folder" / "x.bin", lambda f: f.write(b"ok"))   # folders are made
    assert (tmp_path / "new" / "folder" / "x.bin").read_bytes() == b"ok"


def test_jsonl_skips_a_line_cut_short_and_drops_records_after_a_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    for step in (1, 2, 3):
        append_jsonl(path, {"step": step, "split": "train"})
    with open(path, "a") as f:
        f.write('{"step": 4, "spl')            # a crash in the middle of a line
    assert [r["step"] for r in read_jsonl(path)] == [1, 2, 3]
    drop_records_after(path, 2)                # a run resumed from its step-2 checkpoint
    assert [r["step"] for r in read_jsonl(path)] == [1, 2]
    drop_records_after(tmp_path / "absent.jsonl", 5)   # nothing to drop, nothing written
    assert not (tmp_path / "absent.jsonl").exists()
