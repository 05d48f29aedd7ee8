"""The MSVC environment for Ninja builds on Windows, found through vswhere and captured from ``vcvars64.bat``.

The Visual Studio generator finds the compiler itself; Ninja needs the environment of a Developer Command Prompt
(docs/upstream.md#build §6: "Build from a Developer Command Prompt"). The plan is:

1. ``vswhere -latest -products * -version [17,18) -requires Microsoft.VisualStudio.Component.VC.Tools.x86.x64
   -property installationPath`` -> the pinned Visual Studio (``[toolchain] visual_studio`` = 17, i.e. 2022) with the
   x64 MSVC tools;
2. ``cmd /d /s /c ""<install>\\VC\\Auxiliary\\Build\\vcvars64.bat" >nul && set"`` -> the environment after
   vcvars64, of which the variables it added or changed are kept and passed to the build commands.

``aipc doctor`` asks the same vswhere for every instance and component (``-format json``, :func:`parse_vswhere`):
one place for where vswhere is, how it is asked and how its answer is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import PureWindowsPath
from typing import Any

from ..errors import AipcError
from ..proc import Output, describe_returncode, run

VC_COMPONENT = "Microsoft.VisualStudio.Component.VC.Tools.x86.x64"
DEFAULT_PROGRAM_FILES_X86 = "C:\\Program Files (x86)"
INSTALL_PLACEHOLDER = "<vswhere installationPath>"


VSWHERE_TIMEOUT = 15.0
VCVARS_TIMEOUT = 120.0  # vcvars64.bat runs several scripts; a cold one takes tens of seconds

# runs argv (list form) or a raw Windows command line (str form); returns its output
ProcRunner = Callable[[Sequence[str] | str], Output]


def _run(cmd: Sequence[str] | str) -> Output:
    return run(cmd, timeout=VCVARS_TIMEOUT if isinstance(cmd, str) else VSWHERE_TIMEOUT)


def vswhere_exe(environ: Mapping[str, str] | None = None) -> str:
    """Where the Visual Studio Installer puts vswhere.exe (under ``ProgramFiles(x86)`` of ``environ``)."""
    base = (environ or {}).get("ProgramFiles(x86)") or DEFAULT_PROGRAM_FILES_X86
    return str(PureWindowsPath(base, "Microsoft Visual Studio", "Installer", "vswhere.exe"))


def version_range(vs_major: str) -> str:
    """vswhere's ``-version`` range for one Visual Studio major version: ``17`` -> ``[17,18)``."""
    if not vs_major.isdigit():
        raise AipcError(f"Visual Studio major version {vs_major!r} is not a number",
                        hint='set [toolchain] visual_studio in the pins file to a major version such as "17"')
    return f"[{int(vs_major)},{int(vs_major) + 1})"


def vswhere_argv(exe: str, *, vs_major: str | None = None, requires: Sequence[str] = (),
                 json: bool = False) -> list[str]:
    """vswhere over every product: the latest instance's ``installationPath`` (the build), or with ``json`` every
    instance as JSON (the doctor); limited to Visual Studio ``vs_major`` and to instances having all of
    ``requires``."""
    argv = [exe, *([] if json else ["-latest"]), "-products", "*"]
    if vs_major is not None:
        argv += ["-version", version_range(vs_major)]
    for component in requires:
        argv += ["-requires", component]
    return [*argv, *(["-format", "json", "-utf8"] if json else ["-property", "installationPath"])]


def msvc_install_argv(exe: str, vs_major: str) -> list[str]:
    """The build's query: the latest Visual Studio ``vs_major`` with the x64 MSVC tools, its installation path."""
    return vswhere_argv(exe, vs_major=vs_major, requires=(VC_COMPONENT,))


def parse_vswhere(text: str) -> list[dict[str, Any]]:
    """vswhere ``-format json``: one entry per Visual Studio instance. Raises ValueError when it is not a JSON list."""
    data = json.loads(text or "[]")
    if not isinstance(data, list):
        raise ValueError("vswhere output is not a JSON list")
    instances = []
    for item in data:
        if not isinstance(item, dict):
            continue
        raw_catalog = item.get("catalog")
        catalog: dict[str, Any] = raw_catalog if isinstance(raw_catalog, dict) else {}
        instances.append({
            "instance_id": item.get("instanceId"),
            "display_name": item.get("displayName"),
            "installation_version": item.get("installationVersion"),
            "installation_path": item.get("installationPath"),
            "product_line_version": catalog.get("productLineVersion"),
            "product_id": item.get("productId"),
            "is_complete": item.get("isComplete", True),
        })
    return instances


def vcvars_path(installation: str) -> str:
    return str(PureWindowsPath(installation, "VC", "Auxiliary", "Build", "vcvars64.bat"))


def vcvars_argv(vcvars: str) -> list[str]:
    """The capture command as argv (for the plan)."""
    return ["cmd.exe", "/d", "/s", "/c", f'"{vcvars}" >nul && set']


def vcvars_cmdline(vcvars: str) -> str:
    """The same as a raw command line: ``cmd /s /c`` strips the outer quotes, keeping the inner ones."""
    return f'cmd.exe /d /s /c ""{vcvars}" >nul && set"'


def parse_set_output(text: str) -> dict[str, str]:
    """``set`` output (``NAME=value`` lines) as a dict; lines without ``=`` (or starting with it) are skipped."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name and not name.startswith(" "):
            env[name] = value
    return env


def env_delta(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, str]:
    """Variables vcvars added or changed. Windows names are case-insensitive: a changed variable keeps the spelling
    of ``before`` (``PATH``, not ``set``'s ``Path``), so merging the delta into the environment replaces it instead
    of adding a second entry."""
    old = {k.upper(): v for k, v in before.items()}
    spelling = {k.upper(): k for k in before}
    return {spelling.get(k.upper(), k): v for k, v in sorted(after.items()) if old.get(k.upper()) != v}


def capture_msvc_env(environ: Mapping[str, str], run: ProcRunner = _run, *, vs_major: str) -> dict[str, str]:
    """Find Visual Studio ``vs_major`` with vswhere and return the environment ``vcvars64.bat`` sets up."""
    exe = vswhere_exe(environ)
    found = run(msvc_install_argv(exe, vs_major))
    if found.returncode is None:
        what = "not found at" if (found.error or "").startswith("not found") else f"failed ({found.reason()}):"
        raise AipcError(
            f"vswhere.exe {what} {exe}; the Ninja generator needs the MSVC environment",
            hint="install Visual Studio 2022 with the C++ workload (scripts/bootstrap-windows.ps1) or use "
                 "--generator vs",
        )
    install = next((ln.strip() for ln in found.stdout.splitlines() if ln.strip()), "")
    if found.returncode != 0 or not install:
        raise AipcError(
            f"vswhere found no Visual Studio {version_range(vs_major)} with the x64 MSVC tools ({VC_COMPONENT})",
            hint="install the 'Desktop development with C++' workload of Visual Studio 2022, or use --generator vs",
        )
    vcvars = vcvars_path(install)
    captured = run(vcvars_cmdline(vcvars))
    after = parse_set_output(captured.stdout)
    if captured.returncode != 0 or not any(k.upper() == "VCTOOLSINSTALLDIR" for k in after):
        last = (captured.stderr.strip().splitlines() or ["no output"])[-1]
        detail = captured.error or f"exit {describe_returncode(captured.returncode)}: {last}"
        raise AipcError(
            f"{vcvars} did not set up the MSVC environment ({detail})",
            hint="repair the Visual Studio installation (Visual Studio Installer > Repair) or use --generator vs",
        )
    return env_delta(environ, after)
