"""scripts/bootstrap-{linux.sh,windows.ps1}: versions from the pins file, dry runs, idempotence, bad input.

The Linux script really runs here: in --dry-run against this machine, and for real against fake system tools the
tests put on PATH (dpkg-query, apt-get, sudo, cmake, ninja, a venv python) that record how they were called.
The PowerShell script cannot run on Linux; it is checked statically (and parsed by pwsh where pwsh is installed).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from aipc.pins import DEFAULT_PINS, load_pins
from conftest import ROOT

LINUX = ROOT / "scripts" / "bootstrap-linux.sh"
WINDOWS = ROOT / "scripts" / "bootstrap-windows.ps1"
PINS = DEFAULT_PINS
BASH = shutil.which("bash")

needs_bash = pytest.mark.skipif(BASH is None, reason="bash is not installed")


def pins() -> dict[str, dict[str, object]]:
    """The shipped pins by section, as the scripts read them (``pin SECTION KEY`` / ``Get-Pin SECTION KEY``)."""
    p = load_pins(DEFAULT_PINS)
    return {"toolchain": dict(p.toolchain), "build_tools": dict(p.build_tools),
            "python": {"wheel_versions": list(p.wheel_pythons)}, "npu": p.npu,
            "drivers": dict(p.drivers), "releases": dict(p.releases), "nuget": dict(p.nuget),
            "onnxruntime_genai": {"version": p.onnxruntime_genai.version}}


def strip_comments(text: str, powershell: bool) -> str:
    """Code without comments (good enough for these scripts: no '#' inside their version-bearing strings)."""
    if powershell:
        text = re.sub(r"<#.*?#>", "", text, flags=re.S)
    return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())


def pin_keys(path: Path) -> set[tuple[str, str]]:
    """The (section, key) pairs a bootstrap script reads from the pins file."""
    code = strip_comments(path.read_text(encoding="utf-8"), path.suffix == ".ps1")
    if path.suffix == ".ps1":
        found = re.findall(r"Get-Pin\s+'([A-Za-z0-9_]+)'\s+'([A-Za-z0-9_.-]+)'", code)
    else:
        found = re.findall(r"\bpin\s+([A-Za-z0-9_]+)\s+([A-Za-z0-9_.-]+)", code)
    return set(found)


def pinned_literals() -> set[str]:
    p = load_pins(DEFAULT_PINS)
    return {*p.toolchain.values(), *p.wheel_pythons, *p.drivers.values(), *p.build_tools.values()}


def hard_coded(code: str, values: set[str]) -> list[str]:
    """The pinned values written as literals in ``code`` (a version, not part of a longer one or of a name)."""
    return sorted(v for v in values if re.search(rf"(?<![\w.]){re.escape(v)}(?![\w]|\.\d)", code))


@pytest.mark.parametrize("script", [LINUX, WINDOWS], ids=["linux", "windows"])
def test_pin_references_resolve(script: Path) -> None:
    data = pins()
    keys = pin_keys(script)
    assert ("toolchain", "cmake_min") in keys and ("toolchain", "ninja_min") in keys
    # what they install when the system's is missing or too old: the [build_tools] version the builds run with
    assert ("build_tools", "cmake") in keys and ("build_tools", "ninja") in keys
    for section, key in keys:
        assert section in data, f"{script.name} reads [{section}], which pins.toml does not have"
        assert key in data[section], f"{script.name} reads {section}.{key}, which pins.toml does not have"


def test_windows_reads_every_toolchain_pin_it_installs() -> None:
    keys = pin_keys(WINDOWS)
    for key in ("visual_studio", "visual_studio_year", "msvc_toolset_min", "windows_sdk_min", "python_min",
                "python_max"):
        assert ("toolchain", key) in keys, key
    assert ("python", "wheel_versions") in keys


@pytest.mark.parametrize("script", [LINUX, WINDOWS], ids=["linux", "windows"])
def test_no_hard_coded_pinned_versions(script: Path) -> None:
    code = strip_comments(script.read_text(encoding="utf-8"), script.suffix == ".ps1")
    found = hard_coded(code, pinned_literals())
    assert not found, f"{script.name} hard-codes the pinned values {found}: read them from pins.toml instead"


def test_literal_checker_catches_a_literal(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text('# cmake 3.28 in a comment is fine\nCMAKE_MIN="3.28"\n', encoding="utf-8")
    code = strip_comments(bad.read_text(encoding="utf-8"), powershell=False)
    assert hard_coded(code, {"3.28", "1.11"}) == ["3.28"]
    # not a hit: a longer version, a version inside a name, the value only in a comment
    assert hard_coded('X="3.28.1"; Y="v13.28"; Z=py3.28x\n', {"3.28"}) == []
    assert hard_coded(strip_comments("# 3.28\n", powershell=False), {"3.28"}) == []
    assert pin_keys(bad) == set()


# --- Linux: syntax, dry run, fake-tool runs, bad input -------------------------------------------------------------


@needs_bash
def test_linux_syntax() -> None:
    subprocess.run([BASH, "-n", str(LINUX)], check=True, timeout=30)  # type: ignore[list-item]


def run_linux(*args: str, env: dict[str, str] | None = None, path_first: Path | None = None
              ) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("AIPC_PINS", "AIPC_OS_RELEASE")}
    full_env.update(env or {})
    if path_first is not None:
        full_env["PATH"] = f"{path_first}{os.pathsep}{full_env.get('PATH', '')}"
    return subprocess.run([BASH, str(LINUX), *args], capture_output=True, text=True, timeout=60,  # type: ignore[list-item]
                          env=full_env)


@needs_bash
def test_linux_dry_run_on_this_machine(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    proc = run_linux("--dry-run", "--venv", str(venv))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    tc = pins()["toolchain"]
    assert f"cmake >= {tc['cmake_min']}, ninja >= {tc['ninja_min']}" in out
    assert f"Python {tc['python_min']} - {tc['python_max']}" in out
    assert f"would run: python3 -m venv {venv}" in out
    assert f"would run: {venv}/bin/python -m pip install -e {ROOT}" in out
    assert f"would run: {venv}/bin/python -m aipc doctor" in out
    assert "github.com/intel/linux-npu-driver/releases" in out and "render" in out and "/dev/accel/accel0" in out
    assert not venv.exists(), "a dry run created the venv"


def _exe(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def fake_system(tmp_path: Path) -> dict[str, Path]:
    """Fake dpkg-query (nothing installed), apt-get/sudo (record their argv), old cmake/ninja, and a fake venv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    _exe(bin_dir / "dpkg-query", "exit 1\n")
    _exe(bin_dir / "apt-get", f'echo "apt-get $*" >> {log}\n')
    _exe(bin_dir / "sudo", f'echo "sudo $*" >> {log}\n"$@"\n')
    _exe(bin_dir / "cmake", 'echo "cmake version 3.22.1"\n')
    _exe(bin_dir / "ninja", 'echo "1.10.1"\n')
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    # the venv python: `-c import aipc` succeeds, pip records, `-m aipc doctor` records and exits 3
    _exe(venv / "bin" / "python", (
        f'case "$*" in\n'
        f'  "-c import aipc") exit 0 ;;\n'
        f'  "-m aipc doctor") echo "doctor sees cmake=$(command -v cmake)" >> {log}\n'
        f'    echo "doctor $*" >> {log}; exit 3 ;;\n'
        f'  *) echo "venv-python $*" >> {log} ;;\n'
        f'esac\n'
    ))
    custom = tmp_path / "pins.toml"
    text = PINS.read_text(encoding="utf-8")
    text = re.sub(r'^cmake_min = ".*"', 'cmake_min = "3.97"', text, flags=re.M)
    text = re.sub(r'^ninja_min = ".*"', 'ninja_min = "1.98"', text, flags=re.M)
    text = re.sub(r'^cmake = ".*"', 'cmake = "3.97.1"', text, flags=re.M)  # [build_tools]
    text = re.sub(r'^ninja = ".*"', 'ninja = "1.98.1"', text, flags=re.M)
    custom.write_text(text, encoding="utf-8")
    osr = tmp_path / "os-release"
    osr.write_text('ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n', encoding="utf-8")
    return {"bin": bin_dir, "log": log, "venv": venv, "pins": custom, "os_release": osr}


