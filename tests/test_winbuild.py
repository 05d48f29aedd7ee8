"""The Windows build as upstream runs it (issue 12, points 1-3 and 8), shown on plans made with ``--platform windows``:
the build venv with the pinned CMake/Ninja and ONNX Runtime's own Python build requirements under pinned constraints,
installed before each build; the Spectre note of the Visual Studio route; a workdir cmd.exe would split is refused."""

from __future__ import annotations

import argparse
import json
from pathlib import Path, PureWindowsPath

import pytest

from aipc.errors import AipcError, UsageError
from aipc.pins import load_pins
from aipc.platforms import get_platform
from aipc.platforms.windows import SPECTRE_COMPONENT
from aipc.wheelbuild import buildvenv, ort
from aipc.wheelbuild import settings as bs
from aipc.wheelbuild.pipeline import Pipeline
from conftest import assert_one_line_error, run_aipc, write_pins

# ONNX Runtime's tools/ci_build/github/windows/python/requirements.txt as its CI installs it (test data: the names
# and specifiers aipc's constraints must cover; the Linux file is a subset without semver, packaging, coloredlogs)
ORT_WINDOWS_REQUIREMENTS = """\
numpy==2.2.6; python_version < "3.14"
numpy==2.3.2; python_version >= "3.14"
mypy
pytest
setuptools>=68.2.2
wheel
protobuf==4.25.1
sympy==1.14
flatbuffers
psutil
onnxscript==0.5.3; python_version < "3.14"
onnx-ir==0.1.10; python_version < "3.14"
jinja2
markupsafe
semver
packaging
coloredlogs

# Use onnx for Python < 3.14
onnx==1.19.1; python_version < "3.14"

# Use onnx_weekly for Python >= 3.14
onnx_weekly; python_version >= "3.14"
"""


@pytest.fixture(autouse=True)
def _pip_installer(monkeypatch: pytest.MonkeyPatch) -> None:
    """These plans are checked with pip as the installer (tests/test_installer.py checks uv's)."""
    monkeypatch.setenv("AIPC_INSTALLER", "pip")


def settings(*args: str, cwd: Path | None = None) -> bs.BuildSettings:
    parser = argparse.ArgumentParser()
    bs.add_arguments(parser)
    return bs.from_args(parser.parse_args(list(args)), {}, cwd=cwd)


def plan(*args: str) -> dict[str, dict[str, object]]:
    steps = Pipeline(settings("--platform", "windows", *args)).plan()
    return {e["name"]: e for st in steps for e in st.plan_entries()}


# --- point 2 and 3: the build venv, before each build -----------------------------------------------------------


def test_windows_plan_installs_pinned_tools_and_ort_requirements_before_the_builds() -> None:
    entries = plan("--workdir", "C:\\b")
    names = list(entries)
    venv = PureWindowsPath("C:\\b\\venv")
    py = str(venv / "Scripts" / "python.exe")
    assert names.index("build-venv[4]") < names.index("build-ort") < names.index("build-genai")
    assert entries["build-venv[1]"]["argv"] == ["python", "-m", "venv", str(venv)]
    tools = load_pins().build_tools
    assert entries["build-venv[2]"]["argv"][:3] == [py, "-m", "pip"]
    assert entries["build-venv[2]"]["argv"][-2:] == [f"cmake=={tools['cmake']}", f"ninja=={tools['ninja']}"]
    genai_req = entries["build-venv[3]"]["argv"]  # genai's requirements-dev.txt (its build.py imports requests)
    assert genai_req[-2:] == ["-r", "C:\\b\\genai\\requirements-dev.txt"]
    req = entries["build-venv[4]"]["argv"]  # ORT's after genai's: ORT's pins win where both name a package
    assert req[:4] == [py, "-m", "pip", "install"]
    assert req[req.index("-r") + 1] == "C:\\b\\ort\\tools\\ci_build\\github\\windows\\python\\requirements.txt"
    assert Path(req[req.index("-c") + 1]) == ort.CONSTRAINTS and ort.CONSTRAINTS.is_file()
    assert "--no-index" not in req and "--find-links" not in req
    # both builds run with the venv first on PATH: build.bat starts that python, the builds find its cmake/ninja
    for build in ("build-ort", "build-genai"):
        env = entries[build]["env"]
        assert isinstance(env, dict) and env["PATH"] == f"{venv}\\Scripts;%PATH%", env


