"""Typed build settings, read from the command line and ``AIPC_*`` environment variables.

In the style of scikit-build-core's settings: one dataclass, each field declares its command-line option, its
environment variable and its help text; precedence is command line > environment > default. The same
declarations generate the ``argparse`` options of every build subcommand, so the two never drift apart.

Paths are "pure" paths of the *target* platform: a Windows plan made on Linux keeps Windows paths
(``C:\\b\\ort``). Only the host's own platform is ever executed, where they are concrete paths.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any

from ..argtypes import check_seconds, delay
from ..errors import UsageError
from ..platforms import Platform, get_platform, host_platform_name
from ..platforms.windows import CMD_METACHARACTERS
from ..settings import LIST_SEP, PINS, PLATFORM, WHEELS, Option, add_options, check_choice, env_value
from ..wheelhouse import DEFAULT_WHEELS_DIR

GENERATORS = ("vs", "ninja")
CONFIGS = ("Release", "RelWithDebInfo", "Debug", "MinSizeRel")
CCACHE_MODES = ("auto", "on", "off")
# the --ort-release values that name a download (anything else is a local file or folder)
RELEASE_KEYWORDS = ("pypi", "nuget")
# AIPC_CMAKE_DEFINES holds several NAME=VALUE separated by this (a ';' would split CMake list values)
CMAKE_DEFINES_SEP = LIST_SEP
_DEFINE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.+-]*(:[A-Za-z]+)?=")
# a Windows workdir longer than this risks the long-path / command-length failures of section 7.3
WINDOWS_WORKDIR_WARN = 40


# the subcommands that take the build settings
COMMANDS = ("plan", "fetch", "build-venv", "build-ort", "build-genai", "ort-release", "wheels", "build", "deps")


def _opt(name: str, cli: str, env: str | None, help: str, **extra: Any) -> Option:
    return Option(name, cli, env, help, commands=COMMANDS, **extra)


# every build setting: its flag, its variable, its help and its type (aipc.settings drives argparse and the docs)
OPTIONS: tuple[Option, ...] = (
    PLATFORM.but(commands=COMMANDS),
    _opt("workdir", "--workdir", "AIPC_WORKDIR",
         "build directory for sources, builds, ORT_HOME, logs (default: ./.aipc/build; on Windows prefer a short "
         "path such as C:\\b)", metavar="DIR"),
    _opt("config", "--config", "AIPC_CONFIG", "build configuration (default: Release)", choices=CONFIGS),
    _opt("generator", "--generator", "AIPC_GENERATOR",
         "CMake generator: vs (Visual Studio 2022, Windows default) or ninja (on Windows with the MSVC environment "
         "found through vswhere)", choices=GENERATORS),
    _opt("jobs", "--jobs", "AIPC_JOBS",
         "compile jobs for the ORT and genai builds, on every generator (default: every CPU)", parse=int,
         metavar="N"),
    _opt("source", "--source", "AIPC_SOURCE",
         "directory holding existing checkouts onnxruntime/ and onnxruntime-genai/ (used instead of cloning; "
         "commits still verified when they are git repositories)", metavar="DIR"),
    _opt("ort_source", "--ort-source", "AIPC_ORT_SOURCE", "existing ONNX Runtime checkout to use", metavar="DIR"),
    _opt("genai_source", "--genai-source", "AIPC_GENAI_SOURCE", "existing onnxruntime-genai checkout to use",
         metavar="DIR"),
    _opt("ort_repo", "--ort-repo", "AIPC_ORT_REPO",
         "clone ONNX Runtime from this git URL or local path (default: the pinned repo)", metavar="URL"),
    _opt("genai_repo", "--genai-repo", "AIPC_GENAI_REPO", "clone onnxruntime-genai from this git URL or local path",
         metavar="URL"),
    _opt("ort_release", "--ort-release", "AIPC_ORT_RELEASE",
         "use an official ONNX Runtime release instead of building ORT: 'pypi' (the pinned onnxruntime wheel, "
         "Linux), 'nuget' (the pinned Microsoft.ML.OnnxRuntime.DirectML package, Windows), or a local wheel, "
         ".nupkg or unpacked release archive (include/ and lib/); headers come from the package or --ort-source",
         metavar="SPEC"),
    WHEELS.but(commands=COMMANDS),
    _opt("ccache", "--ccache", "AIPC_CCACHE", "compiler cache: auto (use ccache when on PATH), on, off",
         choices=CCACHE_MODES),
    _opt("legacy_ort_dir", "--legacy-ort-dir", "AIPC_LEGACY_ORT_DIR",
         "also fill genai's ort/ folder (its C examples read it); optional DIR", kind="optvalue", metavar="DIR"),
    _opt("offline", "--offline", "AIPC_OFFLINE",
         "fetch no source from the network: no git clone, no CMake FetchContent download (every dependency from "
         "--deps-dir, checked before anything compiles), no NuGet package, no release archive: only local sources, "
         "local git repositories and local release files; Python packages (the --ort-release pypi wheel too) still "
         "come through pip as you configured it (or --find-links)", kind="switch"),
    _opt("deps_dir", "--deps-dir", "AIPC_DEPS_DIR",
         "folder holding one folder per CMake dependency of genai (filled by `aipc deps --out DIR`); each found is "
         "passed as FETCHCONTENT_SOURCE_DIR_<NAME>", metavar="DIR"),
    _opt("cmake_defines", "--cmake-define", "AIPC_CMAKE_DEFINES",
         "extra CMake definition for genai's build (repeatable; passed last through build.py's "
         "--cmake_extra_defines)", kind="list", metavar="NAME=VALUE"),
    PINS.but(commands=COMMANDS),
    _opt("python", "--python", "AIPC_BUILD_PYTHON",
         "Python the build venv is made from, so the Python of both wheels (default: this interpreter); ORT's "
         "build.bat/build.sh start the build venv's python, first on PATH; the wheels step refuses wheels of two "
         "Pythons. Its path is part of the build's fingerprint: `aipc build` from one venv and `nox -s build` (its "
         "own venv) rebuild each other's steps unless both get the same --python / AIPC_BUILD_PYTHON",
         metavar="EXE"),
    _opt("find_links", "--find-links", "AIPC_FIND_LINKS",
         "a folder of wheels for the build venv's pip installs (CMake, Ninja, ONNX Runtime's build requirements); "
         "with --offline it is the only source (pip --no-index), without it pip installs as configured",
         metavar="DIR"),
    _opt("force", "--force", None, "rerun steps even when up to date", kind="switch"),
    _opt("fetch_retries", "--fetch-retries", "AIPC_FETCH_RETRIES", "attempts for a git network operation "
         "(default: 4)", parse=int, metavar="N"),
    _opt("fetch_backoff", "--fetch-backoff", "AIPC_FETCH_BACKOFF",
         "first retry delay in seconds, doubled each time (default: 2; 0: retry at once)", parse=delay, metavar="S"),
)
_BY_NAME = {o.name: o for o in OPTIONS}


@dataclass(frozen=True)
class RawSettings:
    """What the user said (``None`` = not given), before defaults are applied; one field per :data:`OPTIONS`."""

    platform: str | None = None
    workdir: str | None = None
    config: str | None = None
    generator: str | None = None
    jobs: int | None = None
    source: str | None = None
    ort_source: str | None = None
    genai_source: str | None = None
    ort_repo: str | None = None
    genai_repo: str | None = None
    ort_release: str | None = None
    wheels: str | None = None
    ccache: str | None = None
    legacy_ort_dir: str | None = None
    offline: bool | None = None
    deps_dir: str | None = None
    cmake_defines: tuple[str, ...] | None = None
    pins: str | None = None
    python: str | None = None
    find_links: str | None = None
    force: bool | None = None
    fetch_retries: int | None = None
    fetch_backoff: float | None = None


def add_arguments(parser: argparse.ArgumentParser, command: str = "build") -> None:
    """Add every settings option to ``parser`` (defaults are None: unset)."""
    group = parser.add_argument_group("build settings (each also from its AIPC_* environment variable)")
    add_options(group, OPTIONS, command)


def read_raw(cli: Mapping[str, Any] | argparse.Namespace | None = None,
             environ: Mapping[str, str] | None = None) -> RawSettings:
    """Merge command-line values (``None`` = not given) over ``AIPC_*`` environment variables."""
    given = vars(cli) if isinstance(cli, argparse.Namespace) else dict(cli or {})
    values: dict[str, Any] = {}
    for f in fields(RawSettings):
        option = _BY_NAME[f.name]
        value = given.get(f.name)
        if value is None:
            value = env_value(option, environ)
        if isinstance(value, list):
            value = tuple(value)
        check_choice(option, value)
        values[f.name] = value
    return RawSettings(**values)


@dataclass(frozen=True)
class BuildSettings:
    """Resolved settings: every default applied, every path absolute (for the target platform)."""

    platform: Platform
    workdir: PurePath
    config: str
    generator: str  # "vs" | "ninja" | "default" (Linux: CMake's default, single-config)
    jobs: int | None
    ort_source: PurePath | None  # existing checkout (not cloned)
    genai_source: PurePath | None
    ort_repo: str | None  # clone from here instead of the pinned repo
    genai_repo: str | None
    # --ort-release: "pypi", "nuget" or an absolute path of a local release (None: build ORT from source)
    ort_release: str | None
    wheels: PurePath
    ccache: str
    legacy_ort_dir: PurePath | None
    offline: bool
    deps_dir: PurePath | None
    cmake_defines: tuple[str, ...]
    pins: Path | None
    python: str
    force: bool
    fetch_retries: int
    fetch_backoff: float
    is_host: bool
    find_links: PurePath | None = None

    # --- derived layout (short names: Windows builds fail on long paths) -------------------------------------
    @property
    def ort_dir(self) -> PurePath:
        return self.ort_source or self.workdir / "ort"

    @property
    def genai_dir(self) -> PurePath:
        return self.genai_source or self.workdir / "genai"

    @property
    def ort_build_dir(self) -> PurePath:
        """ORT's platform build directory: ``build.bat``/``build.sh`` use ``<repo>/build/<System>``."""
        return self.ort_dir / "build" / self.platform.system

    @property
    def genai_build_root(self) -> PurePath:
        """The ``--build_dir`` aipc gives genai's ``build.py``: under the workdir, never inside the checkout."""
        return self.workdir / "genai-build"

    @property
    def genai_build_dir(self) -> PurePath:
        """genai's CMake tree: ``build.py`` always appends the config to ``--build_dir``."""
        return self.genai_build_root / self.config

    @property
    def build_jobs(self) -> int | None:
        """``--jobs``, else every CPU of this host; None for a plan made for another host (its own default)."""
        if self.jobs is not None:
            return self.jobs
        return (os.cpu_count() or 1) if self.is_host else None

    @property
    def ort_home(self) -> PurePath:
        return self.workdir / "ort_home"

    @property
    def state_dir(self) -> PurePath:
        return self.workdir / "state"

    @property
    def log_dir(self) -> PurePath:
        return self.workdir / "logs"

    @property
    def cmake_generator(self) -> str | None:
        """The ``--cmake_generator`` value for the upstream scripts (None: leave their default)."""
        if self.generator == "ninja":
            return "Ninja"
        if self.generator == "vs":
            return self.platform.default_generator
        return None

    @property
    def layout_generator(self) -> str:
        """The generator name that decides the output layout (multi-config or not)."""
        return self.cmake_generator or self.platform.default_generator

    @property
    def needs_msvc_env(self) -> bool:
        return self.platform.name == "windows" and self.generator == "ninja"