@needs_bash
def test_linux_dry_run_plans_apt_and_pip_from_the_pins(fake_system: dict[str, Path]) -> None:
    f = fake_system
    proc = run_linux("--dry-run", "--pins", str(f["pins"]), "--venv", str(f["venv"]),
                     env={"AIPC_OS_RELEASE": str(f["os_release"])}, path_first=f["bin"])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    sudo = "" if os.geteuid() == 0 else "sudo "
    assert f"would run: {sudo}apt-get update" in out
    apt = next(line for line in out.splitlines() if "apt-get install" in line)
    for pkg in ("python3-venv", "git", "cmake", "ninja-build", "build-essential"):
        assert f" {pkg}" in apt
    # versions from the (custom) pins file, not from the script
    assert "cmake >= 3.97, ninja >= 1.98" in out
    assert "cmake 3.22.1 is older than the pinned 3.97" in out
    # an exact [build_tools] version, never a floating `cmake>=MIN`
    assert f"would run: {f['venv']}/bin/python -m pip install cmake==3.97.1 ninja==1.98.1" in out
    assert not f["log"].exists(), "a dry run called apt-get, sudo, pip or doctor:\n" + f["log"].read_text()


@needs_bash
def test_linux_real_run_with_fake_tools(fake_system: dict[str, Path]) -> None:
    f = fake_system
    proc = run_linux("--pins", str(f["pins"]), "--venv", str(f["venv"]),
                     env={"AIPC_OS_RELEASE": str(f["os_release"])}, path_first=f["bin"])
    calls = f["log"].read_text(encoding="utf-8").splitlines()
    assert proc.returncode == 3, proc.stdout + proc.stderr  # aipc doctor's exit code is passed on
    assert any(c.startswith("apt-get install -y --no-install-recommends") and "ninja-build" in c for c in calls)
    assert "venv-python -m pip install cmake==3.97.1 ninja==1.98.1" in calls
    assert calls[-1] == "doctor -m aipc doctor"
    assert not any("pip install -e" in c for c in calls), "aipc already importable: no reinstall (idempotent)"


