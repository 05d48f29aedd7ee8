"""The NPU-library runtime (path ``npu``): intel-npu-acceleration-library in its own venv, and the ``[npu]`` pins.

- :func:`npu_venv_spec` installs torch first, then aipc's wheel from ``wheels/`` when one fits this host (else, on
  Windows with CPython ``[npu] python_min``-``python_max``, the PyPI binary wheel), under ``constraints/npu.txt``;
  where no wheel can be had (Linux without a build, Windows with a newer CPython) it returns ``(None, reason)``.
- :data:`WORKER` is ``workers/smoke_npu.py`` (the smoke-worker protocol); the library compiles the Hugging Face
  checkpoint itself (no export) to int4 / int8 / fp16 (CompilerConfig dtypes, docs/upstream.md#npu §3).
- :class:`NpuPin` / :class:`SdistPin`: every ``[npu]`` fact, read by this runtime and by the NPU build area
  (``aipc build-npu``, which makes aipc's wheel; ``verify --build-npu`` asks it through ``Options.prepare``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import AipcError
from ..pins import Pins, load_pins
from ..platforms import host_platform_name
from ..venvs import VenvSpec
from ..wheelhouse import find_wheels, wheel_fits_host
from .base import WORKERS_DIR, BenchTarget, Case, Choice, ExportRecipe, Probe, RuntimeSkipped

WORKER = WORKERS_DIR / "smoke_npu.py"
CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints" / "npu.txt"
VENV_NAME = "npu"
# installed next to the library: neural-compressor 3.1.1 imports `six` without declaring it (python-dateutil >= 3
# no longer brings it)
EXTRA_PACKAGES = ("six",)
# platforms with intel-npu-acceleration-library binary wheels on PyPI (docs/upstream.md#npu §1): win_amd64 only,
# for CPython [npu] python_min-python_max
PYPI_WHEEL_PLATFORMS = ("windows",)

DIST = "intel-npu-acceleration-library"


@dataclass(frozen=True)
class SdistPin:
    file: str  # intel_npu_acceleration_library-1.4.0.tar.gz
    sha256: str
    version: str

    @classmethod
    def from_pins(cls, pins: Pins) -> SdistPin:
        npu = pins.npu
        file, sha = str(npu.get("sdist", "")), str(npu.get("sdist_sha256", "")).lower()
        if not file.endswith(".tar.gz") or len(sha) != 64:
            raise AipcError(
                f"{pins.path}: [npu] needs sdist = \"<name>.tar.gz\" and a 64-digit sdist_sha256",
                hint="restore the [npu] table from src/aipc/pins.toml",
            )
        version = pins.releases.get(DIST, file[: -len(".tar.gz")].rpartition("-")[2])
        return cls(file, sha, version)

    @property
    def top_dir(self) -> str:
        """The directory the sdist unpacks to (``intel_npu_acceleration_library-1.4.0``)."""
        return self.file[: -len(".tar.gz")]

    @property
    def requirement(self) -> str:
        return f"{DIST}=={self.version}"


def _python(text: str, key: str, pins: Pins) -> tuple[int, int]:
    try:
        major, minor = (int(x) for x in text.split("."))
    except ValueError:
        raise AipcError(f"{pins.path}: [npu] {key} = {text!r} is not MAJOR.MINOR",
                        hint="restore the [npu] table from src/aipc/pins.toml") from None
    return major, minor


@dataclass(frozen=True)
class NpuPin:
    """Every ``[npu]`` fact the build and the path use, read once; a missing key is an error, never a default."""

    sdist: SdistPin
    openvino: str  # the openvino wheel the build venv installs
    openvino_max_exclusive: str  # refused from here on (element-type enum shift)
    # CPython span of the library's PyPI wheels (win_amd64) and of the pinned openvino's wheels
    python_min: tuple[int, int]
    python_max: tuple[int, int]
    build_requires: tuple[str, ...]

    KEYS = ("openvino", "openvino_max_exclusive", "python_min", "python_max", "build_requires")

    @classmethod
    def from_pins(cls, pins: Pins) -> NpuPin:
        npu = pins.npu
        missing = [k for k in cls.KEYS if k not in npu]
        if missing:
            raise AipcError(f"{pins.path}: [npu] lacks {', '.join(missing)}",
                            hint="restore the [npu] table from src/aipc/pins.toml")
        return cls(
            sdist=SdistPin.from_pins(pins),
            openvino=str(npu["openvino"]),
            openvino_max_exclusive=str(npu["openvino_max_exclusive"]),
            python_min=_python(str(npu["python_min"]), "python_min", pins),
            python_max=_python(str(npu["python_max"]), "python_max", pins),
            build_requires=tuple(str(r) for r in npu["build_requires"]),
        )

    def python_fits(self, python: tuple[int, int]) -> bool:
        return self.python_min <= python <= self.python_max

    @property
    def python_span(self) -> str:
        """``3.8-3.12``"""
        return "-".join(f"{v[0]}.{v[1]}" for v in (self.python_min, self.python_max))


def own_wheel(wheels: Path) -> Path | None:
    """aipc's newest intel-npu-acceleration-library wheel in ``wheels`` that installs here."""
    for wheel in find_wheels(wheels, DIST):
        if wheel_fits_host(wheel):
            return wheel
    return None


