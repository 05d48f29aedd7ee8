"""The OpenVINO runtime: paths ``openvino`` (optimum-intel ``OVModelForCausalLM`` and ``openvino_genai.LLMPipeline``)
and ``openvino-npu`` (``LLMPipeline`` on device ``NPU``), one venv.

Venv: the "lean" install of docs/upstream.md#paths §2 (torch first and alone, ``torchvision==0.28.0`` then
uninstalled) under ``constraints/openvino.txt``. Devices: the best device OpenVINO lists, NPU > GPU > CPU for
``LLMPipeline`` (NPU gets the NPU export); ``OVModelForCausalLM`` takes GPU > CPU, since it compiles dynamic shapes and
the NPU plugin runs static shapes only (docs/upstream.md#npu §4).

Exports: ``optimum-cli export openvino`` with the cookbook's int4 recipe (``--sym --group-size 128 --ratio 0.6``) or
fp16 / fp32 / int8 (docs/upstream.md#cookbook, docs/upstream.md#paths §2); ``openvino-npu``: int4 ``--sym --ratio 1.0``
with ``--group-size 128`` or channel-wise ``-1`` (docs/upstream.md#npu §4). NNCF refuses a group size that does not
divide a layer's input channels (``InvalidGroupSizeError``, docs/upstream.md#paths §2): :func:`pick_group_size` picks
the largest power-of-two divisor not above the requested size for the general recipe, and channel-wise (-1) for the
NPU recipe, whose only legal values are 128 and -1.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import AipcError
from ..pins import load_pins
from ..platforms import get_platform
from ..runner import Command
from ..venvs import VenvSpec
from .base import WORKERS_DIR, BenchTarget, Case, Choice, ExportPlan, ExportRecipe, Probe, constraints_file
from .devices import check_device
from .worker import WORKER_ENV

NAME = "openvino"
NPU_PATH = "openvino-npu"
VENV_NAME = "path-openvino"
API_OPTIMUM = "OVModelForCausalLM"
API_PIPELINE = "LLMPipeline"
BENCH_API_PIPELINE = "openvino_genai.LLMPipeline"
_RELEASES = ("openvino", "openvino-genai", "openvino-tokenizers", "optimum-intel", "nncf")
_EXTRA = ("torchvision",)  # pinned to 0.28.0 by the constraints file, uninstalled afterwards (section 2)
OV_INT4 = {"group_size": 128, "ratio": 0.6, "sym": True}  # the cookbook's int4 recipe
NPU_INT4 = {"group_size": 128, "ratio": 1.0, "sym": True}  # OpenVINO GenAI on NPU: int4, sym, ratio 1.0
MIN_GROUP = 16
FILES = ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_detokenizer.xml")


def channel_sizes(config: dict[str, Any]) -> list[int]:
    """Input-channel sizes of the weight matrices NNCF compresses (hidden, attention output, MLP down)."""
    sizes = []
    for key in ("hidden_size", "intermediate_size"):
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            sizes.append(value)
    heads, head_dim = config.get("num_attention_heads"), config.get("head_dim")
    if isinstance(heads, int) and isinstance(head_dim, int) and heads > 0 and head_dim > 0:
        sizes.append(heads * head_dim)
    return sizes


def pick_group_size(requested: int, sizes: Iterable[int], *, npu: bool = False) -> tuple[int, str]:
    """A group size that divides every channel size, and why it differs from ``requested`` (empty when not)."""
    sizes = [s for s in sizes if s > 0]
    if requested == -1 or all(s % requested == 0 for s in sizes):
        return requested, ""
    if npu:
        return -1, (f"group size {requested} does not divide channel sizes {sizes}; "
                    "NPU recipe falls back to channel-wise")
    g = requested
    while g >= MIN_GROUP and any(s % g for s in sizes):
        g //= 2
    if g < MIN_GROUP:
        return -1, f"no group size >= {MIN_GROUP} divides channel sizes {sizes}; using channel-wise (-1)"
    return g, f"group size {requested} does not divide channel sizes {sizes}; using {g}"


def _plan(kind: str, model: Path, out: Path, precision: str, python: Path, config: dict[str, Any],
          work: Path) -> ExportPlan:
    script = python.parent / f"optimum-cli{get_platform().exe_suffix}"
    argv: list[str | os.PathLike[str]] = [script, "export", "openvino", "--model", model, "--task",
                                          "text-generation-with-past", "--weight-format", precision]
    notes: dict[str, Any] = {}
    if precision == "int4":
        recipe = NPU_INT4 if kind == NPU_PATH else OV_INT4
        group, why = pick_group_size(int(recipe["group_size"]), channel_sizes(config), npu=kind == NPU_PATH)
        argv += ["--group-size", str(group), "--ratio", f"{recipe['ratio']:g}", "--sym"]
        notes = {"group_size": group, "ratio": recipe["ratio"], "sym": True}
        if why:
            notes["group_size_fallback"] = why
    if kind == NAME:
        argv.append("--trust-remote-code")  # as the cookbook does; harmless for a local phi3 folder
    argv.append(out)
    notes["recipe"] = "optimum-cli " + kind
    return ExportPlan(Command.make(argv, work, dict(WORKER_ENV)), notes)


def plan_openvino(model: Path, out: Path, precision: str, device: str, python: Path, config: dict[str, Any],
                  work: Path) -> ExportPlan:
    return _plan(NAME, model, out, precision, python, config, work)


def plan_openvino_npu(model: Path, out: Path, precision: str, device: str, python: Path, config: dict[str, Any],
                      work: Path) -> ExportPlan:
    return _plan(NPU_PATH, model, out, precision, python, config, work)


EXPORT = ExportRecipe(NAME, NAME, ("fp32", "fp16", "int8", "int4"), ("cpu",), FILES, plan_openvino)
EXPORT_NPU = ExportRecipe(NPU_PATH, NAME, ("int4",), ("cpu",), FILES, plan_openvino_npu)


def choose_openvino_device(requested: str, available: list[str], api: str) -> Choice:
    """An OpenVINO device for ``api`` (``optimum`` or ``genai``) among ``available`` (e.g. ['CPU', 'GPU.0', 'NPU'])."""
    check_device(requested)

    def first(kind: str) -> str | None:
        return next((d for d in available if d.split(".")[0].upper() == kind), None)

    seen = ", ".join(available) or "none"
    if requested == "dml":
        return Choice(None, "DirectML is not an OpenVINO device")
    if requested == "npu" and api == "optimum":
        return Choice(None, "OVModelForCausalLM compiles dynamic shapes; the NPU runs LLMs through LLMPipeline "
                            "(path openvino-npu)")
    if requested != "auto":
        found = first(requested.upper())
        if found is None:
            return Choice(None, f"no {requested.upper()} device (OpenVINO sees: {seen})")
        return Choice(found, f"{requested.upper()} requested", _export_kind(found))
    order = ("GPU", "CPU") if api == "optimum" else ("NPU", "GPU", "CPU")
    for kind in order:
        found = first(kind)
        if found is not None:
            return Choice(found, f"best device OpenVINO sees ({seen})", _export_kind(found))
    return Choice(None, f"OpenVINO lists no usable device ({seen})")


def _export_kind(device: str) -> str:
    return NPU_PATH if device.upper().startswith("NPU") else NAME


class OpenvinoRuntime:
    name = NAME
    paths = (NAME, NPU_PATH)
    smoke_worker = WORKERS_DIR / "smoke_openvino.py"
    bench_worker = WORKERS_DIR / "bench_openvino.py"
    exports = (EXPORT, EXPORT_NPU)

    def venv_spec(self, wheels: Path, cache: Path) -> VenvSpec:
        releases = load_pins().releases
        names = [f"{n}=={releases[n]}" for n in _RELEASES]
        return VenvSpec(
            name=VENV_NAME,
            steps=(("optimum-intel[openvino]", *names, *_EXTRA),),
            torch=releases["torch"],
            constraints=constraints_file("openvino", set(), cache),
            uninstall=("torchvision",),
        )

    def cases(self, path: str, precision: str | None) -> list[Case]:
        if path == NPU_PATH:  # int4 only, whatever --precision says
            return [Case(NPU_PATH, API_PIPELINE, "int4", "genai", device="npu")]
        if precision is not None:
            return [Case(NAME, API_OPTIMUM, precision, "optimum"), Case(NAME, API_PIPELINE, precision, "genai")]
        return [Case(NAME, API_OPTIMUM, "int4", "optimum"), Case(NAME, API_PIPELINE, "int4", "genai"),
                Case(NAME, API_PIPELINE, "fp32", "genai")]

    def bench_targets(self) -> list[BenchTarget]:
        out = []
        for device in ("cpu", "gpu", "npu"):
            export = EXPORT_NPU.kind if device == "npu" else EXPORT.kind
            out += [BenchTarget(NAME, API_OPTIMUM, device, export),
                    BenchTarget(NAME, BENCH_API_PIPELINE, device, export)]
        return out

    def choose_device(self, case: Case, requested: str, spec: VenvSpec, python: Path | None,
                      probe: Probe) -> Choice | None:
        check_device(requested)
        if case.device == "npu" and requested not in ("auto", "npu"):
            return Choice(None, f"{case.path} runs on the NPU only ({requested} requested)")
        available = probe.openvino_devices(python)
        if available is None:
            return None  # OpenVINO in the venv says which devices it sees
        if isinstance(available, str):
            raise AipcError(f"OpenVINO device probe failed: {available}")
        api = case.api_key or ("optimum" if case.api == API_OPTIMUM else "genai")
        if case.device is not None:
            return choose_openvino_device(case.device, available, api)
        if case.precision != "int4" and requested == "auto":
            # the NPU runs int4 symmetric exports only (docs/upstream.md#npu §4): other precisions take GPU / CPU
            available = [d for d in available if not d.upper().startswith("NPU")]
        return choose_openvino_device(requested, available, api)

    def export_for(self, case: Case, choice: Choice) -> tuple[ExportRecipe, str] | None:
        return (EXPORT_NPU if choice.export == NPU_PATH else EXPORT), "cpu"


RUNTIME = OpenvinoRuntime()
