"""End-to-end tests of the build pipeline against fixture upstreams (tests/fixture_upstreams.py), through the
``aipc`` command line in subprocesses: fetch from local git repositories -> build-ort -> stage -> build-genai ->
wheels -> install both wheels in a fresh venv -> import; resume after an interrupted build; and every bad input
with its one-line message and non-zero exit."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aipc.pins import load_pins
from aipc.wheelbuild import ort
from aipc.wheelhouse import check_folder, read_manifest, verify_sums
from conftest import assert_one_line_error, run_aipc
from fixture_upstreams import Upstreams, make_genai_repo, make_ort_repo, make_upstreams, write_pins

STEPS = ("fetch", "build-venv", "build-ort", "stage", "build-genai", "wheels")


aipc = functools.partial(run_aipc, clean_env=True)  # the developer's AIPC_*/GIT_* must not leak in


def build_args(root: Path, *extra: str) -> list[str]:
    """Offline, with the dependency folder make_upstreams filled (root/deps)."""
    return ["--workdir", str(root / "w"), "--wheels", str(root / "wheels"), "--offline", "--deps-dir",
            str(root / "deps"), *extra]


def pins_env(up: Upstreams | Path) -> dict[str, str]:
    """AIPC_PINS, and pip pointed at the fixture wheelhouse (for the build venv)."""
    return up.env() if isinstance(up, Upstreams) else {"AIPC_PINS": str(up)}


def skipped(proc: subprocess.CompletedProcess[str]) -> set[str]:
    return {s for s in (*STEPS, "msvc-env", "build-venv") if f"[aipc] {s}: up to date, skipped" in proc.stderr}


def wheel_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


# --- the whole pipeline ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_full_pipeline_then_install_both_wheels_in_a_fresh_venv_and_import(tmp_path: Path) -> None:
    up = make_upstreams(tmp_path)
    proc = aipc("build", *build_args(tmp_path), env=pins_env(up), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    wheels = tmp_path / "wheels"
    manifest = read_manifest(wheels)
    by_part = {e["component"]: e for e in manifest["wheels"]}
    ort_whl, genai_whl = by_part["onnxruntime"]["file"], by_part["onnxruntime_genai"]["file"]
    assert wheel_files(wheels) == sorted(["SHA256SUMS", "aipc-folder.json", "manifest.json", ort_whl, genai_whl])
    assert verify_sums(wheels) == []
    # both were built tagged linux_x86_64; their fixture libraries need only glibc, so each got the manylinux tag
    # auditwheel reports (aipc.wheelfit), and the linux_x86_64 copies are not in wheels/
    for built, entry in (("onnxruntime-1.24.4-py3-none-linux_x86_64.whl", by_part["onnxruntime"]),
                         ("onnxruntime_genai-0.15.2-py3-none-linux_x86_64.whl", by_part["onnxruntime_genai"])):
        fit = entry["fit"]
        assert fit["from"] == built and fit["auditwheel"]["overall_tag"].startswith("manylinux_"), fit
        assert entry["file"] == built.replace("linux_x86_64", fit["platform_tag"])
        assert fit["platform_tag"].endswith(fit["auditwheel"]["overall_tag"])
    assert by_part["onnxruntime"]["name"] == "onnxruntime" and by_part["onnxruntime"]["version"] == "1.24.4"
    assert by_part["onnxruntime"]["source"]["onnxruntime"]["commit"] == up.ort.commit
    assert by_part["onnxruntime_genai"]["source"]["onnxruntime_genai"]["commit"] == up.genai.commit
    assert by_part["onnxruntime_genai"]["requires_onnxruntime"] == "onnxruntime>=1.24.4"
    assert by_part["onnxruntime"]["pins"]["file"] == str(up.pins) and by_part["onnxruntime"]["tags"]

    # the fixture build script received exactly our flags; ORT_HOME was staged and its load check passed
    args = json.loads((tmp_path / "w" / "ort" / "build" / "Linux" / "Release" / "aipc_fixture_args.json").read_text())
    assert args["defines"] == ["onnxruntime_BUILD_UNIT_TESTS=OFF"]
    # build.sh ran with the build venv's python, where ORT's build requirements and the pinned CMake were installed
    venv = tmp_path / "w" / "venv"
    assert Path(args["python"]).parent == venv / "bin", args["python"]
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all"], capture_output=True,
                            text=True, timeout=60, check=True).stdout.split()
    tools = load_pins(up.pins).build_tools
    wheel_pin = next(ln for ln in ort.CONSTRAINTS.read_text(encoding="utf-8").splitlines() if ln.startswith("wheel=="))
    assert {wheel_pin, f"cmake=={tools['cmake']}", f"ninja=={tools['ninja']}"} <= set(freeze), freeze
    for flag in ("--build_shared_lib", "--parallel", "--skip_tests", "--build_wheel", "--skip_submodule_sync"):
        assert flag in args["argv"]
    ort_home = json.loads((tmp_path / "w" / "ort_home" / "manifest.json").read_text())
    assert ort_home["load_check"]["status"] == "pass" and ort_home["ort_version"] == "1.24.4"
    for log in STEPS:
        assert (tmp_path / "w" / "logs" / f"{log}.log").is_file()

    # idempotent: a rerun skips every step
    again = aipc("build", *build_args(tmp_path), env=pins_env(up), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert skipped(again) == {*STEPS, "build-venv"}

    # integrity on every read: one byte flipped in ORT_HOME's library and in a wheel in wheels/ -> those steps rerun
    # (and whatever depends on them), nothing damaged is taken as up to date
    for path in (tmp_path / "w" / "ort_home" / "lib" / "libonnxruntime.so.1.24.4", wheels / genai_whl):
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(bytes(data))
    damaged = aipc("build", *build_args(tmp_path), env=pins_env(up), cwd=tmp_path)
    assert damaged.returncode == 0, damaged.stderr
    assert "[aipc] stage: finished" in damaged.stderr and "[aipc] wheels: finished" in damaged.stderr
    assert "ort_home is missing or changed since the step ran" in damaged.stderr
    assert verify_sums(wheels) == [] and check_folder(wheels) == []

    # a fresh venv with only our two wheels: both import, genai loads ORT through the onnxruntime package
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    pip = subprocess.run([str(py), "-m", "pip", "install", "--no-index", "--disable-pip-version-check", "-q",
                          str(wheels / ort_whl), str(wheels / genai_whl)], capture_output=True, text=True, timeout=120)
    assert pip.returncode == 0, pip.stderr
    # only what the real packages have: __version__, ort.get_version_string(), and the ORT_LIB_PATH genai's
    # _dll_directory.py sets to the installed onnxruntime package's library before genai's own library loads it
    script = ("import json, os, onnxruntime as ort, onnxruntime_genai as og\n"
              "print(json.dumps({'ort': ort.__version__, 'ort_string': ort.get_version_string(),"
              " 'genai': og.__version__, 'lib': os.environ['ORT_LIB_PATH']}))\n")
    out = subprocess.run([str(py), "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["ort"] == seen["ort_string"] == "1.24.4" and seen["genai"] == "0.15.2"
    assert seen["lib"].startswith(str(venv))  # the library bundled in our ORT wheel, not the build tree


@pytest.mark.slow
def test_genai_without_no_telemetry_flag_builds(tmp_path: Path) -> None:
    """A genai pinned before v0.15 has no --no_telemetry (its build.py would reject the flag)."""
    up = make_upstreams(tmp_path, has_no_telemetry=False)
    plan = aipc("plan", "--json", *build_args(tmp_path), env=pins_env(up), cwd=tmp_path)
    (genai_entry,) = [e for e in json.loads(plan.stdout) if e["name"] == "build-genai"]
    assert "--no_telemetry" not in genai_entry["argv"]
    proc = aipc("build", *build_args(tmp_path), env=pins_env(up), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    genai = next(e for e in read_manifest(tmp_path / "wheels")["wheels"] if e["component"] == "onnxruntime_genai")
    assert genai["fit"]["from"] == "onnxruntime_genai-0.15.2-py3-none-linux_x86_64.whl"
    assert genai["file"] in wheel_files(tmp_path / "wheels")


# --- resume after an interrupted build ----------------------------------------------------------------------------


@pytest.mark.slow
def test_interrupted_builds_resume_and_wheels_never_hold_a_partial_file(tmp_path: Path) -> None:
    up = make_upstreams(tmp_path)
    env = {**pins_env(up), "AIPC_FIXTURE_ORT_FAIL_ONCE": str(tmp_path / "ort-killed"),
           "AIPC_FIXTURE_GENAI_FAIL_ONCE": str(tmp_path / "genai-killed")}
    wheels = tmp_path / "wheels"

    first = aipc("build", *build_args(tmp_path), env=env, cwd=tmp_path)  # ORT build killed half way
    assert_one_line_error(first.returncode, first.stderr, "step build-ort", "exited with -9", "build-ort.log", code=1)
    assert (tmp_path / "ort-killed").is_file() and wheel_files(wheels) == []

    second = aipc("build", *build_args(tmp_path), env=env, cwd=tmp_path)  # resumes; genai build killed half way
    assert_one_line_error(second.returncode, second.stderr, "step build-genai", "exited with -9", code=1)
    assert skipped(second) == {"fetch", "build-venv"} and "[aipc] build-ort: finished" in second.stderr
    partial = list((tmp_path / "w" / "genai-build" / "Release" / "wheel").glob("*.whl"))
    assert partial and not zipfile.is_zipfile(partial[0])  # the fixture left a half-written wheel behind
    assert wheel_files(wheels) == []

    third = aipc("build", *build_args(tmp_path), env=env, cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert skipped(third) == {"fetch", "build-venv", "build-ort", "stage"}, third.stderr
    assert "[aipc] build-genai: finished" in third.stderr and "[aipc] wheels: finished" in third.stderr
    names = wheel_files(wheels)
    assert len([n for n in names if n.endswith(".whl")]) == 2 and not [n for n in names if n.startswith(".")]
    assert verify_sums(wheels) == [] and all(zipfile.is_zipfile(wheels / n) for n in names if n.endswith(".whl"))


# --- fetch: local sources, retries through a fake git on PATH ------------------------------------------------------


def test_fetch_uses_local_checkouts_and_verifies_git_ones(tmp_path: Path) -> None:
    up = make_upstreams(tmp_path)
    proc = aipc("fetch", *build_args(tmp_path), "--source", str(tmp_path / "upstreams"), env=pins_env(up))
    assert proc.returncode == 0, proc.stderr
    sources = json.loads((tmp_path / "w" / "state" / "sources.json").read_text())
    assert sources["onnxruntime"] == {**sources["onnxruntime"], "action": "local", "verified": True,
                                      "commit": up.ort.commit}
    assert not (tmp_path / "w" / "ort").exists()  # nothing cloned
    plain = tmp_path / "plain-ort"
    shutil.copytree(up.ort.path, plain, ignore=shutil.ignore_patterns(".git"))
    proc = aipc("fetch", *build_args(tmp_path), "--ort-source", str(plain), env=pins_env(up))
    assert proc.returncode == 0, proc.stderr
    assert "not a git repository, commit NOT verified" in proc.stderr
    sources = json.loads((tmp_path / "w" / "state" / "sources.json").read_text())
    assert sources["onnxruntime"]["verified"] is False and sources["onnxruntime_genai"]["action"] == "cloned"


def test_fetch_from_local_git_repositories_given_on_the_command_line(tmp_path: Path) -> None:
    """--ort-repo/--genai-repo clone from local repositories (offline) instead of the pinned network URLs."""
    ort = make_ort_repo(tmp_path / "mirror" / "ort")
    genai = make_genai_repo(tmp_path / "mirror" / "genai")
    pins = write_pins(tmp_path / "pins.toml", ort, genai)
    text = pins.read_text().replace(f'repo = "{ort.path.as_posix()}"',
                                    'repo = "https://github.com/microsoft/onnxruntime.git"')
    pins.write_text(text.replace(f'repo = "{genai.path.as_posix()}"',
                                 'repo = "https://github.com/microsoft/onnxruntime-genai.git"'))
    refused = aipc("fetch", *build_args(tmp_path), env=pins_env(pins))
    assert_one_line_error(refused.returncode, refused.stderr,
                          "offline: refusing to clone ONNX Runtime from https://github.com", code=2)
    proc = aipc("fetch", *build_args(tmp_path), "--ort-repo", str(ort.path), "--genai-repo", f"file://{genai.path}",
                env=pins_env(pins))
    assert proc.returncode == 0, proc.stderr
    sources = json.loads((tmp_path / "w" / "state" / "sources.json").read_text())
    assert sources["onnxruntime"]["repo"] == str(ort.path) and sources["onnxruntime"]["commit"] == ort.commit
    assert sources["onnxruntime_genai"]["action"] == "cloned" and sources["onnxruntime_genai"]["verified"]
    assert (tmp_path / "w" / "genai" / "build.py").is_file()
    again = aipc("fetch", *build_args(tmp_path), "--ort-repo", str(ort.path), "--genai-repo", f"file://{genai.path}",
                 env=pins_env(pins))
    assert again.returncode == 0 and skipped(again) == {"fetch"}


def _fake_git(tmp_path: Path) -> Path:
    real = shutil.which("git")
    assert real
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    script = bin_dir / "git"
    script.write_text(
        "#!/usr/bin/env bash\n"
        "# fails 'clone' FAKE_GIT_FAILS times with a DNS error (a transient network error), then runs the real git\n"
        'if [[ " $* " == *" clone "* ]]; then\n'
        '  n=$(cat "$FAKE_GIT_COUNT" 2>/dev/null || echo 0); n=$((n+1)); echo "$n" > "$FAKE_GIT_COUNT"\n'
        '  if [ "$n" -le "$FAKE_GIT_FAILS" ]; then\n'
        "    echo \"Cloning into 'x'...\" >&2\n"
        "    echo \"fatal: unable to access 'https://github.com/microsoft/onnxruntime.git/': Could not resolve host: "
        "github.com\" >&2\n"
        "    exit 128\n"
        "  fi\n"
        "fi\n"
        f'exec "{real}" "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    return bin_dir


def test_fetch_retries_transient_network_errors(tmp_path: Path) -> None:
    up = make_upstreams(tmp_path)
    bin_dir, count = _fake_git(tmp_path), tmp_path / "clone-count"
    env = {**pins_env(up), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_GIT_COUNT": str(count),
           "FAKE_GIT_FAILS": "2"}
    proc = aipc("fetch", *build_args(tmp_path), "--fetch-backoff", "0", env=env)
    assert proc.returncode == 0, proc.stderr
    assert count.read_text().strip() == "4"  # ORT: 2 failures + 1 success; genai: 1
    assert "retry 1/3" in proc.stderr and "retry 2/3" in proc.stderr
    assert json.loads((tmp_path / "w" / "state" / "sources.json").read_text())["onnxruntime"]["verified"] is True


def test_fetch_gives_up_after_bounded_retries(tmp_path: Path) -> None:
    up = make_upstreams(tmp_path)
    bin_dir, count = _fake_git(tmp_path), tmp_path / "clone-count"
    env = {**pins_env(up), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_GIT_COUNT": str(count),
           "FAKE_GIT_FAILS": "100", "AIPC_FETCH_BACKOFF": "0"}
    proc = aipc("fetch", *build_args(tmp_path), "--fetch-retries", "3", env=env)
    assert_one_line_error(proc.returncode, proc.stderr, "failed after 3 attempts", "Could not resolve host", code=1)
    assert count.read_text().strip() == "3"
    assert not (tmp_path / "w" / "ort").exists()


# --- bad input -----------------------------------------------------------------------------------------------------


def test_missing_source_directory(tmp_path: Path) -> None:
    proc = aipc("build", *build_args(tmp_path), "--ort-source", str(tmp_path / "nope"))
    assert_one_line_error(proc.returncode, proc.stderr,
                          f"ONNX Runtime source directory {tmp_path / 'nope'} does not exist", "--ort-source", code=2)


def test_wrong_commit_is_refused(tmp_path: Path) -> None:
    ort = make_ort_repo(tmp_path / "upstreams" / "onnxruntime", extra_commit=True)
    genai = make_genai_repo(tmp_path / "upstreams" / "onnxruntime-genai")
    # the pins name a commit the tag does not point to (e.g. the tag was moved upstream)
    pins = write_pins(tmp_path / "pins.toml", ort, genai, ort_commit=ort.head)
    proc = aipc("build", *build_args(tmp_path), env=pins_env(pins))
    assert_one_line_error(proc.returncode, proc.stderr,
                          f"is at commit {ort.commit}, but the pins say v1.24.4 = {ort.head}", code=1)
    assert not (tmp_path / "w" / "ort").exists()  # the refused clone is not kept
    # an existing checkout at another commit than the pinned one is refused too
    pins = write_pins(tmp_path / "pins.toml", ort, genai)
    proc = aipc("build", *build_args(tmp_path), "--ort-source", str(ort.path), env=pins_env(pins))
    assert_one_line_error(proc.returncode, proc.stderr,
                          f"checkout {ort.path} is at commit {ort.head}, but the pins say v1.24.4 = {ort.commit}",
                          code=1)


def test_incompatible_pins_are_refused_before_anything(tmp_path: Path) -> None:
    ort = make_ort_repo(tmp_path / "upstreams" / "onnxruntime")
    genai = make_genai_repo(tmp_path / "upstreams" / "onnxruntime-genai", version="0.13.1")
    pins = write_pins(tmp_path / "pins.toml", ort, genai)
    proc = aipc("build", *build_args(tmp_path), env=pins_env(pins))
    assert_one_line_error(proc.returncode, proc.stderr,
                          "onnxruntime-genai 0.13.1 needs ONNX Runtime >= 1.25.0.dev20260125, but ORT 1.24.4",
                          "| v0.13.0-v0.13.2, v0.14.0", code=1)
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_genai_requirement_not_satisfied_by_the_ort_wheel(tmp_path: Path) -> None:
    up = make_upstreams(tmp_path, genai_requires_name="onnxruntime-directml")
    proc = aipc("build", *build_args(tmp_path), env=pins_env(up))
    assert_one_line_error(proc.returncode, proc.stderr,
                          "requires onnxruntime-directml>=1.24.4, but the ORT wheel built is onnxruntime 1.24.4",
                          code=1)
    assert [n for n in wheel_files(tmp_path / "wheels") if n.endswith(".whl")] == []


def test_offline_refuses_network_repositories(tmp_path: Path) -> None:
    proc = aipc("fetch", *build_args(tmp_path))  # the shipped pins point at github.com
    assert_one_line_error(proc.returncode, proc.stderr,
                          "offline: refusing to clone ONNX Runtime from https://github.com/microsoft/onnxruntime.git",
                          code=2)
