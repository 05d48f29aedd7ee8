"""aipc doctor on the machines of issue 12 (points 8-15) and the bad facts files of issue 11.

Each test writes the facts of one real-world machine (starting from test_doctor's healthy Windows / Linux AI PCs),
then asserts the verdict and the fix text, or runs the CLI as a user would and asserts the exit code and the one
error line. Collector parts (compiler, pip sources, wheels/, vswhere components) run against files the tests make.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aipc.doctor import checks, windows
from aipc.doctor import probes as collect
from aipc.doctor.checks import GOALS, exit_code, goal_verdicts, run_checks
from aipc.doctor.cli import GOAL_NAMES
from aipc.pins import DEFAULT_PINS, Pins, load_pins
from aipc.platforms.windows import CMD_METACHARACTERS, VS_COMPONENTS, os_wddm
from aipc.proc import Output
from conftest import assert_one_line_error, run_aipc, write_pins
from test_doctor import GIB, healthy_linux, healthy_windows, verdicts

SPECTRE = "Microsoft.VisualStudio.Component.VC.Runtimes.x86.x64.Spectre"


@pytest.fixture(scope="module")
def pins() -> Pins:
    return load_pins(DEFAULT_PINS)


def write_facts(tmp_path: Path, name: str, facts: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(facts), encoding="utf-8")
    return path


def doctor(*args: str) -> Any:
    return run_aipc("doctor", *args, clean_env=True)


def offline(facts: dict[str, Any]) -> dict[str, Any]:
    """The same machine with pip reaching no package source (no index, no wheelhouse)."""
    facts["tools"]["pip"]["sources"] = [{"kind": "index", "url": "https://pypi.org/simple", "ok": False,
                                         "error": "URLError: [Errno -3] Temporary failure in name resolution"}]
    return facts


# --- point 9: memory ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gib", [15.4, 15.5, 15.7, 16.0])
def test_16_gb_laptop_passes_memory(pins: Pins, gib: float) -> None:
    facts = healthy_windows()
    facts["windows"]["os"]["total_memory_kb"] = int(gib * GIB / 1024)
    res = verdicts(facts, pins)["memory"]
    assert res.status == "pass", res
    assert gib == 16.0 or "(a 16 GiB machine: firmware and the integrated GPU reserve the rest)" in res.found
    linux = healthy_linux()
    linux["linux"]["memory_total_bytes"] = int(gib * GIB)
    assert verdicts(linux, pins)["memory"].status == "pass"


def test_memory_thresholds_still_bite(pins: Pins) -> None:
    for gib, status in ((13.5, "warn"), (11.6, "warn"), (7.6, "warn"), (5.7, "fail")):
        facts = healthy_linux()
        facts["linux"]["memory_total_bytes"] = int(gib * GIB)
        res = verdicts(facts, pins)["memory"]
        assert res.status == status, (gib, res)
        assert "--jobs" in res.fix
    facts = healthy_windows()  # the installed size, when recorded, decides
    facts["windows"]["installed_memory_bytes"] = 16 * GIB
    facts["windows"]["os"]["total_memory_kb"] = int(14.2 * GIB / 1024)  # a large iGPU carve-out
    res = verdicts(facts, pins)["memory"]
    assert res.status == "pass" and res.found == "16.0 GiB installed (14.2 GiB visible)"


# --- point 10: WDDM ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("build", "driver", "shown", "not_shown"), [
    (22631, "32.0.101.6129", "WDDM 3.1 (the driver supports 3.2; Windows build 22631 runs 3.1)", "WDDM 3.2"),  # 23H2
    (19045, "31.0.101.5590", "WDDM 2.7 (the driver supports 3.1; Windows build 19045 runs 2.7)", "WDDM 3.1"),  # W10
    (26100, "32.0.101.6129", "WDDM 3.2", "unknown"),                                                       # 24H2
    (22621, "30.0.101.1191", "WDDM 3.0", "supports"),                                                      # old driver
    (27813, "33.0.101.1", "WDDM unknown (the driver supports 3.3; Windows build 27813 is newer", "WDDM 3.3"),
])
def test_wddm_from_os_build_and_driver(pins: Pins, build: int, driver: str, shown: str, not_shown: str) -> None:
    facts = healthy_windows()
    facts["windows"]["os"]["build"] = build
    facts["windows"]["gpus"][0]["driver_version"] = driver
    res = verdicts(facts, pins)
    assert shown in res["GPU"].found and shown in res["DirectX 12"].found, res["GPU"]
    assert not_shown not in res["GPU"].found.replace(shown, "")
    assert res["DirectX 12"].status == "pass"


def test_wddm_unknown_without_the_os_build(pins: Pins) -> None:
    facts = healthy_windows()
    del facts["windows"]["os"]["build"]
    res = verdicts(facts, pins)["GPU"]
    assert "WDDM unknown (the driver supports 3.2; the Windows build is not known)" in res.found
    assert os_wddm(19045) == (2, 7) and os_wddm(9600) is None and os_wddm(True) is None


# --- point 11: WSL ---------------------------------------------------------------------------------------------------

def test_wsl_recognised_from_the_kernel_string_alone(pins: Pins) -> None:
    facts = healthy_linux()
    facts["linux"].update(wsl=False, kernel="5.15.167.4-microsoft-standard-WSL2", kernel_version=[5, 15, 167],
                          intel_vpu_loaded=False, npu_pci=[], accel_devices=[], npu_user_space={})
    facts["host"]["release"] = "5.15.167.4-microsoft-standard-WSL2"
    res = verdicts(facts, pins)
    assert res["OS"].status == "pass" and "(WSL)" in res["OS"].found
    assert res["NPU"].status == "warn" and "WSL2 has no NPU" in res["NPU"].found
    assert all("linux-generic-hwe" not in r.fix for r in res.values())
    # the same kernel without the WSL marker is a real old kernel: the HWE advice stays
    facts["linux"]["kernel"] = facts["host"]["release"] = "5.15.0-125-generic"
    assert "linux-generic-hwe-22.04" in verdicts(facts, pins)["OS"].fix


# --- point 12: Arm64 Windows ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "value"), [
    ("os.architecture", "ARM 64-bit Processor"),
    ("processor_name", "Snapdragon(R) X Elite - X1E78100 - Qualcomm(R) Oryon(TM) CPU"),
    ("processor_identifier", "ARMv8 (64-bit) Family 8 Model 1 Revision 201, Qualcomm Technologies Inc"),
])
def test_arm64_windows_running_x64_python_fails(pins: Pins, key: str, value: str) -> None:
    facts = healthy_windows()
    assert facts["windows"]["processor_architecture"] == "AMD64"  # what x64 Python sees under emulation
    node = facts["windows"]
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    res = verdicts(facts, pins)["architecture"]
    assert res.status == "fail" and "Arm64 Windows" in res.found and "AMD64" in res.found, res
    assert "x86-64" in res.fix
    assert not any(v.ready for v in goal_verdicts(run_checks(facts, pins)))


def test_x64_windows_and_arm_linux(pins: Pins) -> None:
    assert verdicts(healthy_windows(), pins)["architecture"].status == "pass"
    facts = healthy_linux()
    facts["host"]["machine"] = "aarch64"
    assert verdicts(facts, pins)["architecture"].status == "fail"


# --- point 13: no winget on Linux, the compiler, the Spectre component, the build venv -------------------------------

def test_linux_fixes_never_offer_winget(pins: Pins) -> None:
    facts = offline(healthy_linux())
    facts["tools"].update(cmake={"path": "/usr/bin/cmake", "version": "3.25.1"}, ninja={"path": None, "version": None},
                          git={"path": None, "version": None})
    facts["tools"]["cc"] = {"command": "cc", "path": "/usr/bin/cc", "kind": "gcc", "version": "9.4.0"}
    res = verdicts(facts, pins)
    assert {res[n].status for n in ("CMake", "Ninja", "Git", "C++ compiler")} == {"fail"}
    for r in res.values():
        assert "winget" not in r.fix, r
    assert 'pip install "cmake==3.31.6"' in res["CMake"].fix
    win = offline(healthy_windows())
    win["tools"]["cmake"] = {"path": None, "version": None}
    assert "winget install --id Kitware.CMake" in verdicts(win, pins)["CMake"].fix


@pytest.mark.parametrize(("cc", "status", "needle"), [
    ({"kind": "gcc", "version": "9.4.0"}, "fail", "genai's CMakeLists.txt requires GCC >= 11"),
    ({"kind": "gcc", "version": "10.5.0"}, "fail", "< 11"),
    ({"kind": "gcc", "version": "11.4.0"}, "pass", ">= 11"),
    ({"kind": "clang", "version": "14.0.0"}, "pass", "no Clang minimum"),
    ({"kind": None, "version": "1.0"}, "warn", "not GCC or Clang"),
    ({"path": None}, "fail", "no C compiler found"),
])
def test_linux_compiler(pins: Pins, cc: dict[str, Any], status: str, needle: str) -> None:
    facts = healthy_linux()
    facts["tools"]["cc"].update(cc)
    res = verdicts(facts, pins)["C++ compiler"]
    assert res.status == status and needle in res.found, res
    if status == "fail":
        assert "g++-11" in res.fix or "build-essential" in res.fix
        blocked = {v.goal for v in goal_verdicts(run_checks(facts, pins)) if not v.ready}
        assert blocked == {"build-dml", "build-npu"}


def test_compiler_on_windows_is_the_visual_studio_check(pins: Pins) -> None:
    res = verdicts(healthy_windows(), pins)
    assert res["C++ compiler"].status == "skip" and "Visual Studio C++" in res["C++ compiler"].found
    assert "14.40" in res["C++ compiler"].found


def test_spectre_component_missing_fails_the_dml_build(pins: Pins) -> None:
    facts = healthy_windows()
    inst = facts["windows"]["visual_studio"]["instances"][0]
    inst["components"][SPECTRE] = False
    res = verdicts(facts, pins)["Visual Studio components"]
    assert res.status == "fail" and SPECTRE in res.found and "MSB8040" in res.found and "/Qspectre" in res.found
    assert f"modify --installPath \"{inst['installation_path']}\" --add {SPECTRE} --passive" in res.fix
    assert "bootstrap-windows.ps1" in res.fix
    verdict = {v.goal: v for v in goal_verdicts(run_checks(facts, pins))}
    assert not verdict["build-dml"].ready and verdict["verify"].ready and verdict["build-npu"].ready
    del inst["components"]  # facts from an aipc that did not record components
    res = verdicts(facts, pins)["Visual Studio components"]
    assert res.status == "skip" and "older aipc" in res.found
    assert verdicts(healthy_windows(), pins)["Visual Studio components"].status == "pass"


def test_spectre_is_in_the_component_list_and_the_vs_fix() -> None:
    assert SPECTRE in dict(VS_COMPONENTS)
    facts = healthy_windows()
    facts["windows"]["visual_studio"]["instances"][0]["has_vc_tools"] = False
    res = verdicts(facts, load_pins())["Visual Studio C++"]
    assert res.status == "fail" and f"--add {SPECTRE}" in res.fix


@pytest.mark.parametrize(("change", "status", "needle"), [
    ({"ensurepip": False}, "fail", "no `ensurepip` module"),
    ({"venv": False}, "fail", "no `venv` module"),
    ({"sources": [{"kind": "index", "url": "https://pypi.org/simple", "ok": False, "error": "timeout"}]},
     "warn", "pip can reach no package source"),
    ({"sources": [{"kind": "index", "url": "https://pypi.org/simple", "ok": False, "error": "timeout"},
                  {"kind": "find-links", "url": "/srv/wheelhouse", "ok": True,
                   "build_tools": {"cmake": ["cmake-3.31.6-py3-none-win_amd64.whl"],
                                   "ninja": ["ninja-1.13.0-py3-none-win_amd64.whl", "ninja-1.11.1.tar.gz"]}}]},
     "pass", "1 of 2"),
    ({"sources": [{"kind": "find-links", "url": "/srv/wheelhouse", "ok": True,
                   "build_tools": {"cmake": ["cmake-4.1.0-py3-none-win_amd64.whl"], "ninja": ["ninja-1.13.0.tar.gz"]}}],
      "no_index": True}, "warn", "none holds cmake==3.31.6"),
    ({"sources": [{"kind": "extra-index", "url": "file:///opt/pypi/simple", "ok": True, "build_tools": {}}]},
     "warn", "none holds cmake==3.31.6, ninja==1.13.0"),
    ({"sources": [], "no_index": True}, "warn", "none configured"),
])
def test_build_venv(pins: Pins, change: dict[str, Any], status: str, needle: str) -> None:
    facts = healthy_linux()
    facts["tools"]["pip"].update(change)
    res = verdicts(facts, pins)["build venv (pip)"]
    assert res.status == status and needle in res.found, res
    if status == "fail":
        assert "python3-venv" in res.fix
    if status == "warn" and "none holds" in res.found:
        assert "pip download" in res.fix and "-d DIR" in res.fix
    elif status == "warn":
        assert "PIP_FIND_LINKS" in res.fix and "requirements-dev.txt" in res.found


def test_cmake_and_ninja_against_the_build_tools_pins(pins: Pins) -> None:
    assert pins.build_tools == {"cmake": "3.31.6", "ninja": "1.13.0"}
    facts = healthy_linux()
    facts["tools"]["cmake"]["version"] = "3.25.1"
    res = verdicts(facts, pins)["CMake"]
    assert res.status == "warn" and "the build venv installs cmake==3.31.6" in res.found
    res = verdicts(offline(facts), pins)["CMake"]
    assert res.status == "fail" and "the build venv cannot be made" in res.found
    facts = offline(healthy_linux())  # 3.30.1 on PATH, no build venv: the builds use it, said so
    res = verdicts(facts, pins)["CMake"]
    assert res.status == "pass" and "instead of the pinned 3.31.6" in res.found
    facts["tools"]["cmake"]["version"] = "3.31.6"
    assert "the pinned version" in verdicts(facts, pins)["CMake"].found


# --- point 8: cmd metacharacters in the build path -----------------------------------------------------------------

@pytest.mark.parametrize("char", list(CMD_METACHARACTERS))
def test_workdir_with_cmd_metacharacters_fails_on_windows(pins: Pins, char: str) -> None:
    facts = healthy_windows()
    facts["host"]["workdir"] = f"C:\\R{char}D\\b"
    res = verdicts(facts, pins)["build path characters"]
    assert res.status == "fail" and char in res.found and "build.bat" in res.found
    assert "--workdir C:\\b" in res.fix
    assert verdicts(healthy_windows(), pins)["build path characters"].status == "pass"
    linux = healthy_linux()
    linux["host"]["workdir"] = "/home/a/R&D"
    assert verdicts(linux, pins)["build path characters"].status == "skip"


# --- point 14: Python 3.13 and the NPU library ----------------------------------------------------------------------

def test_python_313_npu_warning_says_the_real_range_and_goes_with_aipcs_wheel(pins: Pins) -> None:
    facts = healthy_windows()
    facts["python"].update(version="3.13.1", version_info=[3, 13, 1])
    res = verdicts(facts, pins)["Python for the NPU library"]
    assert res.status == "warn"
    assert "cover CPython 3.8-3.12" in res.found and "aipc's minimum 3.10 that is 3.10-3.12" in res.found
    assert "--python <python3.12>" in res.fix
    # a wheel for the other platform, or of another project, does not count
    facts["runtime"]["aipc_wheels"]["files"] = ["intel_npu_acceleration_library-1.4.0-py3-none-linux_x86_64.whl",
                                                "intel_npu_acceleration_library-1.4.0-cp312-cp312-win_amd64.whl",
                                                "onnxruntime_genai-0.15.2-py3-none-win_amd64.whl"]
    assert verdicts(facts, pins)["Python for the NPU library"].status == "warn"
    facts["runtime"]["aipc_wheels"]["files"].append("intel_npu_acceleration_library-1.4.0-py3-none-win_amd64.whl")
    res = verdicts(facts, pins)["Python for the NPU library"]
    assert res.status == "pass" and "intel_npu_acceleration_library-1.4.0-py3-none-win_amd64.whl" in res.found
    linux = healthy_linux()
    linux["python"]["version"] = "3.13.0"
    linux["runtime"]["aipc_wheels"]["files"] = ["intel_npu_acceleration_library-1.4.0-py3-none-linux_x86_64.whl"]
    assert verdicts(linux, pins)["Python for the NPU library"].status == "pass"


def test_collect_aipc_wheels(tmp_path: Path) -> None:
    (tmp_path / "intel_npu_acceleration_library-1.4.0-py3-none-linux_x86_64.whl").write_bytes(b"PK")
    (tmp_path / "README.md").write_text("x")
    got = collect.collect_aipc_wheels(tmp_path)
    assert got == {"dir": str(tmp_path), "exists": True,
                   "files": ["intel_npu_acceleration_library-1.4.0-py3-none-linux_x86_64.whl"]}
    assert collect.collect_aipc_wheels(tmp_path / "none")["files"] == []


# --- point 15: per-goal verdicts and --for ---------------------------------------------------------------------------

def test_goal_names_agree() -> None:
    assert tuple(GOALS) == GOAL_NAMES
    for _, name, _ in checks.CHECKS:
        assert checks.CHECK_GOALS[name] and set(checks.CHECK_GOALS[name]) <= set(GOALS), name


def linux_old_cmake_offline() -> dict[str, Any]:
    """The issue's machine: verify passes, but CMake 3.25 is too old for building (and no build venv)."""
    facts = offline(healthy_linux())
    facts["tools"]["cmake"] = {"path": "/usr/bin/cmake", "version": "3.25.1"}
    facts["tools"]["pip"]["sources"].append({"kind": "find-links", "url": "/home/alice/wheelhouse", "ok": False,
                                             "error": "no such file or folder"})
    return facts