def test_ninja_route_keeps_the_captured_msvc_path_after_the_venv() -> None:
    entries = plan("--generator", "ninja")
    env = entries["build-ort"]["env"]
    assert isinstance(env, dict)
    first, rest = str(env["PATH"]).split(";", 1)
    assert first == "C:\\b\\venv\\Scripts" and rest.startswith("<captured from vcvars64.bat"), env
    assert "INCLUDE" in env


def test_find_links_and_offline() -> None:
    entries = plan("--find-links", "D:\\wheelhouse", "--offline")
    for name in ("build-venv[2]", "build-venv[3]", "build-venv[4]"):
        argv = entries[name]["argv"]
        assert isinstance(argv, list)
        assert argv[argv.index("--find-links") + 1] == "D:\\wheelhouse" and "--no-index" in argv
    online = plan("--find-links", "D:\\wheelhouse")["build-venv[3]"]["argv"]
    assert isinstance(online, list) and "--find-links" in online and "--no-index" not in online
    # --offline without a wheelhouse: pip installs as configured, and the plan says what an air-gapped machine needs
    desc = str(plan("--offline")["build-venv[1]"]["description"])
    assert "--find-links DIR" in desc and "air-gapped" in desc


def test_the_linux_plan_takes_ort_s_linux_requirements(tmp_path: Path) -> None:
    s = settings("--platform", "linux", "--workdir", str(tmp_path / "w"))
    step = Pipeline(s).venv_step()
    assert step.commands[3].argv[step.commands[3].argv.index("-r") + 1] == str(
        tmp_path / "w" / "ort" / "tools" / "ci_build" / "github" / "linux" / "python" / "requirements.txt")


def test_the_constraints_pin_every_ort_requirement_on_every_wheel_python() -> None:
    pins = load_pins()
    pythons = [*pins.wheel_pythons, pins.toolchain["python_max"]]
    for plat in ("windows", "linux"):
        assert ort.unpinned_requirements(ORT_WINDOWS_REQUIREMENTS, ort.CONSTRAINTS.read_text(encoding="utf-8"),
                                         get_platform(plat), pythons) == []


def test_the_checker_catches_an_unpinned_or_conflicting_requirement() -> None:
    cons = ort.CONSTRAINTS.read_text(encoding="utf-8")
    drift = ORT_WINDOWS_REQUIREMENTS + "ninja_new_tool>=1\nsetuptools<70\n"
    problems = ort.unpinned_requirements(drift, cons, get_platform("windows"), ["3.12"])
    assert problems[0].startswith("ninja_new_tool") and "not pinned for Python 3.12" in problems[0]
    assert "setuptools: the constraint ==" in problems[1] and "<70" in problems[1]
    assert len(problems) == 2
    # a requirement pinned in the file itself needs no constraint; markers decide what applies
    assert ort.unpinned_requirements("foo==1.0\nbar; python_version < '3.0'\n", "", get_platform("windows"),
                                     ["3.12"]) == []
    with pytest.raises(AipcError, match="pip option '-r'"):
        ort.unpinned_requirements("-r other.txt\n", cons, get_platform("windows"), ["3.12"])


def test_run_refuses_missing_or_unpinned_ort_requirements(tmp_path: Path) -> None:
    s = settings("--platform", "windows", "--workdir", "C:\\b")
    with pytest.raises(AipcError, match="are missing"):
        ort.check_requirements_pinned(s, ["3.12"])
    src = tmp_path / "ort"
    req = src / "tools" / "ci_build" / "github" / "linux" / "python" / "requirements.txt"
    req.parent.mkdir(parents=True)
    req.write_text("numpy==2.2.6\nbrand_new_dep\n", encoding="utf-8")
    host = settings("--platform", "linux", "--ort-source", str(src), cwd=tmp_path)
    with pytest.raises(AipcError, match="brand_new_dep") as err:
        ort.check_requirements_pinned(host, ["3.12"])
    assert "ort-build.txt" in (err.value.hint or "")
    req.write_text(ORT_WINDOWS_REQUIREMENTS, encoding="utf-8")
    assert ort.check_requirements_pinned(host, ["3.10", "3.13"]) == req


