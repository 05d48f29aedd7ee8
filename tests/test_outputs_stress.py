"""Two runs at once on one cache and one wheels folder (issue 11): with the locks, nothing is lost or corrupted.

The cheapest real paths are used (two full `aipc verify` runs are too heavy for the shared CI/dev machines): two
processes creating the same venv through aipc's own ``ensure_venv`` (what two `verify` runs on a fresh cache do
first), and two processes adding wheels to one folder through ``wheelhouse.add_wheels`` (what `aipc wheels` and
`aipc build-npu` do)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

WRITER = r"""
import sys, zipfile
from pathlib import Path
from aipc.wheelhouse import add_wheels
folder, src, tag, n = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
src.mkdir(parents=True, exist_ok=True)
for i in range(n):
    name = f"pkg_{tag}_{i}"
    wheel = src / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"{name}-1.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    add_wheels(folder, [wheel], {"producer": tag})
"""

VENV = r"""
import sys
from pathlib import Path
from aipc.venvs import VenvSpec, ensure_venv
root, wheel = Path(sys.argv[1]), sys.argv[2]
spec = VenvSpec("stress", steps=(("--no-index", wheel),))
print(ensure_venv(spec, root))
"""


def test_two_wheels_writers_at_once_keep_manifest_and_sums_consistent(tmp_path: Path) -> None:
    from aipc.wheelhouse import check_folder, read_manifest, read_sums

    folder, n = tmp_path / "wheels", 40
    env_cache = {"AIPC_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(tmp_path / f"src-{tag}"), tag, str(n)],
                              env={**_environ(), **env_cache}, stderr=subprocess.PIPE, text=True)
             for tag in ("a", "b")]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert check_folder(folder) == []
    on_disk = sorted(p.name for p in folder.glob("*.whl"))
    assert len(on_disk) == 2 * n
    assert sorted(e["file"] for e in read_manifest(folder)["wheels"]) == on_disk
    assert sorted(read_sums(folder) or {}) == on_disk


@pytest.mark.slow
def test_two_runs_creating_one_venv_at_once_share_it(tmp_path: Path) -> None:
    wheel = tmp_path / "stress_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("stress_pkg/__init__.py", "VALUE = 42\n")
        zf.writestr("stress_pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: stress-pkg\nVersion: 1.0\n")
        zf.writestr("stress_pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr("stress_pkg-1.0.dist-info/RECORD", "")
    root = tmp_path / "cache" / "venvs"
    env = {**_environ(), "AIPC_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", VENV, str(root), str(wheel)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    pythons = {out.strip() for out, _ in outs}
    assert len(pythons) == 1
    stderr = "".join(err for _, err in outs)
    assert stderr.count("venv stress: creating") == 1, stderr  # one created it, the other waited and reused it
    assert "waiting for the venv" in stderr and "held by pid" in stderr, stderr
    python = pythons.pop()
    proc = subprocess.run([python, "-c", "import stress_pkg; print(stress_pkg.VALUE)"], capture_output=True, text=True,
                          check=False)
    assert proc.stdout.strip() == "42", proc.stderr
    marker = json.loads((root / "stress" / "aipc-venv.json").read_text())
    assert marker["fingerprint"]


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


@pytest.mark.slow
def test_two_verify_runs_at_once_on_one_cache(tmp_path: Path) -> None:
    """Two real `aipc verify --paths genai` at once on the shared test cache. With the cache warm (the cheapest real
    verify) they share venvs, model and exports without making them; the contention of two runs making a venv is
    the test above."""
    from aipc.venvs import venvs_root
    from conftest import shared_cache

    cache = shared_cache()
    env = {**_environ(), "AIPC_CACHE": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-m", "aipc", "verify", "--paths", "genai", "--json",
                               str(tmp_path / f"v{i}.json"), "--junit", str(tmp_path / f"v{i}.xml")],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=1800) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for i in range(2):
        rows = json.loads((tmp_path / f"v{i}.json").read_text())["results"]
        assert rows and all(r["status"] == "pass" for r in rows), rows
    for marker in venvs_root(cache).glob("*/aipc-venv.json"):
        assert json.loads(marker.read_text())["fingerprint"]