def test_goal_verdicts_of_the_old_cmake_machine(pins: Pins) -> None:
    results = run_checks(linux_old_cmake_offline(), pins)
    verdict = {v.goal: v for v in goal_verdicts(results)}
    assert verdict["verify"].ready and verdict["npu"].ready and verdict["build-npu"].ready
    assert not verdict["build-dml"].ready and verdict["build-dml"].failed == ("CMake",)
    assert exit_code(results) == 1 and exit_code(results, ("verify",)) == 0
    assert exit_code(results, ("verify", "build-dml")) == 1


def test_cli_for_goal_decides_the_exit_code_and_the_summary_comes_first(tmp_path: Path) -> None:
    facts = write_facts(tmp_path, "old-cmake.json", linux_old_cmake_offline())
    proc = doctor("--facts", str(facts))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "goals"
    assert re.match(r"  verify\s+ready", lines[1]) and re.match(r"  build-dml\s+NOT READY: fix CMake", lines[2])
    assert lines.index("goals") < next(i for i, ln in enumerate(lines) if ln.startswith("category"))
    for args, code in ((["--for", "verify"], 0), (["--for", "build-dml"], 1), (["--for", "verify,npu"], 0),
                       (["--for", "verify", "--for", "build-npu"], 0), (["--for", "npu,build-dml"], 1)):
        proc = doctor("--facts", str(facts), *args, "--json", str(tmp_path / "r.json"))
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["exit_code"] == code and report["goals"]["build-dml"]["failed"] == ["CMake"]
        assert report["goals"]["verify"]["ready"] is True
    proc = doctor("--facts", str(facts), "--for", "verify")
    assert "(--for verify decides the exit code)" in proc.stdout and "[not asked for]" in proc.stdout


