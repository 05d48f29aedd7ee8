"""The MSVC environment for Ninja builds on Windows, found through vswhere and captured from ``vcvars64.bat``.

The Visual Studio generator finds the compiler itself; Ninja needs the environment of a Developer Command Prompt
(docs/upstream.md#build §6: "Build from a Developer Command Prompt"). The plan is:

1. ``vswhere -latest -products * -version [17,18) -requires Microsoft.VisualStudio.Component.VC.Tools.x86.x64
   -property installationPath`` -> the pinned Visual Studio (``[toolchain] visual_studio`` = 17, i.e. 2022) with the
   x64 MSVC tools;
2. ``cmd /d /s /c ""<install>\\VC\\Auxiliary\\Build\\vcvars64.bat" >nul && set"`` -> the environment after
   vcvars64, of which the variables it added or changed are kept and passed to the build commands.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PureWindowsPath

from ..errors import AipcError

VC_COMPONENT = "Microsoft.VisualStudio.Component.VC.Tools.x86.x64"
DEFAULT_PROGRAM_FILES_X86 = "C:\\Program Files (x86)"
INSTALL_PLACEHOLDER = "<vswhere installationPath>"


@dataclass(frozen=True)
class Proc:
    returncode: int
    stdout: str
    stderr: str


# runs argv (list form) or a raw Windows command line (str form); returns its output
ProcRunner = Callable[[Sequence[str] | str], Proc]


def _run(cmd: Sequence[str] | str) -> Proc:
    proc = subprocess.run(cmd if isinstance(cmd, str) else list(cmd), capture_output=True, text=True,
                          errors="replace", stdin=subprocess.DEVNULL, check=False)
    return Proc(proc.returncode, proc.stdout, proc.stderr)


def vswhere_exe(environ: Mapping[str, str] | None = None) -> str:
    base = (environ or {}).get("ProgramFiles(x86)") or DEFAULT_PROGRAM_FILES_X86
    return str(PureWindowsPath(base, "Microsoft Visual Studio", "Installer", "vswhere.exe"))


def version_range(vs_major: str) -> str:
    """vswhere's ``-version`` range for one Visual Studio major version: ``17`` -> ``[17,18)``."""
    if not vs_major.isdigit():
        raise AipcError(f"Visual Studio major version {vs_major!r} is not a number",
                        hint='set [toolchain] visual_studio in the pins file to a major version such as "17"')
    return f"[{int(vs_major)},{int(vs_major) + 1})"


def vswhere_argv(exe: str, vs_major: str) -> list[str]:
    return [exe, "-latest", "-products", "*", "-version", version_range(vs_major), "-requires", VC_COMPONENT,
            "-property", "installationPath"]


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
    argv = vswhere_argv(exe, vs_major)
    try:
        found = run(argv)
    except FileNotFoundError:
        raise AipcError(
            f"vswhere.exe not found at {exe}; the Ninja generator needs the MSVC environment",
            hint="install Visual Studio 2022 with the C++ workload (scripts/bootstrap-windows.ps1) or use "
                 "--generator vs",
        ) from None
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
        raise AipcError(
            f"{vcvars} did not set up the MSVC environment (exit {captured.returncode}: {last})",
            hint="repair the Visual Studio installation (Visual Studio Installer > Repair) or use --generator vs",
        )
    return env_delta(environ, after)
