"""The onnxruntime-genai runtime (path ``genai``): model builder + runtime, DirectML when aipc's DML wheel and a
DirectX 12 GPU are there, else CPU (docs/upstream.md#cookbook path 2; DirectML is a Windows API).

Venv: torch first and alone, then aipc's own onnxruntime(-genai) wheels from ``wheels/`` when they fit this host, else
the releases of ``pins.toml [releases]``, under ``constraints/genai.txt`` (docs/upstream.md#paths §3). Export: the
model builder, ``-p int4|int8|fp16|fp32 -e cpu|dml`` (``-e dml`` is only graph building and works on any OS).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from ..pins import load_pins
from ..runner import Command
from ..venvs import VenvSpec
from ..wheelhouse import find_wheels, wheel_fits_host
from .base import (
    WORKERS_DIR,
    BenchTarget,
    Case,
    Choice,
    ExportPlan,
    ExportRecipe,
    GpuAdapter,
    Probe,
    constraints_file,
    dist_name,
)
from .devices import check_device
from .worker import WORKER_ENV

NAME = "genai"
VENV_NAME = "path-genai"
API = "onnxruntime-genai"
# packages of the venv that have a version in pins.toml [releases] (installed as name==version)
_RELEASES = ("onnxruntime-genai", "onnxruntime")
_EXTRA = ("onnx", "onnx-ir", "transformers")  # the builder's undeclared dependencies (docs/upstream.md#paths 3)
_DML_DISTS = ("onnxruntime-genai-directml", "onnxruntime-directml")
_DML_GENAI = "onnxruntime-genai-directml"


@dataclass(frozen=True)
class LocalWheels:
    """aipc's own wheels from ``wheels/`` that the genai venv installs instead of the releases."""

    wheels: tuple[Path, ...]
    ignored: tuple[str, ...] = ()  # why some wheels there were not used (e.g. built for another platform)

    @property
    def dml(self) -> bool:
        return has_dml_genai(self.wheels)


def has_dml_genai(wheels: Iterable[Path]) -> bool:
    """True when ``wheels`` hold a DirectML build of onnxruntime-genai (a DML ORT wheel alone does not count: the
    genai wheel decides the device the genai path can run on)."""
    return any(dist_name(w) == _DML_GENAI for w in wheels)


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


def choose_genai_device(requested: str, *, dml_wheel: bool, gpus: list[GpuAdapter] | None,
                        gpu_reason: str = "") -> Choice:
    """cpu or dml for the onnxruntime-genai path; ``gpus`` None: not probed (nothing to run DirectML with)."""
    check_device(requested)
    no_dml = []
    if not dml_wheel:
        no_dml.append("no DirectML build of onnxruntime-genai in wheels/ (run `nox -s build`)")
    if gpus is None:
        if dml_wheel:
            no_dml.append("GPUs not probed")
    elif not gpus:
        no_dml.append(gpu_reason or "no DirectX 12 GPU")
    if requested == "cpu":
        return Choice("cpu", "CPU requested", "cpu")
    if requested == "npu":
        return Choice(None, "onnxruntime-genai has no NPU provider in this path (use openvino-npu)")
    if requested in ("gpu", "dml"):
        if not gpus or no_dml:
            return Choice(None, "DirectML not available: " + "; ".join(no_dml))
        return Choice("dml", f"DirectML on {gpus[0].name}", "dml")
    if not gpus or no_dml:
        return Choice("cpu", "CPU (DirectML not available: " + "; ".join(no_dml) + ")", "cpu")
    return Choice("dml", f"DirectML on {gpus[0].name}", "dml")


def plan_export(model: Path, out: Path, precision: str, device: str, python: Path, config: dict[str, Any],
                work: Path) -> ExportPlan:
    """The model builder's command (argv, cwd, env as data)."""
    argv: list[str | os.PathLike[str]] = [
        python, "-m", "onnxruntime_genai.models.builder", "-i", model, "-o", out, "-p", precision, "-e", device,
        "-c", work / "builder-cache",
    ]
    return ExportPlan(Command.make(argv, work, dict(WORKER_ENV)), {"recipe": "genai builder"})


EXPORT = ExportRecipe("genai", NAME, ("fp32", "fp16", "int8", "int4"), ("cpu", "dml"),
                      ("genai_config.json", "model.onnx"), plan_export)


class GenaiRuntime:
    name = NAME
    paths = (NAME,)
    smoke_worker = WORKERS_DIR / "smoke_genai.py"
    bench_worker = WORKERS_DIR / "bench_genai.py"
    exports = (EXPORT,)

    def venv_spec(self, wheels: Path, cache: Path) -> VenvSpec:
        releases = load_pins().releases
        local = genai_local_wheels(wheels)
        provided: set[str] = {dist_name(w) for w in local.wheels}
        # a local DML wheel (genai or ORT) replaces the CPU release of both genai and ORT
        if provided & set(_DML_DISTS):
            provided |= {"onnxruntime-genai", "onnxruntime"}
        names = [f"{n}=={releases[n]}" for n in _RELEASES if canonicalize_name(n) not in provided]
        return VenvSpec(
            name=VENV_NAME,
            steps=((*[str(w) for w in local.wheels], *names, *_EXTRA),),
            torch=releases["torch"],
            constraints=constraints_file("genai", provided, cache),
            local_wheels=local.wheels,
        )

    def cases(self, path: str, precision: str | None) -> list[Case]:
        # fp32 checks the golden ids exactly, int4 is the shipping recipe
        if precision is not None:
            return [Case(NAME, API, precision)]
        return [Case(NAME, API, "fp32"), Case(NAME, API, "int4")]

    def bench_targets(self) -> list[BenchTarget]:
        return [BenchTarget(NAME, API, "cpu", "genai"), BenchTarget(NAME, API, "dml", "genai")]

    def choose_device(self, case: Case, requested: str, spec: VenvSpec, python: Path | None,
                      probe: Probe) -> Choice | None:
        """Decided from the request and the spec alone (before the venv exists); the GPUs are probed only when
        DirectML could be used or was asked for."""
        dml = has_dml_genai(spec.local_wheels)
        if not dml and requested not in ("gpu", "dml"):  # no GPU question to answer: spare the probe
            return choose_genai_device(requested, dml_wheel=False, gpus=None)
        gpus, why = probe.gpus()
        return choose_genai_device(requested, dml_wheel=dml, gpus=list(gpus), gpu_reason=why)

    def export_for(self, case: Case, choice: Choice) -> tuple[ExportRecipe, str] | None:
        return EXPORT, choice.export or "cpu"


RUNTIME = GenaiRuntime()
