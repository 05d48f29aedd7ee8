"""What a runtime is: the small interface :mod:`aipc.verify` and :mod:`aipc.bench` iterate, and its data types.

A runtime (``genai``, ``openvino``, ``npu``) owns its venv recipe, its export recipes, its device choice and its smoke
and bench workers. It answers one ``--paths`` name or more (openvino also answers ``openvino-npu``: its cases on the
device ``npu``).

Adding a fourth runtime (``tests/test_runtimes.py`` does it with ``FakeRuntime``):

1. ``runtimes/<name>.py`` with a class that has ``name``, ``paths``, ``smoke_worker``, ``bench_worker`` (scripts in
   ``workers/`` speaking the worker protocol of :mod:`aipc.runtimes.worker`), ``exports`` (``()`` when the worker
   loads the checkpoint itself) and the five methods of :class:`Runtime`; end the module with ``RUNTIME = ...()``;
2. one line in :data:`aipc.runtimes.RUNTIMES`.

verify then plans its rows from ``cases``, bench its targets from ``bench_targets``; both ask ``venv_spec`` (raise
:class:`RuntimeSkipped` where it cannot run), ``choose_device`` and ``export_for``. Nothing else names a runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from ..errors import AipcError
from ..fsutil import atomic_write_text, sha256_text
from ..runner import Command
from ..venvs import VenvSpec

CONSTRAINTS_DIR = Path(__file__).resolve().parents[1] / "constraints"
WORKERS_DIR = Path(__file__).resolve().parents[1] / "workers"


class RuntimeSkipped(AipcError):
    """A runtime cannot run on this machine at all (e.g. no wheel of its library for this platform): a skip."""


@dataclass(frozen=True)
class Case:
    """One verify row: a path, an API (display name + worker key) and a precision; ``device`` fixes the device
    kind a path stands for (``openvino-npu``: npu)."""

    path: str
    api: str
    precision: str
    api_key: str = ""
    device: str | None = None


@dataclass(frozen=True)
class BenchTarget:
    """One bench configuration a runtime offers: path x API x requested device (``export``: its export kind, None
    when the worker loads the checkpoint itself)."""

    path: str
    api: str
    device: str
    export: str | None


@dataclass(frozen=True)
class Choice:
    """A device decision: ``device`` is None when the row cannot run here (a skip), with the reason."""

    device: str | None
    reason: str
    export: str = ""  # which export the device needs (genai: cpu|dml; openvino: openvino|openvino-npu)


@dataclass(frozen=True)
class GpuAdapter:
    name: str
    vendor: str = ""
    driver: str = ""


@dataclass(frozen=True)
class ExportPlan:
    command: Command
    notes: dict[str, Any] = field(default_factory=dict)


# model, out, precision, device, python, config, work -> the export command (data)
PlanExport = Callable[[Path, Path, str, str, Path, dict[str, Any], Path], ExportPlan]


@dataclass(frozen=True)
class ExportRecipe:
    """A conversion a runtime needs (``aipc export KIND``): its precisions, export devices and expected files."""

    kind: str
    runtime: str  # the runtime whose venv runs the converter
    precisions: tuple[str, ...]
    devices: tuple[str, ...]
    files: tuple[str, ...]  # the first two tell an export folder of this kind
    plan: PlanExport

    def is_export(self, folder: Path) -> bool:
        """True when ``folder`` already is an export of this kind (has the runtime's files)."""
        return all((folder / f).is_file() for f in self.files[:2])


class Probe(Protocol):
    """Host facts, asked once per run (:class:`aipc.runtimes.devices.HostProbe` is the real one; tests pass fakes)."""

    def gpus(self) -> tuple[list[GpuAdapter], str]:
        """DirectX 12 GPUs and, when none, why."""
        ...

    def openvino_devices(self, python: Path | None) -> list[str] | str | None:
        """The devices OpenVINO lists in the venv of ``python``, a probe failure's reason, or None (no venv yet)."""
        ...


class Runtime(Protocol):
    """One runtime: what verify and bench need of it."""

    @property
    def name(self) -> str:  # registry key and venv owner
        ...

    @property
    def paths(self) -> tuple[str, ...]:  # --paths names it answers
        ...

    @property
    def smoke_worker(self) -> Path: ...

    @property
    def bench_worker(self) -> Path: ...

    @property
    def exports(self) -> tuple[ExportRecipe, ...]: ...

    def venv_spec(self, wheels: Path, cache: Path) -> VenvSpec:
        """The venv the runtime runs in; raises :class:`RuntimeSkipped` when it cannot be had here."""
        ...

    def cases(self, path: str, precision: str | None) -> list[Case]:
        """verify's rows for ``path``: the defaults, or one row per API at ``precision``."""
        ...

    def bench_targets(self) -> list[BenchTarget]: ...

    def choose_device(self, case: Case, requested: str, spec: VenvSpec, python: Path | None,
                      probe: Probe) -> Choice | None:
        """The device of ``case``; None: ask again once the venv exists (``python``)."""
        ...

    def export_for(self, case: Case, choice: Choice) -> tuple[ExportRecipe, str] | None:
        """The export recipe and export device the chosen device needs; None: the worker loads the checkpoint."""
        ...


def dist_name(wheel: Path) -> str:
    return str(canonicalize_name(parse_wheel_filename(wheel.name)[0]))


def constraints_file(name: str, drop: set[str], cache: Path) -> Path:
    """The runtime's constraints file, minus the pins of distributions that aipc's own wheels provide."""
    src = CONSTRAINTS_DIR / f"{name}.txt"
    if not drop:
        return src
    lines = []
    for line in src.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            try:
                if canonicalize_name(Requirement(text).name) in drop:
                    continue
            except InvalidRequirement:
                pass
        lines.append(line)
    text = "\n".join(lines) + "\n"
    dest = cache / "constraints" / f"{name}-{sha256_text(text)[:16]}.txt"
    if not dest.is_file():
        atomic_write_text(dest, text)
    return dest
