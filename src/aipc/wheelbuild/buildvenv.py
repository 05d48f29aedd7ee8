"""The build venv: the Python, CMake and Ninja that run ONNX Runtime's and onnxruntime-genai's builds.

A venv under the workdir (``<workdir>/venv``), created from ``--python`` (so the wheels get that Python's tags),
holding the pinned ``[build_tools]`` CMake and Ninja from PyPI, ONNX Runtime's own Python build requirements
(:func:`aipc.wheelbuild.ort.requirements_argv`) under ``constraints/ort-build.txt``, and onnxruntime-genai's
``requirements-dev.txt`` (its ``build.py`` imports ``requests`` at start-up) under ``constraints/genai-build.txt``.
The builds run with the venv's executables first on ``PATH``: ORT's ``build.bat``/``build.sh`` start the ``python``
found there, genai's ``build.py`` runs with the venv's interpreter (:func:`python`), and both builds find ``cmake``
and ``ninja`` there.

The venv is made and filled by this run's installer (``--installer``: uv or pip, :mod:`aipc.installer`, the same
sources and results). Every install takes ``--find-links DIR`` when given (``--no-index`` too with ``--offline``:
the wheelhouse is then the only source). Without ``--find-links``, pip installs as it is configured (uv is told
pip's configuration), also with ``--offline`` (``--offline`` means no *source* is fetched; an air-gapped machine
points pip at a wheelhouse, here or in pip's own configuration).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path, PurePath

from ..installer import Installer, PipSources, UvInstaller, select
from ..pins import Pins
from ..venvs import venv_python
from .settings import BuildSettings

VENV_DIR = "venv"
GENAI_CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints" / "genai-build.txt"
GENAI_REQUIREMENTS = "requirements-dev.txt"
# what the plan shows for the inherited PATH (the real value is read when the step runs)
PATH_PLACEHOLDER = {"windows": "%PATH%", "linux": "$PATH"}
# the [build_tools] keys installed from PyPI, in this order
TOOLS = ("cmake", "ninja")


def venv_dir(settings: BuildSettings) -> PurePath:
    return settings.workdir / VENV_DIR


def python(settings: BuildSettings) -> PurePath:
    """The build venv's interpreter, laid out as on the target platform."""
    return venv_python(venv_dir(settings), settings.platform)


def bin_dir(settings: BuildSettings) -> PurePath:
    return venv_dir(settings) / settings.platform.venv_bin_dir


def pip_index_args(settings: BuildSettings) -> list[str]:
    """pip's index options of the settings: ``--find-links DIR`` when given, with ``--no-index`` offline (also used
    by the ``pip download`` of an ORT release, :mod:`aipc.wheelbuild.release`)."""
    if settings.find_links is None:
        return []
    return [*(["--no-index"] if settings.offline else []), "--find-links", str(settings.find_links)]


def installer(settings: BuildSettings) -> Installer:
    """This run's installer (``--installer``, :mod:`aipc.installer`). A plan for another platform spells uv as
    ``uv`` and carries no pip configuration of this host (the target's is read when the build runs there)."""
    inst = select()
    if not settings.is_host and isinstance(inst, UvInstaller):
        inst = replace(inst, uv="uv", sources=PipSources())
    return inst


def install_env(settings: BuildSettings) -> dict[str, str]:
    """What the installer adds to the environment of its commands (uv: pip's certificate and timeout). A planned
    command's environment only adds variables, so here uv's own ``UV_*`` settings are not removed (its
    ``--no-config`` still holds)."""
    return {k: v for k, v in installer(settings).env().items() if v is not None}


def pip_install(settings: BuildSettings) -> list[str]:
    """``<venv python> -m pip install`` (or ``uv pip install --python <venv python>``) with the index options of the
    settings."""
    return installer(settings).install(python(settings), pip_index_args(settings))


def tool(settings: BuildSettings, name: str) -> PurePath:
    """An executable of the build venv (``cmake``, ``ninja``), laid out as on the target platform."""
    return bin_dir(settings) / f"{name}{settings.platform.exe_suffix}"


def genai_requirements_file(settings: BuildSettings) -> PurePath:
    return settings.genai_dir / GENAI_REQUIREMENTS


def genai_requirements_argv(settings: BuildSettings) -> list[str]:
    """genai's ``requirements-dev.txt`` under aipc's pinned constraints."""
    return [*pip_install(settings), "-c", str(GENAI_CONSTRAINTS), "-r", str(genai_requirements_file(settings))]


def create_argvs(settings: BuildSettings, live: bool = False) -> list[list[str]]:
    """The commands that make the build venv (``python -m venv``, or ``uv venv`` and the interpreter's ensurepip
    wheels: found when ``live``, named in a plan)."""
    seeds = None if live else (f"<the ensurepip wheels of {settings.python}>",)
    return installer(settings).create_venv(venv_dir(settings), settings.python, python(settings), seeds)


def tool_requirements(pins: Pins) -> list[str]:
    """``cmake==X``, ``ninja==Y`` from ``[build_tools]`` (the pins file says why these versions)."""
    return [f"{name}=={pins.build_tools[name]}" for name in TOOLS]


def tools_argv(settings: BuildSettings, pins: Pins) -> list[str]:
    return [*pip_install(settings), *tool_requirements(pins)]


def path_env(settings: BuildSettings, base: Mapping[str, str] | None, live: bool) -> dict[str, str]:
    """``base`` (e.g. the captured MSVC environment) with the venv's executables first on ``PATH``.

    The rest of ``PATH`` is ``base``'s when it has one, else (``live``) this process's, else the plan's placeholder.
    """
    env = dict(base or {})
    windows = settings.platform.name == "windows"
    sep = ";" if windows else ":"
    # Windows names are case-insensitive: keep ``base``'s spelling (``Path``), never add a second entry
    key = next((k for k in env if k.upper() == "PATH"), "PATH") if windows else "PATH"
    rest = env.get(key) or (os.environ.get("PATH", "") if live else PATH_PLACEHOLDER[settings.platform.name])
    env[key] = sep.join(p for p in (str(bin_dir(settings)), rest) if p)
    return env


def expected_python(settings: BuildSettings) -> Path:
    return Path(python(settings))