@pytest.mark.parametrize("goal", ["build", "verify,", "NPU", ""])
def test_cli_unknown_goal_is_bad_input(tmp_path: Path, goal: str) -> None:
    facts = write_facts(tmp_path, "h.json", healthy_linux())
    proc = doctor("--facts", str(facts), "--for", goal)
    assert_one_line_error(proc.returncode, proc.stderr, "is not a goal", "verify, build-dml, build-npu, npu", code=2)


# --- issue 11: facts files parsed with bounds, outputs never inputs, bad --pins ---------------------------------------

@pytest.mark.parametrize(("content", "needle"), [
    ("[" * 100_000 + "]" * 100_000, "nested 100000 levels deep"),
    ('{"schema": 1, "n": ' + "7" * 5000 + "}", "an integer of 5000 digits"),
    ('{"schema": 1, "x": NaN}', "NaN (not a JSON number)"),
    ('{"schema": 1, "x": -Infinity}', "-Infinity (not a JSON number)"),
    ('{"schema": 1, "x": 1e999}', "out of range"),
    ('{"schema": true}', "unsupported schema true"),
    ('{"schema": 1.0}', "unsupported schema 1.0"),
    ('{"schema": "1"}', 'unsupported schema "1"'),
])
def test_cli_hostile_facts_files_are_one_line(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    proc = doctor("--facts", str(path), "--json", str(tmp_path / "out.json"))
    assert_one_line_error(proc.returncode, proc.stderr, "facts file", needle, code=2, alone=True)
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_cli_reads_bom_and_utf16_facts(tmp_path: Path, encoding: str) -> None:
    """What PowerShell's ``>`` (UTF-16 LE with a BOM) or Notepad (UTF-8 with a BOM) write."""
    path = tmp_path / "facts.json"
    facts = healthy_windows()
    facts["windows"]["visual_studio"]["instances"][0]["display_name"] = "Visual Studio Community 2022 é ü"
    path.write_bytes(json.dumps(facts, ensure_ascii=False).encode(encoding))
    proc = doctor("--facts", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "Visual Studio Community 2022 é ü" in proc.stdout


def test_cli_not_utf_text_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_bytes(b"{\"schema\": 1, \"x\": \"\xff\xfe\xfa\"}")
    proc = doctor("--facts", str(path))
    assert_one_line_error(proc.returncode, proc.stderr, "neither UTF-8 nor UTF-16", code=2)


def test_cli_output_may_not_be_an_input(tmp_path: Path) -> None:
    facts = write_facts(tmp_path, "facts.json", healthy_linux())
    before = facts.read_bytes()
    for args in (["--json", str(facts)], ["--save-facts", str(facts)],
                 ["--json", str(tmp_path / "." / "facts.json")]):
        proc = doctor("--facts", str(facts), *args)
        assert_one_line_error(proc.returncode, proc.stderr, "is also the --facts input", code=2, alone=True)
        assert facts.read_bytes() == before
    pins_file = write_pins(tmp_path)
    proc = doctor("--facts", str(facts), "--pins", str(pins_file), "--json", str(pins_file))
    assert_one_line_error(proc.returncode, proc.stderr, "is also the --pins input", code=2)
    proc = doctor("--facts", str(facts), "--json", str(tmp_path / "a.json"), "--save-facts", str(tmp_path / "a.json"))
    assert_one_line_error(proc.returncode, proc.stderr, "name the same file", code=2)
    proc = doctor("--facts", str(facts), "--json", str(tmp_path))
    assert_one_line_error(proc.returncode, proc.stderr, "is a folder", code=2)
    assert facts.read_bytes() == before


def test_cli_unwritable_json_is_one_line(tmp_path: Path) -> None:
    facts = write_facts(tmp_path, "facts.json", healthy_linux())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = doctor("--facts", str(facts), "--json", str(blocker / "sub" / "r.json"))
    # refused before the work or after the verdicts were printed: either way one line naming the path, exit 2
    assert_one_line_error(proc.returncode, proc.stderr, str(blocker), code=2)
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("kind", ["missing", "not-toml", "bad-schema"])
def test_cli_bad_pins_is_bad_input(tmp_path: Path, kind: str) -> None:
    facts = write_facts(tmp_path, "facts.json", healthy_linux())
    if kind == "missing":
        pins_file = tmp_path / "nope.toml"
    elif kind == "not-toml":
        pins_file = tmp_path / "p.toml"
        pins_file.write_text("[toolchain\n", encoding="utf-8")
    else:
        pins_file = write_pins(tmp_path, **{"schema = 1\n": "schema = 7\n"})
    proc = doctor("--facts", str(facts), "--pins", str(pins_file))
    assert_one_line_error(proc.returncode, proc.stderr, str(pins_file), code=2, alone=True)
    proc = run_aipc("doctor", "--facts", str(facts), env={"AIPC_PINS": str(pins_file)}, clean_env=True)
    assert_one_line_error(proc.returncode, proc.stderr, code=2)


def test_json_report_never_holds_nan(tmp_path: Path) -> None:
    from aipc.doctor.facts import facts_json, write_json
    from aipc.errors import AipcError

    with pytest.raises(AipcError, match="cannot write JSON"):
        facts_json({"x": float("nan")})
    write_json(tmp_path / "ok.json", {"x": 1.5}, "--json")
    assert json.loads((tmp_path / "ok.json").read_text()) == {"x": 1.5}


# --- the collectors behind the new facts -----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("gcc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0\nCopyright (C) 2021 Free Software Foundation, Inc.", ("gcc", "11.4.0")),
    ("cc (Debian 12.2.0-14+deb12u1) 12.2.0\nCopyright (C) 2022 Free Software Foundation, Inc.", ("gcc", "12.2.0")),
    ("gcc (GCC) 9.4.0", ("gcc", "9.4.0")),
    ("Ubuntu clang version 14.0.0-1ubuntu1.1\nTarget: x86_64-pc-linux-gnu", ("clang", "14.0.0")),
    ("icx (R) oneAPI DPC++/C++ Compiler 2024.2.0", (None, "2024.2.0")),
])
def test_parse_compiler(text: str, expected: tuple[str | None, str | None]) -> None:
    assert collect.parse_compiler(text) == expected


