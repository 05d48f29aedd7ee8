"""The NPU-library path for ``aipc verify``: its venv spec, its smoke worker, and aipc's own wheel on demand.

- :func:`npu_venv_spec` installs torch first, then aipc's wheel from ``wheels/`` when one fits this host (else, on
  Windows with CPython 3.8-3.12, the PyPI binary wheel), under ``constraints/npu.txt``; where no wheel can be had
  (Linux without a build, Windows with CPython >= 3.13) it returns ``(None, reason)``.
- :data:`WORKER` is ``workers/smoke_npu.py`` (the smoke-worker protocol).
- :func:`ensure_npu_wheel` builds aipc's wheel into ``wheels/`` when it is missing (``aipc build-npu``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import AipcError
from ..pins import load_pins
from ..platforms import host_platform_name
from ..venvs import VenvSpec
from ..wheelhouse import find_wheels, wheel_fits_host
from .sdist import DIST

WORKER = Path(__file__).resolve().parents[1] / "workers" / "smoke_npu.py"
CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints" / "npu.txt"
VENV_NAME = "npu"
# installed next to the library: neural-compressor 3.1.1 imports `six` without declaring it (python-dateutil >= 3
# no longer brings it)
EXTRA_PACKAGES = ("six",)
# intel-npu-acceleration-library 1.4.0 binary wheels on PyPI (shared/docs/npu.md section 1): win_amd64 only
PYPI_WHEELS = {"windows": ((3, 8), (3, 12))}

Echo = Callable[[str], None]




def own_wheel(wheels: Path) -> Path | None:
    """aipc's newest intel-npu-acceleration-library wheel in ``wheels`` that installs here."""
    for wheel in find_wheels(wheels, DIST):
        if wheel_fits_host(wheel):
            return wheel
    return None


def pypi_wheel_exists(platform: str | None = None, python: tuple[int, int] | None = None) -> bool:
    platform = platform or host_platform_name()
    python = python or (sys.version_info.major, sys.version_info.minor)
    span = PYPI_WHEELS.get(platform)
    return span is not None and span[0] <= python <= span[1]


def npu_venv_spec(wheels: Path) -> tuple[VenvSpec | None, str]:
    """The npu venv (torch first, the library, constraints/npu.txt), or ``(None, reason)`` when no wheel exists."""
    pins = load_pins()
    torch = pins.releases.get("torch")
    version = pins.releases.get(DIST, "1.4.0")
    wheel = own_wheel(wheels)
    if wheel is not None:
        spec = VenvSpec(name=VENV_NAME, steps=((str(wheel), *EXTRA_PACKAGES),), torch=torch, constraints=CONSTRAINTS,
                        local_wheels=(wheel,))
        return spec, f"aipc's wheel {wheel.name}"
    plat = host_platform_name()
    if pypi_wheel_exists(plat):
        spec = VenvSpec(
            name=VENV_NAME, steps=(("--only-binary", DIST, f"{DIST}=={version}", *EXTRA_PACKAGES),), torch=torch,
            constraints=CONSTRAINTS,
        )
        return spec, f"PyPI binary wheel {DIST}=={version}"
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    where = f"{plat}" if plat != "windows" else f"{plat} CPython {py} (PyPI has cp38-cp312 only)"
    return None, f"no {DIST} wheel for {where} in {wheels} and none on PyPI; run `nox -s build_npu`"


def ensure_npu_wheel(wheels: Path, *, echo: Echo | None = None, build_dir: Path | None = None) -> Path | None:
    """aipc's wheel in ``wheels``; built with ``aipc build-npu`` when missing. None (and the reason echoed) when
    it cannot be built here (no compiler, no network and no --sdist...)."""
    say = echo or (lambda s: print(s, file=sys.stderr, flush=True))
    wheel = own_wheel(wheels)
    if wheel is not None:
        return wheel
    from .build import make_config, run_build

    try:
        cfg = make_config(wheels=wheels, build_dir=build_dir)
        built, _ = run_build(cfg, echo=say)
    except AipcError as exc:
        say(f"[aipc] npu wheel: cannot build it here: {exc.one_line()}")
        return None
    return built if built.is_file() else None
