"""Checks: pure functions ``(facts, pins) -> CheckResult``. Every verdict other than pass says how to fix it.

Checks never look at the machine they run on, only at the facts, so ``aipc doctor --facts FILE`` gives the same
verdicts anywhere. Build-only checks that matter only on Windows are ``skip`` (with the reason) for Linux facts.
Sources: docs/upstream.md#build §6-7, docs/upstream.md#npu §4-6, docs/upstream.md#anchors §1.4, 5.2.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import PurePath, PurePosixPath, PureWindowsPath
from typing import Any

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from ..errors import ExitCode, PinsError
from ..ortversion import api_version_for
from ..pins import Pins, compat_row_for
from ..platforms import ORT_DISTS, PLATFORM_NAMES, get_platform
from ..platforms.windows import (
    CMD_METACHARACTERS,
    GENAI_NUGET_ON_PATH,
    VS_COMPONENTS,
    effective_wddm,
    is_dx12_adapter,
    is_hardware_adapter,
)
from ..wheelfit import tag_fits
from .facts import Facts, get

STATUSES = ("pass", "warn", "fail", "skip")
CATEGORIES = ("system", "build", "devices", "runtime")
# What a user wants the machine for; every check names the goals a failure of it blocks (``aipc doctor --for``).
GOALS = {
    "verify": "ready to verify (aipc verify: the paths' smoke tests)",
    "build-dml": "ready to build the DirectML wheels (aipc build)",
    "build-npu": "ready to build the NPU library wheel (aipc build-npu)",
    "npu": "ready to run on the NPU",
}
ALL_GOALS = tuple(GOALS)
BUILDS = ("build-dml", "build-npu")

GIB = 1024**3
DISK_WARN_GIB = 40
DISK_FAIL_GIB = 15
MEMORY_WARN_GIB = 16
MEMORY_FAIL_GIB = 8
# the share of installed memory a machine may hide (firmware, integrated GPU) and still count as its nominal size
MEMORY_RESERVED_FRACTION = 0.08
WIN11_22H2_BUILD = 22621
WIN11_BUILD = 22000
LINUX_NPU_KERNEL = (6, 6)
SHORT_PATH_MAX = 40

NPU_DRIVER_URL = "https://www.intel.com/content/www/us/en/download/794734/intel-npu-driver-windows.html"
GPU_DRIVER_URL = "https://www.intel.com/content/www/us/en/download/785597/intel-arc-iris-xe-graphics-windows.html"
VC_REDIST_URL = "https://aka.ms/vs/17/release/vc_redist.x64.exe"
LINUX_NPU_DRIVER_URL = "https://github.com/intel/linux-npu-driver/releases"
PYTHON_URL = "https://www.python.org/downloads/windows/"
VS_BUILDTOOLS = (
    'winget install --id Microsoft.VisualStudio.2022.BuildTools -e --override '
    '"--wait --passive --add Microsoft.VisualStudio.Workload.VCTools --includeRecommended"'
)
VS_INSTALLER = r'"C:\Program Files (x86)\Microsoft Visual Studio\Installer\setup.exe"'
GENAI_DISTS = ("onnxruntime-genai", "onnxruntime-genai-directml", "onnxruntime-genai-cuda")
NPU_DIST = "intel-npu-acceleration-library"


@dataclass(frozen=True)
class CheckResult:
    name: str
    category: str
    status: str
    found: str
    fix: str = ""
    # the goals (GOALS) a failure of this check blocks
    goals: tuple[str, ...] = ALL_GOALS

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["goals"] = list(self.goals)
        return data


class _R:
    """Shorthands to build a result for the check being evaluated."""

    def __init__(self, category: str, name: str, goals: tuple[str, ...] = ALL_GOALS) -> None:
        self.category, self.name, self.goals = category, name, goals

    def __call__(self, status: str, found: str, fix: str = "") -> CheckResult:
        return CheckResult(self.name, self.category, status, found, fix if status != "pass" else "", self.goals)


CheckFn = Callable[[Facts, Pins], CheckResult]
CHECKS: list[tuple[str, str, CheckFn]] = []
CHECK_GOALS: dict[str, tuple[str, ...]] = {}


def check(category: str, name: str, only: str | None = None, goals: tuple[str, ...] = ALL_GOALS,
          ) -> Callable[[Callable[[Facts, Pins, _R], CheckResult]], CheckFn]:
    """Register ``fn(facts, pins, r)`` as a check; ``r`` builds its results. ``only="windows"``: a skip elsewhere.
    ``goals``: what a failure of this check blocks (the per-goal verdict and ``--for``)."""
    unknown = set(goals) - set(GOALS)
    if unknown or not goals:
        raise ValueError(f"check {name!r}: unknown goals {sorted(unknown)}")

    def deco(fn: Callable[[Facts, Pins, _R], CheckResult]) -> CheckFn:
        r = _R(category, name, goals)

        def run(facts: Facts, pins: Pins) -> CheckResult:
            if only is not None and platform_of(facts) != only:
                return r("skip", f"{only.capitalize()} only (these facts are from a {platform_of(facts)} machine)")
            return fn(facts, pins, r)

        CHECKS.append((category, name, run))
        CHECK_GOALS[name] = goals
        return run
    return deco


def version(text: Any) -> Version | None:
    if not isinstance(text, str) or not text.strip():
        return None
    match = re.search(r"\d+(?:\.\d+)*", text.strip().lstrip("vV"))
    if not match:
        return None
    try:
        return Version(match.group(0))
    except InvalidVersion:
        return None


def platform_of(facts: Facts) -> str:
    return str(get(facts, "host.platform", str) or "unknown")


def is_wsl(facts: Facts) -> bool:
    """Linux facts from WSL: the collector's flag, or a WSL kernel string (``...-microsoft-standard-WSL2``) alone,
    as an older collector or a hand-made facts file may have only that."""
    if get(facts, "linux.wsl", bool):
        return True
    texts = (get(facts, "linux.kernel", str), get(facts, "host.release", str), get(facts, "host.version", str))
    return any(t is not None and re.search(r"microsoft|wsl", t, re.I) is not None for t in texts)


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def _missing(r: _R, what: str, facts: Facts, collector: str) -> CheckResult:
    err = get(facts, f"errors.{collector}", str) or get(facts, f"{collector}.error", str)
    return r("skip", f"{what} not recorded" + (f" ({err})" if err else ""))


# --- system -------------------------------------------------------------------------------------------------------

@check("system", "OS")
def check_os(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    if platform_of(facts) == "windows":
        build = get(facts, "windows.os.build", int)
        if build is None:
            return _missing(r, "Windows version", facts, "windows")
        caption = get(facts, "windows.os.caption", str) or "Windows"
        display = get(facts, "windows.os.display_version", str) or ""
        ubr = get(facts, "windows.os.ubr", int)
        found = f"{caption} {display} (build {build}{f'.{ubr}' if ubr is not None else ''})".replace("  ", " ")
        upgrade = ("Settings > Windows Update: install Windows 11 22H2 or later "
                   "(https://www.microsoft.com/software-download/windows11)")
        if build >= WIN11_22H2_BUILD:
            return r("pass", found)
        if build >= WIN11_BUILD:
            return r("warn", f"{found}: the NPU needs Windows 11 22H2 (build {WIN11_22H2_BUILD}) or later", upgrade)
        return r("warn", f"{found}: building and DirectML work, the NPU needs Windows 11 22H2+", upgrade)
    kernel = get(facts, "linux.kernel", str)
    if kernel is None:
        return _missing(r, "Linux kernel", facts, "linux")
    distro = get(facts, "linux.os_release.PRETTY_NAME", str) or "Linux"
    wsl = is_wsl(facts)
    found = f"{distro}, kernel {kernel}{' (WSL)' if wsl else ''}"
    kv = get(facts, "linux.kernel_version", list)
    if wsl:
        return r("pass", found + "; WSL has no NPU (see the NPU check)")
    if kv and len(kv) >= 2 and all(isinstance(x, int) for x in kv) and tuple(kv[:2]) < LINUX_NPU_KERNEL:
        return r("warn", f"{found}: the intel_vpu NPU driver needs kernel 6.6 or later",
                 "Ubuntu 22.04: sudo apt install --install-recommends linux-generic-hwe-22.04 and reboot "
                 "(or use Ubuntu 24.04); OpenVINO supports the NPU on Ubuntu 22.04/24.04")
    return r("pass", found)


X86_64_NAMES = ("x86_64", "amd64", "x64")
# how Windows names an Arm processor: Win32_OperatingSystem.OSArchitecture ("ARM 64-bit Processor"), the
# PROCESSOR_IDENTIFIER ("ARMv8 (64-bit) Family 8 ...") and Win32_Processor.Name ("Snapdragon(R) X Elite ...")
ARM_RE = re.compile(r"\barm|aarch64|snapdragon|qualcomm|oryon", re.I)


@check("system", "architecture")
def check_architecture(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    fix = "use an x86-64 Windows 11 or Linux machine"
    if platform_of(facts) == "windows":
        # PROCESSOR_ARCHITECTURE is the *process's* view: x64 Python emulated on Arm64 Windows reports AMD64, so the
        # recorded processor names decide
        proc_arch = get(facts, "windows.processor_architecture", str)
        names = {k: get(facts, f"windows.{k}", str) for k in ("os.architecture", "processor_identifier",
                                                               "processor_name")}
        arm = next((v for v in names.values() if v and ARM_RE.search(v)), None)
        if arm is not None:
            return r("fail", f"Arm64 Windows ({arm}); this Python runs as {proc_arch or '?'} under emulation: aipc "
                             "builds and tests x86-64 (Intel Core Ultra) only", fix)
        machine = proc_arch or get(facts, "host.machine", str)
    else:
        machine = get(facts, "host.machine", str)
    if machine is None:
        return _missing(r, "architecture", facts, "host")
    if machine.lower() in X86_64_NAMES:
        return r("pass", machine)
    return r("fail", f"{machine}: aipc builds and tests x86-64 (Intel Core Ultra) only", fix)


@check("system", "Python")
def check_python(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    ver = get(facts, "python.version", str)
    bits = get(facts, "python.bits", int)
    if ver is None or bits is None:
        return _missing(r, "Python", facts, "python")
    exe = get(facts, "python.executable", str) or "?"
    found = f"{get(facts, 'python.implementation', str) or 'Python'} {ver} {bits}-bit ({exe})"
    win = platform_of(facts) == "windows"
    install = (f"install 64-bit Python 3.12 from {PYTHON_URL} and run aipc with it (py -3.12 -m nox ...)" if win
               else "install Python 3.10-3.12 64-bit (e.g. sudo apt install python3.12 or uv python install 3.12)")
    if bits != 64:
        return r("fail", f"{found}: 64-bit Python is required", install)
    lo, hi = pins.toolchain["python_min"], pins.toolchain["python_max"]
    minor = ".".join(ver.split(".")[:2])
    v, vlo, vhi = version(minor), version(lo), version(hi)
    if v is None or vlo is None or vhi is None:
        return r("warn", f"{found}: cannot read the version", install)
    if not vlo <= v <= vhi:
        return r("fail", f"{found}: the paths support Python {lo}-{hi}", install)
    if minor not in pins.wheel_pythons:
        return r("warn", f"{found}: aipc builds DirectML wheels for Python {', '.join(pins.wheel_pythons)} only",
                 install)
    return r("pass", found)


def own_npu_wheel(facts: Facts) -> str | None:
    """aipc's own intel-npu-acceleration-library wheel (``py3-none-<platform>``) in the recorded wheels/ folder that
    installs on the facts' platform, by file name; None when there is none (or the folder was not recorded)."""
    files = get(facts, "runtime.aipc_wheels.files", list) or []
    plat = get_platform(platform_of(facts) if platform_of(facts) in PLATFORM_NAMES else "linux")
    for name in files:
        if not isinstance(name, str):
            continue
        try:
            dist, _, _, tags = parse_wheel_filename(name)
        except InvalidWheelFilename:
            continue
        if dist != NPU_DIST:
            continue
        if all(t.interpreter == "py3" and t.abi == "none" and tag_fits(t.platform, plat.wheel_platform_tag_prefix)
               for t in tags):
            return name
    return None


