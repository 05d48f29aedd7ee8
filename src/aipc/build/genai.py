"""Step 4, build-genai: onnxruntime-genai's ``build.py`` command against the staged ORT_HOME, and its wheel.

Command (upstream-build.md section 1.1): ``python build.py --config Release --ort_home <ORT_HOME> --parallel
--skip_tests --skip_examples``, ``--use_dml`` on Windows, ``--no_telemetry`` when the pinned genai has it (v0.15.0+),
the generator, and ``ONNXRUNTIME_VERSION`` = the ORT version just built, which genai's ``setup.py`` turns into the
wheel's ``Requires-Dist: onnxruntime-directml>=<version>`` (section 2). ``--parallel`` takes no count; ``--jobs``
goes to ``CMAKE_BUILD_PARALLEL_LEVEL``. The wheel lands in ``build/<System>/<config>/wheel/`` (section 1.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..errors import AipcError
from ..pins import Pins
from ..runner import Command
from ..wheelhouse import find_wheels
from .ort import NO_WHEEL, use_ccache
from .settings import BuildSettings


def genai_build_argv(settings: BuildSettings, pins: Pins) -> list[str]:
    plat = settings.platform
    argv = [settings.python, "build.py", "--config", settings.config, "--ort_home", str(settings.ort_home),
            "--parallel", "--skip_tests", "--skip_examples", *plat.genai_platform_flags]
    if pins.genai_has_no_telemetry:
        argv.append("--no_telemetry")
    if settings.cmake_generator is not None:
        argv += ["--cmake_generator", settings.cmake_generator]
    if use_ccache(settings):
        argv += ["--cmake_extra_defines", "CMAKE_C_COMPILER_LAUNCHER=ccache", "CMAKE_CXX_COMPILER_LAUNCHER=ccache"]
    return argv


def genai_build_env(settings: BuildSettings, ort_version: str,
                    msvc_env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(msvc_env or {})
    env["ONNXRUNTIME_VERSION"] = ort_version
    if settings.jobs is not None:
        env["CMAKE_BUILD_PARALLEL_LEVEL"] = str(settings.jobs)
    return env


def genai_build_command(settings: BuildSettings, pins: Pins, ort_version: str,
                        msvc_env: Mapping[str, str] | None = None) -> Command:
    return Command.make(genai_build_argv(settings, pins), settings.genai_dir,
                        genai_build_env(settings, ort_version, msvc_env))


def wheel_dir(settings: BuildSettings) -> Path:
    return Path(settings.genai_build_dir) / "wheel"


def find_genai_wheel(settings: BuildSettings, expected_version: str | None = None) -> Path:
    directory = wheel_dir(settings)
    wheels = find_wheels(directory, settings.platform.genai_wheel_dist, prefer_version=expected_version)
    if not wheels:
        raise AipcError(
            f"no {settings.platform.genai_wheel_dist} wheel in {directory}",
            hint="run `aipc build-genai` (a rerun resumes an interrupted build)",
        )
    return wheels[0]


def expected_outputs(settings: BuildSettings, expected_version: str | None) -> list[Path]:
    directory = wheel_dir(settings)
    dist = settings.platform.genai_wheel_dist
    wheels = find_wheels(directory, dist, prefer_version=expected_version) if settings.is_host else []
    return [wheels[0] if wheels else directory / NO_WHEEL]
