"""`aipc bench compare` on a file that is not a bench.json says what it found and what it wants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aipc.cli import main
from aipc.verify.report import write_json


def test_compare_on_a_verify_json_names_what_it_found_and_what_it_wants(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    verify_json = tmp_path / "verify.json"
    write_json(verify_json, [], {"created": "2026-11-29T18:00:00Z"})  # what `aipc verify` writes
    assert json.loads(verify_json.read_text(encoding="utf-8"))["schema"] == 1
    assert main(["bench", "compare", str(verify_json), str(verify_json)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aipc: error:"), err
    assert '"schema": 1 (a verify.json?)' in err[0] and 'a bench.json has "schema": "aipc-bench"' in err[0], err


def test_compare_on_a_file_without_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"name": "x"}', encoding="utf-8")
    assert main(["bench", "compare", str(other), str(other)]) == 2
    err = capsys.readouterr().err
    assert 'no "schema" key' in err and "aipc-bench" in err and "verify.json" not in err
