"""verify's orchestration: model → per path (venv → device → export → smoke worker) → rows.

Nothing a path does can crash or hang aipc: venv, export and worker failures become the row's ``fail`` with the
reason, a path that cannot run here becomes ``skip`` with the reason, and each worker runs in a subprocess with a
timeout (:func:`aipc.runtimes.worker.run_worker`).
"""

from __future__ import annotations

import platform as _platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import AipcError, UsageError
from ..platforms import host_platform_name
from ..runtimes import RUNTIMES, check_path, for_path
from ..runtimes import paths as runtime_paths
from ..runtimes.base import Case, Choice, Probe, Runtime, RuntimeSkipped
from ..runtimes.devices import HostProbe, check_device
from ..runtimes.export import export_log, export_notes, recipe_note
from ..runtimes.model import load_golden, model_problems
from ..runtimes.services import Services
from ..runtimes.tinymodel import MAX_NEW_TOKENS
from ..venvs import VenvSpec, cache_dir, install_log, venv_dir, venvs_root
from ..wheelhouse import wheels_dir
from .progress import Progress
from .report import Row

PRECISIONS = ("fp32", "fp16", "int8", "int4")
# the cookbook's prompt, used for a user's model (aipc's tiny model carries its own in golden.json)
DEFAULT_MESSAGES = [{"role": "system", "content": "You are a helpful AI assistant."},
                    {"role": "user", "content": "Can you introduce yourself?"}]
# what verify does with each runtime (venvs, workers, exports, the tiny model); tests replace it
SERVICES = Services()
Echo = Callable[[str], None]
# a runtime that cannot be had here may be made so (verify --build-npu: {"npu": build aipc's wheel}); returns why
# that failed, or ""
Prepare = Callable[[Path, Echo], str]


def parse_paths(text: str | None, runtimes: Sequence[Runtime] = RUNTIMES) -> list[str]:
    """``None`` (the option left out): every path; ``""`` or ``",,"`` is an error, never "all"."""
    if text is None:
        return list(runtime_paths(runtimes))
    paths = [p.strip() for p in text.split(",") if p.strip()]
    if not paths:
        raise UsageError("--paths is empty",
                         hint=f"use a comma-separated list of: {', '.join(runtime_paths(runtimes))}")
    for p in paths:
        check_path(p, runtimes)
    return list(dict.fromkeys(paths))


def plan_cases(paths: list[str], precision: str | None = None, runtimes: Sequence[Runtime] = RUNTIMES) -> list[Case]:
    """The rows for ``paths``; ``precision`` replaces each path's defaults (openvino-npu is int4 only)."""
    if precision is not None and precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}", hint=f"use one of: {', '.join(PRECISIONS)}")
    cases: list[Case] = []
    for path in paths:
        cases.extend(for_path(path, runtimes).cases(path, precision))
    return cases


@dataclass
class Options:
    paths: list[str] = field(default_factory=lambda: list(runtime_paths()))
    model: Path | None = None
    device: str = "auto"
    precision: str | None = None
    timeout: float = 300.0
    wheels: Path | None = None
    cache: Path | None = None
    max_new_tokens: int = MAX_NEW_TOKENS
    prepare: Mapping[str, Prepare] = field(default_factory=dict)  # by runtime name, tried when it is skipped


@dataclass
class Context:
    model: Path | None
    base_request: dict[str, Any]
    problem: str = ""  # when set, every row fails with it


