"""Step 2, build-ort: ONNX Runtime's ``build.bat``/``build.sh`` command, and where its outputs land.

Command (docs/upstream.md#build §6): ``--config Release --build_shared_lib --parallel --skip_tests
--build_wheel``, ``--use_dml`` on Windows, ``--cmake_extra_defines onnxruntime_BUILD_UNIT_TESTS=OFF`` (``--skip_tests``
alone still compiles the test targets), the CMake generator (Visual Studio 2022 by default on Windows, Ninja on
request), ``--use_cache`` when ccache is used, ``--skip_submodule_sync`` offline.

Layouts: ``build/Windows/Release/Release/`` with Visual Studio (multi-config), ``build/Windows/Release/`` with
Ninja, ``build/Linux/Release/`` on Linux; the wheel is in ``<that directory>/dist/*.whl``.

Python build requirements: ORT's CI installs ``tools/ci_build/github/windows/python/requirements.txt`` (numpy,
setuptools, wheel, protobuf, onnx, ...) before ``build.py`` (ORT ``.github/workflows/windows_dml.yml``, step "Install
python modules"; the Linux file is ``tools/ci_build/github/linux/python/requirements.txt``). aipc installs the file of
the fetched ORT tree into the build venv (:mod:`aipc.wheelbuild.buildvenv`) under ``constraints/ort-build.txt``, after
checking that the constraints pin every name the file lists (:func:`unpinned_requirements`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import AipcError
from ..platforms import Platform
from ..runner import Command
from ..wheelhouse import find_wheels
from . import stage
from .settings import BuildSettings

UNIT_TESTS_OFF = "onnxruntime_BUILD_UNIT_TESTS=OFF"
NO_WHEEL = "(no wheel built yet)"
# the pins of ORT's Python build requirements (and what they pull in)
CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints" / "ort-build.txt"


def requirements_file(settings: BuildSettings) -> PurePath:
    """ORT's Python build requirements file in the ORT tree (:attr:`Platform.ort_build_requirements`)."""
    return settings.ort_dir.joinpath(*settings.platform.ort_build_requirements.split("/"))


def requirements_argv(settings: BuildSettings, pip_install: Sequence[str]) -> list[str]:
    """``pip install -r <ORT's requirements> -c constraints/ort-build.txt`` with the build venv's pip."""
    return [*pip_install, "-r", str(requirements_file(settings)), "-c", str(CONSTRAINTS)]


def _requirements(text: str, where: str) -> list[Requirement]:
    reqs = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise AipcError(f"{where}:{n}: pip option {line.split()[0]!r} is not supported in a requirements file "
                            "aipc checks against its constraints",
                            hint="install from a requirements file that lists requirements only")
        try:
            reqs.append(Requirement(line))
        except InvalidRequirement as exc:
            raise AipcError(f"{where}:{n}: {line!r} is not a requirement ({exc})") from None
    return reqs


def _pinned(req: Requirement) -> str | None:
    specs = list(req.specifier)
    return specs[0].version if len(specs) == 1 and specs[0].operator == "==" else None


def unpinned_requirements(requirements: str, constraints: str, platform: Platform, pythons: Iterable[str],
                          where: str = "requirements.txt") -> list[str]:
    """Problems (one line each) that keep ``pip install -r requirements -c constraints`` from being pinned: a name
    neither pinned in the file (``==``) nor in the constraints, or a constraint outside the file's own specifier.
    Markers are evaluated for ``platform`` and each Python version in ``pythons``."""
    reqs = _requirements(requirements, where)
    cons = _requirements(constraints, "constraints")
    problems: list[str] = []
    for py in pythons:
        env = {**dict(platform.marker_env), "python_version": py, "python_full_version": f"{py}.0",
               "implementation_name": "cpython", "platform_python_implementation": "CPython"}

        def applies(marker: Marker | None, env: dict[str, str] = env) -> bool:
            return marker is None or marker.evaluate(env)

        for req in reqs:
            if not applies(req.marker):
                continue
            name = canonicalize_name(req.name)
            pins = [v for c in cons if canonicalize_name(c.name) == name and applies(c.marker)
                    for v in [_pinned(c)] if v is not None]
            if not pins:
                if _pinned(req) is None:
                    problems.append(f"{req.name} ({req}) is not pinned for Python {py}")
            elif req.specifier and not req.specifier.contains(pins[0], prereleases=True):
                problems.append(f"{req.name}: the constraint =={pins[0]} is outside {where}'s {req.specifier} "
                                f"(Python {py})")
    return list(dict.fromkeys(problems))


