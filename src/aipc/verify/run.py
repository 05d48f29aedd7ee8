"""verify's orchestration: model → per path (venv → device → export → smoke worker) → rows.

Nothing a path does can crash or hang aipc: venv, export and worker failures become the row's ``fail`` with the
reason, a path that cannot run here becomes ``skip`` with the reason, and each worker runs in a subprocess with a
timeout (:func:`aipc.runtimes.worker.run_worker`).
"""

from __future__ import annotations

import platform as _platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import AipcError, UsageError
from ..platforms import host_platform_name
from ..runtimes.devices import Choice, check_device, choose_genai_device, choose_openvino_device, detect_dx12_gpus
from ..runtimes.export import ensure_export, export_notes, is_export
from ..runtimes.model import load_golden, model_problems
from ..runtimes.paths import PATHS, PathSkipped, check_path, has_dml_genai, npu_module_spec, venv_spec, worker_path
from ..runtimes.tinymodel import MAX_NEW_TOKENS, ensure_tiny_model
from ..runtimes.worker import run_worker
from ..venvs import VenvSpec, cache_dir, ensure_venv, venvs_root
from ..wheelhouse import wheels_dir
from .progress import Progress
from .report import Row

PRECISIONS = ("fp32", "fp16", "int8", "int4")
# the cookbook's prompt, used for a user's model (aipc's tiny model carries its own in golden.json)
DEFAULT_MESSAGES = [{"role": "system", "content": "You are a helpful AI assistant."},
                    {"role": "user", "content": "Can you introduce yourself?"}]
NPU_API = "intel-npu-acceleration-library"
NPU_PRECISIONS = ("int4", "int8", "fp16")  # CompilerConfig dtypes (docs/upstream.md#npu §3)


@dataclass(frozen=True)
class Case:
    """One row to verify: a path, an API (display name + worker key) and a precision."""

    path: str
    api: str
    precision: str
    api_key: str = ""


# default rows: fp32 checks the golden ids exactly, int4 is each path's shipping recipe
DEFAULT_CASES: dict[str, tuple[Case, ...]] = {
    "genai": (Case("genai", "onnxruntime-genai", "fp32"), Case("genai", "onnxruntime-genai", "int4")),
    "openvino": (
        Case("openvino", "OVModelForCausalLM", "int4", "optimum"),
        Case("openvino", "LLMPipeline", "int4", "genai"),
        Case("openvino", "LLMPipeline", "fp32", "genai"),
    ),
    "npu": (Case("npu", NPU_API, "int4"),),
    "openvino-npu": (Case("openvino-npu", "LLMPipeline", "int4", "genai"),),
}


def parse_paths(text: str | None) -> list[str]:
    """``None`` (the option left out): every path; ``""`` or ``",,"`` is an error, never "all"."""
    if text is None:
        return list(PATHS)
    paths = [p.strip() for p in text.split(",") if p.strip()]
    if not paths:
        raise UsageError("--paths is empty", hint=f"use a comma-separated list of: {', '.join(PATHS)}")
    for p in paths:
        check_path(p)
    return list(dict.fromkeys(paths))


def plan_cases(paths: list[str], precision: str | None = None) -> list[Case]:
    """The rows for ``paths``; ``precision`` replaces each path's defaults (openvino-npu is int4 only)."""
    if precision is not None and precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}", hint=f"use one of: {', '.join(PRECISIONS)}")
    cases: list[Case] = []
    for path in paths:
        defaults = DEFAULT_CASES[check_path(path)]
        if precision is None or path == "openvino-npu":
            cases.extend(defaults)
            continue
        seen: set[str] = set()
        for c in defaults:
            if c.api not in seen:
                seen.add(c.api)
                cases.append(Case(c.path, c.api, precision, c.api_key))
    return cases


@dataclass
class Options:
    paths: list[str] = field(default_factory=lambda: list(PATHS))
    model: Path | None = None
    device: str = "auto"
    precision: str | None = None
    timeout: float = 300.0
    wheels: Path | None = None
    cache: Path | None = None
    max_new_tokens: int = MAX_NEW_TOKENS
    build_npu: bool = False  # build aipc's NPU wheel (aipc build-npu) when no wheel of the library can be had


