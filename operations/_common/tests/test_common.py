import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _common import UserError, check_counts, get_number, get_string, read_matrix, require, run, sample_ids  # noqa: E402


def test_read_matrix_keeps_names(tmp_path):
    p = tmp_path / "m.tsv"
    p.write_text("gene\t1-a\tS 2\tx.y\nG1\t1\t2\t3\nG2\t0\t5\tNA\n")
    df = read_matrix(p)
    assert list(df.columns) == ["1-a", "S 2", "x.y"]
    assert list(df.index) == ["G1", "G2"]
    assert np.isnan(df.loc["G2", "x.y"])


def test_read_matrix_errors(tmp_path):
    p = tmp_path / "m.tsv"
    p.write_text("gene\tA\tA\nG1\t1\t2\n")
    with pytest.raises(UserError, match="duplicated"):
        read_matrix(p)
    p.write_text("gene\tA\tB\nG1\t1\tfoo\n")
    with pytest.raises(UserError, match="foo"):
        read_matrix(p)


def test_check_counts():
    df = pd.DataFrame({"A": [1, 2.5], "B": [0, 1]}, index=["g1", "g2"])
    with pytest.raises(UserError, match=r"non-integer count 2.5 at row 'g2', column 'A'"):
        check_counts(df)
    df = pd.DataFrame({"A": [1, -1]}, index=["g1", "g2"])
    with pytest.raises(UserError, match="negative"):
        check_counts(df)
    assert check_counts(pd.DataFrame({"A": [1.0, 2.0]})).dtypes.iloc[0] == np.int64


def test_inputs_helpers():
    inp = {"a": 3, "b": None, "c": "  ", "d": 2.0, "e": "x", "s": {"elements": [{"id": 1.0}, {"id": "B"}]}}
    assert get_string(inp, "a") == "3"
    assert get_string(inp, "b", "dflt") == "dflt"
    assert get_string(inp, "c", "dflt") == "dflt"
    assert get_string(inp, "d") == "2"
    assert get_number(inp, "d", integer=True) == 2
    assert sample_ids(inp["s"]) == ["1", "B"]
    assert sample_ids(None) == []
    with pytest.raises(UserError):
        require(inp, "b", "e")


def test_run_writes_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def bad():
        raise UserError(["m1", "m2"])
    with pytest.raises(SystemExit) as ex:
        run(bad)
    assert ex.value.code == 1
    assert json.loads((tmp_path / "errors.json").read_text()) == ["m1", "m2"]


def test_read_matrix_r_style_header(tmp_path):
    p = tmp_path / "r.tsv"
    p.write_text("A\tB\ng1\t1\t2\ng2\t3\t4\n")
    df = read_matrix(p)
    assert list(df.columns) == ["A", "B"] and list(df.index) == ["g1", "g2"]
    assert df.loc["g2", "B"] == 4
    p.write_text("gene\tA\tB\tC\ng1\t1\t2\n")
    with pytest.raises(UserError):
        read_matrix(p)


def test_read_annotations(tmp_path):
    from _common import read_annotations
    p = tmp_path / "a.tsv"
    p.write_text("sample\tbatch\tcond\ns1\tb1\tx\ns2\t\ty\n")
    ann = read_annotations(p)
    assert list(ann.index) == ["s1", "s2"] and pd.isna(ann.loc["s2", "batch"])