@needs_bash
def test_linux_second_run_skips_what_is_there(fake_system: dict[str, Path], tmp_path: Path) -> None:
    f = fake_system
    _exe(f["bin"] / "dpkg-query", 'echo "install ok installed"\n')
    _exe(f["venv"] / "bin" / "cmake", 'echo "cmake version 3.97.0"\n')
    _exe(f["venv"] / "bin" / "ninja", 'echo "1.98.0"\n')
    proc = run_linux("--pins", str(f["pins"]), "--venv", str(f["venv"]), "--no-doctor",
                     env={"AIPC_OS_RELEASE": str(f["os_release"])}, path_first=f["bin"])
    assert proc.returncode == 0, proc.stderr
    assert not f["log"].exists(), f["log"].read_text()
    assert "ok: cmake 3.97.0 in" in proc.stdout and "ok: build-essential is installed" in proc.stdout


@needs_bash
def test_linux_doctor_sees_the_venv_tools(fake_system: dict[str, Path]) -> None:
    """cmake/ninja installed into the venv (the distribution's are too old) are the ones doctor checks."""
    f = fake_system
    _exe(f["venv"] / "bin" / "cmake", 'echo "cmake version 3.97.0"\n')
    _exe(f["venv"] / "bin" / "ninja", 'echo "1.98.0"\n')
    proc = run_linux("--pins", str(f["pins"]), "--venv", str(f["venv"]),
                     env={"AIPC_OS_RELEASE": str(f["os_release"])}, path_first=f["bin"])
    assert proc.returncode == 3, proc.stdout + proc.stderr
    calls = f["log"].read_text(encoding="utf-8").splitlines()
    assert f"doctor sees cmake={f['venv']}/bin/cmake" in calls, calls


