"""Step 2, build-ort: ONNX Runtime's ``build.bat``/``build.sh`` command, and where its outputs land.

Command (upstream-build.md section 6): ``--config Release --build_shared_lib --parallel --skip_tests
--build_wheel``, ``--use_dml`` on Windows, ``--cmake_extra_defines onnxruntime_BUILD_UNIT_TESTS=OFF`` (``--skip_tests``
alone still compiles the test targets), the CMake generator (Visual Studio 2022 by default on Windows, Ninja on
request), ``--use_cache`` when ccache is used, ``--skip_submodule_sync`` offline.

Layouts: ``build/Windows/Release/Release/`` with Visual Studio (multi-config), ``build/Windows/Release/`` with
Ninja, ``build/Linux/Release/`` on Linux; the wheel is in ``<that directory>/dist/*.whl``.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath

from ..errors import AipcError
from ..platforms import Platform
from ..runner import Command
from ..wheelhouse import find_wheels
from .settings import BuildSettings

UNIT_TESTS_OFF = "onnxruntime_BUILD_UNIT_TESTS=OFF"
NO_WHEEL = "(no wheel built yet)"


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


def find_artifact_dir(platform: Platform, build_dir: Path, config: str, generator: str) -> Path:
    candidates = [Path(c) for c in artifact_candidates(platform, build_dir, config, generator)]
    for cand in candidates:
        lib = cand / platform.ort_main_lib
        if lib.exists() or lib.is_symlink():
            return cand
    raise AipcError(
        f"ONNX Runtime build output missing: no {platform.ort_main_lib} in {' or '.join(map(str, candidates))}",
        hint="run `aipc build-ort` (the build may have been interrupted; a rerun resumes it)",
    )


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
    art = find_artifact_dir(plat, Path(settings.ort_build_dir), settings.config, settings.layout_generator)
    return OrtArtifacts(art, art / plat.ort_main_lib, find_ort_wheel(plat, art, expected_version))


def expected_outputs(settings: BuildSettings, expected_version: str | None) -> list[Path]:
    """What build-ort promises, for the runner's up-to-date check."""
    plat = settings.platform
    art = Path(artifact_candidates(plat, settings.ort_build_dir, settings.config, settings.layout_generator)[0])
    wheels = find_wheels(art / "dist", plat.ort_wheel_dist, prefer_version=expected_version) if settings.is_host else []
    return [art / plat.ort_main_lib, wheels[0] if wheels else art / "dist" / NO_WHEEL]
