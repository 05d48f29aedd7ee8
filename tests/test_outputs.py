"""Outputs never clobber what aipc did not make (issue 11), run as a user runs aipc: the user's files survive byte for
byte, the refusal is one line without a traceback, the exit code is exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aipc.fsutil import MARKER, claim_output_dir, dir_problems, output_dir, read_marker
from aipc.runtimes import tinymodel
from conftest import assert_one_line_error, run_aipc
from ort_fixtures import write_ort_build, write_ort_source

USAGE = 2  # bad input


def _user_folder(root: Path) -> dict[Path, bytes]:
    """A folder of the user's own files; returns them (path -> bytes) to compare afterwards."""
    files = {root / "Documents" / "thesis.docx": b"PK\x03\x04 my thesis, three years of work",
             root / "notes.txt": b"do not lose me\n"}
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def _intact(files: dict[Path, bytes]) -> None:
    for path, data in files.items():
        assert path.read_bytes() == data, path


def _fake_tiny_cache(cache: Path) -> Path:
    """An intact cached tiny model (files + stamp), so `aipc tiny-model OUT` only copies it (no venv, no torch)."""
    dest = tinymodel.tiny_model_dir(cache)
    dest.mkdir(parents=True)
    (dest / "config.json").write_text('{"architectures": ["Phi3ForCausalLM"]}\n', encoding="utf-8")
    (dest / "model.safetensors").write_bytes(b"\0" * 64)
    stamp = {"fingerprint": tinymodel.tiny_fingerprint(), "files": tinymodel._file_hashes(dest)}
    (dest / tinymodel.STAMP).write_text(json.dumps(stamp), encoding="utf-8")
    assert tinymodel.is_intact(dest)
    return dest


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = str(tmp_path / "home")  # Path.home(): HOME on POSIX, USERPROFILE on Windows
    return {"AIPC_CACHE": str(tmp_path / "cache"), "HOME": home, "USERPROFILE": home, **extra}


# --- aipc tiny-model OUT ---------------------------------------------------------------------------------------


def test_tiny_model_refuses_a_folder_of_user_files(tmp_path: Path) -> None:
    out = tmp_path / "somewhere"
    files = _user_folder(out)
    proc = run_aipc("tiny-model", str(out), env=_env(tmp_path))
    assert_one_line_error(proc.returncode, proc.stderr, str(out), "aipc did not make it", "fix: pass a new or empty",
                          code=USAGE)
    _intact(files)
    assert sorted(p.name for p in out.iterdir()) == ["Documents", "notes.txt"]
    assert not (tmp_path / "cache" / "venvs").exists()  # refused before any work


@pytest.mark.parametrize("where", ["cwd", "empty-string", "parent-of-cwd", "home", "cache"])
def test_tiny_model_never_writes_over_cwd_home_or_its_input(tmp_path: Path, where: str) -> None:
    proj = tmp_path / "home" / "work" / "proj"
    files = _user_folder(proj)
    arg = {"cwd": ".", "empty-string": "", "parent-of-cwd": "..", "home": str(tmp_path / "home"),
           "cache": str(tmp_path / "cache")}[where]
    proc = run_aipc("tiny-model", arg, env=_env(tmp_path), cwd=proj)
    needle = {"cwd": "is the current directory", "empty-string": "is the current directory",
              "parent-of-cwd": "is a parent of the current directory", "home": "is your home folder",
              "cache": "is the input"}[where]
    assert_one_line_error(proc.returncode, proc.stderr, needle, code=USAGE)
    _intact(files)


def test_tiny_model_refuses_a_file(tmp_path: Path) -> None:
    out = tmp_path / "model.bin"
    out.write_bytes(b"mine")
    proc = run_aipc("tiny-model", str(out), env=_env(tmp_path))
    assert_one_line_error(proc.returncode, proc.stderr, "exists and is not a folder", code=USAGE)
    assert out.read_bytes() == b"mine"


