"""Conversion recipes of each path, as commands (data), run once and cached by fingerprint.

- ``genai``: the onnxruntime-genai model builder, ``-p int4|int8|fp16|fp32 -e cpu|dml`` (docs/upstream.md#paths
  section 3; ``-e dml`` is only graph building and works on any OS).
- ``openvino``: ``optimum-cli export openvino`` with the cookbook's int4 recipe (``--sym --group-size 128
  --ratio 0.6``) or fp16 / fp32 / int8 (docs/upstream.md#cookbook, docs/upstream.md#paths §2).
- ``openvino-npu``: the NPU recipe, int4 ``--sym --ratio 1.0`` with ``--group-size 128`` or channel-wise ``-1``
  (docs/upstream.md#npu §4).

Group-size fallback: NNCF refuses a group size that does not divide a layer's input channels
(``InvalidGroupSizeError``, docs/upstream.md#paths §2). :func:`pick_group_size` picks the largest power-of-two
divisor not above the requested size for the general recipe, and channel-wise (-1) for the NPU recipe, whose only
legal values are 128 and -1.

Exports live in ``<aipc cache>/exports/<kind>-<precision>-<device>-<fingerprint>``; the fingerprint covers the model
folder's content, the recipe and the venv spec. They are written to a temporary folder and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AipcError, StepFailed, UsageError
from ..fsutil import atomic_write_json, claim_output_dir, output_dir, sha256_text
from ..locks import hold
from ..platforms import get_platform
from ..runner import Command, Runner, Step
from ..venvs import VenvSpec, cache_dir, ensure_venv, venvs_root
from ..wheelhouse import wheels_dir
from .model import check_model, model_fingerprint, read_config
from .paths import venv_spec
from .worker import WORKER_ENV

KINDS = ("genai", "openvino", "openvino-npu")
PRECISIONS: dict[str, tuple[str, ...]] = {
    "genai": ("fp32", "fp16", "int8", "int4"),
    "openvino": ("fp32", "fp16", "int8", "int4"),
    "openvino-npu": ("int4",),
}
DEVICES: dict[str, tuple[str, ...]] = {"genai": ("cpu", "dml"), "openvino": ("cpu",), "openvino-npu": ("cpu",)}
OV_INT4 = {"group_size": 128, "ratio": 0.6, "sym": True}  # the cookbook's int4 recipe
NPU_INT4 = {"group_size": 128, "ratio": 1.0, "sym": True}  # OpenVINO GenAI on NPU: int4, sym, ratio 1.0
MIN_GROUP = 16
STAMP = "aipc-export.json"
KIND = "export"  # the kind of folder (fsutil.MARKER) of an export, in the cache or at `aipc export ... OUT`
EXPECTED_FILES = {
    "genai": ("genai_config.json", "model.onnx"),
    "openvino": ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_detokenizer.xml"),
}


@dataclass(frozen=True)
class ExportPlan:
    command: Command
    notes: dict[str, Any] = field(default_factory=dict)


def check_kind(kind: str, precision: str, device: str) -> None:
    if kind not in KINDS:
        raise UsageError(f"unknown export kind {kind!r}", hint=f"use one of: {', '.join(KINDS)}")
    if precision not in PRECISIONS[kind]:
        raise UsageError(
            f"precision {precision!r} is not available for {kind}", hint=f"use one of: {', '.join(PRECISIONS[kind])}"
        )
    if device not in DEVICES[kind]:
        raise UsageError(
            f"export device {device!r} is not available for {kind}", hint=f"use one of: {', '.join(DEVICES[kind])}"
        )


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


def _script(python: Path, name: str) -> Path:
    return python.parent / f"{name}{get_platform().exe_suffix}"


def plan_export(kind: str, model: Path, out: Path, precision: str, device: str, python: Path,
                config: dict[str, Any] | None = None, work: Path | None = None) -> ExportPlan:
    """The export command for ``kind`` (argv, cwd, env as data)."""
    check_kind(kind, precision, device)
    config = read_config(model) if config is None else config
    env = dict(WORKER_ENV)
    work = work or out.parent
    if kind == "genai":
        argv: list[str | os.PathLike[str]] = [
            python, "-m", "onnxruntime_genai.models.builder", "-i", model, "-o", out, "-p", precision, "-e", device,
            "-c", work / "builder-cache",
        ]
        return ExportPlan(Command.make(argv, work, env), {"recipe": "genai builder"})
    argv = [_script(python, "optimum-cli"), "export", "openvino", "--model", model, "--task",
            "text-generation-with-past", "--weight-format", precision]
    notes: dict[str, Any] = {}
    if precision == "int4":
        recipe = NPU_INT4 if kind == "openvino-npu" else OV_INT4
        group, why = pick_group_size(int(recipe["group_size"]), channel_sizes(config), npu=kind == "openvino-npu")
        argv += ["--group-size", str(group), "--ratio", f"{recipe['ratio']:g}", "--sym"]
        notes = {"group_size": group, "ratio": recipe["ratio"], "sym": True}
        if why:
            notes["group_size_fallback"] = why
    if kind == "openvino":
        argv.append("--trust-remote-code")  # as the cookbook does; harmless for a local phi3 folder
    argv.append(out)
    notes["recipe"] = "optimum-cli " + kind
    return ExportPlan(Command.make(argv, work, env), notes)


def export_dir(kind: str, precision: str, device: str, fingerprint: str, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "exports" / f"{kind}-{precision}-{device}-{fingerprint[:16]}"


def is_export(kind: str, folder: Path) -> bool:
    """True when ``folder`` already is an export for ``kind`` (has the runtime's files)."""
    files = EXPECTED_FILES["genai" if kind == "genai" else "openvino"]
    return all((folder / f).is_file() for f in files[:2])


def ensure_export(
    kind: str, model: Path, precision: str, *, device: str = "cpu", out: Path | None = None,
    cache: Path | None = None, echo: Callable[[str], None] | None = None, spec: VenvSpec | None = None,
    force: bool = False,
) -> Path:
    """The export of ``model`` for ``kind`` at ``precision`` (made once, cached, written atomically).

    ``out`` writes the export there instead of the cache (``aipc export``): a new or empty folder, or an ``export``
    folder aipc made (``force``: also one made for something else or changed since); never the model folder.
    """
    check_kind(kind, precision, device)
    if out is not None:  # before anything is read or made
        claim_output_dir(out, KIND, force=force, inputs=[model])
    model = check_model(Path(model).resolve())
    cache = (cache or cache_dir()).resolve()
    spec = spec or venv_spec("genai" if kind == "genai" else "openvino", wheels_dir(), cache=cache)
    config = read_config(model)
    probe = plan_export(kind, Path("MODEL"), Path("OUT"), precision, device, Path("PY"), config, Path("WORK"))
    fingerprint = sha256_text(json.dumps({
        "model": model_fingerprint(model),
        "command": probe.command.to_json(),
        "notes": probe.notes,
        "venv": spec.fingerprint(),
    }, sort_keys=True, default=str))
    # absolute: the converter runs in a scratch working directory
    dest = Path(out).resolve() if out is not None else export_dir(kind, precision, device, fingerprint, cache)
    if out is None and _stamp_ok(dest, fingerprint):
        return dest
    with hold("export", dest, f"the export {dest}", cache=cache, echo=echo):
        if out is None and _stamp_ok(dest, fingerprint):  # made by the run we waited for
            return dest
        return _export(kind, model, precision, device, dest, fingerprint, config, spec, cache, echo,
                       force=force or out is None, inputs=[model])


def _export(kind: str, model: Path, precision: str, device: str, dest: Path, fingerprint: str,
            config: dict[str, Any], spec: VenvSpec, cache: Path, echo: Callable[[str], None] | None, *,
            force: bool, inputs: list[Path]) -> Path:
    python = ensure_venv(spec, venvs_root(cache), echo=echo)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=_mkdir(cache / "exports")))
    try:
        with output_dir(dest, KIND, force=force, inputs=inputs, recognise=lambda d: (d / STAMP).is_file()) as tmp:
            plan = plan_export(kind, model, tmp, precision, device, python, config, work)
            step = Step(f"export-{kind}-{precision}-{device}", f"export {model.name} for {kind} ({precision}, "
                        f"{device})", [plan.command])
            try:
                Runner(work / "state", cache / "logs", force=True, echo=echo or (lambda s: None)).run(step)
            except StepFailed as exc:
                log = cache / "logs" / f"{step.name}.log"
                raise AipcError(
                    f"{plan.notes.get('recipe', kind)} ({precision}) of {model} failed: {exc.last_line[:300] or exc}"
                    f" (log: {log})",
                    hint="check that the folder is a complete, loadable Phi-3 checkpoint",
                ) from None
            missing = [f for f in EXPECTED_FILES["genai" if kind == "genai" else "openvino"] if not (tmp / f).is_file()]
            if missing:
                raise AipcError(
                    f"export {kind} {precision}: the converter finished but {', '.join(missing)} is missing in its "
                    f"output (log: {cache / 'logs' / (step.name + '.log')})",
                    hint="for OpenVINO, openvino-tokenizers must be installed in the venv",
                )
            atomic_write_json(tmp / STAMP, {"fingerprint": fingerprint, "kind": kind, "precision": precision,
                                            "device": device, "model": str(model), "notes": plan.notes,
                                            "command": plan.command.to_json()})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def export_notes(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    notes = data.get("notes") if isinstance(data, dict) else None
    return notes if isinstance(notes, dict) else {}


def _stamp_ok(dest: Path, fingerprint: str) -> bool:
    try:
        data = json.loads((dest / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("fingerprint") == fingerprint


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
