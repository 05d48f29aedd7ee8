"""wheelhouse.merge_wheelhouses: the CI merge of per-job wheels/ artifacts into one wheels/ (checksums verified)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from aipc.errors import AipcError
from aipc.fsutil import sha256_file
from aipc.wheelhouse import SUMS, add_wheels, merge_wheelhouses, read_manifest, verify_sums


def make_wheel(directory: Path, name: str, payload: str = "x") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkg/__init__.py", payload)
    return path


def make_part(root: Path, part: str, wheels: dict[str, str], provenance: str) -> Path:
    """A downloaded artifact: a wheels/ directory written by add_wheels (SHA256SUMS + manifest.json)."""
    scratch = root / "scratch" / part
    built = [make_wheel(scratch, name, payload) for name, payload in wheels.items()]
    dest = root / "dl" / part
    add_wheels(dest, built, {"producer": provenance})
    return dest


def test_merge_copies_wheels_and_rewrites_the_index(tmp_path: Path) -> None:
    a = make_part(tmp_path, "wheels-npu-Linux", {"npu_lib-1.4.0-py3-none-manylinux_2_28_x86_64.whl": "n"}, "npu")
    b = make_part(tmp_path, "wheels-dml-py3.12", {"ort-1.24.4-cp312-cp312-win_amd64.whl": "o",
                                                  "genai-0.15.2-cp312-cp312-win_amd64.whl": "g"}, "dml")
    dest = tmp_path / "wheels"
    merged = merge_wheelhouses(dest, [b, a])
    files = sorted(p.name for p in dest.glob("*.whl"))
    assert [e["file"] for e in merged] == files == sorted(files)
    assert len(files) == 3
    assert verify_sums(dest) == []
    manifest = read_manifest(dest)
    by_file = {e["file"]: e for e in manifest["wheels"]}
    assert by_file["npu_lib-1.4.0-py3-none-manylinux_2_28_x86_64.whl"]["producer"] == "npu"  # provenance kept
    assert by_file["ort-1.24.4-cp312-cp312-win_amd64.whl"]["sha256"] == sha256_file(
        dest / "ort-1.24.4-cp312-cp312-win_amd64.whl")
    sums = (dest / SUMS).read_text(encoding="utf-8").splitlines()
    assert [line.split("  ")[1] for line in sums] == files


def test_merge_refuses_a_corrupted_part(tmp_path: Path) -> None:
    good = make_part(tmp_path, "good", {"a-1.0-py3-none-any.whl": "a"}, "x")
    bad = make_part(tmp_path, "bad", {"b-1.0-py3-none-any.whl": "b"}, "x")
    (bad / "b-1.0-py3-none-any.whl").write_bytes(b"tampered")
    dest = tmp_path / "wheels"
    with pytest.raises(AipcError) as exc:
        merge_wheelhouses(dest, [good, bad])
    assert "b-1.0-py3-none-any.whl: sha256 does not match SHA256SUMS" in exc.value.one_line()
    assert "bad" in exc.value.one_line()
    assert not (dest / "b-1.0-py3-none-any.whl").exists()


def test_merge_refuses_a_part_without_sums(tmp_path: Path) -> None:
    part = make_part(tmp_path, "p", {"a-1.0-py3-none-any.whl": "a"}, "x")
    (part / SUMS).unlink()
    with pytest.raises(AipcError, match="SHA256SUMS is missing"):
        merge_wheelhouses(tmp_path / "wheels", [part])


def test_merge_refuses_a_manifest_that_disagrees_with_the_sums(tmp_path: Path) -> None:
    part = make_part(tmp_path, "p", {"a-1.0-py3-none-any.whl": "a"}, "x")
    (part / SUMS).write_text("", encoding="utf-8")  # the sums no longer vouch for the manifest's wheel
    with pytest.raises(AipcError, match=r"a-1\.0-py3-none-any\.whl.*not listed in"):
        merge_wheelhouses(tmp_path / "wheels", [part])
