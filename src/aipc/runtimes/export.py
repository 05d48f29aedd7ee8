"""Exports: each runtime's conversion recipes (:class:`aipc.runtimes.base.ExportRecipe`, e.g. the genai builder,
optimum-cli for OpenVINO and for the NPU) run once as commands (data) and cached by fingerprint.

Exports live in ``<aipc cache>/exports/<kind>-<precision>-<device>-<fingerprint>``; the fingerprint covers the model
folder's content, the recipe's command and notes, and the venv spec. They are written to a temporary folder and
renamed into place. Each export's log is named like its folder, ``<aipc cache>/logs/export-<kind>-<precision>-
<device>-<fingerprint>.log`` (the next model's export never overwrites it), and its stamp records that path
(:func:`export_log`), so verify.json and bench.json can point at it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import stamps
from ..errors import AipcError, StepFailed, UsageError
from ..fsutil import claim_output_dir, output_dir
from ..locks import hold, use_cache
from ..runner import Step, run_once
from ..venvs import VenvSpec, cache_dir, ensure_venv, venvs_root
from ..wheelhouse import wheels_dir
from . import by_name, export_recipes
from .base import ExportPlan, ExportRecipe
from .model import check_model, model_fingerprint, read_config
from .worker import BYTECODE_ENV

RECIPES: dict[str, ExportRecipe] = {r.kind: r for r in export_recipes()}
KINDS = tuple(RECIPES)
STAMP = "aipc-export.json"
KIND = "export"  # the kind of folder (fsutil.MARKER) of an export, in the cache or at `aipc export ... OUT`


def check_kind(kind: str, precision: str, device: str) -> None:
    if kind not in RECIPES:
        raise UsageError(f"unknown export kind {kind!r}", hint=f"use one of: {', '.join(KINDS)}")
    recipe = RECIPES[kind]
    if precision not in recipe.precisions:
        raise UsageError(
            f"precision {precision!r} is not available for {kind}", hint=f"use one of: {', '.join(recipe.precisions)}"
        )
    if device not in recipe.devices:
        raise UsageError(
            f"export device {device!r} is not available for {kind}", hint=f"use one of: {', '.join(recipe.devices)}"
        )


def plan_export(kind: str, model: Path, out: Path, precision: str, device: str, python: Path,
                config: dict[str, Any] | None = None, work: Path | None = None) -> ExportPlan:
    """The export command for ``kind`` (argv, cwd, env as data)."""
    check_kind(kind, precision, device)
    config = read_config(model) if config is None else config
    return RECIPES[kind].plan(model, out, precision, device, python, config, work or out.parent)


def export_dir(kind: str, precision: str, device: str, fingerprint: str, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "exports" / f"{kind}-{precision}-{device}-{fingerprint[:16]}"


def is_export(kind: str, folder: Path) -> bool:
    """True when ``folder`` already is an export for ``kind`` (has the runtime's files)."""
    return RECIPES[kind].is_export(folder)


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
    use_cache(cache)  # aipc cache --clean leaves a cache in use alone
    spec = spec or by_name(RECIPES[kind].runtime).venv_spec(wheels_dir(), cache)
    config = read_config(model)
    probe = plan_export(kind, Path("MODEL"), Path("OUT"), precision, device, Path("PY"), config, Path("WORK"))
    material = {
        "model": model_fingerprint(model),
        "command": probe.command.to_json(),
        "notes": probe.notes,
        "venv": spec.fingerprint(),
    }
    # no absolute path in the material (placeholders MODEL/OUT/PY/WORK): the version-2 fingerprint equals the
    # version-1 one, so the folder name is unchanged and a version-1 stamp is still accepted
    fingerprint, legacy = stamps.fingerprint(material), stamps.legacy_fingerprint(material)
    # absolute: the converter runs in a scratch working directory
    dest = Path(out).resolve() if out is not None else export_dir(kind, precision, device, fingerprint, cache)
    if out is None and _stamp_ok(dest, fingerprint, legacy):
        return dest
    with hold("export", dest, f"the export {dest}", cache=cache, echo=echo):
        if out is None and _stamp_ok(dest, fingerprint, legacy):  # made by the run we waited for
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
            command = replace(plan.command, env={**plan.command.env, **BYTECODE_ENV})  # not in the fingerprint
            step = Step(log_name(kind, precision, device, fingerprint), export_label(kind, precision, device, model),
                        [command])
            log = cache / "logs" / f"{step.name}.log"
            try:
                run_once(step, cache / "logs", echo or (lambda s: None))
            except StepFailed as exc:
                raise AipcError(
                    f"{plan.notes.get('recipe', kind)} ({precision}) of {model} failed: {exc.last_line[:300] or exc}"
                    f" (log: {log})",
                    hint="check that the folder is a complete, loadable Phi-3 checkpoint",
                ) from None
            missing = [f for f in RECIPES[kind].files if not (tmp / f).is_file()]
            if missing:
                raise AipcError(
                    f"export {kind} {precision}: the converter finished but {', '.join(missing)} is missing in its "
                    f"output (log: {log})",
                    hint="for OpenVINO, openvino-tokenizers must be installed in the venv",
                )
            stamps.Stamp(tmp / STAMP).write(fingerprint, kind=kind, precision=precision, device=device,
                                            model=str(model), notes=plan.notes, command=command.to_json(),
                                            log=str(log))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def log_name(kind: str, precision: str, device: str, fingerprint: str) -> str:
    """An export's step and log name: what it holds, like its cache folder (``export-openvino-int4-cpu-<fp>``)."""
    return f"export-{kind}-{precision}-{device}-{fingerprint[:16]}"


def export_label(kind: str, precision: str, device: str, model: Path) -> str:
    """What an export does, as progress says it: ``export openvino int4 of tiny-phi3`` (the export device when it is
    not the CPU: ``export genai int4 of phi-3 for dml``)."""
    return f"export {kind} {precision} of {model.name}" + (f" for {device}" if device != "cpu" else "")


def export_log(folder: Path) -> Path | None:
    """The log of the run that made the export ``folder`` (recorded in its stamp), None when unknown or gone."""
    data = stamps.Stamp(folder / STAMP).read() or {}
    text = data.get("log")
    if not isinstance(text, str) or not text:
        return None
    path = Path(text)
    return path if path.is_file() else None


def recipe_note(folder: Path, device: str) -> str:
    """A label when ``folder`` is an export made with an NPU recipe (its stamp's kind, e.g. ``openvino-npu``) but ran
    on another device (``CPU``, ``cpu-fallback``): ``openvino-npu recipe run on CPU, not on an NPU``; else ""."""
    data = stamps.Stamp(folder / STAMP).read() or {}
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind.endswith("npu") or not device or device.upper().startswith("NPU"):
        return ""
    return f"{kind} recipe run on {device}, not on an NPU"


def export_notes(folder: Path) -> dict[str, Any]:
    data = stamps.Stamp(folder / STAMP).read() or {}
    notes = data.get("notes")
    return notes if isinstance(notes, dict) else {}


def _stamp_ok(dest: Path, fingerprint: str, legacy: str) -> bool:
    """The export's stamp vouches for ``fingerprint`` (or is a version-1 stamp of the same material)."""
    return stamps.Stamp(dest / STAMP).matches(fingerprint, legacy) is not None


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