def test_collect_cc_runs_the_compiler_cmake_would_pick(tmp_path: Path) -> None:
    fake = tmp_path / "gcc-9"
    fake.write_text("#!/bin/sh\necho 'gcc-9 (Ubuntu 9.4.0-1ubuntu1~20.04.2) 9.4.0'\n")
    fake.chmod(0o755)
    got = collect.collect_cc({"CC": str(fake)})
    assert got == {"command": str(fake), "path": str(fake), "kind": "gcc", "version": "9.4.0"}
    assert collect.collect_cc({"CC": str(tmp_path / "missing-cc")})["path"] is None


def test_pip_settings_from_files_and_environment(tmp_path: Path) -> None:
    g = tmp_path / "etc" / "pip.conf"
    g.parent.mkdir()
    g.write_text("[global]\nindex-url = https://mirror.example/simple\nfind-links = /a /b\n")
    u = tmp_path / "user.conf"
    u.write_text("[install]\nno-index = true\n[global]\nextra-index-url = file:///x/simple\n")
    s = collect.pip_settings({}, [g, u, tmp_path / "absent.conf"])
    assert s["index_url"] == "https://mirror.example/simple" and s["find_links"] == ["/a", "/b"]
    assert s["no_index"] is True and s["extra_index_urls"] == ["file:///x/simple"]
    assert s["files"] == [str(g), str(u)]
    s = collect.pip_settings({"PIP_INDEX_URL": "https://env/simple", "PIP_NO_INDEX": "0", "PIP_FIND_LINKS": "/w"},
                             [g, u])
    assert s["index_url"] == "https://env/simple" and not s["no_index"] and s["find_links"] == ["/w"]
    assert collect.pip_settings({}, [])["index_url"] == collect.DEFAULT_INDEX
    files = collect.pip_config_files({"HOME": "/h", "PIP_CONFIG_FILE": "/c.conf"}, windows=False, prefix="/p")
    assert files[-2:] == [Path("/p/pip.conf"), Path("/c.conf")] and Path("/h/.config/pip/pip.conf") in files
    wfiles = collect.pip_config_files({"APPDATA": "C:\\U\\AppData\\Roaming"}, windows=True, prefix="C:\\Py")
    assert Path("C:\\U\\AppData\\Roaming") / "pip" / "pip.ini" in wfiles


