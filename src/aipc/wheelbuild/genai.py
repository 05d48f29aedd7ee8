"""Step 4, build-genai: onnxruntime-genai's ``build.py`` command against the staged ORT_HOME, and its wheel.

Command (docs/upstream.md#build §1.1): ``python build.py --config Release --build_dir <workdir>/genai-build
--ort_home <ORT_HOME> --skip_tests --skip_examples``, ``--use_dml`` on Windows, ``--no_telemetry`` when the
pinned genai has it (v0.15.0+), the generator, and ``ONNXRUNTIME_VERSION`` = the ORT version genai is built
against, which genai's ``setup.py`` turns into the wheel's ``Requires-Dist: onnxruntime[-directml]>=<version>``.

How each of the issues of building the real genai is handled:
- **jobs**: genai's ``--parallel`` takes no number and makes ``cmake --build --parallel`` use the native tool's
  default (``make -j`` without a limit), ignoring ``CMAKE_BUILD_PARALLEL_LEVEL``. So ``--parallel`` is never
  passed; ``CMAKE_BUILD_PARALLEL_LEVEL=N`` (``--jobs``, default every CPU) bounds ``cmake --build`` on every
  generator (``make -jN``, ``ninja -jN``, MSBuild ``/m:N``). A plan made for another host passes ``--parallel``.
- **tests**: ``--skip_tests`` only skips running them; ``ENABLE_TESTS=OFF`` stops them being compiled.
- **the CMake tree** is ``<workdir>/genai-build/<config>`` (``--build_dir``; build.py appends the config), not the
  checkout's ``build/``. :func:`prepare_build_tree` marks it as aipc's (``aipc-folder.json``) and wipes it
  when the generator or config recorded there differs (CMake refuses a tree made by another generator); a tree
  without the marker is never touched.
- **dependencies**: ``FETCHCONTENT_SOURCE_DIR_<NAME>`` for each served by ``--deps-dir``, and
  ``FETCHCONTENT_FULLY_DISCONNECTED=ON`` offline (:mod:`aipc.wheelbuild.deps`).
- **RUNPATH**: the genai shared library would carry a build RPATH to ORT_HOME/lib (``target_link_directories``);
  ``CMAKE_SKIP_BUILD_RPATH=ON`` drops it. The Python module keeps its ``$ORIGIN`` (genai sets
  ``BUILD_WITH_INSTALL_RPATH``); at run time genai loads ORT from the installed ``onnxruntime`` package
  (``src/python/py/_dll_directory.py`` sets ``ORT_LIB_PATH``), so nothing needs the build machine's path.
- **the build venv** (:mod:`aipc.wheelbuild.buildvenv`, genai's ``requirements-dev.txt`` in it) runs build.py, its
  ``cmake`` is passed as ``--cmake_path`` and its bin directory is first on ``PATH`` (Ninja);
  ``Python_EXECUTABLE``/``PYTHON_EXECUTABLE`` name its interpreter, so the wheel is for that Python (the venv is
  made from ``--python``).
- **the log**: ``PYTHONUNBUFFERED=1``, so build.py's own lines are not held back in a pipe buffer.
- **the source tree stays untouched**: build.py imports ``tools/python/util`` from the genai checkout, so Python
  would write ``tools/python/util/__pycache__`` into it; ``PYTHONDONTWRITEBYTECODE=1`` prevents that (seen with
  the real v0.15.2 tree; ``aipc check-upstream`` hashes the trees around the build).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import AipcError
from ..fsutil import MARKER, mark_dir, read_marker
from ..pins import Pins
from ..runner import Command
from ..wheelhouse import find_wheels
from . import buildvenv
from .ort import NO_WHEEL, use_ccache
from .settings import BuildSettings
from .stage import cmake_generator as cached_generator

TREE_KIND = "genai-build-tree"
# what aipc always passes to genai's CMake (before the dependency folders and the user's --cmake-define)
FIXED_DEFINES = ("ENABLE_TESTS=OFF", "CMAKE_SKIP_BUILD_RPATH=ON")


def genai_defines(settings: BuildSettings, python: str, dep_defines: Sequence[str] = ()) -> list[str]:
    """Every ``NAME=VALUE`` passed through ``--cmake_extra_defines``, in order (later ones win in CMake)."""
    defines = list(FIXED_DEFINES)
    defines += [f"Python_EXECUTABLE={python}", f"PYTHON_EXECUTABLE={python}"]
    if use_ccache(settings):
        defines += ["CMAKE_C_COMPILER_LAUNCHER=ccache", "CMAKE_CXX_COMPILER_LAUNCHER=ccache"]
    defines += dep_defines
    defines += settings.cmake_defines
    return defines


def genai_option_defines(settings: BuildSettings, pins: Pins) -> list[str]:
    """The CMake options build.py itself sets from our flags, as ``NAME=VALUE`` (what dependency discovery
    evaluates genai's CMake conditions with), plus aipc's and the user's defines."""
    dml = "--use_dml" in settings.platform.genai_platform_flags
    return [f"USE_DML={'ON' if dml else 'OFF'}", "USE_CUDA=OFF", "USE_TRT_RTX=OFF", "USE_WINML=OFF",
            "ENABLE_JAVA=OFF", "BUILD_WHEEL=ON", "USE_GUIDANCE=OFF",
            f"ENABLE_TELEMETRY={'OFF' if pins.genai_has_no_telemetry else 'ON'}", f"ORT_HOME={settings.ort_home}",
            f"CMAKE_BUILD_TYPE={settings.config}", *FIXED_DEFINES, *settings.cmake_defines]


def genai_build_argv(settings: BuildSettings, pins: Pins, dep_defines: Sequence[str] = ()) -> list[str]:
    plat = settings.platform
    python = str(buildvenv.python(settings))
    argv = [python, "build.py", "--config", settings.config, "--build_dir", str(settings.genai_build_root),
            "--ort_home", str(settings.ort_home)]
    if settings.build_jobs is None:
        argv.append("--parallel")  # another host's plan: its native default (no count is known here)
    argv += ["--skip_tests", "--skip_examples", *plat.genai_platform_flags]
    if pins.genai_has_no_telemetry:
        argv.append("--no_telemetry")
    if settings.cmake_generator is not None:
        argv += ["--cmake_generator", settings.cmake_generator]
    argv += ["--cmake_path", str(buildvenv.tool(settings, "cmake"))]
    argv += ["--cmake_extra_defines", *genai_defines(settings, python, dep_defines)]
    return argv


def genai_build_env(settings: BuildSettings, ort_version: str,
                    base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (the MSVC environment and the build venv's PATH) plus ONNXRUNTIME_VERSION, the job count and
    PYTHONUNBUFFERED, PYTHONDONTWRITEBYTECODE (no ``__pycache__`` written into the genai checkout)."""
    env = dict(base or {})
    env["ONNXRUNTIME_VERSION"] = ort_version
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if settings.build_jobs is not None:
        env["CMAKE_BUILD_PARALLEL_LEVEL"] = str(settings.build_jobs)
    return env


def genai_build_command(settings: BuildSettings, pins: Pins, ort_version: str,
                        base_env: Mapping[str, str] | None = None, dep_defines: Sequence[str] = ()) -> Command:
    return Command.make(genai_build_argv(settings, pins, dep_defines), settings.genai_dir,
                        genai_build_env(settings, ort_version, base_env))


# --- the CMake tree -----------------------------------------------------------------------------------------------


def tree_identity(settings: BuildSettings) -> dict[str, Any]:
    """What a CMake tree cannot change once configured: a change means a fresh tree."""
    return {"generator": settings.cmake_generator or "(build.py default)", "config": settings.config,
            "platform": settings.platform.name}


def prepare_build_tree(settings: BuildSettings, echo: Any = None) -> str:
    """Make ``genai_build_dir`` ready for build.py: create and mark it (:func:`aipc.fsutil.mark_dir`, kind
    ``genai-build-tree``), or wipe it when it was configured with another generator/config. Returns what was done
    ("created" | "kept" | "cleaned"). A tree aipc did not make is refused, never touched."""
    tree = Path(settings.genai_build_dir)
    want = tree_identity(settings)
    if tree.exists() or tree.is_symlink():
        marker = read_marker(tree)
        if marker is None or marker.get("kind") != TREE_KIND or tree.is_symlink():
            raise AipcError(f"{tree} exists but is not a CMake tree aipc made (no {MARKER} of kind {TREE_KIND})",
                            hint="move it away or pass another --workdir; aipc never deletes what it did not make")
        cache_gen = cached_generator(tree)
        gen_ok = settings.cmake_generator is None or cache_gen is None or cache_gen == settings.cmake_generator
        if marker.get("identity") == want and gen_ok:
            return "kept"
        if echo is not None:
            echo(f"[aipc]   {tree} was configured with {marker.get('identity') or cache_gen}; now {want}: "
                 "starting a fresh CMake tree")
        shutil.rmtree(tree)
        action = "cleaned"
    else:
        action = "created"
    tree.mkdir(parents=True)
    mark_dir(tree, TREE_KIND, record_files=False, identity=want,
             note="aipc's CMake tree for onnxruntime-genai; aipc wipes it when the identity changes")
    return action


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