@needs_bash
@pytest.mark.parametrize(
    ("args", "env_key", "message"),
    [
        (["--frobnicate"], None, "unknown option '--frobnicate'"),
        (["--pins", "/nonexistent/pins.toml"], None, "pins file /nonexistent/pins.toml does not exist"),
        ([], "no_key", "has no key 'cmake_min' in [toolchain]"),
        ([], "fedora", "supports Ubuntu and Debian (found: fedora"),
        ([], "old_python", "aipc needs Python 9.0 - 9.9"),
    ],
)
def test_linux_bad_input(fake_system: dict[str, Path], tmp_path: Path, args: list[str], env_key: str | None,
                         message: str) -> None:
    f = fake_system
    env = {"AIPC_OS_RELEASE": str(f["os_release"])}
    pins_file = f["pins"]
    if env_key == "no_key":
        pins_file = tmp_path / "nokey.toml"
        pins_file.write_text(re.sub(r"^cmake_min = .*$", "", PINS.read_text(encoding="utf-8"), flags=re.M))
    elif env_key == "fedora":
        f["os_release"].write_text("ID=fedora\n", encoding="utf-8")
    elif env_key == "old_python":
        pins_file = tmp_path / "py.toml"
        text = re.sub(r'^python_min = .*$', 'python_min = "9.0"', PINS.read_text(encoding="utf-8"), flags=re.M)
        pins_file.write_text(re.sub(r'^python_max = .*$', 'python_max = "9.9"', text, flags=re.M))
    proc = run_linux("--dry-run", "--venv", str(f["venv"]), "--pins", str(pins_file), *args, env=env,
                     path_first=f["bin"])
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- Windows: static checks (pwsh parse where available) -------------------------------------------------------------


def delimiter_problems(code: str) -> list[str]:
    """Unbalanced (), {}, [] outside PowerShell strings and comments (a coarse stand-in for the real parser)."""
    pairs = {")": "(", "}": "{", "]": "["}
    stack: list[tuple[str, int]] = []
    problems: list[str] = []
    i, line, n = 0, 1, len(code)
    while i < n:
        c = code[i]
        if c == "\n":
            line += 1
        if code.startswith("<#", i):
            end = code.find("#>", i)
            line += code.count("\n", i, end)
            i = end + 2
            continue
        if c == "#":
            i = code.find("\n", i) if "\n" in code[i:] else n
            continue
        if code.startswith(("@'", '@"'), i) and code[i + 2 : i + 3] == "\n":
            end = code.find("\n" + code[i + 1] + "@", i)
            line += code.count("\n", i, end)
            i = end + 3
            continue
        if c == "`":
            i += 2
            continue
        if c == "'":
            j = i + 1
            while j < n and not (code[j] == "'" and code[j + 1 : j + 2] != "'"):
                j += 2 if code[j : j + 2] == "''" else 1
            line += code.count("\n", i, j)
            i = j + 1
            continue
        if c == '"':
            j = i + 1
            while j < n and code[j] != '"':
                j += 2 if code[j] == "`" else 1
            # "$(...)" sub-expressions inside double quotes are checked as code
            problems += delimiter_problems_in_subexpr(code[i + 1 : j], line)
            line += code.count("\n", i, j)
            i = j + 1
            continue
        if c in "({[":
            stack.append((c, line))
        elif c in ")}]":
            if not stack or stack[-1][0] != pairs[c]:
                problems.append(f"line {line}: unexpected {c!r}")
            else:
                stack.pop()
        i += 1
    problems += [f"line {ln}: {ch!r} is never closed" for ch, ln in stack]
    return problems


def delimiter_problems_in_subexpr(inner: str, line: int) -> list[str]:
    depth = 0
    for k, ch in enumerate(inner):
        if inner.startswith("$(", k):
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
    return [f"line {line}: unclosed $( in a string"] if depth else []


def test_windows_script_is_balanced() -> None:
    assert delimiter_problems(WINDOWS.read_text(encoding="utf-8")) == []


def test_delimiter_checker_catches_mistakes() -> None:
    assert delimiter_problems("if ($a) { Write-Host '}' }\n# ) comment\n") == []
    assert delimiter_problems("if ($a) { Write-Host 'x' \n") == ["line 1: '{' is never closed"]
    assert delimiter_problems("$x = @(1, 2))\n") == ["line 1: unexpected ')'"]
    assert delimiter_problems('Write-Host "a $($b.c"\n') == ["line 1: unclosed $( in a string"]