class Verifier:
    def __init__(self, opts: Options, progress: Progress | None = None, *, runtimes: Sequence[Runtime] = RUNTIMES,
                 services: Services | None = None, probe: Probe | None = None) -> None:
        self.opts = opts
        self.cache = (opts.cache or cache_dir()).resolve()
        self.wheels = opts.wheels or wheels_dir()
        self.progress = progress or Progress(stream=None)
        self.runtimes = tuple(runtimes)
        self.services = services or SERVICES
        self.probe: Probe = probe or HostProbe(run_worker=self.services.run_worker, timeout=min(opts.timeout, 120.0),
                                               phase=self.progress.phase)
        self.model: Path | None = None  # the model verified (set by run)
        self.export_failures: dict[tuple[str, str, str], str] = {}
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
                model = self.services.ensure_tiny_model(self.cache, echo=self.progress.note, wheels=self.wheels)
                self.setup_seconds["tiny_model"] = round(time.monotonic() - t0, 3)
                golden = load_golden(model)
            except AipcError as exc:
                return Context(None, {}, problem=f"tiny model could not be made: {exc.one_line()}")
            assert golden is not None
        else:
            model = Path(self.opts.model).resolve()
            problems = model_problems(model)
            if problems and not any(r.is_export(model) for rt in self.runtimes for r in rt.exports):
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
        cases = plan_cases(self.opts.paths, self.opts.precision, self.runtimes)
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

    def _spec(self, rt: Runtime, rows: list[Row]) -> VenvSpec:
        """The runtime's venv spec; when it cannot be had here, ``opts.prepare`` may make it so (a build)."""
        try:
            return rt.venv_spec(self.wheels, self.cache)
        except RuntimeSkipped as exc:
            prepare = self.opts.prepare.get(rt.name)
            if prepare is None:
                raise
            self.progress.start(rows[0], f"preparing {rt.name}")
            failure = prepare(self.wheels, self.progress.note)
            if failure:
                raise RuntimeSkipped(f"{exc.message}; building it failed: {failure}") from None
            return rt.venv_spec(self.wheels, self.cache)

    def _run_path(self, path: str, cases: list[Case], rows: list[Row], ctx: Context) -> None:
        if ctx.problem:
            for r in rows:
                self.progress.start(r, "checking the model")
                self._finish(r, "fail", ctx.problem)
            return
        rt = for_path(path, self.runtimes)
        self.progress.start(rows[0], "venv")
        try:
            spec = self._spec(rt, rows)
        except RuntimeSkipped as exc:
            for r in rows:
                self.progress.start(r, "")
                self._finish(r, "skip", exc.message)
            return
        except AipcError as exc:
            for r in rows:
                self.progress.start(r, "")
                self._finish(r, "fail", f"venv spec: {exc.one_line()}")
            return
        # a device decided from the options and the spec alone (genai, npu): skipped rows install nothing
        todo = []
        for case, row in zip(cases, rows, strict=True):
            try:
                choice = rt.choose_device(case, self.opts.device, spec, None, self.probe)
            except AipcError as exc:
                self.progress.start(row, "device")
                self._finish(row, "fail", exc.one_line())
                continue
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
            python = self.services.ensure_venv(spec, venvs_root(self.cache), echo=self.progress.note)
            venv_seconds = time.monotonic() - t0
        except AipcError as exc:
            for _, r, _ in todo:
                self.progress.start(r, "")
                self._finish(r, "fail", f"venv install failed: {exc.one_line()}")
            return
        venv_log = install_log(venv_dir(spec, venvs_root(self.cache)))
        for case, row, choice in todo:
            self.progress.start(row, "device")
            add_log(row, "venv", venv_log)
            row.details["venv_seconds"] = round(venv_seconds, 3)
            venv_seconds = 0.0
            try:
                self._run_case(rt, case, row, ctx, spec, python, choice)
            except AipcError as exc:
                self._finish(row, "fail", exc.one_line())
            except OSError as exc:  # e.g. a full disk while exporting: this row fails, the others still run
                self._finish(row, "fail", f"{type(exc).__name__}: {exc}")

    def _model_for(self, rt: Runtime, case: Case, row: Row, ctx: Context, spec: VenvSpec,
                   choice: Choice) -> Path | None:
        """The folder the worker loads: the checkpoint, an export given as --model, or the cached export made for
        the chosen device; None when the row has failed (finished here)."""
        assert ctx.model is not None
        wanted = rt.export_for(case, choice)
        if wanted is None or wanted[0].is_export(ctx.model):
            return ctx.model
        recipe, export_device = wanted
        kind = recipe.kind
        problems = model_problems(ctx.model)
        if problems:  # an export for the other runtime
            self._finish(row, "fail", f"{ctx.model} is not a {kind} export, nor a checkpoint ("
                         + "; ".join(problems) + ")")
            return None
        self.progress.phase(f"export {kind} {case.precision}")
        t0 = time.monotonic()
        key = (kind, case.precision, export_device)
        if key in self.export_failures:  # do not run a failed conversion twice
            self._finish(row, "fail", self.export_failures[key])
            return None
        try:
            model = Path(self.services.ensure_export(kind, ctx.model, case.precision, device=export_device,
                                                     cache=self.cache, echo=self.progress.note, spec=spec))
        except AipcError as exc:
            self.export_failures[key] = f"export failed: {exc.message}"
            self._finish(row, "fail", self.export_failures[key])
            return None
        row.details["export_seconds"] = round(time.monotonic() - t0, 3)
        row.details["export"] = str(model)
        add_log(row, "export", export_log(model))
        notes = export_notes(model)
        if notes:
            row.details["export_notes"] = notes
        return model

    def _run_case(self, rt: Runtime, case: Case, row: Row, ctx: Context, spec: VenvSpec, python: Path,
                  choice: Choice | None) -> None:
        if choice is None:
            choice = rt.choose_device(case, self.opts.device, spec, python, self.probe)
            if choice is None:
                raise AipcError(f"{rt.name}: no device decision with the venv made")
        row.details["device_choice"] = choice.reason
        if choice.device is None:
            self._finish(row, "skip", choice.reason)
            return
        model = self._model_for(rt, case, row, ctx, spec, choice)
        if model is None:
            return
        request = dict(ctx.base_request, precision=case.precision, device=choice.device, model=str(model))
        if case.api_key:
            request["api"] = case.api_key
        self.progress.phase("smoke")
        res = self.services.run_worker(python, rt.smoke_worker, request, self.opts.timeout)
        row.api = res["api"] or row.api
        row.device = res["device"] or (choice.device or "")
        row.precision = res["precision"] or row.precision
        row.tokens, row.n_tokens = res["tokens"], res["n_tokens"]
        row.seconds = float(res["details"].get("wall_seconds", res["seconds"]))
        row.details.update(worker=res["details"], worker_seconds=res["seconds"])
        note = recipe_note(model, row.device)  # e.g. an NPU export given as --model, run on the CPU
        if note:
            row.details["recipe_note"] = note
        self._finish(row, res["status"], f"{res['reason']} ({note})" if note and res["reason"] else
                     res["reason"] or note)


def add_log(row: Row, what: str, path: Path | None) -> None:
    """Record in ``row.details["logs"]`` the log of what made the row's ``what`` (venv, export), when it exists."""
    if path is not None and path.is_file():
        row.details.setdefault("logs", {})[what] = str(path)


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

