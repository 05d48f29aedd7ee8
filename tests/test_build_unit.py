"""Unit tests of the build pipeline: settings, command composition per platform / pinned version / generator,
artifact discovery in both generator layouts, fetch retries, the MSVC environment capture, the wheels check, the
compatibility refusal, and the ``aipc plan --platform windows --json`` contract."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path, PureWindowsPath

import pytest

from aipc.errors import AipcError, PinsError, UsageError
from aipc.fsutil import sha256_file
from aipc.pins import SourcePin, load_pins
from aipc.platforms import get_platform, vswhere
from aipc.proc import Output
from aipc.wheelbuild import fetch, genai, ort, stage
from aipc.wheelbuild import settings as bs
from aipc.wheelbuild import wheelset as collect
from aipc.wheelbuild.pipeline import Pipeline
from aipc.wheelhouse import read_manifest, verify_sums
from conftest import write_pins
from ort_fixtures import write_ort_build

ORT_SHA = "1" * 40


def settings(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> bs.BuildSettings:
    """Settings as the CLI would parse ``args`` (plus an environment)."""
    import argparse

    parser = argparse.ArgumentParser()
    bs.add_arguments(parser)
    return bs.from_args(parser.parse_args(list(args)), env or {}, cwd=cwd)



# --- settings ------------------------------------------------------------------------------------------------------


def test_settings_precedence_cli_over_env_over_default(tmp_path: Path) -> None:
    s = settings(env={}, cwd=tmp_path)
    assert s.workdir == tmp_path / ".aipc" / "build" and s.config == "Release" and s.jobs is None
    assert s.wheels == tmp_path / "wheels" and s.ccache == "auto" and not s.offline
    env = {"AIPC_WORKDIR": "envdir", "AIPC_JOBS": "3", "AIPC_OFFLINE": "1", "AIPC_CCACHE": "off"}
    s = settings(env=env, cwd=tmp_path)
    assert s.workdir == tmp_path / "envdir" and s.jobs == 3 and s.offline and s.ccache == "off"
    s = settings("--workdir", "clidir", "--jobs", "5", env=env, cwd=tmp_path)
    assert s.workdir == tmp_path / "clidir" and s.jobs == 5
    assert s.ort_dir == tmp_path / "clidir" / "ort" and s.ort_home == tmp_path / "clidir" / "ort_home"


def test_settings_bad_env_values_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="AIPC_JOBS='many' is not a number"):
        settings(env={"AIPC_JOBS": "many"}, cwd=tmp_path)
    with pytest.raises(UsageError, match="--generator 'make' is not one of"):
        settings(env={"AIPC_GENERATOR": "make"}, cwd=tmp_path)
    with pytest.raises(UsageError, match="Windows-only"):
        settings("--platform", "linux", "--generator", "vs", cwd=tmp_path)


def test_source_option_and_legacy_dir(tmp_path: Path) -> None:
    s = settings("--source", "src", "--legacy-ort-dir", cwd=tmp_path)
    assert s.ort_dir == tmp_path / "src" / "onnxruntime"
    assert s.genai_dir == tmp_path / "src" / "onnxruntime-genai"
    assert s.legacy_ort_dir == tmp_path / "src" / "onnxruntime-genai" / "ort"
    s = settings("--source", "src", "--ort-source", "myort", cwd=tmp_path)
    assert s.ort_dir == tmp_path / "myort" and s.genai_dir == tmp_path / "src" / "onnxruntime-genai"


def test_foreign_windows_plan_uses_short_windows_paths() -> None:
    s = settings("--platform", "windows")
    if s.is_host:
        pytest.skip("this test plans Windows from a non-Windows host")
    assert isinstance(s.workdir, PureWindowsPath) and str(s.workdir) == "C:\\b"
    assert str(s.ort_build_dir) == "C:\\b\\ort\\build\\Windows" and s.python == "python"
    assert s.generator == "vs" and s.cmake_generator == "Visual Studio 17 2022"


# --- command composition ---------------------------------------------------------------------------------------------


def test_ort_command_windows_visual_studio() -> None:
    s = settings("--platform", "windows", "--workdir", "C:\\b", "--ccache", "off")
    cmd = ort.ort_build_command(s)
    assert list(cmd.argv) == [
        str(PureWindowsPath("C:\\b\\ort\\build.bat")), "--config", "Release", "--build_shared_lib", "--parallel",
        "--skip_tests", "--build_wheel", "--use_dml", "--cmake_generator", "Visual Studio 17 2022",
        "--cmake_extra_defines", "onnxruntime_BUILD_UNIT_TESTS=OFF"]
    assert cmd.cwd == str(PureWindowsPath("C:\\b\\ort")) and dict(cmd.env) == {}


def test_ort_command_windows_ninja_jobs_ccache_offline() -> None:
    s = settings("--platform", "windows", "--generator", "ninja", "--jobs", "6", "--ccache", "on", "--offline")
    argv = ort.ort_build_argv(s)
    assert argv[argv.index("--parallel") + 1] == "6"
    assert argv[argv.index("--cmake_generator") + 1] == "Ninja"
    assert "--use_cache" in argv and "--skip_submodule_sync" in argv and "--use_dml" in argv
    assert s.needs_msvc_env


def test_ort_command_linux_default_and_ninja(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort.shutil, "which", lambda name: None)
    s = settings("--platform", "linux", "--workdir", str(tmp_path))
    argv = ort.ort_build_argv(s)
    assert argv[0] == str(tmp_path / "ort" / "build.sh")
    assert "--use_dml" not in argv and "--cmake_generator" not in argv and "--use_cache" not in argv
    assert argv[-2:] == ["--cmake_extra_defines", "onnxruntime_BUILD_UNIT_TESTS=OFF"]
    monkeypatch.setattr(ort.shutil, "which", lambda name: "/usr/bin/ccache" if name == "ccache" else None)
    s = settings("--platform", "linux", "--workdir", str(tmp_path), "--generator", "ninja")
    argv = ort.ort_build_argv(s)
    assert argv[argv.index("--cmake_generator") + 1] == "Ninja" and "--use_cache" in argv  # ccache auto: found


def test_ccache_auto_is_off_for_visual_studio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort.shutil, "which", lambda name: "C:\\ccache.exe")
    s = settings("--platform", "windows")
    assert "--use_cache" not in ort.ort_build_argv(s)


@pytest.mark.parametrize("has_no_telemetry", [True, False])
def test_genai_command_per_pinned_version(tmp_path: Path, has_no_telemetry: bool) -> None:
    old, new = "has_no_telemetry = true", f"has_no_telemetry = {str(has_no_telemetry).lower()}"
    pins = load_pins(write_pins(tmp_path, **{old: new}))
    s = settings("--platform", "windows", "--workdir", "C:\\b")
    cmd = genai.genai_build_command(s, pins, "1.24.4")
    # the build venv's interpreter runs build.py (genai's requirements-dev.txt is installed there)
    venv_python = str(PureWindowsPath("C:\\b\\venv\\Scripts\\python.exe"))
    assert list(cmd.argv[:14 + has_no_telemetry]) == [venv_python, "build.py", "--config", "Release", "--build_dir",
                                   str(PureWindowsPath("C:\\b\\genai-build")), "--ort_home",
                                   str(PureWindowsPath("C:\\b\\ort_home")), "--parallel", "--skip_tests",
                                   "--skip_examples", "--use_dml", *(["--no_telemetry"] if has_no_telemetry else []),
                                   "--cmake_generator", "Visual Studio 17 2022"]
    assert ("--no_telemetry" in cmd.argv) is has_no_telemetry
    assert dict(cmd.env) == {"ONNXRUNTIME_VERSION": "1.24.4", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    assert cmd.cwd == str(PureWindowsPath("C:\\b\\genai"))


def test_genai_command_linux_jobs(tmp_path: Path) -> None:
    s = settings("--platform", "linux", "--workdir", str(tmp_path), "--jobs", "2", "--ccache", "off")
    cmd = genai.genai_build_command(s, load_pins(), "1.25.0")
    assert "--use_dml" not in cmd.argv and "--cmake_generator" not in cmd.argv
    assert dict(cmd.env) == {"ONNXRUNTIME_VERSION": "1.25.0", "CMAKE_BUILD_PARALLEL_LEVEL": "2",
                             "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}  # nothing into the checkout
    assert "--parallel" not in cmd.argv  # it would make cmake --build ignore CMAKE_BUILD_PARALLEL_LEVEL
    assert genai.wheel_dir(s) == tmp_path / "genai-build" / "Release" / "wheel"


def test_windows_ninja_plan_captures_msvc_env_first() -> None:
    s = settings("--platform", "windows", "--generator", "ninja")
    steps = Pipeline(s).plan()
    names = [st.name for st in steps]
    assert names == ["fetch", "build-venv", "msvc-env", "build-ort", "stage", "build-genai", "wheels"]
    msvc = steps[2]
    assert list(msvc.commands[0].argv[1:]) == ["-latest", "-products", "*", "-version", "[17,18)", "-requires",
                                                "Microsoft.VisualStudio.Component.VC.Tools.x86.x64", "-property",
                                                "installationPath"]
    assert msvc.commands[1].argv[-1].endswith("vcvars64.bat\" >nul && set")
    assert "INCLUDE" in steps[3].commands[0].env and "ONNXRUNTIME_VERSION" in steps[5].commands[0].env


def test_stage_step_shows_the_equivalent_aipc_stage_command() -> None:
    s = settings("--platform", "windows", "--workdir", "C:\\b", "--legacy-ort-dir")
    step = Pipeline(s).stage_step()
    assert step.action is not None
    assert list(step.commands[0].argv) == [
        "aipc", "stage", "--platform", "windows", "--ort-source", "C:\\b\\ort", "--ort-build",
        "C:\\b\\ort\\build\\Windows", "--out", "C:\\b\\ort_home", "--config", "Release", "--legacy-ort-dir",
        "C:\\b\\genai\\ort"]


# --- pins and compatibility wired into the pipeline ------------------------------------------------------------------


def test_incompatible_pins_refused_by_plan_and_run_before_anything(tmp_path: Path) -> None:
    pins = write_pins(tmp_path, **{'version = "0.15.2"': 'version = "0.13.1"'})
    s = settings("--workdir", str(tmp_path / "w"), "--pins", str(pins))
    with pytest.raises(PinsError, match=r"v0\.13\.0-v0\.13\.2"):
        Pipeline(s).plan()
    calls: list[Sequence[str]] = []

    def git(args: Sequence[str], cwd: Path | None) -> Output:
        calls.append(args)
        return Output(0, "", "")

    with pytest.raises(PinsError, match=re.escape("needs ONNX Runtime >= 1.25.0.dev20260125")):
        Pipeline(s, git=git).run()
    assert calls == [] and not (tmp_path / "w").exists()


def test_source_versions_are_checked_against_the_table(tmp_path: Path) -> None:
    s = settings("--workdir", str(tmp_path / "w"), "--ort-source", str(tmp_path / "ort"))
    (tmp_path / "ort").mkdir()
    (tmp_path / "ort" / "VERSION_NUMBER").write_text("1.23.0\n")
    with pytest.raises(PinsError, match=re.escape("ORT 1.23.0 is pinned")):
        Pipeline(s).check_sources()


def test_building_for_another_platform_is_refused(tmp_path: Path) -> None:
    s = settings("--platform", "windows")
    if s.is_host:
        pytest.skip("needs a non-Windows host")
    with pytest.raises(UsageError, match="cannot build for windows on this host"):
        Pipeline(s).run()


# --- artifact discovery ----------------------------------------------------------------------------------------------


def _wheel(path: Path, name: str, version: str, requires: Sequence[str] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
            f"Requires-Dist: {r}\n" for r in requires)
        zf.writestr(f"{name.replace('-', '_')}-{version}.dist-info/METADATA", meta)
    return path


@pytest.mark.parametrize(
    ("platform", "generator", "layout"),
    [("windows", "vs", ("Release", "Release")), ("windows", "ninja", ("Release",)), ("linux", None, ("Release",))],
)
def test_artifact_discovery_in_both_layouts(tmp_path: Path, platform: str, generator: str | None,
                                            layout: tuple[str, ...]) -> None:
    plat = get_platform(platform)
    s = bs.resolve(bs.RawSettings(platform=platform, workdir=str(tmp_path), generator=generator), cwd=tmp_path)
    if not s.is_host:
        s = bs.BuildSettings(**{**s.__dict__, "workdir": tmp_path, "wheels": tmp_path / "wheels", "is_host": True})
    cmake_gen = {"vs": "Visual Studio 17 2022", "ninja": "Ninja", None: "Ninja"}[generator]
    art = write_ort_build(Path(s.ort_build_dir), plat, cmake_gen)
    assert art == Path(s.ort_build_dir).joinpath(*layout)
    dist = plat.ort_wheel_dist
    _wheel(art / "dist" / f"{dist}-1.24.3-cp311-cp311-win_amd64.whl", dist, "1.24.3")  # a stale older build
    newest = _wheel(art / "dist" / f"{dist}-1.24.5-cp311-cp311-win_amd64.whl", dist, "1.24.5")
    expected = _wheel(art / "dist" / f"{dist}-1.24.4-cp311-cp311-win_amd64.whl", dist, "1.24.4")
    found = ort.discover_ort(s, "1.24.4")
    assert found.artifact_dir == art and found.main_lib == art / plat.ort_main_lib and found.wheel == expected
    assert ort.discover_ort(s, None).wheel == newest


def test_discovery_falls_back_to_the_other_layout_and_names_both_when_missing(tmp_path: Path) -> None:
    plat = get_platform("windows")
    build = tmp_path / "build" / "Windows"
    vs = "Visual Studio 17 2022"
    with pytest.raises(AipcError, match=r"ORT build directory .* does not exist; fix: run `aipc build-ort`"):
        stage.find_artifact_dir(plat, build, "Release", generator=vs, hint=ort._REBUILD_HINT)
    build.mkdir(parents=True)
    with pytest.raises(AipcError) as exc:
        stage.find_artifact_dir(plat, build, "Release", generator="Ninja", hint=ort._REBUILD_HINT)
    msg = exc.value.one_line()  # the generator's own layout first, then the other
    assert f"{build / 'Release'} or {build / 'Release' / 'Release'};" in msg and "aipc build-ort" in msg
    art = write_ort_build(build, plat, "Ninja")  # built with Ninja, looked up as Visual Studio
    assert stage.find_artifact_dir(plat, build, "Release", generator=vs) == art
    with pytest.raises(AipcError, match="no onnxruntime_directml wheel"):
        ort.find_ort_wheel(plat, art)


# --- fetch: retries, refusals -------------------------------------------------------------------------------------


class FakeGit:
    """Fails ``clone`` with the given results first, then succeeds; ``rev-parse`` answers ``head``."""

    def __init__(self, failures: list[Output], head: str = ORT_SHA) -> None:
        self.failures = list(failures)
        self.head = head
        self.clones = 0

    def __call__(self, args: Sequence[str], cwd: Path | None) -> Output:
        if "clone" in args:
            self.clones += 1
            if self.failures:
                return self.failures.pop(0)
            Path(args[-1], ".git").mkdir(parents=True)
            return Output(0, "", "")
        if "rev-parse" in args:
            return Output(0, self.head + "\n", "")
        raise AssertionError(args)


DNS = Output(128, "", "Cloning into 'x'...\nfatal: unable to access 'https://github.com/x/': "
                                "Could not resolve host: github.com\n")
NOT_FOUND = Output(128, "", "warning: Could not find remote branch v9 to clone.\n"
                                      "fatal: Remote branch v9 not found in upstream origin\n")


def spec(tmp_path: Path, commit: str = ORT_SHA, local: Path | None = None) -> fetch.SourceSpec:
    pin = SourcePin("onnxruntime", "https://github.com/microsoft/onnxruntime.git", "v1.24.4", commit, "1.24.4")
    return fetch.SourceSpec("ONNX Runtime", "--ort-source", pin, pin.repo, tmp_path / "w" / "ort", local)


def test_fetch_retries_transient_errors_with_backoff(tmp_path: Path) -> None:
    git, sleeps, lines = FakeGit([DNS, DNS]), [], []  # type: ignore[var-annotated]
    res = fetch.fetch_source(spec(tmp_path), retries=4, backoff=1.5, git=git, sleep=sleeps.append,
                             echo=lines.append)
    assert git.clones == 3 and sleeps == [1.5, 3.0] and res.verified and res.action == "cloned"
    assert (tmp_path / "w" / "ort" / ".git").is_dir()
    assert any("Could not resolve host" in line for line in lines)
    # idempotent: a second fetch keeps the checkout and clones nothing
    again = fetch.fetch_source(spec(tmp_path), git=git, sleep=sleeps.append)
    assert again.action == "kept" and git.clones == 3


def test_fetch_retries_are_bounded(tmp_path: Path) -> None:
    git, sleeps = FakeGit([DNS] * 10), []  # type: ignore[var-annotated]
    with pytest.raises(AipcError, match="failed after 3 attempts: fatal: unable to access"):
        fetch.fetch_source(spec(tmp_path), retries=3, backoff=0.5, git=git, sleep=sleeps.append)
    assert git.clones == 3 and sleeps == [0.5, 1.0]
    assert not (tmp_path / "w" / "ort").exists() and list((tmp_path / "w").iterdir()) == []


def test_fetch_does_not_retry_a_missing_tag(tmp_path: Path) -> None:
    git = FakeGit([NOT_FOUND])
    with pytest.raises(AipcError, match="Remote branch v9 not found") as exc:
        fetch.fetch_source(spec(tmp_path), git=git, sleep=lambda s: None)
    assert git.clones == 1 and "check the repository URL" in exc.value.one_line()


def test_fetch_refuses_a_wrong_commit_and_keeps_nothing(tmp_path: Path) -> None:
    git = FakeGit([], head="2" * 40)
    with pytest.raises(AipcError, match=f"at commit {'2' * 40}, but the pins say v1.24.4 = {ORT_SHA}"):
        fetch.fetch_source(spec(tmp_path), git=git)
    assert not (tmp_path / "w" / "ort").exists()


def test_fetch_refuses_to_overwrite_a_directory_that_is_not_a_checkout(tmp_path: Path) -> None:
    junk = tmp_path / "w" / "ort"
    junk.mkdir(parents=True)
    (junk / "notes.txt").write_text("mine")
    with pytest.raises(AipcError, match="exists but is not a git checkout of ONNX Runtime"):
        fetch.fetch_source(spec(tmp_path), git=FakeGit([]))
    assert (junk / "notes.txt").read_text() == "mine"


def test_fetch_verifies_local_checkouts(tmp_path: Path) -> None:
    local = tmp_path / "myort"
    (local / ".git").mkdir(parents=True)
    ok = fetch.fetch_source(spec(tmp_path, local=local), git=FakeGit([]))
    assert ok.action == "local" and ok.verified and ok.commit == ORT_SHA
    with pytest.raises(AipcError, match=f"checkout {local} is at commit {'3' * 40}"):
        fetch.fetch_source(spec(tmp_path, local=local), git=FakeGit([], head="3" * 40))
    with pytest.raises(UsageError, match="does not exist"):
        fetch.fetch_source(spec(tmp_path, local=tmp_path / "missing"), git=FakeGit([]))


def test_fetch_offline_refuses_network_urls(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="offline: refusing to clone ONNX Runtime from https://"):
        fetch.fetch_source(spec(tmp_path), offline=True, git=FakeGit([]))


def test_transient_classification() -> None:
    assert fetch.is_transient(DNS) and not fetch.is_transient(NOT_FOUND)
    assert fetch.is_transient(Output(128, "", "error: RPC failed; curl 56 GnuTLS recv error"))
    assert fetch.is_transient(Output(128, "", "fatal: the remote end hung up unexpectedly"))


# --- MSVC environment -------------------------------------------------------------------------------------------------


SET_OUTPUT = ("ALLUSERSPROFILE=C:\\ProgramData\nPath=C:\\VS\\VC\\Tools\\MSVC\\14.44\\bin\\Hostx64\\x64;C:\\Windows\n"
              "INCLUDE=C:\\VS\\VC\\include\nLIB=C:\\VS\\VC\\lib\\x64\nVCToolsInstallDir=C:\\VS\\VC\\Tools\\MSVC\\14.44\\\n"
              "=C:=C:\\b\n")


def test_capture_msvc_env_keeps_what_vcvars_changed() -> None:
    calls: list[Sequence[str] | str] = []

    def run(cmd: Sequence[str] | str) -> Output:
        calls.append(cmd)
        if isinstance(cmd, list):
            return Output(0, "C:\\Program Files\\Microsoft Visual Studio\\2022\\Community\r\n", "")
        return Output(0, SET_OUTPUT, "")

    before = {"ALLUSERSPROFILE": "C:\\ProgramData", "PATH": "C:\\Windows", "ProgramFiles(x86)": "D:\\PF86"}
    env = vswhere.capture_msvc_env(before, run, vs_major="17")
    assert calls[0] == vswhere.msvc_install_argv("D:\\PF86\\Microsoft Visual Studio\\Installer\\vswhere.exe", "17")
    assert list(calls[0][4:6]) == ["-version", "[17,18)"]
    assert calls[1] == ('cmd.exe /d /s /c ""C:\\Program Files\\Microsoft Visual Studio\\2022\\Community\\VC\\'
                        'Auxiliary\\Build\\vcvars64.bat" >nul && set"')
    assert set(env) == {"PATH", "INCLUDE", "LIB", "VCToolsInstallDir"}  # PATH keeps the environment's spelling
    assert env["PATH"].startswith("C:\\VS\\VC\\Tools")


def test_capture_msvc_env_failures_are_clear() -> None:
    def no_vswhere(cmd: Sequence[str] | str) -> Output:
        return Output(None, "", "", f"not found: {cmd[0]}")

    with pytest.raises(AipcError, match=re.escape("vswhere.exe not found at C:\\Program Files (x86)\\")):
        vswhere.capture_msvc_env({}, no_vswhere, vs_major="17")
    with pytest.raises(AipcError, match=re.escape("vswhere.exe failed (timeout after 15 s): C:\\")):
        vswhere.capture_msvc_env({}, lambda cmd: Output(None, "", "", "timeout after 15 s"), vs_major="17")
    with pytest.raises(AipcError, match=re.escape("no Visual Studio [18,19) with the x64 MSVC tools")):
        vswhere.capture_msvc_env({}, lambda cmd: Output(0, "\n", ""), vs_major="18")
    with pytest.raises(AipcError, match=re.escape("Visual Studio major version '17.x' is not a number")):
        vswhere.capture_msvc_env({}, lambda cmd: Output(0, "\n", ""), vs_major="17.x")

    def broken(cmd: Sequence[str] | str) -> Output:
        return Output(0, "C:\\VS\n", "") if isinstance(cmd, list) else Output(1, "", "not found\n")

    with pytest.raises(AipcError, match=r"vcvars64.bat did not set up the MSVC environment \(exit 1: not found\)"):
        vswhere.capture_msvc_env({}, broken, vs_major="17")

    def hung(cmd: Sequence[str] | str) -> Output:
        return Output(0, "C:\\VS\n", "") if isinstance(cmd, list) else Output(None, "", "", "timeout after 120 s")

    with pytest.raises(AipcError, match=r"did not set up the MSVC environment \(timeout after 120 s\)"):
        vswhere.capture_msvc_env({}, hung, vs_major="17")


def test_vswhere_argv_build_and_doctor_forms() -> None:
    """One vswhere_argv: the build's installation-path query and the doctor's JSON listing."""
    exe = vswhere.vswhere_exe({"ProgramFiles(x86)": "D:\\PF86"})
    assert exe == "D:\\PF86\\Microsoft Visual Studio\\Installer\\vswhere.exe"
    assert vswhere.vswhere_exe() == "C:\\Program Files (x86)\\Microsoft Visual Studio\\Installer\\vswhere.exe"
    assert vswhere.msvc_install_argv(exe, "17") == [
        exe, "-latest", "-products", "*", "-version", "[17,18)", "-requires", vswhere.VC_COMPONENT,
        "-property", "installationPath"]
    assert vswhere.vswhere_argv(exe, json=True) == [exe, "-products", "*", "-format", "json", "-utf8"]
    assert vswhere.vswhere_argv(exe, requires=("A", "B"), json=True) == [
        exe, "-products", "*", "-requires", "A", "-requires", "B", "-format", "json", "-utf8"]


# --- wheels: requirement check and atomic collection ----------------------------------------------------------------


DML_REQ = 'onnxruntime-directml>=1.24.4; sys_platform == "win32"'


def test_requirement_check(tmp_path: Path) -> None:
    linux, windows = get_platform("linux"), get_platform("windows")
    ort_whl = _wheel(tmp_path / "onnxruntime-1.24.4-py3-none-linux_x86_64.whl", "onnxruntime", "1.24.4")
    ok = _wheel(tmp_path / "a" / "onnxruntime_genai-0.15.2-py3-none-any.whl", "onnxruntime_genai", "0.15.2",
                ["onnxruntime>=1.24.4", "numpy>=1.21.6"])
    assert collect.check_requirement(ok, ort_whl, linux) == "onnxruntime>=1.24.4"
    too_new = _wheel(tmp_path / "b" / "onnxruntime_genai-0.15.2-py3-none-any.whl", "onnxruntime_genai", "0.15.2",
                     ["onnxruntime>=1.25.0"])
    with pytest.raises(AipcError, match=r"requires onnxruntime>=1.25.0, which the ORT wheel built \(onnxruntime "
                                        r"1.24.4\) does not satisfy"):
        collect.check_requirement(too_new, ort_whl, linux)
    dml = _wheel(tmp_path / "c" / "onnxruntime_genai-0.15.2-py3-none-any.whl", "onnxruntime_genai", "0.15.2",
                 ["onnxruntime-directml>=1.24.4"])
    with pytest.raises(AipcError, match=re.escape("but the ORT wheel built is onnxruntime 1.24.4")):
        collect.check_requirement(dml, ort_whl, linux)
    none = _wheel(tmp_path / "d" / "onnxruntime_genai-0.15.2-py3-none-any.whl", "onnxruntime_genai", "0.15.2",
                  ["numpy"])
    with pytest.raises(AipcError, match="declares no Requires-Dist on onnxruntime"):
        collect.check_requirement(none, ort_whl, linux)
    bad = _wheel(tmp_path / "f" / "onnxruntime_genai-0.15.2-py3-none-any.whl", "onnxruntime_genai", "0.15.2",
                 ["onnxruntime>=>1.24"])  # read by packaging.metadata: the bad entry is named, one line
    with pytest.raises(AipcError, match=re.escape("has invalid metadata: 'onnxruntime>=>1.24' is invalid for "
                                                  "'requires-dist'")):
        collect.check_requirement(bad, ort_whl, linux)
    # markers are evaluated for the target platform
    ort_dml = _wheel(tmp_path / "onnxruntime_directml-1.24.4-cp311-cp311-win_amd64.whl", "onnxruntime-directml",
                     "1.24.4")
    marked = _wheel(tmp_path / "e" / "onnxruntime_genai_directml-0.15.2-py3-none-any.whl",
                    "onnxruntime_genai_directml", "0.15.2",
                    [DML_REQ, 'onnxruntime>=9; sys_platform != "win32"'])
    assert collect.check_requirement(marked, ort_dml, windows) == DML_REQ


def test_wheels_for_different_pythons_are_refused(tmp_path: Path) -> None:
    ort_whl = _wheel(tmp_path / "onnxruntime_directml-1.24.4-cp311-cp311-win_amd64.whl", "onnxruntime-directml",
                     "1.24.4")
    gen = _wheel(tmp_path / "g" / "onnxruntime_genai_directml-0.15.2-cp312-cp312-win_amd64.whl",
                 "onnxruntime_genai_directml", "0.15.2", ["onnxruntime-directml>=1.24.4"])
    with pytest.raises(AipcError, match=re.escape("is for cp312 but onnxruntime_directml-1.24.4-cp311")):
        collect.check_requirement(gen, ort_whl, get_platform("windows"))
    same = _wheel(tmp_path / "h" / "onnxruntime_genai_directml-0.15.2-cp311-cp311-win_amd64.whl",
                  "onnxruntime_genai_directml", "0.15.2", ["onnxruntime-directml>=1.24.4"])
    assert collect.check_requirement(same, ort_whl, get_platform("windows")) == "onnxruntime-directml>=1.24.4"


def test_collect_interrupted_copy_leaves_no_partial_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ort_whl = _wheel(tmp_path / "onnxruntime-1.24.4-py3-none-linux_x86_64.whl", "onnxruntime", "1.24.4")
    gen = _wheel(tmp_path / "g" / "onnxruntime_genai-0.15.2-py3-none-linux_x86_64.whl", "onnxruntime_genai", "0.15.2",
                 ["onnxruntime>=1.24.4"])
    out = tmp_path / "wheels"
    import aipc.fsutil

    real_copy = aipc.fsutil.shutil.copy2
    seen: list[str] = []

    def interrupted_copy(src: Path, dst: Path) -> None:
        seen.append(Path(src).name)
        if Path(src).name.startswith("onnxruntime_genai"):
            Path(dst).write_bytes(Path(src).read_bytes()[:10])  # half-written, then the process is interrupted
            raise KeyboardInterrupt
        real_copy(src, dst)

    monkeypatch.setattr(aipc.fsutil.shutil, "copy2", interrupted_copy)
    pins = load_pins()
    with pytest.raises(KeyboardInterrupt):
        collect.collect_wheels(out, ort_whl, gen, pins=pins, sources={}, platform=get_platform("linux"),
                               config="Release")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["SHA256SUMS", ort_whl.name, "manifest.json", "aipc-folder.json"])
    assert seen == [ort_whl.name, gen.name]
    assert verify_sums(out) == []
    monkeypatch.setattr(aipc.fsutil.shutil, "copy2", real_copy)
    entries = collect.collect_wheels(out, ort_whl, gen, pins=pins, sources={"onnxruntime": {"commit": ORT_SHA}},
                                     platform=get_platform("linux"), config="Release")
    assert [e["component"] for e in entries] == ["onnxruntime", "onnxruntime_genai"]
    manifest = read_manifest(out)
    assert {e["file"] for e in manifest["wheels"]} == {ort_whl.name, gen.name}
    (g,) = [e for e in manifest["wheels"] if e["component"] == "onnxruntime_genai"]
    assert g["sha256"] == sha256_file(gen) and g["requires_onnxruntime"] == "onnxruntime>=1.24.4"
    assert g["pins"]["onnxruntime"]["commit"] == pins.onnxruntime.commit and g["source"]["onnxruntime"]["commit"]
    assert verify_sums(out) == []


# --- the plan contract ------------------------------------------------------------------------------------------


def test_plan_windows_json_via_cli_subprocess(tmp_path: Path) -> None:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("AIPC_")}
    proc = subprocess.run([sys.executable, "-m", "aipc", "plan", "--platform", "windows", "--json"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    assert isinstance(entries, list) and entries
    for e in entries:
        assert {"name", "argv", "cwd", "env"} <= set(e)
        assert isinstance(e["argv"], list) and all(isinstance(a, str) for a in e["argv"])
        assert isinstance(e["cwd"], str) and isinstance(e["env"], dict)
    steps = [e["step"] for e in entries]
    order = ["fetch", "build-venv", "msvc-env", "build-ort", "stage", "build-genai", "wheels"]
    assert steps == sorted(steps, key=order.index)
    assert {"fetch", "build-ort", "stage", "build-genai", "wheels"} <= set(steps)
    by_name = {e["name"]: e for e in entries}
    build_ort = by_name["build-ort"]
    assert build_ort["argv"][0].endswith("build.bat") and "--use_dml" in build_ort["argv"]
    assert "onnxruntime_BUILD_UNIT_TESTS=OFF" in build_ort["argv"]
    assert by_name["build-genai"]["env"]["ONNXRUNTIME_VERSION"] == load_pins().onnxruntime.version
    assert "--ort_home" in by_name["build-genai"]["argv"] and "--use_dml" in by_name["build-genai"]["argv"]
    assert by_name["stage"]["argv"][:4] == ["aipc", "stage", "--platform", "windows"]
    clone = by_name["fetch[1]"]["argv"]
    assert clone[:4] == ["git", "-c", "advice.detachedHead=false", "clone"] and load_pins().onnxruntime.tag in clone
    # nothing ran: no workdir, no wheels
    assert list(tmp_path.iterdir()) == []


def test_plan_text_form(capsys: pytest.CaptureFixture[str]) -> None:
    from aipc.cli import main

    assert main(["plan", "--platform", "linux", "--workdir", "/tmp/aipc-plan-test", "--ccache", "off"]) == 0
    out = capsys.readouterr().out
    assert "# build-ort:" in out and "$ /tmp/aipc-plan-test/ort/build.sh --config Release" in out
    assert "env: CMAKE_BUILD_PARALLEL_LEVEL=" in out and " ONNXRUNTIME_VERSION=" in out
    assert not Path("/tmp/aipc-plan-test").exists()