def test_windows_script_design() -> None:
    text = WINDOWS.read_text(encoding="utf-8")
    code = strip_comments(text, powershell=True)
    assert "[CmdletBinding(SupportsShouldProcess)]" in code
    # every change is behind ShouldProcess (so -WhatIf only prints): winget, VS installer, registry, git, venv, pip
    assert code.count("$PSCmdlet.ShouldProcess(") >= 7
    for winget_id in ("Git.Git", "Kitware.CMake", "Ninja-build.Ninja", "Microsoft.NuGet", "Python.Python.$PythonWant",
                      "Microsoft.VisualStudio.$VsYear.BuildTools"):
        assert winget_id in code, winget_id
    assert "Microsoft.VisualStudio.Workload.VCTools" in code and "'--override'" in code
    assert "Windows11SDK.$SdkBuild" in code and "vswhere.exe" in code
    # elevation only for the long-path registry write
    assert code.count("-Verb RunAs") == 1
    runas = code.index("-Verb RunAs")
    assert "LongPathsEnabled" in code[runas - 600 : runas]
    assert "winget list --id" in code and "Get-Command" in code  # skip what is present
    assert "-m aipc doctor" in code


def unchecked_native_calls(code: str) -> list[str]:
    """Statement-level native calls (``& exe ...``) whose exit code ($LASTEXITCODE) is not looked at right after."""
    lines = code.splitlines()
    problems = []
    for n, line in enumerate(lines):
        if re.match(r"^\s*& ", line) and not any("LASTEXITCODE" in nxt for nxt in lines[n + 1 : n + 3]):
            problems.append(f"line {n + 1}: {line.strip()}")
    return problems


def test_windows_checks_every_native_exit_code() -> None:
    code = strip_comments(WINDOWS.read_text(encoding="utf-8"), powershell=True)
    assert unchecked_native_calls(code) == []


def test_exit_code_checker_catches_an_unchecked_call() -> None:
    bad = "if ($x) {\n    & winget upgrade --id X\n    Update-SessionPath\n}\n$v = & vswhere -latest\n"
    assert unchecked_native_calls(bad) == ["line 2: & winget upgrade --id X"]
    good = "& winget @a\nif ($LASTEXITCODE -ne 0) { Fail 'x' 'y' }\n"
    assert unchecked_native_calls(good) == []