@dataclass
class Context:
    model: Path | None
    base_request: dict[str, Any]
    problem: str = ""  # when set, every row fails with it


class Verifier:
    def __init__(self, opts: Options, progress: Progress | None = None, *,
                 gpu_facts: Callable[[str], tuple[list[Any], str]] = detect_dx12_gpus) -> None:
        self.opts = opts
        self.cache = (opts.cache or cache_dir()).resolve()
        self.wheels = opts.wheels or wheels_dir()
        self.progress = progress or Progress(stream=None)
        self.gpu_facts = gpu_facts
        self.devices: dict[str, list[str] | str] = {}  # venv -> OpenVINO devices, or the probe's failure reason
        self.model: Path | None = None  # the model verified (set by run)
        self.export_failures: dict[tuple[str, str, str], str] = {}
        self.gpus: tuple[list[Any], str] | None = None
        self.setup_seconds: dict[str, float] = {}  # tiny model (+ its venv), shown in verify.json
        check_device(opts.device)
        if opts.model is not None and not Path(opts.model).is_dir():
            what = "is not a folder" if Path(opts.model).exists() else "does not exist"
            raise UsageError(f"model folder {opts.model} {what}",
                             hint="pass an existing Hugging Face Phi-3 folder with --model, or omit --model")

    # ---------------------------------------------------------------------------------------------- model --
    def prepare_model(self) -> Context:
        n = self.opts.max_new_tokens
        req: dict[str, Any] = {"messages": DEFAULT_MESSAGES, "golden": None, "prompt_ids": None, "max_new_tokens": n}
        if self.opts.model is None:
            self.progress.note("tiny model: making or reusing aipc's tiny Phi-3")
            t0 = time.monotonic()
            try:  # in the genai venv of our wheels folder: the same venv the genai path runs in
                model = ensure_tiny_model(self.cache, echo=self.progress.note, wheels=self.wheels)
                self.setup_seconds["tiny_model"] = round(time.monotonic() - t0, 3)
                golden = load_golden(model)
            except AipcError as exc:
                return Context(None, {}, problem=f"tiny model could not be made: {exc.one_line()}")
            assert golden is not None
        else:
            model = Path(self.opts.model).resolve()
            problems = model_problems(model)
            if problems and not any(is_export(kind, model) for kind in ("genai", "openvino")):
                return Context(model, req, problem="; ".join(problems))
            try:
                golden = load_golden(model)  # a copy of aipc's tiny model (aipc tiny-model OUT) has one
            except AipcError as exc:
                return Context(model, req, problem=exc.one_line())
        if golden is not None:
            req.update(messages=golden["messages"], golden=golden["golden"], prompt_ids=golden["prompt_ids"],
                       max_new_tokens=int(golden.get("max_new_tokens", n)))
        return Context(model, req)

    # ----------------------------------------------------------------------------------------------- run --
    def run(self) -> list[Row]:
        cases = plan_cases(self.opts.paths, self.opts.precision)
        rows = [Row(c.path, c.api, c.precision) for c in cases]
        self.progress.begin(rows)
        ctx = self.prepare_model()
        self.model = ctx.model
        by_path: dict[str, list[int]] = {}
        for i, c in enumerate(cases):
            by_path.setdefault(c.path, []).append(i)
        for path, idx in by_path.items():
            self._run_path(path, [cases[i] for i in idx], [rows[i] for i in idx], ctx)
        self.progress.end()
        return rows

    def _finish(self, row: Row, status: str, reason: str, **details: Any) -> None:
        row.status, row.reason = status, reason
        row.details.update(details)
        self.progress.done(row)

    def _run_path(self, path: str, cases: list[Case], rows: list[Row], ctx: Context) -> None:
        if ctx.problem:
            for r in rows:
                self.progress.start(r, "checking the model")
                self._finish(r, "fail", ctx.problem)
            return
        build_failure = ""
        if path == "npu" and self.opts.build_npu:
            self.progress.start(rows[0], "building aipc's NPU wheel")
            build_failure = self._build_npu_wheel()
        self.progress.start(rows[0], "venv")
        try:
            spec = venv_spec(path, self.wheels, cache=self.cache)
        except PathSkipped as exc:
            for r in rows:
                self.progress.start(r, "")
                why = exc.message + (f"; building it failed: {build_failure}" if build_failure else "")
                self._finish(r, "skip", why)
            return
        except AipcError as exc:
            for r in rows:
                self.progress.start(r, "")
                self._finish(r, "fail", f"venv spec: {exc.one_line()}")
            return
        # genai and npu decide their device from the options and the spec alone: skipped rows install nothing
        todo = []
        for case, row in zip(cases, rows, strict=True):
            choice = self._early_choice(path, case, spec)
            if choice is not None and choice.device is None:
                self.progress.start(row, "device")
                row.details["device_choice"] = choice.reason
                self._finish(row, "skip", choice.reason)
            else:
                todo.append((case, row, choice))
        if not todo:
            return
        try:
            t0 = time.monotonic()
            python = ensure_venv(spec, venvs_root(self.cache), echo=self.progress.note)
            venv_seconds = time.monotonic() - t0
        except AipcError as exc:
            for _, r, _ in todo:
                self.progress.start(r, "")
                self._finish(r, "fail", f"venv install failed: {exc.one_line()}")
            return
        for case, row, choice in todo:
            self.progress.start(row, "device")
            row.details["venv_seconds"] = round(venv_seconds, 3)
            venv_seconds = 0.0
            try:
                self._run_case(path, case, row, ctx, spec, python, choice)
            except AipcError as exc:
                self._finish(row, "fail", exc.one_line())
            except OSError as exc:  # e.g. a full disk while exporting: this row fails, the others still run
                self._finish(row, "fail", f"{type(exc).__name__}: {exc}")

    def _build_npu_wheel(self) -> str:
        """Build aipc's NPU wheel into ``wheels/`` when the npu path has no wheel; returns why that failed, or ""."""
        spec, _ = npu_module_spec(self.wheels)
        if spec is not None:  # a wheel can be had already (ours in wheels/, or a PyPI binary wheel)
            return ""
        from ..runtimes.npu import ensure_npu_wheel

        lines: list[str] = []
        wheel = ensure_npu_wheel(self.wheels, echo=lines.append)
        if wheel is not None:
            self.progress.note(f"built {wheel.name} into {self.wheels}")
            return ""
        marker = "cannot build it here: "
        reasons = [ln.split(marker, 1)[1] for ln in lines if marker in ln]
        return reasons[-1] if reasons else (lines[-1] if lines else "unknown error")

    def _early_choice(self, path: str, case: Case, spec: VenvSpec) -> Choice | None:
        """The device of a genai or npu row, decided before the venv exists; None for the OpenVINO paths (they ask
        the venv's OpenVINO which devices it sees)."""
        device = self.opts.device
        if path == "genai":
            dml = has_dml_genai(spec.local_wheels)
            if not dml and device not in ("gpu", "dml"):  # no GPU question to answer: spare the probe
                return choose_genai_device(device, dml_wheel=False, gpus=None)
            if self.gpus is None:  # asked once per run (PowerShell on Windows)
                self.gpus = self.gpu_facts(host_platform_name())
            gpus, why = self.gpus
            return choose_genai_device(device, dml_wheel=dml, gpus=list(gpus), gpu_reason=why)
        if path == "npu":
            if device in ("gpu", "dml"):
                return Choice(None, f"the NPU library runs on the NPU (or its CPU fallback) only ({device} requested)")
            if case.precision not in NPU_PRECISIONS:
                return Choice(None, f"the NPU library compiles {'/'.join(NPU_PRECISIONS)} only, not {case.precision}")
            return Choice(device, "the library picks the NPU, else falls back to CPU")
        return None

    def _openvino_choice(self, path: str, case: Case, python: Path) -> Choice:
        device = self.opts.device
        available = self._ov_devices(python)
        if isinstance(available, str):
            raise AipcError(f"OpenVINO device probe failed: {available}")
        if path == "openvino-npu":
            if device not in ("auto", "npu"):
                return Choice(None, f"openvino-npu runs on the NPU only ({device} requested)")
            return choose_openvino_device("npu", available, "genai")
        if case.precision != "int4" and device == "auto":
            # the NPU runs int4 symmetric exports only (docs/upstream.md#npu §4): other precisions take GPU / CPU
            available = [d for d in available if not d.upper().startswith("NPU")]
        return choose_openvino_device(device, available, case.api_key)

    def _ov_devices(self, python: Path) -> list[str] | str:
        if "openvino" not in self.devices:
            req = {"action": "probe", "model": "", "device": "auto", "precision": "", "max_new_tokens": 0,
                   "messages": [], "golden": None}
            self.progress.phase("probing OpenVINO devices")
            res = run_worker(python, worker_path("openvino"), req, min(self.opts.timeout, 120.0))
            if res["status"] != "pass":
                self.devices["openvino"] = res["reason"] or "probe failed"
            else:
                self.devices["openvino"] = [str(d.get("device")) for d in res["details"].get("devices", [])]
        return self.devices["openvino"]

    def _run_case(self, path: str, case: Case, row: Row, ctx: Context, spec: VenvSpec, python: Path,
                  choice: Choice | None) -> None:
        assert ctx.model is not None
        if choice is None:
            choice = self._openvino_choice(path, case, python)
        row.details["device_choice"] = choice.reason
        if choice.device is None:
            self._finish(row, "skip", choice.reason)
            return
        request = dict(ctx.base_request, precision=case.precision)
        if case.api_key:
            request["api"] = case.api_key
        if path == "npu":
            model = ctx.model
            request["device"] = choice.device
        else:
            kind = "genai" if path == "genai" else choice.export
            if is_export(kind, ctx.model):
                model = ctx.model
            else:
                problems = model_problems(ctx.model)
                if problems:  # an export for the other runtime
                    self._finish(row, "fail", f"{ctx.model} is not a {kind} export, nor a checkpoint ("
                                 + "; ".join(problems) + ")")
                    return
                self.progress.phase(f"export {kind} {case.precision}")
                t0 = time.monotonic()
                export_device = choice.export if path == "genai" else "cpu"
                key = (kind, case.precision, export_device)
                if key in self.export_failures:  # do not run a failed conversion twice
                    self._finish(row, "fail", self.export_failures[key])
                    return
                try:
                    model = ensure_export(kind, ctx.model, case.precision, device=export_device,
                                          cache=self.cache, echo=self.progress.note, spec=spec)
                except AipcError as exc:
                    self.export_failures[key] = f"export failed: {exc.message}"
                    self._finish(row, "fail", self.export_failures[key])
                    return
                row.details["export_seconds"] = round(time.monotonic() - t0, 3)
                row.details["export"] = str(model)
                notes = export_notes(model)
                if notes:
                    row.details["export_notes"] = notes
            request["device"] = choice.device
        request["model"] = str(model)
        self.progress.phase("smoke")
        res = run_worker(python, worker_path(path), request, self.opts.timeout)
        row.api = res["api"] or row.api
        row.device = res["device"] or (choice.device or "")
        row.precision = res["precision"] or row.precision
        row.tokens, row.n_tokens = res["tokens"], res["n_tokens"]
        row.seconds = float(res["details"].get("wall_seconds", res["seconds"]))
        row.details.update(worker=res["details"], worker_seconds=res["seconds"])
        self._finish(row, res["status"], res["reason"])


def run_meta(opts: Options, ctx_model: Path | None, started: float, wall: float, rows: list[Row],
             setup: dict[str, float] | None = None) -> dict[str, Any]:
    smoke = sum(r.seconds for r in rows)
    setup = dict(setup or {})
    setup["venvs"] = round(sum(float(r.details.get("venv_seconds", 0.0)) for r in rows), 3)
    setup["exports"] = round(sum(float(r.details.get("export_seconds", 0.0)) for r in rows), 3)
    return {
        "aipc": __version__,
        "model": str(ctx_model) if ctx_model else None,
        "model_kind": "tiny" if opts.model is None else "user",
        "paths": opts.paths,
        "device": opts.device,
        "precision": opts.precision,
        "timeout": opts.timeout,
        "platform": host_platform_name(),
        "machine": _platform.machine(),
        "python": sys.version.split()[0],
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(wall, 3),
        "smoke_seconds": round(smoke, 3),
        "overhead_seconds": round(wall - smoke, 3),
        "setup_seconds": setup,
    }