def check_requirements_pinned(settings: BuildSettings, pythons: Iterable[str]) -> Path:
    """Refuse ORT's requirements file when it is missing or names something the constraints do not pin."""
    path = Path(requirements_file(settings))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise AipcError(f"ONNX Runtime's Python build requirements {path} are missing",
                        hint="fetch the pinned ONNX Runtime (`aipc fetch`) or pass a complete checkout with "
                             "--ort-source") from None
    problems = unpinned_requirements(text, CONSTRAINTS.read_text(encoding="utf-8"), settings.platform, pythons,
                                     where=str(path))
    if problems:
        raise AipcError(f"ONNX Runtime's build requirements are not all pinned: {problems[0]}"
                        + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                        hint=f"add a pin for it to {CONSTRAINTS} (the ORT tree changed since the constraints were "
                             "written)")
    return path


def use_ccache(settings: BuildSettings) -> bool:
    """ccache: ``on`` always, ``off`` never, ``auto`` when found on this host and the generator honours launchers
    (Visual Studio generators ignore CMAKE_<LANG>_COMPILER_LAUNCHER)."""
    if settings.ccache == "on":
        return True
    if settings.ccache == "off" or not settings.is_host:
        return False
    if settings.generator == "vs":
        return False
    return shutil.which("ccache") is not None


def ort_build_argv(settings: BuildSettings) -> list[str]:
    plat = settings.platform
    argv = [str(settings.ort_dir / plat.ort_build_script), "--config", settings.config, "--build_shared_lib",
            "--parallel"]
    if settings.jobs is not None:
        argv.append(str(settings.jobs))
    argv += ["--skip_tests", "--build_wheel", *plat.ort_platform_flags]
    if settings.cmake_generator is not None:
        argv += ["--cmake_generator", settings.cmake_generator]
    if use_ccache(settings):
        argv.append("--use_cache")
    if settings.offline:
        argv.append("--skip_submodule_sync")
    argv += ["--cmake_extra_defines", UNIT_TESTS_OFF]
    return argv


def ort_build_command(settings: BuildSettings, msvc_env: Mapping[str, str] | None = None) -> Command:
    return Command.make(ort_build_argv(settings), settings.ort_dir, dict(msvc_env or {}))


_REBUILD_HINT = "run `aipc build-ort` (the build may have been interrupted; a rerun resumes it)"


def artifact_candidates(platform: Platform, build_dir: PurePath, config: str, generator: str) -> list[PurePath]:
    """Where the built libraries may be: the generator's own layout first, then the platform's others
    (:meth:`Platform.config_dirs` and :meth:`Platform.artifact_dir_candidates`, as ``aipc stage`` looks)."""
    own = build_dir.joinpath(*platform.config_dirs(generator, config))
    return [own, *(c for c in platform.artifact_dir_candidates(build_dir, config) if c != own)]


@dataclass(frozen=True)
class OrtArtifacts:
    artifact_dir: Path
    main_lib: Path
    wheel: Path


def find_ort_wheel(platform: Platform, artifact_dir: Path, expected_version: str | None = None) -> Path:
    dist_dir = artifact_dir / "dist"
    wheels = find_wheels(dist_dir, platform.ort_wheel_dist, prefer_version=expected_version)
    if not wheels:
        raise AipcError(
            f"no {platform.ort_wheel_dist} wheel in {dist_dir}",
            hint="run `aipc build-ort` (it passes --build_wheel); a rerun resumes an interrupted build",
        )
    return wheels[0]


def discover_ort(settings: BuildSettings, expected_version: str | None = None) -> OrtArtifacts:
    plat = settings.platform
    art = stage.find_artifact_dir(plat, Path(settings.ort_build_dir), settings.config,
                                  generator=settings.layout_generator, hint=_REBUILD_HINT)
    return OrtArtifacts(art, art / plat.ort_main_lib, find_ort_wheel(plat, art, expected_version))


def expected_outputs(settings: BuildSettings, expected_version: str | None) -> list[Path]:
    """What build-ort promises, for the runner's up-to-date check."""
    plat = settings.platform
    art = Path(artifact_candidates(plat, settings.ort_build_dir, settings.config, settings.layout_generator)[0])
    wheels = find_wheels(art / "dist", plat.ort_wheel_dist, prefer_version=expected_version) if settings.is_host else []
    return [art / plat.ort_main_lib, wheels[0] if wheels else art / "dist" / NO_WHEEL]