def test_path_env_reads_the_inherited_path_only_when_running(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings("--platform", "linux", "--workdir", "/w")
    monkeypatch.setenv("PATH", "/usr/bin")
    assert buildvenv.path_env(s, {}, live=True)["PATH"] == "/w/venv/bin:/usr/bin"
    assert buildvenv.path_env(s, {}, live=False)["PATH"] == "/w/venv/bin:$PATH"
    assert buildvenv.path_env(s, {"PATH": "/msvc"}, live=True)["PATH"] == "/w/venv/bin:/msvc"
    win = settings("--platform", "windows", "--workdir", "C:\\b")
    assert buildvenv.path_env(win, {"Path": "C:\\msvc", "LIB": "x"}, live=True) == {
        "Path": "C:\\b\\venv\\Scripts;C:\\msvc", "LIB": "x"}


# --- point 1: MSB8040 -------------------------------------------------------------------------------------------


def test_the_visual_studio_route_names_the_spectre_component_and_ninja_does_not() -> None:
    vs = str(plan()["build-genai"]["description"])
    assert SPECTRE_COMPONENT in vs and "MSB8040" in vs
    assert SPECTRE_COMPONENT == "Microsoft.VisualStudio.Component.VC.Runtimes.x86.x64.Spectre"
    assert SPECTRE_COMPONENT not in str(plan("--generator", "ninja")["build-genai"]["description"])


# --- point 7: what an offline Windows build of the pinned genai cannot cover ------------------------------------


def test_offline_windows_plan_names_the_downloads_offline_cannot_cover(tmp_path: Path) -> None:
    offline = str(plan("--offline")["build-genai"]["description"])
    assert "--offline cannot cover" in offline and "nuget.exe" in offline and "Microsoft.Direct3D.DXC" in offline
    assert "nuget.exe" not in str(plan()["build-genai"]["description"])
    assert "nuget.exe" not in str(Pipeline(settings("--platform", "linux", "--workdir", "/w", "--offline")).plan(
        ["build-genai"])[0].description)
    # a genai that takes nuget from PATH (0.16 on) does not download it: no such note
    pins = write_pins(tmp_path, **{'tag = "v0.15.2"': 'tag = "v0.16.0"', 'version = "0.15.2"': 'version = "0.16.0"'})
    newer = Pipeline(settings("--platform", "windows", "--offline", "--pins", str(pins))).plan(["build-genai"])
    assert "nuget.exe" not in newer[0].description


# --- point 8: cmd.exe metacharacters ----------------------------------------------------------------------------


@pytest.mark.parametrize("workdir", ["C:\\R&D\\b", "C:\\50%\\b", "C:\\a^b", "D:\\x|y", "C:\\wow!"])
def test_a_workdir_cmd_would_split_is_refused(workdir: str) -> None:
    with pytest.raises(UsageError, match=r"cmd\.exe"):
        settings("--platform", "windows", "--workdir", workdir)


def test_metacharacter_refusal_through_the_cli(tmp_path: Path) -> None:
    proc = run_aipc("plan", "--platform", "windows", "--workdir", "C:\\R&D\\b", cwd=tmp_path, clean_env=True)
    assert_one_line_error(proc.returncode, proc.stderr, "--workdir C:\\R&D\\b contains &", "cmd.exe", "fix: use a path",
                          alone=True)
    proc = run_aipc("build-ort", "--platform", "windows", "--ort-source", "C:\\src\\R&D\\ort", cwd=tmp_path,
                    clean_env=True)
    assert_one_line_error(proc.returncode, proc.stderr, "--ort-source", "contains &", alone=True)
    proc = run_aipc("plan", "--platform", "windows", "--json", cwd=tmp_path, clean_env=True,
                    env={"AIPC_WORKDIR": "C:\\R&D\\b"})
    assert_one_line_error(proc.returncode, proc.stderr, "contains &", alone=True)
    assert list(tmp_path.iterdir()) == []  # nothing made


def test_linux_and_plain_windows_paths_are_accepted(tmp_path: Path) -> None:
    assert settings("--platform", "linux", "--workdir", str(tmp_path / "R&D")).workdir.name == "R&D"
    assert str(settings("--platform", "windows", "--workdir", "C:\\Program Files (x86)\\b").workdir).endswith("b")
    entries = json.loads(run_aipc("plan", "--platform", "windows", "--json", "--workdir", "C:\\b", cwd=tmp_path,
                                  clean_env=True).stdout)
    assert entries and entries[0]["cwd"].startswith("C:\\b")