def test_probe_local_sources_and_collect_pip(tmp_path: Path) -> None:
    assert collect.probe_source("find-links", str(tmp_path))["ok"] is True
    assert collect.probe_source("extra-index", tmp_path.as_uri())["ok"] is True
    missing = collect.probe_source("find-links", str(tmp_path / "gone"))
    assert missing["ok"] is False and missing["error"] == "no such file or folder"
    bad = collect.probe_source("index", "http://127.0.0.1:9/simple", timeout=2)  # discard port: refused
    assert bad["ok"] is False and bad["error"]
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nindex-url = https://idx.example/simple\nfind-links = {tmp_path}\n")
    seen: list[tuple[str, str]] = []

    def probe(kind: str, url: str, cert: str | None) -> dict[str, Any]:
        seen.append((kind, url))
        return {"kind": kind, "url": url, "ok": kind == "find-links"}

    got = collect.collect_pip({"PIP_CONFIG_FILE": str(conf), "HOME": str(tmp_path)}, windows=False, probe=probe)
    assert seen == [("index", "https://idx.example/simple"), ("find-links", str(tmp_path))]
    assert got["venv"] is True and got["ensurepip"] in (True, False) and str(conf) in got["config_files"]


def test_collect_visual_studio_records_every_component(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vswhere = tmp_path / "vswhere.exe"
    vswhere.write_bytes(b"")
    monkeypatch.setattr(windows, "vswhere_exe", lambda environ=None: str(vswhere))
    inst = {"instanceId": "a1", "installationVersion": "17.12.35527.113", "displayName": "VS 2022",
            "installationPath": str(tmp_path / "vs")}

    def fake(argv: list[str], timeout: float = 0, **_: Any) -> Output:
        if "-requires" in argv and argv[argv.index("-requires") + 1] == SPECTRE:
            return Output(0, "[]", "")  # the Spectre libraries are not installed
        if "-requires" in argv and argv[argv.index("-requires") + 1] == "Microsoft.VisualStudio.Workload.VCTools":
            return Output(1, "", "vswhere crashed")  # unknown: left out, not "missing"
        return Output(0, json.dumps([inst]), "")

    vs = windows.collect_visual_studio(fake)
    comps = vs["instances"][0]["components"]
    assert comps == {"Microsoft.VisualStudio.Component.VC.Tools.x86.x64": True, SPECTRE: False}
    assert vs["instances"][0]["has_vc_tools"] is True


def test_windows_script_records_the_processor_and_installed_memory() -> None:
    script = windows.POWERSHELL_SCRIPT
    assert "$r.processor_identifier = $env:PROCESSOR_IDENTIFIER" in script
    assert "Win32_Processor" in script and "Win32_PhysicalMemory" in script
    out = windows.parse_powershell_output(json.dumps({
        "errors": {}, "os": {"architecture": "ARM 64-bit Processor", "build": 26100},
        "processor_architecture": "AMD64", "processor_name": "Snapdragon(R) X Elite",
        "installed_memory_bytes": 17179869184,
        "npu": [], "gpus": [], "ort_dlls": []}))
    assert out["processor_name"].startswith("Snapdragon") and out["installed_memory_bytes"] == 16 * GIB


def test_docs_goal_table_matches_the_checks() -> None:
    """docs/doctor.md's goal table names, per goal, exactly the checks that can block it."""
    from conftest import ROOT

    text = (ROOT / "docs" / "doctor.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| [^|]+ \| (.+) \|$", text, flags=re.M))
    assert set(rows) == set(GOALS)
    for goal, names in rows.items():
        listed = {n.strip() for n in re.split(r", (?![^()]*\))", names)}
        assert listed == {n for n, g in checks.CHECK_GOALS.items() if goal in g}, goal


