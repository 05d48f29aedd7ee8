"""The verify paths and their venvs: what each path installs, from aipc's own wheels or the pinned releases.

Paths (README "Verifying the paths"):
- ``genai``: onnxruntime-genai (model builder + runtime), DirectML when aipc's DML wheel and a DX12 GPU are there;
- ``openvino``: optimum-intel export, ``OVModelForCausalLM`` and ``openvino_genai.LLMPipeline``;
- ``npu``: intel-npu-acceleration-library in its own venv (spec and worker from :mod:`aipc.runtimes.npu`);
- ``openvino-npu``: OpenVINO GenAI ``LLMPipeline`` on device ``NPU`` (the openvino venv).

Venv recipes are the measured ones of docs/upstream.md#paths §2-3: torch first and alone, the
constraints files in ``src/aipc/constraints/`` (versions measured there), and for OpenVINO the "lean" install
(``torchvision==0.28.0`` then uninstalled). Release versions come from ``pins.toml [releases]``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from ..errors import AipcError, UsageError
from ..fsutil import atomic_write_text, sha256_text
from ..pins import load_pins
from ..venvs import VenvSpec, cache_dir
from ..wheelhouse import find_wheels, wheel_fits_host

PATHS = ("genai", "openvino", "npu", "openvino-npu")
# which venv each path runs in
VENV_OF = {"genai": "genai", "openvino": "openvino", "openvino-npu": "openvino", "npu": "npu"}
CONSTRAINTS_DIR = Path(__file__).resolve().parents[1] / "constraints"
WORKERS_DIR = Path(__file__).resolve().parents[1] / "workers"
VENV_NAMES = {"genai": "path-genai", "openvino": "path-openvino"}

# packages of each venv that have a version in pins.toml [releases] (installed as name==version)
_GENAI_RELEASES = ("onnxruntime-genai", "onnxruntime")
_GENAI_EXTRA = ("onnx", "onnx-ir", "transformers")  # the builder's undeclared dependencies (docs/upstream.md#paths 3)
_OV_RELEASES = ("openvino", "openvino-genai", "openvino-tokenizers", "optimum-intel", "nncf")
_OV_EXTRA = ("torchvision",)  # pinned to 0.28.0 by the constraints file, uninstalled afterwards (section 2)
_DML_DISTS = ("onnxruntime-genai-directml", "onnxruntime-directml")
_DML_GENAI = "onnxruntime-genai-directml"


class PathSkipped(AipcError):
    """A path cannot run on this machine at all (e.g. no wheel of its library for this platform): a skip."""


@dataclass(frozen=True)
class LocalWheels:
    """aipc's own wheels from ``wheels/`` that a path installs instead of the releases."""

    wheels: tuple[Path, ...]
    ignored: tuple[str, ...] = ()  # why some wheels there were not used (e.g. built for another platform)

    @property
    def dml(self) -> bool:
        return has_dml_genai(self.wheels)


def _dist(wheel: Path) -> str:
    return str(canonicalize_name(parse_wheel_filename(wheel.name)[0]))


def has_dml_genai(wheels: Iterable[Path]) -> bool:
    """True when ``wheels`` hold a DirectML build of onnxruntime-genai (a DML ORT wheel alone does not count: the
    genai wheel decides the device the genai path can run on)."""
    return any(_dist(w) == _DML_GENAI for w in wheels)


def check_path(path: str) -> str:
    if path not in PATHS:
        raise UsageError(f"unknown path {path!r}", hint=f"use one of: {', '.join(PATHS)}")
    return path