def test_windows_script_parses_with_pwsh() -> None:
    pwsh = shutil.which("pwsh")
    if pwsh is None:
        pytest.skip("pwsh is not installed (PowerShell is not packaged in Debian): checked statically above")
    cmd = (
        "$e = $null; [void][System.Management.Automation.Language.Parser]::ParseFile("
        f"'{WINDOWS}', [ref]$null, [ref]$e); if ($e) {{ $e | ForEach-Object {{ $_.ToString() }}; exit 1 }}"
    )
    proc = subprocess.run([pwsh, "-NoProfile", "-Command", cmd], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- one list of Visual Studio components (issue 12, point 1) and the distribution line ------------------------------


def windows_vs_components() -> list[str]:
    """The entries of ``$VsComponents = @(...)`` in bootstrap-windows.ps1, as written (quotes stripped)."""
    code = strip_comments(WINDOWS.read_text(encoding="utf-8"), powershell=True)
    match = re.search(r"^\$VsComponents = @\((.*?)^\)", code, flags=re.S | re.M)
    assert match, "bootstrap-windows.ps1 has no $VsComponents = @( ... ) list"
    return [item.strip().strip("'\"") for item in match.group(1).split(",") if item.strip()]


def test_windows_installs_the_components_doctor_checks() -> None:
    from aipc.doctor.checks import check_vs_components  # noqa: F401 (the check that reads the same list)
    from aipc.platforms.vswhere import VC_COMPONENT
    from aipc.platforms.windows import VS_COMPONENTS

    listed = windows_vs_components()
    spectre = "Microsoft.VisualStudio.Component.VC.Runtimes.x86.x64.Spectre"
    assert spectre in listed
    assert [c for c in listed if c != "$SdkComponent"] == [c for c, _ in VS_COMPONENTS]
    assert "$SdkComponent" in listed and VC_COMPONENT in listed
    code = strip_comments(WINDOWS.read_text(encoding="utf-8"), powershell=True)
    # the components go to both the VS installer (modify) and the winget override, and an installation missing
    # any of them is not "ok"
    assert '$addArgs = ($VsComponents | ForEach-Object { "--add $_" })' in code
    assert "$override = \"--wait --passive --norestart $addArgs --includeRecommended\"" in code
    assert "modify --installPath" in code and "$vs.Complete" in code


def test_component_list_parser_sees_a_change(tmp_path: Path) -> None:
    text = WINDOWS.read_text(encoding="utf-8").replace(
        "    'Microsoft.VisualStudio.Component.VC.Runtimes.x86.x64.Spectre',\n", "")
    code = strip_comments(text, powershell=True)
    match = re.search(r"^\$VsComponents = @\((.*?)^\)", code, flags=re.S | re.M)
    assert match and "Spectre" not in match.group(1)


@needs_bash
@pytest.mark.parametrize(("os_release", "line"), [
    ("ID=debian\nVERSION_ID=\"12\"\n", "distribution: debian"),
    ("ID=ubuntu\nID_LIKE=debian\n", "distribution: ubuntu (like debian)"),
    ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', "distribution: linuxmint (like ubuntu debian)"),
])
def test_linux_distribution_line_has_no_empty_field(fake_system: dict[str, Path], os_release: str, line: str) -> None:
    f = fake_system
    f["os_release"].write_text(os_release, encoding="utf-8")
    proc = run_linux("--dry-run", "--no-doctor", "--pins", str(f["pins"]), "--venv", str(f["venv"]),
                     env={"AIPC_OS_RELEASE": str(f["os_release"])}, path_first=f["bin"])
    assert proc.returncode == 0, proc.stderr
    assert line in proc.stdout.splitlines(), proc.stdout
    assert not any(ln.startswith("distribution:") and ln != ln.rstrip() for ln in proc.stdout.splitlines())


def test_windows_installs_nuget_only_when_the_pinned_genai_needs_it() -> None:
    """genai 0.12-0.15.2 download nuget.exe themselves; 0.16 finds it on PATH (the rule doctor's nuget check uses)."""
    code = strip_comments(WINDOWS.read_text(encoding="utf-8"), powershell=True)
    assert ("onnxruntime_genai", "version") in pin_keys(WINDOWS)
    assert "$GenaiNeedsNuget = " in code and "[version]'0.16'" in code
    install = code.index("Install-WingetPackage 'Microsoft.NuGet'")
    assert code.rindex("if (-not $GenaiNeedsNuget)", 0, install) > code.index("$GenaiNeedsNuget = ")


@needs_bash
@pytest.mark.parametrize(("version_line", "expected"), [
    ("cc (Ubuntu 9.4.0-1ubuntu1~20.04.2) 9.4.0", "warning: cc is GCC 9.4.0, onnxruntime-genai needs GCC >= 11: "
                                                 "sudo apt install g++-11"),
    ("cc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0", "ok: cc is GCC 11.4.0 (pins: >= 11)"),
    ("Ubuntu clang version 14.0.0-1ubuntu1.1", "ok: cc 14.0.0 is not GCC"),
])
def test_linux_reports_an_old_gcc(fake_system: dict[str, Path], version_line: str, expected: str) -> None:
    """genai's CMakeLists.txt stops below GCC [toolchain] gcc_min; the script says so (doctor checks it too)."""
    f = fake_system
    _exe(f["bin"] / "cc", f'echo "{version_line}"\n')
    proc = run_linux("--dry-run", "--no-doctor", "--pins", str(f["pins"]), "--venv", str(f["venv"]),
                     env={"AIPC_OS_RELEASE": str(f["os_release"]), "CC": ""}, path_first=f["bin"])
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout, proc.stdout
    assert ("toolchain", "gcc_min") in pin_keys(LINUX)