def pypi_wheel_exists(platform: str | None = None, python: tuple[int, int] | None = None,
                      pin: NpuPin | None = None) -> bool:
    platform = platform or host_platform_name()
    python = python or (sys.version_info.major, sys.version_info.minor)
    pin = pin or NpuPin.from_pins(load_pins())
    return platform in PYPI_WHEEL_PLATFORMS and pin.python_fits(python)


def npu_venv_spec(wheels: Path) -> tuple[VenvSpec | None, str]:
    """The npu venv (torch first, the library, constraints/npu.txt), or ``(None, reason)`` when no wheel exists."""
    pins = load_pins()
    pin = NpuPin.from_pins(pins)
    torch = pins.releases.get("torch")
    version = pin.sdist.version
    wheel = own_wheel(wheels)
    if wheel is not None:
        spec = VenvSpec(name=VENV_NAME, steps=((str(wheel), *EXTRA_PACKAGES),), torch=torch, constraints=CONSTRAINTS,
                        local_wheels=(wheel,))
        return spec, f"aipc's wheel {wheel.name}"
    plat = host_platform_name()
    if pypi_wheel_exists(plat, pin=pin):
        spec = VenvSpec(
            name=VENV_NAME, steps=(("--only-binary", DIST, f"{DIST}=={version}", *EXTRA_PACKAGES),), torch=torch,
            constraints=CONSTRAINTS,
        )
        return spec, f"PyPI binary wheel {DIST}=={version}"
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    span = "-".join(f"cp{v[0]}{v[1]}" for v in (pin.python_min, pin.python_max))
    where = f"{plat}" if plat not in PYPI_WHEEL_PLATFORMS else f"{plat} CPython {py} (PyPI has {span} only)"
    return None, f"no {DIST} wheel for {where} in {wheels} and none on PyPI; run `nox -s build_npu`"


NAME = "npu"
API = "intel-npu-acceleration-library"
PRECISIONS = ("int4", "int8", "fp16")  # CompilerConfig dtypes (docs/upstream.md#npu §3)


class NpuRuntime:
    name = NAME
    paths = (NAME,)
    smoke_worker = WORKER
    bench_worker = WORKERS_DIR / "bench_npu.py"
    exports: tuple[ExportRecipe, ...] = ()

    def venv_spec(self, wheels: Path, cache: Path) -> VenvSpec:
        spec, reason = npu_venv_spec(wheels)
        if spec is None:
            raise RuntimeSkipped(reason)
        return spec

    def cases(self, path: str, precision: str | None) -> list[Case]:
        return [Case(NAME, API, precision or "int4")]

    def bench_targets(self) -> list[BenchTarget]:
        return [BenchTarget(NAME, API, "npu", None)]

    def choose_device(self, case: Case, requested: str, spec: VenvSpec, python: Path | None,
                      probe: Probe) -> Choice | None:
        if requested in ("gpu", "dml"):
            return Choice(None, f"the NPU library runs on the NPU (or its CPU fallback) only ({requested} requested)")
        if case.precision not in PRECISIONS:
            return Choice(None, f"the NPU library compiles {'/'.join(PRECISIONS)} only, not {case.precision}")
        return Choice(requested, "the library picks the NPU, else falls back to CPU")

    def export_for(self, case: Case, choice: Choice) -> tuple[ExportRecipe, str] | None:
        return None  # the library compiles the checkpoint itself


RUNTIME = NpuRuntime()