def test_local_sources_list_the_build_tools(tmp_path: Path) -> None:
    house = tmp_path / "house"
    house.mkdir()
    for name in ("cmake-3.31.6-py3-none-manylinux2014_x86_64.whl", "ninja-1.13.0.tar.gz", "cmake_format-0.6.13.tar.gz",
                 "numpy-2.2.1-cp312-cp312-win_amd64.whl"):
        (house / name).write_bytes(b"")
    got = collect.probe_source("find-links", str(house))
    assert got["ok"] and got["build_tools"] == {"cmake": ["cmake-3.31.6-py3-none-manylinux2014_x86_64.whl"],
                                                "ninja": ["ninja-1.13.0.tar.gz"]}
    index = tmp_path / "simple"
    (index / "cmake").mkdir(parents=True)
    (index / "cmake" / "index.html").write_text(
        '<a href="../../files/cmake-3.31.6-py3-none-win_amd64.whl#sha256=ab">cmake-3.31.6-py3-none-win_amd64.whl</a>\n'
        '<a href="https://files.example/cmake-4.1.0.tar.gz">cmake-4.1.0.tar.gz</a>\n')
    got = collect.probe_source("extra-index", index.as_uri())
    assert got["build_tools"] == {"cmake": ["cmake-3.31.6-py3-none-win_amd64.whl", "cmake-4.1.0.tar.gz"], "ninja": []}


