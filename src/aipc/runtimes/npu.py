"""The NPU-library path for ``aipc verify``: its venv spec, its smoke worker, and aipc's own wheel on demand.

- :func:`npu_venv_spec` installs torch first, then aipc's wheel from ``wheels/`` when one fits this host (else, on
  Windows with CPython ``[npu] python_min``-``python_max``, the PyPI binary wheel), under ``constraints/npu.txt``;
  where no wheel can be had (Linux without a build, Windows with a newer CPython) it returns ``(None, reason)``.
- :data:`WORKER` is ``workers/smoke_npu.py`` (the smoke-worker protocol).
- :func:`ensure_npu_wheel` builds aipc's wheel into ``wheels/`` when it is missing (``aipc build-npu``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import AipcError
from ..npu.sdist import DIST, NpuPin
from ..pins import load_pins
from ..platforms import host_platform_name
from ..venvs import VenvSpec
from ..wheelhouse import find_wheels, wheel_fits_host

WORKER = Path(__file__).resolve().parents[1] / "workers" / "smoke_npu.py"
CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints" / "npu.txt"
VENV_NAME = "npu"
# installed next to the library: neural-compressor 3.1.1 imports `six` without declaring it (python-dateutil >= 3
# no longer brings it)
EXTRA_PACKAGES = ("six",)
# platforms with intel-npu-acceleration-library binary wheels on PyPI (docs/upstream.md#npu §1): win_amd64 only,
# for CPython [npu] python_min-python_max
PYPI_WHEEL_PLATFORMS = ("windows",)

Echo = Callable[[str], None]


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


def ensure_npu_wheel(wheels: Path, *, echo: Echo | None = None) -> Path | None:
    """aipc's wheel in ``wheels``; built with ``aipc build-npu`` when missing. None (and the reason echoed) when
    it cannot be built here (no compiler, no network and no --sdist...)."""
    say = echo or (lambda s: print(s, file=sys.stderr, flush=True))
    wheel = own_wheel(wheels)
    if wheel is not None:
        return wheel
    from ..npu.build import make_config, run_build

    try:
        cfg = make_config(wheels=wheels)
        built, _ = run_build(cfg, echo=say)
    except AipcError as exc:
        say(f"[aipc] npu wheel: cannot build it here: {exc.one_line()}")
        return None
    return built if built.is_file() else None