def check_cmd_safe(platform: Platform, option: str, path: PurePath) -> None:
    """Refuse a Windows path that cmd.exe would split or expand (``platforms.windows.CMD_METACHARACTERS``):
    ``C:\\R&D\\b\\ort\\build.bat`` runs ``C:\\R``, then ``D\\b\\...``; ``%`` and ``!`` expand even inside quotes."""
    if platform.name != "windows":
        return
    bad = sorted({c for c in str(path) if c in CMD_METACHARACTERS}, key=CMD_METACHARACTERS.index)
    if bad:
        shown = " ".join(bad)
        raise UsageError(
            f"{option} {path} contains {shown}, which cmd.exe (it runs ONNX Runtime's build.bat) treats as a command "
            "separator, redirection or variable",
            hint=f"use a path without any of {' '.join(CMD_METACHARACTERS)}, such as C:\\b",
        )


def _pure(platform: Platform, is_host: bool) -> type[PurePath]:
    if is_host:
        return Path
    return PureWindowsPath if platform.name == "windows" else PurePosixPath


def resolve(raw: RawSettings, *, cwd: Path | None = None) -> BuildSettings:
    """Apply defaults and check the combination."""
    platform = get_platform(raw.platform)
    is_host = platform.name == host_platform_name()
    P = _pure(platform, is_host)
    here = Path.cwd() if cwd is None else cwd

    def path(text: str) -> PurePath:
        p = P(os.path.expanduser(text)) if is_host else P(text)
        if is_host:
            return Path(os.path.abspath(here / p))
        return p

    if raw.workdir:
        workdir = path(raw.workdir)
    elif is_host:
        workdir = Path(os.path.abspath(here / ".aipc" / "build"))
    else:
        workdir = P(platform.foreign_workdir)
    generator = raw.generator or ("vs" if platform.name == "windows" else "default")
    if generator == "vs" and platform.name != "windows":
        raise UsageError(f"--generator vs is Windows-only (planning for {platform.name})",
                         hint="use --generator ninja or leave the option out")
    if raw.jobs is not None and raw.jobs < 1:
        raise UsageError(f"--jobs {raw.jobs} must be at least 1", hint="leave --jobs out to use every CPU")
    ort_source = path(raw.ort_source) if raw.ort_source else None
    genai_source = path(raw.genai_source) if raw.genai_source else None
    if raw.source:
        base = path(raw.source)
        ort_source = ort_source or base / "onnxruntime"
        genai_source = genai_source or base / "onnxruntime-genai"
    ort_release = None
    if raw.ort_release is not None:
        keyword = raw.ort_release.strip().lower()
        if not raw.ort_release.strip():
            raise UsageError("--ort-release is empty", hint="pass pypi, nuget or the path of a local release file")
        ort_release = keyword if keyword in RELEASE_KEYWORDS else str(path(raw.ort_release))
        if raw.ort_repo:
            raise UsageError("--ort-repo clones ONNX Runtime to build it, but --ort-release uses a release instead",
                             hint="leave out one of --ort-repo and --ort-release")
    if raw.wheels:
        wheels = path(raw.wheels)
    elif is_host:
        wheels = Path(os.path.abspath(here / DEFAULT_WHEELS_DIR))
    else:
        wheels = workdir / "wheels"
    # every path that reaches build.bat's command line: the workdir (ORT is cloned there) or an ORT checkout
    check_cmd_safe(platform, "--workdir", workdir)
    if ort_source is not None:
        check_cmd_safe(platform, "--ort-source", ort_source)
    genai_dir = genai_source or workdir / "genai"
    legacy = None
    if raw.legacy_ort_dir is not None:
        legacy = path(raw.legacy_ort_dir) if raw.legacy_ort_dir else genai_dir / "ort"
    python = raw.python or (sys.executable if is_host else platform.python_command)
    backoff = 2.0 if raw.fetch_backoff is None else raw.fetch_backoff
    check_seconds(backoff, "--fetch-backoff/AIPC_FETCH_BACKOFF", allow_zero=True)
    defines = tuple(raw.cmake_defines or ())
    for d in defines:
        if not _DEFINE_RE.match(d):
            raise UsageError(f"--cmake-define {d!r} is not NAME=VALUE",
                             hint="pass e.g. --cmake-define CMAKE_CXX_FLAGS=-g (several: repeat the option, or "
                                  f"separate them with '{CMAKE_DEFINES_SEP}' in AIPC_CMAKE_DEFINES)")
    retries = 4 if raw.fetch_retries is None else raw.fetch_retries
    if retries < 1:
        raise UsageError(f"--fetch-retries {retries} must be at least 1", hint="use 1 for no retries")
    return BuildSettings(
        platform=platform,
        workdir=workdir,
        config=raw.config or "Release",
        generator=generator,
        jobs=raw.jobs,
        ort_source=ort_source,
        genai_source=genai_source,
        ort_repo=raw.ort_repo,
        genai_repo=raw.genai_repo,
        ort_release=ort_release,
        wheels=wheels,
        ccache=raw.ccache or "auto",
        legacy_ort_dir=legacy,
        offline=bool(raw.offline),
        deps_dir=path(raw.deps_dir) if raw.deps_dir else None,
        cmake_defines=defines,
        pins=Path(raw.pins) if raw.pins else None,
        python=python,
        force=bool(raw.force),
        fetch_retries=retries,
        fetch_backoff=backoff,
        is_host=is_host,
        find_links=path(raw.find_links) if raw.find_links else None,
    )


def from_args(args: argparse.Namespace | Mapping[str, Any] | None = None,
              environ: Mapping[str, str] | None = None, *, cwd: Path | None = None) -> BuildSettings:
    return resolve(read_raw(args, environ), cwd=cwd)