def test_collect_pip_sees_aipc_find_links_and_offline(tmp_path: Path) -> None:
    """aipc build --find-links (AIPC_FIND_LINKS) adds the wheelhouse; with AIPC_OFFLINE it is the only source."""
    house = tmp_path / "house"
    house.mkdir()
    (house / "cmake-3.31.6-py3-none-manylinux2014_x86_64.whl").write_bytes(b"")
    (house / "ninja-1.13.0-py3-none-manylinux2014_x86_64.whl").write_bytes(b"")
    env = {"HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path / "none"), "AIPC_FIND_LINKS": str(house)}
    kinds = [(s["kind"], s["url"]) for s in collect.collect_pip(env, windows=False, probe=lambda k, u, c: {
        "kind": k, "url": u, "ok": False})["sources"]]
    assert kinds == [("index", collect.DEFAULT_INDEX), ("find-links", str(house))]
    got = collect.collect_pip({**env, "AIPC_OFFLINE": "1"}, windows=False)
    assert got["no_index"] is True and [s["url"] for s in got["sources"]] == [str(house)]
    facts = healthy_linux()
    facts["tools"]["pip"] = got
    res = verdicts(facts, load_pins(DEFAULT_PINS))["build venv (pip)"]
    assert res.status == "pass" and "cmake==3.31.6, ninja==1.13.0" in res.found
    (house / "ninja-1.13.0-py3-none-manylinux2014_x86_64.whl").unlink()
    facts["tools"]["pip"] = collect.collect_pip({**env, "AIPC_OFFLINE": "1"}, windows=False)
    res = verdicts(facts, load_pins(DEFAULT_PINS))["build venv (pip)"]
    assert res.status == "warn" and "none holds ninja==1.13.0" in res.found
    assert "aipc build --find-links DIR" in res.fix