@check("system", "Python for the NPU library", goals=("npu", "build-npu"))
def check_python_npu(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    ver = get(facts, "python.version", str)
    if ver is None:
        return _missing(r, "Python", facts, "python")
    aipc_min = pins.toolchain["python_min"]
    npu_min, npu_max = str(pins.npu["python_min"]), str(pins.npu["python_max"])
    # the range where both hold: aipc runs (>= toolchain python_min) and the library's wheels / its build's
    # OpenVINO exist ([npu] python_min-python_max)
    lo = max(aipc_min, npu_min, key=lambda s: version(s) or Version("0"))
    wheel = own_npu_wheel(facts)
    where = get(facts, "runtime.aipc_wheels.dir", str) or "wheels/"
    if wheel is not None:
        return r("pass", f"Python {ver}; {where} holds aipc's own {wheel} (py3-none: every CPython >= {aipc_min})")
    v, vlo, vmax = version(".".join(ver.split(".")[:2])), version(lo), version(npu_max)
    if v is not None and vlo is not None and vmax is not None and not vlo <= v <= vmax:
        return r("warn", f"Python {ver}: intel-npu-acceleration-library's wheels on PyPI (and OpenVINO "
                         f"{pins.npu['openvino']}, which building it needs) cover CPython {npu_min}-{npu_max}; with "
                         f"aipc's minimum {aipc_min} that is {lo}-{npu_max}; {where} holds no aipc-built NPU wheel, so "
                         "the NPU library path is skipped (OpenVINO GenAI on the NPU is not affected)",
                 f"build aipc's py3 wheel once with a CPython {lo}-{npu_max}: `nox -s build_npu -- --python "
                 f"<python{npu_max}>` (it then serves every CPython >= {aipc_min}), or run aipc with Python {npu_max}")
    return r("pass", f"Python {ver} is within {lo}-{npu_max} (the library's wheels and its build)")


@check("system", "Python installation")
def check_python_install(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    exe = get(facts, "python.executable", str)
    if exe is None:
        return _missing(r, "Python", facts, "python")
    fix_alias = ("Settings > Apps > Advanced app settings > App execution aliases: turn off python.exe and "
                 f"python3.exe, then install Python from {PYTHON_URL}")
    if get(facts, "python.store", bool):
        return r("warn", f"{exe} is the Microsoft Store Python (sandboxed file system and path redirection)",
                 f"install Python from {PYTHON_URL} and run aipc with it")
    on_path = get(facts, "python.path_python", str)
    if get(facts, "python.path_python_is_store_stub", bool):
        return r("warn", f"`python` on PATH is the Microsoft Store stub ({on_path})", fix_alias)
    return r("pass", f"{exe}" + (f"; `python` on PATH: {on_path}" if on_path and on_path != exe else ""))


@check("system", "free disk", goals=BUILDS)
def check_disk(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    free = get(facts, "host.disk_free_bytes", int)
    where = get(facts, "host.workdir", str) or "the work directory"
    if free is None:
        return _missing(r, "free disk space", facts, "host")
    found = f"{_gib(free)} free at {where}"
    fix = (f"free space (or work on a drive with >= {DISK_WARN_GIB} GiB free): the ONNX Runtime build alone "
           "takes tens of GB")
    if free < DISK_FAIL_GIB * GIB:
        return r("fail", f"{found} (< {DISK_FAIL_GIB} GiB)", fix)
    if free < DISK_WARN_GIB * GIB:
        return r("warn", f"{found} (< {DISK_WARN_GIB} GiB)", fix)
    return r("pass", found)


def memory_meets(visible: int, gib: int) -> bool:
    """Does a machine showing ``visible`` bytes have ``gib`` GiB installed? Firmware and the integrated GPU reserve
    part of the RAM (a 16 GB laptop shows 15.4-15.7 GiB in Windows' TotalVisibleMemorySize and Linux's MemTotal),
    so up to MEMORY_RESERVED_FRACTION may be missing."""
    return visible >= gib * GIB * (1 - MEMORY_RESERVED_FRACTION)


@check("system", "memory")
def check_memory(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    total = get(facts, "linux.memory_total_bytes", int)
    installed = None
    if platform_of(facts) == "windows":
        kb = get(facts, "windows.os.total_memory_kb", int)
        total = kb * 1024 if kb is not None else None
        installed = get(facts, "windows.installed_memory_bytes", int)
    if installed is not None and installed > 0:
        found = f"{_gib(installed)} installed" + (f" ({_gib(total)} visible)" if total is not None else "")

        def meets(gib: int) -> bool:
            return installed >= gib * GIB
    elif total is not None:
        visible = total
        found = f"{_gib(total)} RAM visible"
        if total < MEMORY_WARN_GIB * GIB and memory_meets(total, MEMORY_WARN_GIB):
            found += f" (a {MEMORY_WARN_GIB} GiB machine: firmware and the integrated GPU reserve the rest)"

        def meets(gib: int) -> bool:
            return memory_meets(visible, gib)
    else:
        return _missing(r, "memory size", facts, platform_of(facts))
    fix = "close other programs and build with fewer jobs (e.g. --jobs 4); 16 GiB+ is recommended"
    if not meets(MEMORY_FAIL_GIB):
        return r("fail", f"{found}: < {MEMORY_FAIL_GIB} GiB, a Phi-3-mini model and the build will not fit", fix)
    if not meets(MEMORY_WARN_GIB):
        return r("warn", f"{found}: < {MEMORY_WARN_GIB} GiB", fix)
    return r("pass", found)


# --- build tools --------------------------------------------------------------------------------------------------

def _tool(facts: Facts, r: _R, tool: str, minimum: str | None, missing_status: str, fix: str) -> CheckResult:
    info = get(facts, f"tools.{tool}", dict)
    if info is None:
        return _missing(r, tool, facts, f"tools.{tool}")
    path, ver = info.get("path"), info.get("version")
    if not path:
        return r(missing_status, f"{tool} not found on PATH", fix)
    if not isinstance(ver, str):
        return r("warn", f"{path}: cannot read its version ({info.get('error', 'no output')})", fix)
    found = f"{tool} {ver} ({path})"
    v, vmin = version(ver), version(minimum)
    if vmin is not None and (v is None or v < vmin):
        return r(missing_status, f"{found} < {minimum}", fix)
    return r("pass", found)


@check("build", "Git", goals=("build-dml",))
def check_git(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    fix = "winget install --id Git.Git -e" if platform_of(facts) == "windows" else "sudo apt install git"
    return _tool(facts, r, "git", None, "fail", fix)


def build_venv_ready(facts: Facts, pins: Pins) -> bool | None:
    """Can aipc's build venv be made (see :func:`check_build_venv`)? None when the facts do not say."""
    pip = get(facts, "tools.pip", dict)
    if pip is None:
        return None
    return _build_venv_verdict(pip, pins)[0] == "pass"


def _build_tool(facts: Facts, pins: Pins, r: _R, tool: str, optional_on_windows: bool = False) -> CheckResult:
    """CMake / Ninja: the ORT and genai builds run the ``[build_tools]`` pin, which aipc's build venv installs from
    pip; the tool on PATH matters only when that venv cannot be made (no index, no local wheelhouse)."""
    pinned = pins.build_tools[tool]
    minimum = pins.toolchain[f"{tool}_min"]
    win = platform_of(facts) == "windows"
    pip_fix = f'python -m pip install "{tool}=={pinned}"'
    if win:
        fix = (f"{pip_fix} (or winget install --id {'Kitware.CMake' if tool == 'cmake' else 'Ninja-build.Ninja'} -e)")
    else:
        fix = (f"{pip_fix} into the venv you build from (Debian/Ubuntu's apt {tool} is often older than {minimum})")
    info = get(facts, f"tools.{tool}", dict)
    if info is None:
        return _missing(r, tool, facts, f"tools.{tool}")
    venv = build_venv_ready(facts, pins)
    path, ver = info.get("path"), info.get("version")
    v, vmin = version(ver), version(minimum)
    if not path:
        have = f"{tool} not found on PATH"
    elif v is None:
        have = f"{path}: cannot read its version ({info.get('error', 'no output')})"
    else:
        have = f"{tool} {ver} ({path})"
    too_old = not path or v is None or (vmin is not None and v < vmin)
    uses = f"the build venv installs {tool}=={pinned} ([build_tools] pin) and the builds run that one"
    if venv:
        if too_old:
            return r("warn", f"{have}, below the minimum {minimum}; {uses}, so this matters only for a build "
                             "outside aipc", fix)
        return r("pass", f"{have}; {uses}")
    why = ("the build venv cannot be made (see the build venv check)" if venv is False
           else "the build venv was not checked (facts from an older aipc)")
    if too_old:
        status = "warn" if optional_on_windows and win else "fail"
        extra = (" (optional on Windows: the Visual Studio generator is the default)"
                 if optional_on_windows and win else "")
        return r(status, f"{have}, below the minimum {minimum}; {why}, so the builds would use it{extra}", fix)
    if v is not None and version(pinned) is not None and v != version(pinned):
        return r("pass", f"{have} >= {minimum}; {why}: the builds use it instead of the pinned {pinned}")
    return r("pass", f"{have} (the pinned version)")


@check("build", "CMake", goals=("build-dml",))
def check_cmake(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    return _build_tool(facts, pins, r, "cmake")


@check("build", "Ninja", goals=("build-dml",))
def check_ninja(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    # On Windows the default generator is Visual Studio 17 2022, Ninja is optional; on Linux it is the generator.
    return _build_tool(facts, pins, r, "ninja", optional_on_windows=True)


def _has_version(files: Any, pinned: str) -> bool:
    """A file name of one release of a project: ``cmake-3.31.6-py3-none-...whl`` or ``cmake-3.31.6.tar.gz``."""
    want = version(pinned)
    for name in files if isinstance(files, list) else []:
        match = re.match(r"[A-Za-z0-9_.]+?-(\d+(?:\.\d+)*)(?:-|\.tar\.gz$|\.zip$)", str(name))
        if match and want is not None and version(match.group(1)) == want:
            return True
    return False


def _build_venv_verdict(pip: dict[str, Any], pins: Pins) -> tuple[str, str, str]:
    """(status, found, fix) of the build venv from the ``tools.pip`` facts."""
    if pip.get("venv") is False or pip.get("ensurepip") is False:
        missing = "venv" if pip.get("venv") is False else "ensurepip"
        return ("fail", f"this Python has no `{missing}` module, so no venv can be made (Debian/Ubuntu split it "
                        "out of python3)",
                "sudo apt install python3-venv (or python3.X-venv for your Python 3.X)")
    sources = [s for s in pip.get("sources") or [] if isinstance(s, dict)]
    usable = [s for s in sources if s.get("ok")]
    listed = "; ".join(f"{s.get('kind')} {s.get('url')}: {'ok' if s.get('ok') else s.get('error') or 'not checked'}"
                       for s in sources) or "none configured"
    wheelhouse_fix = ("let pip reach its index (proxy: HTTPS_PROXY), or give the build a local wheelhouse made with "
                      "`pip download` on a connected machine: aipc build --find-links DIR (AIPC_FIND_LINKS=DIR), or "
                      "PIP_FIND_LINKS=DIR and PIP_NO_INDEX=1 for every venv (find-links / no-index in pip.conf or "
                      "pip.ini)")
    if not usable:
        return ("warn", f"pip can reach no package source ({listed}): the build venv (cmake, ninja, genai's "
                        "requirements-dev.txt, ORT's build requirements) can be made only if an earlier run left it",
                wheelhouse_fix)
    found = f"pip can reach {len(usable)} of {len(sources)} package sources ({listed})"
    remote = [s for s in usable if str(s.get("url", "")).startswith(("http://", "https://"))]
    if remote:
        return "pass", found, ""
    # only local sources: they must hold the pinned build tools (the rest of the build requirements come from the
    # source checkouts, which doctor does not read)
    lacking = [f"{tool}=={pinned}" for tool, pinned in pins.build_tools.items()
               if not any(_has_version((s.get("build_tools") or {}).get(tool), pinned) for s in usable
                          if isinstance(s.get("build_tools"), dict))]
    if lacking:
        return ("warn", f"{found}; only local sources, and none holds {', '.join(lacking)} ([build_tools])",
                f"add {' and '.join(lacking)} to the wheelhouse (pip download {' '.join(lacking)} -d DIR on a "
                "connected machine, then aipc build --find-links DIR), or let pip reach an index")
    pinned = ", ".join(f"{k}=={v}" for k, v in pins.build_tools.items())
    return "pass", (f"{found}; the local sources hold the pinned {pinned} (genai's and ORT's own requirements are "
                    "not checked)"), ""


@check("build", "build venv (pip)")
def check_build_venv(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    """aipc makes venvs with ``python -m venv`` and fills them with pip: the build venv (``[build_tools]`` CMake and
    Ninja, genai's requirements-dev.txt, ORT's Python build requirements) and verify's per-path venvs. What can be
    checked without installing anything: the venv/ensurepip modules, and whether pip's sources (as pip's config
    files and PIP_* variables name them) answer."""
    pip = get(facts, "tools.pip", dict)
    if pip is None:
        return _missing(r, "pip's configuration", facts, "tools.pip")
    return r(*_build_venv_verdict(pip, pins))


GCC_FIX_UBUNTU = ("sudo apt install g++-{v} and build with CXX=g++-{v} CC=gcc-{v} (Ubuntu 22.04+ has it; on 20.04 "
                  "from ppa:ubuntu-toolchain-r/test)")


@check("build", "C++ compiler", goals=BUILDS)
def check_compiler(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    """genai's CMakeLists.txt stops with "GCC version must be greater than or equal to 11"; on Windows MSVC is the
    compiler and the Visual Studio C++ check holds its minimum (``[toolchain] msvc_toolset_min``)."""
    if platform_of(facts) == "windows":
        return r("skip", f"MSVC: see the Visual Studio C++ check (>= {pins.toolchain['msvc_toolset_min']})")
    gcc_min = pins.toolchain["gcc_min"]
    cc = get(facts, "tools.cc", dict)
    if cc is None:
        return _missing(r, "C/C++ compiler", facts, "tools.cc")
    fix = GCC_FIX_UBUNTU.format(v=gcc_min)
    if not cc.get("path"):
        return r("fail", f"no C compiler found ({cc.get('command') or 'cc'} is not on PATH)",
                 "sudo apt install build-essential (GCC >= " + gcc_min + ")")
    kind, ver = cc.get("kind"), cc.get("version")
    found = f"{kind or 'unknown compiler'} {ver or '?'} ({cc.get('path')})"
    if kind == "gcc":
        v, vmin = version(ver), version(gcc_min)
        if v is None or vmin is None:
            return r("warn", f"{found}: cannot read its version", fix)
        if v < vmin:
            return r("fail", f"{found} < {gcc_min}: genai's CMakeLists.txt requires GCC >= {gcc_min}", fix)
        return r("pass", f"{found} >= {gcc_min}")
    if kind == "clang":
        return r("pass", f"{found}: genai sets no Clang minimum (it builds as C++20); GCC >= {gcc_min} is what "
                         "upstream checks")
    return r("warn", f"{found}: not GCC or Clang, the compilers genai's build knows", fix)


@check("build", "Visual Studio C++", only="windows", goals=BUILDS)
def check_visual_studio(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    vs_major = pins.toolchain["visual_studio"]
    year = pins.toolchain["visual_studio_year"]
    msvc_min = pins.toolchain["msvc_toolset_min"]
    vs = get(facts, "windows.visual_studio", dict)
    if vs is None:
        return _missing(r, "Visual Studio", facts, "windows.visual_studio")
    instances = [i for i in vs.get("instances") or [] if isinstance(i, dict)]
    if not vs.get("vswhere") or not instances:
        return r("fail", f"no Visual Studio found (vswhere: {vs.get('vswhere') or 'not installed'})", VS_BUILDTOOLS)
    wanted = [i for i in instances if str(i.get("installation_version", "")).split(".")[0] == vs_major]
    others = ", ".join(f"{i.get('display_name')} {i.get('installation_version')}" for i in instances)
    if not wanted:
        return r("fail", f"no Visual Studio {year} ({vs_major}.x); found: {others}", VS_BUILDTOOLS)
    with_vc = [i for i in wanted if i.get("has_vc_tools")]
    if not with_vc:
        inst = wanted[0]
        return r("fail", f"{inst.get('display_name')} {inst.get('installation_version')} has no C++ workload",
                 _vs_modify(inst, [c for c, _ in VS_COMPONENTS]))
    best: tuple[Version, str, dict[str, Any]] | None = None
    for inst in with_vc:
        for tool in inst.get("msvc_toolsets") or []:
            if isinstance(tool, dict) and tool.get("cl_x64"):
                v = version(tool.get("version"))
                if v is not None and (best is None or v > best[0]):
                    best = (v, str(tool.get("version")), inst)
    if best is None:
        inst = with_vc[0]
        return r("fail", f"{inst.get('display_name')}: no MSVC x64 compiler under VC\\Tools\\MSVC",
                 f"repair or update Visual Studio: {VS_INSTALLER} update "
                 f"--installPath \"{inst.get('installation_path')}\" --passive")
    v, text, inst = best
    found = f"{inst.get('display_name')} {inst.get('installation_version')}, MSVC {text}"
    vmin = version(msvc_min)
    if vmin is not None and v < vmin:
        return r("fail", f"{found} < {msvc_min} (ORT's build needs >= {msvc_min}; MSVC 14.39 breaks the DML build)",
                 f"update Visual Studio {year} to 17.10 or later: {VS_INSTALLER} update "
                 f"--installPath \"{inst.get('installation_path')}\" --passive")
    return r("pass", found)


def _vs_modify(inst: dict[str, Any], components: list[str]) -> str:
    adds = " ".join(f"--add {c}" for c in components)
    return (f"{VS_INSTALLER} modify --installPath \"{inst.get('installation_path')}\" {adds} --passive (or run "
            "scripts/bootstrap-windows.ps1, which installs them all)")


def _vs_with_vc(facts: Facts, pins: Pins) -> list[dict[str, Any]]:
    vs_major = pins.toolchain["visual_studio"]
    instances = [i for i in get(facts, "windows.visual_studio.instances", list) or [] if isinstance(i, dict)]
    return [i for i in instances
            if str(i.get("installation_version", "")).split(".")[0] == vs_major and i.get("has_vc_tools")]


@check("build", "Visual Studio components", only="windows", goals=("build-dml",))
def check_vs_components(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    """Every component of :data:`aipc.platforms.windows.VS_COMPONENTS` (the list the bootstrap installs), in the
    Visual Studio that has the C++ tools."""
    if get(facts, "windows.visual_studio", dict) is None:
        return _missing(r, "Visual Studio", facts, "windows.visual_studio")
    candidates = _vs_with_vc(facts, pins)
    if not candidates:
        return r("skip", f"no Visual Studio {pins.toolchain['visual_studio_year']} with the C++ tools (see the "
                         "Visual Studio C++ check)")
    recorded = [i for i in candidates if isinstance(i.get("components"), dict)]
    if not recorded:
        return r("skip", "the installed components were not recorded (facts from an older aipc); record them again "
                         "with `aipc doctor --save-facts FILE`")
    best, missing = None, [c for c, _ in VS_COMPONENTS]
    for inst in recorded:
        lacks = [c for c, _ in VS_COMPONENTS if not inst["components"].get(c)]
        if best is None or len(lacks) < len(missing):
            best, missing = inst, lacks
    assert best is not None
    name = f"{best.get('display_name')} {best.get('installation_version')}"
    if not missing:
        return r("pass", f"{name} has {', '.join(c for c, _ in VS_COMPONENTS)}")
    why = dict(VS_COMPONENTS)
    return r("fail", f"{name} lacks " + "; ".join(f"{c} ({why[c]})" for c in missing), _vs_modify(best, missing))


@check("build", "build path characters", only="windows", goals=("build-dml",))
def check_build_path_chars(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    workdir = get(facts, "host.workdir", str)
    if workdir is None:
        return _missing(r, "work directory", facts, "host")
    bad = sorted({c for c in workdir if c in CMD_METACHARACTERS})
    if bad:
        return r("fail", f"{workdir} contains the cmd metacharacter{'s' if len(bad) > 1 else ''} "
                         f"{' '.join(bad)}: ORT's build.bat and vcvars64.bat run under cmd.exe, which splits or "
                         "expands the path there",
                 r"build in a directory whose path has none of & ^ % | < > ! (e.g. C:\b): aipc build --workdir C:\b")
    return r("pass", f"{workdir}: no cmd metacharacters")


@check("build", "Windows SDK (d3d12.h)", only="windows", goals=("build-dml",))
def check_windows_sdk(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    sdk_min = pins.toolchain["windows_sdk_min"]
    short = ".".join(sdk_min.split(".")[2:3])
    fix = (f"Visual Studio Installer > Individual components > Windows 11 SDK (10.0.{short}.0) "
           f"(component Microsoft.VisualStudio.Component.Windows11SDK.{short}), "
           f"or winget install --id Microsoft.WindowsSDK.10.0.{short} -e")
    kits = get(facts, "windows.kits_root", str)
    if not kits:
        return r("fail", "no Windows 10/11 SDK (registry KitsRoot10 not set)", fix)
    sdks = [s for s in get(facts, "windows.sdk", list) or [] if isinstance(s, dict)]
    with_h = [s for s in sdks if s.get("d3d12_h")]
    if not with_h:
        listed = ", ".join(str(s.get("version")) for s in sdks) or "none"
        return r("fail", f"{kits}: no SDK with um\\d3d12.h (versions: {listed})", fix)
    best = max(with_h, key=lambda s: version(s.get("version")) or Version("0"))
    found = f"SDK {best.get('version')} with d3d12.h ({kits})"
    vb, vmin = version(best.get("version")), version(sdk_min)
    if vb is not None and vmin is not None and vb < vmin:
        return r("warn", f"{found} < {sdk_min}", fix)
    return r("pass", found)


@check("build", "nuget.exe", only="windows", goals=("build-dml",))
def check_nuget(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    genai = pins.onnxruntime_genai.version
    info = get(facts, "tools.nuget", dict) or {}
    path = info.get("path")
    needs = Version(genai) >= Version(GENAI_NUGET_ON_PATH)
    if not needs:
        return r("skip", f"not needed: the pinned onnxruntime-genai {genai} downloads nuget.exe 5.3.0 itself"
                         + (f" (found {path})" if path else ""))
    if path:
        return r("pass", f"nuget {info.get('version') or '?'} ({path})")
    return r("fail", f"nuget.exe not on PATH; the pinned onnxruntime-genai {genai} needs it (find_program)",
             "winget install --id Microsoft.NuGet -e (or put https://dist.nuget.org/win-x86-commandline/latest/"
             "nuget.exe in a directory on PATH)")


@check("build", "long paths", only="windows", goals=("build-dml",))
def check_long_paths(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    value = get(facts, "windows.long_paths_enabled", int)
    fix = (r"as administrator: reg add HKLM\SYSTEM\CurrentControlSet\Control\FileSystem /v LongPathsEnabled "
           "/t REG_DWORD /d 1 /f ; then git config --system core.longpaths true")
    if value == 1:
        return r("pass", "LongPathsEnabled = 1")
    return r("fail", f"LongPathsEnabled = {value if value is not None else 'not set'} (MAX_PATH 260 applies)", fix)


@check("build", "short build path", only="windows", goals=("build-dml",))
def check_build_path(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    workdir = get(facts, "host.workdir", str)
    if workdir is None:
        return _missing(r, "work directory", facts, "host")
    found = f"{workdir} ({len(workdir)} characters)"
    fix = (r"clone and build in a short path such as C:\b (ORT's wheel step hits cmd's 8192-character limit, "
           "onnxruntime#15674)")
    if len(workdir) > SHORT_PATH_MAX:
        return r("warn", f"{found} > {SHORT_PATH_MAX}", fix)
    if " " in workdir:
        return r("warn", f"{found} contains spaces", fix)
    return r("pass", found)


# --- devices ------------------------------------------------------------------------------------------------------

def _windows_npus(facts: Facts) -> list[dict[str, Any]]:
    return [n for n in get(facts, "windows.npu", list) or [] if isinstance(n, dict)]


def _working_npu(npus: list[dict[str, Any]]) -> dict[str, Any] | None:
    for npu in npus:
        if npu.get("problem") in (0, None) and str(npu.get("status", "OK")).upper() == "OK" \
                and re.search(r"AI Boost|NPU", str(npu.get("name", "")), re.I):
            return npu
    return None


def _linux_accel(facts: Facts) -> list[dict[str, Any]]:
    return [a for a in get(facts, "linux.accel_devices", list) or [] if isinstance(a, dict)]


@check("devices", "NPU", goals=("npu",))
def check_npu(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    if platform_of(facts) == "windows":
        if get(facts, "windows.npu", list) is None:
            return _missing(r, "NPU devices", facts, "windows")
        npus = _windows_npus(facts)
        if not npus:
            return r("warn", "no Intel NPU (\"Intel(R) AI Boost\") found; the NPU paths will be skipped",
                     f"an Intel Core Ultra NPU is needed; if this PC has one, install its driver: {NPU_DRIVER_URL}")
        npu = _working_npu(npus)
        if npu is None:
            bad = npus[0]
            return r("fail", f"NPU hardware {bad.get('device_id')} shows as \"{bad.get('name')}\" "
                             f"(status {bad.get('status')}, problem code {bad.get('problem')}): no working driver",
                     f"install the Intel NPU driver: {NPU_DRIVER_URL}")
        return r("pass", f"{npu.get('name')}, driver {npu.get('driver_version') or '?'}")
    if get(facts, "linux.accel_devices", list) is None:
        return _missing(r, "NPU devices", facts, "linux")
    if is_wsl(facts):
        return r("warn", "WSL2 has no NPU (intel-npu-acceleration-library#13)",
                 "run the NPU paths on Windows itself, not in WSL")
    pci = [p for p in get(facts, "linux.npu_pci", list) or [] if isinstance(p, dict)]
    loaded = get(facts, "linux.intel_vpu_loaded", bool)
    accel = _linux_accel(facts)
    hw = ", ".join(f"{p.get('platform')} NPU {p.get('id')} at {p.get('slot')}" for p in pci)
    if accel:
        return r("pass", f"{', '.join(str(a.get('path')) for a in accel)}"
                         f"{' (intel_vpu loaded)' if loaded else ''}{f'; {hw}' if hw else ''}")
    if loaded:
        return r("fail", "intel_vpu is loaded but there is no /dev/accel/accel* node",
                 "check `sudo dmesg | grep -i vpu` (firmware: install intel-fw-npu from "
                 f"{LINUX_NPU_DRIVER_URL}); kernel 6.6+ is needed")
    if pci:
        avail = get(facts, "linux.intel_vpu_available", bool)
        return r("fail", f"{hw} present but the intel_vpu module is not loaded"
                         + (" (not shipped with this kernel)" if avail is False else ""),
                 "sudo modprobe intel_vpu (kernel 6.6+; on Ubuntu 22.04 install linux-generic-hwe-22.04), "
                 f"then install the user-space driver from {LINUX_NPU_DRIVER_URL}")
    return r("warn", "no Intel NPU (no intel_vpu module, no /dev/accel/accel*); the NPU paths will be skipped",
             "an Intel Core Ultra NPU with kernel 6.6+ and the intel_vpu driver is needed")


@check("devices", "NPU access (Linux)", goals=("npu",))
def check_npu_access(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    if platform_of(facts) != "linux":
        return r("skip", "Linux only (on Windows the driver grants access)")
    accel = _linux_accel(facts)
    if not accel:
        return r("skip", "no /dev/accel/accel* node")
    user = get(facts, "linux.user", str) or "$USER"
    session = get(facts, "linux.session_groups", list) or []
    configured = get(facts, "linux.configured_groups", list) or []
    denied = [a for a in accel if not (a.get("readable") and a.get("writable"))]
    if not denied:
        return r("pass", ", ".join(f"{a.get('path')} rw (group {a.get('group')})" for a in accel))
    node = denied[0]
    path, group = str(node.get("path")), str(node.get("group"))
    found = (f"{path} (group {group}, mode {node.get('mode')}) is not read/write for user {user} "
             f"(groups: {', '.join(map(str, session)) or 'none'})")
    try:
        group_rw = (int(str(node.get("mode")), 0) & 0o060) == 0o060
    except ValueError:
        group_rw = False
    if group in ("render", "video") and group_rw:
        if group in configured and group not in session:
            return r("fail", found + f"; {user} is in '{group}' but this login session predates it",
                     "log out and back in (or run `newgrp " + group + "`)")
        return r("fail", found, f"sudo usermod -aG {group} {user}, then log out and back in")
    return r("fail", found,
             f"sudo chown root:render {path} && sudo chmod g+rw {path} && sudo usermod -aG render {user}, "
             "then log out and back in (linux-npu-driver docs/overview.md)")


@check("devices", "NPU user-space driver (Linux)", goals=("npu",))
def check_npu_umd(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    if platform_of(facts) != "linux":
        return r("skip", "Linux only")
    if not _linux_accel(facts):
        return r("skip", "no /dev/accel/accel* node")
    libs = get(facts, "linux.npu_user_space", dict) or {}
    fix = (f"install intel-level-zero-npu, intel-driver-compiler-npu, intel-fw-npu and the Level Zero loader "
           f"(libze1) from {LINUX_NPU_DRIVER_URL}")
    if "libze_intel_npu.so" in libs and "libze_loader.so.1" in libs:
        return r("pass", f"{libs['libze_intel_npu.so']}, {libs['libze_loader.so.1']}")
    if "libze_intel_vpu.so" in libs:
        return r("warn", f"only the old {libs['libze_intel_vpu.so']} (renamed libze_intel_npu.so in v1.16.0)",
                 "remove the old intel-level-zero-vpu package, then " + fix)
    missing = [n for n in ("libze_intel_npu.so", "libze_loader.so.1") if n not in libs]
    return r("warn", f"not found: {', '.join(missing)}", fix)


def _driver_check(facts: Facts, r: _R, minimum: str, what: str) -> CheckResult:
    if platform_of(facts) != "windows":
        ov = get(facts, "devices.openvino.npu_driver_version", int)
        return r("skip", f"the minimum {minimum} is a Windows driver version"
                         + (f"; OpenVINO reports NPU_DRIVER_VERSION {ov}" if ov is not None else ""))
    npu = _working_npu(_windows_npus(facts))
    if npu is None:
        return r("skip", "no working NPU (see the NPU check)")
    text = npu.get("driver_version")
    v, vmin = version(text), version(minimum)
    if v is None or vmin is None:
        return r("warn", f"cannot read the NPU driver version ({text!r})", f"check Device Manager; {NPU_DRIVER_URL}")
    found = f"driver {text}"
    if v < vmin:
        return r("fail", f"{found} < {minimum} ({what})", f"update the Intel NPU driver: {NPU_DRIVER_URL}")
    return r("pass", f"{found} >= {minimum}")


@check("devices", "NPU driver for OpenVINO GenAI", goals=("npu",))
def check_npu_driver_genai(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    minimum = pins.drivers["npu_genai_min_windows"]
    return _driver_check(facts, r, minimum,
                         "OpenVINO GenAI on NPU needs it; older drivers run out of memory or fail to compile")


@check("devices", "NPU driver for the NPU library", goals=("npu",))
def check_npu_driver_library(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    minimum = str(pins.npu["driver_min_windows"])
    return _driver_check(facts, r, minimum,
                         "intel-npu-acceleration-library warns below 2408; old drivers fail with 0xe06d7363")


def _real_gpus(facts: Facts) -> list[dict[str, Any]]:
    gpus = [g for g in get(facts, "windows.gpus", list) or [] if isinstance(g, dict)]
    return [g for g in gpus if is_hardware_adapter(g.get("name"))]


@check("devices", "GPU", goals=("verify",))
def check_gpu(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    if platform_of(facts) != "windows":
        return r("skip", "DirectML is Windows-only; OpenVINO's GPU device is in the OpenVINO check")
    if get(facts, "windows.gpus", list) is None:
        return _missing(r, "GPUs", facts, "windows")
    gpus = _real_gpus(facts)
    fix = f"install the GPU vendor's driver (Intel: {GPU_DRIVER_URL})"
    if not gpus:
        names = ", ".join(str(g.get("name")) for g in get(facts, "windows.gpus", list) or [] if isinstance(g, dict))
        return r("fail", f"no GPU with a vendor driver ({names or 'no display adapter'})", fix)
    build = get(facts, "windows.os.build", int)
    parts = [f"{g.get('name')} {g.get('driver_version')}, {effective_wddm(build, g.get('driver_version'))[1]}"
             for g in gpus]
    broken = [g for g in gpus if g.get("problem") not in (0, None)]
    if broken:
        return r("warn", "; ".join(parts) + f"; {broken[0].get('name')} has problem code {broken[0].get('problem')}",
                 fix)
    return r("pass", "; ".join(parts))


@check("devices", "DirectX 12", goals=("verify",))
def check_dx12(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    if platform_of(facts) != "windows":
        return r("skip", "DirectX 12 / DirectML are Windows-only")
    if get(facts, "windows.gpus", list) is None:
        return _missing(r, "GPUs", facts, "windows")
    fix = f"update the GPU driver to a DirectX 12 (WDDM 2.0+) driver (Intel: {GPU_DRIVER_URL})"
    if get(facts, "windows.d3d12_dll", bool) is False:
        return r("fail", "System32\\d3d12.dll is missing",
                 "install the Windows updates (DirectX 12 ships with Windows)")
    capable = [g for g in _real_gpus(facts) if is_dx12_adapter(g.get("name"), g.get("driver_version"), g.get("status"))]
    if not capable:
        return r("fail", "no working GPU with a WDDM 2.0+ driver, which DirectX 12 (and so DirectML) needs", fix)
    dml = get(facts, "windows.directml_dll.file_version", str)
    wddm = effective_wddm(get(facts, "windows.os.build", int), capable[0].get("driver_version"))[1]
    return r("pass", f"d3d12.dll present; {capable[0].get('name')} {wddm}"
                     + (f"; inbox DirectML.dll {dml} (aipc ships its own)" if dml else ""))


def _venv_under(python: str, root: str, windows: bool) -> str | None:
    """The venv directory (``root/<name>``) that holds ``python``, or None when it is not below ``root``."""
    path: type[PurePath] = PureWindowsPath if windows else PurePosixPath
    try:
        rel = path(python).relative_to(path(root))
    except ValueError:
        return None
    return str(path(root) / rel.parts[0]) if rel.parts else None


def _openvino_fix(facts: Facts, ov: dict[str, Any]) -> str:
    python, root = str(ov.get("python", "")), ov.get("venv_root")
    if not isinstance(root, str) or not python:  # facts recorded before the venv root was
        return ("recreate aipc's OpenVINO venv: delete it under <cache>/venvs (<cache>: $AIPC_CACHE, else "
                "%LOCALAPPDATA%\\aipc on Windows, $XDG_CACHE_HOME/aipc or ~/.cache/aipc on Linux) and run `nox -s "
                "verify`")
    venv = _venv_under(python, root, platform_of(facts) == "windows")
    if venv is not None:
        return f"recreate aipc's OpenVINO venv: delete {venv} and run `nox -s verify`"
    return f"repair openvino in that Python: {python} -m pip install --force-reinstall openvino (or uninstall it)"


@check("devices", "OpenVINO devices", goals=("verify", "npu"))
def check_openvino(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    ov = get(facts, "devices.openvino", dict)
    if ov is None:
        return _missing(r, "OpenVINO devices", facts, "devices.openvino")
    status = ov.get("status")
    if status == "not-installed":
        return r("skip", "openvino is not installed in this Python or in aipc's venvs "
                         "(run `nox -s verify` once, then rerun the doctor)")
    where = ov.get("python", "?")
    if status in ("crash", "timeout"):
        return r("fail", f"the OpenVINO device query {'crashed' if status == 'crash' else 'hung'} "
                         f"({ov.get('error')}) in {where}",
                 f"update the NPU driver ({NPU_DRIVER_URL}) and the BIOS (openvino#36456: device enumeration "
                 "crashes with driver >= 32.0.100.4723 on old BIOS)")
    if status != "ok":
        return r("warn", f"openvino failed to load in {where}: {ov.get('error')}", _openvino_fix(facts, ov))
    devices = [str(d) for d in ov.get("devices") or []]
    raw_names = ov.get("device_names")
    names: dict[str, Any] = raw_names if isinstance(raw_names, dict) else {}
    found = f"OpenVINO {ov.get('version', '?')}: " + ", ".join(
        f"{d} ({names[d]})" if names.get(d) else d for d in devices)
    npu_expected = (_working_npu(_windows_npus(facts)) is not None if platform_of(facts) == "windows"
                    else any(a.get("readable") and a.get("writable") for a in _linux_accel(facts)))
    if npu_expected and "NPU" not in devices:
        fix = (f"update the NPU driver ({NPU_DRIVER_URL})" if platform_of(facts) == "windows" else
               "install the user-space driver (libze_intel_npu, libze_loader) and follow linux-npu-driver#113's "
               "strace checklist: strace -f -e trace=file python -c \"import openvino as ov; "
               "print(ov.Core().available_devices)\" 2>&1 | grep -E 'accel|libnpu_|libze_'")
        return r("fail", found + "; the NPU is present but OpenVINO does not list it", fix)
    return r("pass", found)


# --- runtime hazards ------------------------------------------------------------------------------------------------

def ort_api_version(ver: Any) -> int | None:
    """ORT's C API version (:func:`aipc.ortversion.api_version_for`) of a package or DLL version (1.17.1.0 ok)."""
    v = version(ver)
    if v is None or len(v.release) < 2 or v.release[0] != 1:
        return None
    return api_version_for(".".join(map(str, (*v.release, 0)[:3])))


@check("runtime", "stray ONNX Runtime library", goals=("verify",))
def check_ort_shadowing(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    libs = get(facts, "runtime.ort_libraries", list)
    win = platform_of(facts) == "windows"
    if libs is None:
        return _missing(r, "ONNX Runtime libraries", facts, "windows" if win else "runtime.ort_libraries")
    libs = [lib for lib in libs if isinstance(lib, dict)]
    where = "System32 or on PATH" if win else "LD_LIBRARY_PATH or the system library directories"
    if not libs:
        return r("pass", f"no onnxruntime library in {where}")
    pinned = pins.onnxruntime.version
    need = ort_api_version(pinned)
    worst, parts, fixes = "pass", [], []
    for lib in libs:
        ver, kind, path = lib.get("version"), lib.get("where"), str(lib.get("path"))
        api = ort_api_version(ver)
        parts.append(f"{path} {ver or 'unknown version'}" + (f" (API {api})" if api is not None else ""))
        if api is not None and need is not None and api >= need:
            continue
        if kind == "system32":
            status = "warn"
            fixes.append("leave System32\\onnxruntime.dll alone (Windows owns it); aipc keeps onnxruntime.dll next "
                         "to what it runs; for your own .exe copy onnxruntime.dll and DirectML.dll next to it "
                         "(onnxruntime-genai#935)")
        elif win:
            status = "fail"
            fixes.append(f"remove {path.rsplit(chr(92), 1)[0]} from PATH or delete its stale onnxruntime.dll")
        else:
            status = "fail" if kind == "ld_library_path" else "warn"
            fixes.append(f"remove {path.rsplit('/', 1)[0]} from LD_LIBRARY_PATH" if kind == "ld_library_path"
                         else f"remove the stale {path} (and run sudo ldconfig)")
        worst = status if STATUSES.index(status) > STATUSES.index(worst) else worst
    found = "; ".join(parts)
    if worst == "pass":
        return r("pass", f"{found}: not older than the pinned ORT {pinned}")
    return r(worst, f"{found}: older than ORT {pinned} (API {need}); it can be loaded instead of ours "
                    "(\"The given version [N] is not supported\")", "; ".join(dict.fromkeys(fixes)))


def _installed(facts: Facts) -> dict[str, str]:
    pkgs = get(facts, "packages.installed", dict) or {}
    return {str(k): str(v) for k, v in pkgs.items()}


def _all(items: list[str]) -> str:
    return "both" if len(items) == 2 else "all"


def _wheel_dists(facts: Facts) -> tuple[str, str]:
    """The ORT and genai distributions aipc builds for the facts' platform (Linux's when it is unknown)."""
    plat = get_platform(platform_of(facts) if platform_of(facts) in PLATFORM_NAMES else "linux")
    return canonicalize_name(plat.ort_wheel_dist), canonicalize_name(plat.genai_wheel_dist)


@check("runtime", "ONNX Runtime packages", goals=("verify",))
def check_ort_packages(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    if get(facts, "packages.installed", dict) is None:
        return _missing(r, "installed packages", facts, "packages")
    pkgs = _installed(facts)
    where = get(facts, "packages.interpreter", str) or "this Python"
    ort = [d for d in ORT_DISTS if d in pkgs]
    genai = [d for d in GENAI_DISTS if d in pkgs]
    keep_ort, keep_genai = _wheel_dists(facts)
    problems, fixes = [], []
    if len(ort) > 1:
        problems.append(" and ".join(f"{d} {pkgs[d]}" for d in ort) + f" are {_all(ort)} installed; they share the "
                        "`onnxruntime` module, so DmlExecutionProvider goes missing (onnxruntime-genai#983)")
        fixes.append(f"python -m pip uninstall -y {' '.join(ort)} && python -m pip install {keep_ort}")
    if len(genai) > 1:
        problems.append(" and ".join(f"{d} {pkgs[d]}" for d in genai) + f" are {_all(genai)} installed; they share the "
                        "`onnxruntime_genai` module")
        fixes.append(f"python -m pip uninstall -y {' '.join(genai)} && python -m pip install {keep_genai}")
    if problems:
        return r("fail", f"in {where}: " + "; ".join(problems), " ; ".join(fixes))
    listed = ", ".join(f"{d} {pkgs[d]}" for d in (*ort, *genai))
    return r("pass", f"{listed or 'no ONNX Runtime package'} in {where}")


@check("runtime", "installed genai vs ONNX Runtime", goals=("verify",))
def check_installed_compat(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    pkgs = _installed(facts)
    genai = next((d for d in GENAI_DISTS if d in pkgs), None)
    if genai is None:
        where = get(facts, "packages.interpreter", str) or "this Python"
        return r("skip", f"no onnxruntime-genai installed in {where}")
    # each genai flavour pairs with its ONNX Runtime flavour (genai-directml -> onnxruntime-directml)
    partner = {"onnxruntime-genai": "onnxruntime", "onnxruntime-genai-directml": "onnxruntime-directml",
               "onnxruntime-genai-cuda": "onnxruntime-gpu"}[genai]
    ort = partner if partner in pkgs else next((d for d in ORT_DISTS if d in pkgs), None)
    gv = pkgs[genai]
    if ort is None:
        dist = "onnxruntime-directml" if genai.endswith("directml") else "onnxruntime"
        return r("fail", f"{genai} {gv} is installed without ONNX Runtime",
                 f"python -m pip install {dist} (a version the compatibility table accepts: `aipc pins`)")
    ov = pkgs[ort]
    try:
        row = compat_row_for(pins, gv)
    except PinsError:
        return r("warn", f"{genai} {gv} is not in aipc's genai <-> ORT compatibility table ({ort} {ov} installed)",
                 "use a genai release listed by `aipc pins`, or aipc's own wheels from wheels/")
    v_ort, v_min = version(ov), version(row.ort_min)
    if v_ort is None or v_min is None:
        return r("warn", f"cannot compare {ort} {ov!r} with {row.ort_min}", "reinstall a released ONNX Runtime")
    try:
        ok = Version(ov) >= Version(row.ort_min)
    except InvalidVersion:
        ok = v_ort >= v_min
    if not ok:
        return r("fail", f"{genai} {gv} needs ONNX Runtime >= {row.ort_min} but {ort} {ov} is installed "
                         f"(table row: {row.row})",
                 f'python -m pip install "{ort}>={row.ort_min}"')
    return r("pass", f"{genai} {gv} with {ort} {ov} (needs >= {row.ort_min})")


@check("runtime", "VC++ runtime", only="windows", goals=("verify", "npu"))
def check_vc_runtime(facts: Facts, pins: Pins, r: _R) -> CheckResult:
    fix = f"install the latest Visual C++ x64 redistributable: {VC_REDIST_URL}"
    vc = get(facts, "windows.vc_runtime", dict)
    dll = get(facts, "windows.msvcp140.file_version_raw", str) or get(facts, "windows.msvcp140.file_version", str)
    text = None
    if vc and vc.get("installed") == 1:
        text = str(vc.get("version") or "")
        where = f"VC++ 2015-2022 x64 runtime {text}"
    elif dll:
        text, where = dll, f"System32\\msvcp140.dll {dll} (no redistributable registry entry)"
    else:
        return r("fail", "no Visual C++ 2015-2022 x64 runtime (\"Unable to load DLL ... 0x8007007E\", "
                         "onnxruntime-genai#1004)", fix)
    vc_min = pins.toolchain["msvc_toolset_min"]
    v, vmin = version(text), version(vc_min)
    if v is None or vmin is None:
        return r("warn", f"{where}: cannot read its version", fix)
    if v < vmin:
        return r("warn", f"{where} < {vc_min}: binaries built with MSVC >= {vc_min} can crash with older "
                         "runtimes", fix)
    return r("pass", where)


# --- running ------------------------------------------------------------------------------------------------------

def run_checks(facts: Facts, pins: Pins) -> list[CheckResult]:
    """Evaluate every check; a check that raises becomes a visible ``fail`` (never a silent pass)."""
    results = []
    for category, name, fn in CHECKS:
        try:
            result = fn(facts, pins)
        except Exception as exc:
            result = CheckResult(name, category, "fail", f"internal error evaluating this check: "
                                 f"{type(exc).__name__}: {exc}", "report this as an aipc bug with --save-facts",
                                 CHECK_GOALS.get(name, ALL_GOALS))
        results.append(result)
    return results


def summary(results: list[CheckResult]) -> dict[str, int]:
    return {s: sum(1 for r in results if r.status == s) for s in STATUSES}


@dataclass(frozen=True)
class GoalVerdict:
    """Is the machine ready for one goal: not when a check that blocks it failed (its warnings are listed)."""

    goal: str
    failed: tuple[str, ...]
    warned: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.failed

    def to_json(self) -> dict[str, Any]:
        return {"goal": self.goal, "ready": self.ready, "failed": list(self.failed), "warned": list(self.warned)}


def goal_verdicts(results: list[CheckResult]) -> list[GoalVerdict]:
    """One verdict per goal, in GOALS order."""
    return [GoalVerdict(goal, tuple(r.name for r in results if goal in r.goals and r.status == "fail"),
                        tuple(r.name for r in results if goal in r.goals and r.status == "warn"))
            for goal in GOALS]


def exit_code(results: list[CheckResult], goals: tuple[str, ...] = ALL_GOALS) -> int:
    """1 when any of ``goals`` (default: every goal) is not ready, else 0."""
    return ExitCode.FAILED if any(not v.ready for v in goal_verdicts(results) if v.goal in goals) else ExitCode.OK