def genai_local_wheels(wheels: Path) -> LocalWheels:
    """aipc's onnxruntime(-genai) wheels in ``wheels/`` that fit this host, DirectML builds first."""
    chosen: list[Path] = []
    ignored: list[str] = []
    # a genai wheel decides; its ORT companion comes along when present (else pip takes ORT from the index)
    # (each platform's own build, Platform.genai_wheel_dist / ort_wheel_dist, is one of these names)
    genai_dists = ("onnxruntime-genai-directml", "onnxruntime-genai")
    ort_dists = ("onnxruntime-directml", "onnxruntime")
    for group in (genai_dists, ort_dists):
        for dist in group:
            fits = []
            for w in find_wheels(wheels, dist):
                if wheel_fits_host(w):
                    fits.append(w)
                else:
                    ignored.append(f"{w.name} (not installable on this platform)")
            if fits:
                chosen.append(fits[0])
                break
        if group is genai_dists and not chosen:
            break  # without aipc's genai wheel, use the releases for both
    return LocalWheels(tuple(chosen), tuple(ignored))


def _constraints(name: str, drop: set[str], cache: Path) -> Path:
    """The path's constraints file, minus the pins of distributions that aipc's own wheels provide."""
    src = CONSTRAINTS_DIR / f"{name}.txt"
    if not drop:
        return src
    lines = []
    for line in src.read_text(encoding="utf-8").splitlines():
        req = line.split("#", 1)[0].strip()
        if req and canonicalize_name(req.split("==")[0].strip()) in drop:
            continue
        lines.append(line)
    text = "\n".join(lines) + "\n"
    dest = cache / "constraints" / f"{name}-{sha256_text(text)[:16]}.txt"
    if not dest.is_file():
        atomic_write_text(dest, text)
    return dest


def venv_spec(path: str, wheels: Path, *, cache: Path | None = None) -> VenvSpec:
    """The venv a path runs in. Raises :class:`PathSkipped` when the path cannot be installed here (npu)."""
    check_path(path)
    cache = cache or cache_dir()
    releases = load_pins().releases
    venv = VENV_OF[path]
    if venv == "npu":
        spec, reason = npu_module_spec(wheels)
        if spec is None:
            raise PathSkipped(reason)
        return spec
    if venv == "genai":
        local = genai_local_wheels(wheels)
        provided: set[str] = {_dist(w) for w in local.wheels}
        # a local DML wheel (genai or ORT) replaces the CPU release of both genai and ORT
        if provided & set(_DML_DISTS):
            provided |= {"onnxruntime-genai", "onnxruntime"}
        names = [f"{n}=={releases[n]}" for n in _GENAI_RELEASES if canonicalize_name(n) not in provided]
        return VenvSpec(
            name=VENV_NAMES["genai"],
            steps=((*[str(w) for w in local.wheels], *names, *_GENAI_EXTRA),),
            torch=releases["torch"],
            constraints=_constraints("genai", provided, cache),
            local_wheels=local.wheels,
        )
    names = [f"{n}=={releases[n]}" for n in _OV_RELEASES]
    return VenvSpec(
        name=VENV_NAMES["openvino"],
        steps=(("optimum-intel[openvino]", *names, *_OV_EXTRA),),
        torch=releases["torch"],
        constraints=_constraints("openvino", set(), cache),
        uninstall=("torchvision",),
    )


def npu_module_spec(wheels: Path) -> tuple[VenvSpec | None, str]:
    """Ask the NPU area (``aipc.runtimes.npu``) for the npu venv; a skip reason when it cannot be had."""
    try:
        mod = importlib.import_module("aipc.runtimes.npu")
    except ImportError:
        return None, "NPU path module not available"
    fn = getattr(mod, "npu_venv_spec", None)
    if fn is None:
        return None, "NPU path module not available (no npu_venv_spec)"
    spec, reason = fn(wheels)
    return spec, str(reason)


def npu_worker() -> Path | None:
    try:
        mod = importlib.import_module("aipc.runtimes.npu")
    except ImportError:
        return None
    worker = getattr(mod, "WORKER", None)
    return Path(worker) if worker is not None else None


def worker_path(path: str) -> Path:
    """The smoke worker script of a path."""
    check_path(path)
    if path == "npu":
        worker = npu_worker()
        if worker is None:
            raise PathSkipped("NPU path module not available")
        return worker
    return WORKERS_DIR / ("smoke_genai.py" if path == "genai" else "smoke_openvino.py")
