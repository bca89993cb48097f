"""The one checkpoint mechanism (llmlex._checkpoint) and the document layer under it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmlex._checkpoint import CheckpointFile, options_mismatch
from llmlex._jsonio import SCHEMA, data_fingerprint, decode_float, encode_float
from llmlex.exceptions import CheckpointError, PersistError


def test_fingerprint_tells_data_apart_and_is_stable():
    x = np.linspace(0, 1, 10)
    assert data_fingerprint(x, x**2) == data_fingerprint(x.copy(), x**2)
    assert data_fingerprint(x, x**2) != data_fingerprint(x, x**2 + 1e-15)
    assert data_fingerprint(x) != data_fingerprint(x.reshape(2, 5))  # shape counts


def test_options_mismatch_names_each_difference():
    assert options_mismatch({"a": 1}, {"a": 1}) is None
    why = options_mismatch({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4})
    assert why == "different options: b was 2, now 3; c was None, now 4"
    close = options_mismatch({"t": 0.1}, {"t": 0.1 + 1e-12}, same=lambda a, b: abs(a - b) < 1e-9)
    assert close is None


def test_write_then_read_round_trip_with_fingerprint(tmp_path):
    f = CheckpointFile(tmp_path / "c.json", kind="k", what="run", fingerprint={"data": "abc"})
    assert not f.exists()
    f.write({"state": [1, 2], "value": encode_float(float("inf"))})
    doc = f.read()
    assert doc["kind"] == "k" and doc["schema"] == SCHEMA and doc["data"] == "abc"
    assert decode_float(doc["value"]) == float("inf")
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left no temporary file


def test_mismatch_and_damage_raise_checkpoint_errors_and_leave_the_file(tmp_path):
    path = tmp_path / "c.json"
    f = CheckpointFile(path, kind="k", what="KAN regression", fingerprint={})
    f.write({"n": 1})
    with pytest.raises(CheckpointError, match=r"another KAN regression \(why\).*resume=False"):
        f.check("why")
    f.check(None)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"cannot resume from.*resume=False") as info:
        f.read()
    assert isinstance(info.value, PersistError)
    assert path.read_text(encoding="utf-8") == "{not json"
    path.write_text(json.dumps({"kind": "other", "schema": 1}), encoding="utf-8")
    with pytest.raises(CheckpointError, match="expected a document of kind 'k'"):
        f.read()


@pytest.mark.parametrize(
    ("raised", "match"),
    [
        (KeyError("stats"), r"a field is missing \('stats'\)"),
        (TypeError("'int' object is not iterable"), "malformed.*TypeError"),
        (AttributeError("no get"), "malformed.*AttributeError"),
        (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
        (PersistError("result index 9 out of range"), "result index 9 out of range"),
    ],
)
def test_any_failure_to_decode_is_a_damaged_checkpoint(tmp_path, raised, match):
    f = CheckpointFile(tmp_path / "c.json", kind="k", what="run", fingerprint={})
    pattern = rf"cannot resume from.*{match}.*resume=False"
    with pytest.raises(CheckpointError, match=pattern), f.decoding():
        raise raised


def test_decoding_lets_other_errors_through(tmp_path):
    f = CheckpointFile(tmp_path / "c.json", kind="k", what="run", fingerprint={})
    with pytest.raises(CheckpointError, match="belongs to another run"), f.decoding():
        f.check("different data")  # another run's file: said as such, not as damage
    with pytest.raises(RuntimeError), f.decoding():
        raise RuntimeError("a bug, not a damaged file")


def test_options_mismatch_shows_the_start_of_a_huge_value():
    why = options_mismatch({"hints": ["x" * 10_000]}, {"hints": []})
    assert why is not None and len(why) < 400 and "characters)" in why
