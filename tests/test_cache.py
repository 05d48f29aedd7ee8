"""``aipc cache --info/--clean`` (issue 15): sizes and paths of every part; clean removes only what aipc made, and
nothing while another run holds a lock or uses the cache."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aipc.fsutil import MARKER, mark_dir
from aipc.settings import mark_cache
from conftest import assert_one_line_error, run_aipc


def make_cache(root: Path) -> dict[str, Path]:
    """A cache as aipc leaves it, plus things aipc did not make."""
    mark_cache(root)
    venv = root / "venvs" / "path-genai"
    (venv / "lib").mkdir(parents=True)
    (venv / "lib" / "big.so").write_bytes(b"\0" * 300_000)
    (venv / "aipc-venv.json").write_text('{"version": 2, "fingerprint": "x"}')
    (root / "venvs" / "path-genai.install.log").write_text("pip said things\n")
    half = root / "venvs" / "path-half"  # an interrupted install: no marker
    half.mkdir()
    exp = root / "exports" / "genai-int4-cpu-0123456789abcdef"
    exp.mkdir(parents=True)
    (exp / "model.onnx").write_bytes(b"\1" * 50_000)
    mark_dir(exp, "export")
    tampered = root / "exports" / "openvino-int4-cpu-0123456789abcdef"
    tampered.mkdir()
    (tampered / "openvino_model.xml").write_text("<xml/>")
    mark_dir(tampered, "export")
    (tampered / "my-notes.txt").write_text("mine")  # a file aipc did not make
    stranger = root / "exports" / "someone-elses"
    stranger.mkdir()
    (stranger / "data.bin").write_bytes(b"2" * 10)
    model = root / "models" / "tiny-phi3-0123"
    model.mkdir(parents=True)
    (model / "aipc-tiny.json").write_text("{}")  # an older tiny model: its stamp, no marker
    (root / "logs").mkdir()
    (root / "logs" / "export-genai-int4-cpu-0123456789abcdef.log").write_text("converted\n")
    (root / "logs" / "README").write_text("not a log of aipc's")
    return {"venv": venv, "half": half, "export": exp, "tampered": tampered, "stranger": stranger, "model": model}


def env(root: Path, **more: str) -> dict[str, str]:
    return {"AIPC_CACHE": str(root), "AIPC_TEST_CACHE": str(root.parent / "test-cache"), **more}


def test_info_lists_every_part_with_size_path_and_total(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    make_cache(root)
    (tmp_path / "test-cache" / "venvs").mkdir(parents=True)
    (tmp_path / "test-cache" / "venvs" / "x.bin").write_bytes(b"\0" * 2048)
    proc = run_aipc("cache", "--info", env=env(root), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = {ln.split()[0]: ln for ln in proc.stdout.splitlines() if ln.strip()}
    assert f"{root / 'venvs'}" in lines["venvs"] and "293.0 KB" in lines["venvs"]  # 300,000 B + marker + log
    assert re.search(r" 49\.\d KB ", lines["exports"])  # 50,000 B and two markers
    assert lines["npu"].split()[2] == "-"  # npu build: none yet
    assert "2.0 KB" in lines["test"] and str(tmp_path / "test-cache") in lines["test"]
    assert "kept by --clean" in lines["exports"]
    total = [ln for ln in proc.stdout.splitlines() if ln.startswith("total: ")]
    # about 342 KB: the test cache is outside this cache, so not in the total
    assert total and re.match(r"total: 34\d\.\d KB in ", total[0]) and str(root) in total[0], total
    assert run_aipc("cache", env=env(root), cwd=tmp_path).stdout == proc.stdout  # --info is the default


def test_clean_removes_only_what_aipc_made(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    made = make_cache(root)
    dry = run_aipc("cache", "--clean", "--dry-run", env=env(root), cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "would remove 4 item(s)" in dry.stdout and made["venv"].is_dir()  # nothing removed
    proc = run_aipc("cache", "--clean", env=env(root), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "removed 4 item(s)" in proc.stdout
    assert not made["venv"].exists() and not (root / "venvs" / "path-genai.install.log").exists()
    assert not made["export"].exists() and not made["model"].exists()
    assert not (root / "logs" / "export-genai-int4-cpu-0123456789abcdef.log").exists()
    # kept, each named with its reason: what aipc cannot prove it made, and a folder holding a stranger's file
    assert made["half"].is_dir() and made["stranger"].is_dir() and (made["tampered"] / "my-notes.txt").is_file()
    assert (root / "logs" / "README").is_file() and (root / "CACHEDIR.TAG").is_file()
    assert f"keep {made['tampered']}: holds my-notes.txt, which aipc did not make" in proc.stderr
    assert f"keep {made['stranger']}: no {MARKER}" in proc.stderr


def test_clean_refuses_a_folder_that_is_not_aipcs_cache(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "exports" / "x").mkdir(parents=True)
    mark_dir(home / "exports" / "x", "export")
    proc = run_aipc("cache", "--clean", env=env(home), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, "has no CACHEDIR.TAG written by aipc", "AIPC_CACHE",
                          code=1)
    assert (home / "exports" / "x").is_dir()


def test_dry_run_alone_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_aipc("cache", "--dry-run", env=env(tmp_path / "cache"), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, "--dry-run goes with --clean", code=2, alone=True)


HOLDER = """
import sys, time
from pathlib import Path
from aipc import locks
root = Path(sys.argv[1])
if sys.argv[2] == "lock":
    with locks.hold("export", Path(sys.argv[3]), "the export", cache=root):
        print("ready", flush=True)
        time.sleep(60)
else:
    locks.use_cache(root)
    print("ready", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("how", ["lock", "user"])
def test_clean_removes_nothing_while_another_run_holds_a_lock_or_uses_the_cache(tmp_path: Path, how: str) -> None:
    root = tmp_path / "cache"
    made = make_cache(root)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLDER), str(root), how, str(made["export"])],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        proc = run_aipc("cache", "--clean", env=env(root), cwd=tmp_path)
        needle = "is in use by pid" if how == "lock" else f"the cache {root} is in use by pid {holder.pid}"
        assert_one_line_error(proc.returncode, proc.stderr, needle, "nothing was removed", code=1)
        assert made["venv"].is_dir() and made["export"].is_dir() and made["model"].is_dir()
        if how == "user":  # a dry run says so up front
            dry = run_aipc("cache", "--clean", "--dry-run", env=env(root), cwd=tmp_path)
            assert dry.returncode == 0 and f"in use by pid {holder.pid} now" in dry.stderr, dry.stderr
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    proc = run_aipc("cache", "--clean", env=env(root), cwd=tmp_path)  # the run is over: a stale entry is no user
    assert proc.returncode == 0, proc.stderr
    assert not made["venv"].exists()


def test_concurrent_tasks_of_one_run_register_it_once(tmp_path: Path) -> None:
    """verify's tasks run on threads; each may be the first to use the cache (a bug made the second one fail)."""
    import threading

    from aipc import locks

    root = tmp_path / "cache"
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def use() -> None:
        try:
            start.wait()
            locks.use_cache(root)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p.name for p in (root / "locks" / "users").iterdir()] == [f"pid-{os.getpid()}.lock"]
    assert locks.cache_users(root) == []  # this process is not "another run"