def test_tiny_model_fills_an_empty_folder_then_replaces_its_own(tmp_path: Path) -> None:
    _fake_tiny_cache(tmp_path / "cache")
    out = tmp_path / "tiny"
    out.mkdir()
    proc = run_aipc("tiny-model", str(out), env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (out / "model.safetensors").is_file() and read_marker(out) is not None
    assert read_marker(out)["kind"] == "tiny-model"  # type: ignore[index]
    assert dir_problems(out) == []
    # a rerun replaces the folder aipc made
    proc = run_aipc("tiny-model", str(out), env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    # a file the user changed in it needs --force; a file the user added is never replaced, --force or not
    (out / "config.json").write_text("{}", encoding="utf-8")
    proc = run_aipc("tiny-model", str(out), env=_env(tmp_path))
    assert_one_line_error(proc.returncode, proc.stderr, "config.json was changed after aipc wrote it",
                          "fix: pass --force", code=USAGE)
    assert (out / "config.json").read_text() == "{}"
    proc = run_aipc("tiny-model", str(out), "--force", env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (out / "config.json").read_text() != "{}"
    (out / "my-notes.md").write_bytes(b"mine")
    for extra in ((), ("--force",)):
        proc = run_aipc("tiny-model", str(out), *extra, env=_env(tmp_path))
        assert_one_line_error(proc.returncode, proc.stderr, "holds my-notes.md", "which aipc did not make",
                              "fix: move it out", code=USAGE)
        assert (out / "my-notes.md").read_bytes() == b"mine"


def test_a_folder_aipc_made_for_something_else_needs_force(tmp_path: Path) -> None:
    _fake_tiny_cache(tmp_path / "cache")
    out = tmp_path / "out"
    with output_dir(out, "ort-home") as tmp:
        (tmp / "manifest.json").write_text("{}", encoding="utf-8")
    proc = run_aipc("tiny-model", str(out), env=_env(tmp_path))
    assert_one_line_error(proc.returncode, proc.stderr, "is a ort-home folder aipc made, not a tiny-model folder",
                          "fix: pass --force to replace it, or a fresh path", code=USAGE)
    assert (out / "manifest.json").is_file()
    proc = run_aipc("tiny-model", str(out), "--force", env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert read_marker(out)["kind"] == "tiny-model"  # type: ignore[index]


# --- aipc stage --out / --legacy-ort-dir ------------------------------------------------------------------------


def _ort_tree(root: Path) -> tuple[Path, Path]:
    src = write_ort_source(root / "onnxruntime")
    build = root / "onnxruntime" / "build" / "Windows"
    write_ort_build(build, "windows")
    return src, build


def _stage(src: Path, build: Path, out: str, *extra: str, cwd: Path | None = None, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    return run_aipc("stage", "--platform", "windows", "--ort-source", str(src), "--ort-build", str(build),
                    "--out", out, *extra, cwd=cwd, env=env)


@pytest.mark.parametrize("out", [".", ""])
def test_stage_out_dot_or_empty_keeps_the_project(tmp_path: Path, out: str) -> None:
    src, build = _ort_tree(tmp_path)
    proj = tmp_path / "proj"
    files = _user_folder(proj)
    proc = _stage(src, build, out, cwd=proj)
    assert_one_line_error(proc.returncode, proc.stderr, "is the current directory", code=USAGE)
    _intact(files)


@pytest.mark.parametrize("target", ["user-folder", "ort-source", "ort-build-parent"])
def test_stage_refuses_user_folders_and_its_inputs(tmp_path: Path, target: str) -> None:
    src, build = _ort_tree(tmp_path)
    user = tmp_path / "mine"
    files = _user_folder(user)
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    out = {"user-folder": user, "ort-source": src, "ort-build-parent": build.parent}[target]
    proc = _stage(src, build, str(out))
    needle = {"user-folder": "aipc did not make it", "ort-source": "is the input",
              "ort-build-parent": "is a parent of the input"}[target]
    assert_one_line_error(proc.returncode, proc.stderr, str(out), needle, code=USAGE)
    _intact(files)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == before


def test_stage_legacy_ort_dir_never_wipes_a_user_folder(tmp_path: Path) -> None:
    src, build = _ort_tree(tmp_path)
    legacy = tmp_path / "genai" / "ort"
    files = _user_folder(legacy)
    out = tmp_path / "ORT_HOME"
    proc = _stage(src, build, str(out), "--legacy-ort-dir", str(legacy))
    assert_one_line_error(proc.returncode, proc.stderr, str(legacy), "aipc did not make it", code=USAGE)
    _intact(files)
    assert not out.exists()  # refused before staging anything


# --- aipc export KIND MODEL OUT ---------------------------------------------------------------------------------


def _checkpoint(root: Path) -> dict[Path, bytes]:
    files = {root / "model.safetensors": b"\0weights" * 8, root / "config.json": b'{"model_type": "phi3"}',
             root / "NOTES.md": b"my notes"}
    root.mkdir(parents=True)
    for path, data in files.items():
        path.write_bytes(data)
    return files


@pytest.mark.parametrize("out", ["same", "parent"])
def test_export_never_writes_over_its_model(tmp_path: Path, out: str) -> None:
    model = tmp_path / "models" / "M"
    files = _checkpoint(model)
    target = model if out == "same" else model.parent
    proc = run_aipc("export", "genai", str(model), str(target), env=_env(tmp_path))
    assert_one_line_error(proc.returncode, proc.stderr, "the input" if out == "same" else "a parent of the input",
                          code=USAGE)
    _intact(files)
    assert sorted(p.name for p in model.iterdir()) == ["NOTES.md", "config.json", "model.safetensors"]


def test_export_refuses_a_folder_of_user_files(tmp_path: Path) -> None:
    model = tmp_path / "M"
    _checkpoint(model)
    out = tmp_path / "out"
    files = _user_folder(out)
    proc = run_aipc("export", "genai", str(model), str(out), env=_env(tmp_path))
    assert_one_line_error(proc.returncode, proc.stderr, "aipc did not make it", code=USAGE)
    _intact(files)


# --- the helpers themselves -------------------------------------------------------------------------------------


def test_output_dir_failure_leaves_the_old_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with output_dir(out, "thing") as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), output_dir(out, "thing") as tmp:
        (tmp / "a").write_text("2")
        raise RuntimeError("boom")
    assert (out / "a").read_text() == "1" and dir_problems(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left


def test_claim_accepts_a_legacy_folder_only_through_recognise(tmp_path: Path) -> None:
    out = tmp_path / "old"
    out.mkdir()
    (out / "aipc-tiny.json").write_text("{}")
    with pytest.raises(Exception, match="aipc did not make it"):
        claim_output_dir(out, "tiny-model")
    assert claim_output_dir(out, "tiny-model", recognise=lambda d: (d / "aipc-tiny.json").is_file()) == out
    assert not (out / MARKER).exists()


# --- locks ------------------------------------------------------------------------------------------------------


def _hold_lock(kind: str, target: Path, cache: Path, seconds: float) -> subprocess.Popen[str]:
    code = ("import sys, time\nfrom pathlib import Path\nfrom aipc.locks import hold\n"
            "with hold(sys.argv[1], Path(sys.argv[2]), 'x', cache=Path(sys.argv[3])):\n"
            "    print('held', flush=True)\n    time.sleep(float(sys.argv[4]))\n")
    proc = subprocess.Popen([sys.executable, "-c", code, kind, str(target), str(cache), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_waits_for_the_lock_then_stops_with_one_line(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    holder = _hold_lock("model", tinymodel.tiny_model_dir(cache.resolve()), cache, 30)
    try:
        t0 = time.monotonic()
        proc = run_aipc("tiny-model", env=_env(tmp_path, AIPC_LOCK_TIMEOUT="1"))
        assert time.monotonic() - t0 < 25
        line = assert_one_line_error(proc.returncode, proc.stderr, "the tiny model", f"held by pid {holder.pid}",
                                     "after 1 s", code=1)
        assert f"waiting for the tiny model {tinymodel.tiny_model_dir(cache.resolve())} held by pid {holder.pid}" \
            in proc.stderr, line
    finally:
        holder.kill()
        holder.wait()
    assert not (cache / "venvs").exists()  # nothing was started while the lock was held


def test_a_bad_lock_timeout_is_one_line(tmp_path: Path) -> None:
    proc = run_aipc("tiny-model", env=_env(tmp_path, AIPC_LOCK_TIMEOUT="nan"))
    assert_one_line_error(proc.returncode, proc.stderr, "AIPC_LOCK_TIMEOUT='nan'", code=USAGE)


def test_lock_files_stay_in_the_cache(tmp_path: Path) -> None:
    from aipc.locks import hold, lock_file

    target = tmp_path / "wheels"
    with hold("wheels", target, "w", cache=tmp_path / "cache"), hold("wheels", target, "w", cache=tmp_path / "cache"):
        assert lock_file("wheels", target, tmp_path / "cache").parent == tmp_path / "cache" / "locks"
    assert not target.exists()
    assert os.listdir(tmp_path) == ["cache"]


# --- wheels folders: aipc's own, checked on every read ----------------------------------------------------------


def _wheel(root: Path, name: str = "onnxruntime_genai-0.15.2-py3-none-any.whl", payload: str = "") -> Path:
    import zipfile

    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    dist, version = name.split("-")[:2]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{dist}-{version}.dist-info/METADATA",
                    f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n{payload}")
    return path


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def test_the_committed_wheels_folder_is_aipcs_own() -> None:
    from conftest import ROOT

    marker = read_marker(ROOT / "wheels")
    assert marker is not None and marker["kind"] == "wheels"
    assert claim_output_dir(ROOT / "wheels", "wheels", replace=False) == ROOT / "wheels"


def test_wheels_check_of_a_folder_without_wheels_passes(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "README.md").write_text("x")
    proc = run_aipc("wheels", "--check", str(tmp_path / "wheels"))
    assert proc.returncode == 0 and "ok: 0 wheel(s)" in proc.stdout, proc.stderr


def test_wheels_check_passes_then_names_a_flipped_byte_and_an_unlisted_wheel(tmp_path: Path) -> None:
    from aipc.wheelhouse import add_wheels

    folder = tmp_path / "wheels"
    add_wheels(folder, [_wheel(tmp_path / "src")], {"producer": "test"})
    proc = run_aipc("wheels", "--check", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert "ok: 1 wheel(s)" in proc.stdout
    _flip_last_byte(folder / "onnxruntime_genai-0.15.2-py3-none-any.whl")
    proc = run_aipc("wheels", "--check", str(folder))
    assert_one_line_error(proc.returncode, proc.stderr, "onnxruntime_genai-0.15.2-py3-none-any.whl",
                          "sha256 does not match SHA256SUMS", code=1)
    _wheel(folder, "onnxruntime-1.24.4-py3-none-any.whl")
    proc = run_aipc("wheels", "--check", "--wheels", str(folder))
    assert proc.returncode == 1
    assert "onnxruntime-1.24.4-py3-none-any.whl: on disk but not listed in SHA256SUMS" in proc.stdout


@pytest.mark.parametrize("command", [("smoke", "genai"), ("verify", "--paths", "genai"), ("bench",)])
def test_verify_smoke_bench_refuse_a_tampered_wheel_before_installing(tmp_path: Path, command: tuple[str, ...]
                                                                      ) -> None:
    from aipc.wheelhouse import add_wheels

    folder = tmp_path / "wheels"
    add_wheels(folder, [_wheel(tmp_path / "src")], {"producer": "test"})
    wheel = folder / "onnxruntime_genai-0.15.2-py3-none-any.whl"
    _flip_last_byte(wheel)
    proc = run_aipc(*command, "--wheels", str(folder), env=_env(tmp_path), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, str(wheel), "does not match its sha256", "refusing",
                          code=1)
    assert not (tmp_path / "cache" / "venvs").exists()


def test_a_wheel_in_a_venv_spec_is_checked_before_pip(tmp_path: Path) -> None:
    from aipc.errors import AipcError
    from aipc.venvs import VenvSpec, ensure_venv
    from aipc.wheelhouse import add_wheels

    folder = tmp_path / "wheels"
    add_wheels(folder, [_wheel(tmp_path / "src")], {"producer": "test"})
    wheel = folder / "onnxruntime_genai-0.15.2-py3-none-any.whl"
    _flip_last_byte(wheel)
    spec = VenvSpec("t", steps=((str(wheel),),), local_wheels=(wheel,))
    with pytest.raises(AipcError, match="does not match its sha256"):
        ensure_venv(spec, tmp_path / "cache" / "venvs", echo=lambda s: None)
    assert not (tmp_path / "cache" / "venvs" / "t").exists()


def test_wheels_writers_refuse_a_folder_of_user_files_and_a_stranger_wheel(tmp_path: Path) -> None:
    from aipc.errors import UsageError
    from aipc.wheelhouse import add_wheels

    user = tmp_path / "mine"
    files = _user_folder(user)
    with pytest.raises(UsageError, match="aipc did not make it"):
        add_wheels(user, [_wheel(tmp_path / "src")], {})
    _intact(files)
    folder = tmp_path / "wheels"
    add_wheels(folder, [_wheel(tmp_path / "src", "onnxruntime-1.24.4-py3-none-any.whl")], {})
    stranger = _wheel(folder, payload="someone else's build\n")
    before = stranger.read_bytes()
    with pytest.raises(UsageError, match=r"is not listed in .*manifest\.json: aipc did not put it there"):
        add_wheels(folder, [_wheel(tmp_path / "src")], {})
    assert stranger.read_bytes() == before


def test_bench_out_refuses_a_folder_of_user_files_before_running(tmp_path: Path) -> None:
    out = tmp_path / "results"
    files = _user_folder(out)
    proc = run_aipc("bench", "--out", str(out), env=_env(tmp_path), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, str(out), "aipc did not make it", code=USAGE)
    _intact(files)
    proc = run_aipc("bench", "--out", ".", env=_env(tmp_path), cwd=out)
    assert_one_line_error(proc.returncode, proc.stderr, "is the current directory", code=USAGE)
    assert not (tmp_path / "cache" / "venvs").exists()


@pytest.mark.parametrize("option", ["--workdir", "--wheels", "--legacy-ort-dir"])
def test_build_refuses_a_user_folder_as_workdir_or_wheels_before_anything(tmp_path: Path, option: str) -> None:
    user = tmp_path / "proj"
    files = _user_folder(user)
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    others = {"--workdir": ["--wheels", str(tmp_path / "fresh")], "--wheels": ["--workdir", str(tmp_path / "fresh")],
              "--legacy-ort-dir": ["--workdir", str(tmp_path / "fresh"), "--wheels", str(tmp_path / "fresh-w")]}
    proc = run_aipc("build", option, str(user), *others[option], "--offline", env=_env(tmp_path),
                    cwd=tmp_path, clean_env=True)
    assert_one_line_error(proc.returncode, proc.stderr, str(user), "aipc did not make it", code=USAGE)
    _intact(files)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == before


# --- the runner: a step is up to date only when its outputs still hash as recorded --------------------------------


def test_runner_reruns_a_step_whose_output_changed_and_a_forced_run_drops_its_stamp_first(tmp_path: Path) -> None:
    from aipc.runner import Runner, Step

    out = tmp_path / "lib.so"
    calls: list[str] = []

    def build() -> None:
        calls.append("run")
        out.write_bytes(b"\x7fELF complete library")

    step = Step("build", "build it", [], outputs=[out], action=build)
    quiet = {"echo": lambda s: None}
    assert Runner(tmp_path / "state", tmp_path / "logs", **quiet).run(step).status == "ran"
    assert Runner(tmp_path / "state", tmp_path / "logs", **quiet).run(step).status == "skipped"
    _flip_last_byte(out)  # tampered or damaged after the step ran
    assert Runner(tmp_path / "state", tmp_path / "logs", **quiet).run(step).status == "ran"

    def interrupted() -> None:
        out.write_bytes(b"\x7fELF trunc")  # 17 bytes of a library, then Ctrl-C
        raise KeyboardInterrupt

    forced = Step("build", "build it", [], outputs=[out], action=interrupted)
    with pytest.raises(KeyboardInterrupt):
        Runner(tmp_path / "state", tmp_path / "logs", force=True, **quiet).run(forced)
    assert not (tmp_path / "state" / "build.stamp.json").exists()
    assert Runner(tmp_path / "state", tmp_path / "logs", **quiet).run(step).status == "ran"
    assert out.read_bytes() == b"\x7fELF complete library"


def test_runner_checks_a_marked_output_folder_file_by_file(tmp_path: Path) -> None:
    from aipc.runner import Runner, Step

    home = tmp_path / "ort_home"

    def stage() -> None:
        with output_dir(home, "ort-home", force=True) as tmp:
            (tmp / "lib").mkdir()
            (tmp / "lib" / "libonnxruntime.so").write_bytes(b"\x7fELF library")

    step = Step("stage", "stage", [], outputs=[home], action=stage)
    run = Runner(tmp_path / "state", tmp_path / "logs", echo=lambda s: None).run
    assert run(step).status == "ran"
    assert run(step).status == "skipped"
    (home / "lib" / "libonnxruntime.so").write_bytes(b"\x7fELF")
    assert run(step).status == "ran"
    assert (home / "lib" / "libonnxruntime.so").read_bytes() == b"\x7fELF library"


def test_a_second_build_in_one_workdir_waits_then_stops_with_one_line(tmp_path: Path) -> None:
    workdir = tmp_path / "w"
    holder = _hold_lock("workdir", workdir, tmp_path / "cache", 30)
    try:
        proc = run_aipc("fetch", "--workdir", str(workdir), "--offline", env=_env(tmp_path, AIPC_LOCK_TIMEOUT="1"),
                        cwd=tmp_path, clean_env=True)
        assert f"waiting for the build workdir {workdir} held by pid {holder.pid}" in proc.stderr
        assert_one_line_error(proc.returncode, proc.stderr, "the build workdir", f"held by pid {holder.pid}", code=1)
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in workdir.iterdir()) == ["aipc-folder.json"]  # nothing was fetched meanwhile


@pytest.mark.parametrize("option", ["--wheels", "--build-dir"])
def test_build_npu_refuses_a_user_folder_before_anything(tmp_path: Path, option: str) -> None:
    user = tmp_path / "proj"
    files = _user_folder(user)
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    other = "--build-dir" if option == "--wheels" else "--wheels"
    proc = run_aipc("build-npu", option, str(user), other, str(tmp_path / "fresh"), "--sdist",
                    str(tmp_path / "none.tar.gz"), env=_env(tmp_path), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, str(user), "aipc did not make it", code=USAGE)
    _intact(files)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == before
