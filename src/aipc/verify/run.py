"""verify's orchestration: a dependency graph of tasks (:mod:`aipc.dag`) -> rows in plan order.

Per runtime: (its NPU wheel build) -> venv -> device decision -> exports (each also after the model) -> one smoke
worker for all its rows (:func:`aipc.runtimes.worker.run_batch`: the runtime is loaded once); the tiny model after
the genai venv it is made in. Independent tasks run at once, at most ``--workers`` CPU-heavy ones.

Nothing a path does can crash or hang aipc: venv, export and worker failures become the row's ``fail`` with the
reason, a path that cannot run here becomes ``skip`` with the reason, and each worker runs in a subprocess with a
timeout.
"""

from __future__ import annotations

import os
import platform as _platform
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from .. import __version__
from ..dag import DONE, FAILED, Dag, Task, default_workers
from ..errors import AipcError, UsageError
from ..platforms import host_platform_name
from ..proc import charge_thread_cpu
from ..runtimes import RUNTIMES, check_path, for_path
from ..runtimes import genai as genai_runtime
from ..runtimes import paths as runtime_paths
from ..runtimes.base import Case, Choice, Probe, Runtime, RuntimeSkipped
from ..runtimes.devices import HostProbe, check_device
from ..runtimes.export import export_log, export_notes, recipe_note
from ..runtimes.model import load_golden, model_problems
from ..runtimes.services import Services
from ..runtimes.tinymodel import MAX_NEW_TOKENS, tiny_model_dir
from ..runtimes.tinymodel import is_intact as tiny_is_intact
from ..runtimes.worker import WorkerSession
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
# the order ready tasks start in: rough seconds per kind of task on 2 quiet cores (issue 15's cold figures: NPU
# build 77 s, exports 10-20 s each, tiny model 7 s, smokes a few s plus a little per row); only the order matters
ESTIMATES = {"prepare": 60.0, "venv": 10.0, "model": 10.0, "devices": 1.0, "export": 15.0, "smoke": 5.0, "row": 2.0}
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
    workers: int | None = None  # CPU-heavy tasks at once (NPU build, tiny model, exports, smokes); None: every CPU


@dataclass
class Context:
    model: Path | None
    base_request: dict[str, Any]
    problem: str = ""  # when set, every row fails with it


class RowsFailed(Exception):
    """A task's failure as its rows will show it (``status`` fail or skip, and the reason)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Item:
    """One row on its way: its case, the device decision (None: not yet), and the folder its worker loads."""

    case: Case
    row: Row
    choice: Choice | None = None
    export_key: str = ""
    finished: bool = False


@dataclass
class Group:
    """The rows of one runtime (one venv): its spec once known, and the venv's Python once made."""

    rt: Runtime
    items: list[Item]
    spec: VenvSpec | None = None
    python: Path | None = None

    def pending(self) -> list[Item]:
        return [i for i in self.items if not i.finished]


def _task_reason(exc: BaseException) -> tuple[str, str]:
    """How a failed task shows on the rows that needed it."""
    if isinstance(exc, RowsFailed):
        return exc.status, exc.reason
    if isinstance(exc, AipcError):
        return "fail", exc.one_line()
    return "fail", f"{type(exc).__name__}: {exc}"


class Verifier:
    """Plans the rows, then runs their work as a dependency graph (:class:`aipc.dag.Dag`): per runtime the NPU
    wheel build (``--build-npu``) -> its venv -> its device decision -> the exports its rows need (each after the
    model) -> one smoke worker for all its rows; the tiny model after the genai venv it is made in. Independent
    tasks run at once, at most ``Options.workers`` CPU-heavy ones; rows are reported in plan order."""

    def __init__(self, opts: Options, progress: Progress | None = None, *, runtimes: Sequence[Runtime] = RUNTIMES,
                 services: Services | None = None, probe: Probe | None = None) -> None:
        self.opts = opts
        self.cache = (opts.cache or cache_dir()).resolve()
        self.wheels = opts.wheels or wheels_dir()
        self.progress = progress or Progress(stream=None)
        self.runtimes = tuple(runtimes)
        self.services = services or SERVICES
        self.probe: Probe = probe or HostProbe(run_worker=self._run_worker, timeout=min(opts.timeout, 120.0),
                                               phase=self.progress.phase)
        # per (python, worker): the worker process kept from the device probe for that venv's smokes
        self._sessions: dict[tuple[str, str], WorkerSession] = {}
        self.model: Path | None = None  # the model verified (set by run)
        self.setup_seconds: dict[str, float] = {}  # tiny model, venvs, exports, builds: shown in verify.json
        if opts.workers is not None and opts.workers < 1:
            raise UsageError(f"--workers {opts.workers} is not a positive number of tasks",
                             hint="pass e.g. --workers 2 (default: the number of CPUs)")
        self.dag = Dag(workers=opts.workers or default_workers())
        self.ctx = Context(None, {})
        self._lock = threading.Lock()
        self._exports: dict[str, Path | str] = {}  # export task key -> its folder, or why it failed
        self._model_needs_venv = ""  # the runtime whose venv the tiny model is made in, when it must be made
        check_device(opts.device)
        if opts.model is not None and not Path(opts.model).is_dir():
            what = "is not a folder" if Path(opts.model).exists() else "does not exist"
            raise UsageError(f"model folder {opts.model} {what}",
                             hint="pass an existing Hugging Face Phi-3 folder with --model, or omit --model")

    # ---------------------------------------------------------------------------------------------- model --
    def _request(self, golden: dict[str, Any] | None) -> dict[str, Any]:
        n = self.opts.max_new_tokens
        req: dict[str, Any] = {"messages": DEFAULT_MESSAGES, "golden": None, "prompt_ids": None, "max_new_tokens": n}
        if golden is not None:
            req.update(messages=golden["messages"], golden=golden["golden"], prompt_ids=golden["prompt_ids"],
                       max_new_tokens=int(golden.get("max_new_tokens", n)))
        return req

    def user_model(self) -> Context:
        """The context of ``--model`` (known before anything runs)."""
        assert self.opts.model is not None
        model = Path(self.opts.model).resolve()
        problems = model_problems(model)
        if problems and not any(r.is_export(model) for rt in self.runtimes for r in rt.exports):
            return Context(model, self._request(None), problem="; ".join(problems))
        try:
            golden = load_golden(model)  # a copy of aipc's tiny model (aipc tiny-model OUT) has one
        except AipcError as exc:
            return Context(model, self._request(None), problem=exc.one_line())
        return Context(model, self._request(golden))

    def _make_tiny_model(self) -> None:
        with self.progress.task("tiny model") as echo:
            try:  # in the genai venv of our wheels folder: the same venv the genai path runs in
                model = self.services.ensure_tiny_model(self.cache, echo=echo, wheels=self.wheels)
                golden = load_golden(model)
            except AipcError as exc:
                raise RowsFailed("fail", f"tiny model could not be made: {exc.one_line()}") from None
            except OSError as exc:
                raise RowsFailed("fail", f"tiny model could not be made: {type(exc).__name__}: {exc}") from None
        if golden is None:
            raise RowsFailed("fail", f"tiny model {model} has no golden.json")
        self.model = model
        self.ctx = Context(model, self._request(golden))

    # ----------------------------------------------------------------------------------------------- run --
    def run(self) -> list[Row]:
        cases = plan_cases(self.opts.paths, self.opts.precision, self.runtimes)
        rows = [Row(c.path, c.api, c.precision) for c in cases]
        self.progress.begin(rows)
        try:
            self._run(cases, rows)
        finally:
            for key in list(self._sessions):
                self._sessions.pop(key).close()
            self.progress.end()
        return rows

    def _run_worker(self, python: Path, worker: Path, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One request (the device probe): in the venv's kept worker process when there is one."""
        session = self._sessions.get((str(python), str(worker)))
        if session is not None:
            return session.run(request, timeout)
        return self.services.run_worker(python, worker, request, timeout)

    def _run(self, cases: list[Case], rows: list[Row]) -> None:
        groups: dict[str, Group] = {}
        for case, row in zip(cases, rows, strict=True):
            rt = for_path(case.path, self.runtimes)
            groups.setdefault(rt.name, Group(rt, [])).items.append(Item(case, row))
        tiny = self.opts.model is None
        if not tiny:
            self.ctx = self.user_model()
            self.model = self.ctx.model
            if self.ctx.problem:
                for g in groups.values():
                    self._finish_all(g.items, "fail", self.ctx.problem)
                return
        dag = self.dag
        for g in groups.values():  # what each runtime needs, before anything is installed
            self._plan_group(g)
        needs_model = tiny and any(g.pending() for g in groups.values())
        if needs_model:
            deps = []
            if not tiny_is_intact(tiny_model_dir(self.cache)):  # made in the genai venv: that venv first
                genai_group = groups.get("genai") or self._genai_group()
                if genai_group is not None:
                    groups.setdefault("genai", genai_group)
                    deps.append(self._add_venv(genai_group, for_model=True).key)
            dag.add("model", self._make_tiny_model, deps, estimate=ESTIMATES["model"])
        for g in groups.values():
            if g.pending():
                venv = self._add_venv(g)
                dag.add(f"devices:{g.rt.name}", partial(self._devices, g), [venv.key], heavy=False,
                        estimate=ESTIMATES["devices"],
                        on_blocked=partial(self._blocked, g))
        dag.run()
        for task in dag.tasks.values():  # a bug in a task is aipc's, not a row's: shown as such
            if task.state == FAILED and not isinstance(task.error, (RowsFailed, AipcError, OSError)):
                assert task.error is not None
                raise task.error
        for g in groups.values():  # every row ends as pass, fail or skip, never left as planned
            self._finish_all(g.pending(), "fail", "not run: the task that should have run it ended without a result")
        self.setup_seconds = self._setup_seconds()

    def _genai_group(self) -> Group | None:
        """The genai runtime's (empty) group: its venv is where the tiny model is made."""
        for rt in (*self.runtimes, genai_runtime.RUNTIME):
            if rt.name == "genai":
                return Group(rt, [])
        return None

    def _plan_group(self, g: Group) -> None:
        """The runtime's spec and the device decisions that need no venv (genai, npu): skipped rows cost nothing.
        A runtime that cannot be had here but can be built (``Options.prepare``) gets its build task."""
        try:
            g.spec = g.rt.venv_spec(self.wheels, self.cache)
        except RuntimeSkipped as exc:
            prepare = self.opts.prepare.get(g.rt.name)
            if prepare is None:
                self._finish_all(g.items, "skip", exc.message)
                return
            skipped = exc.message
            self.dag.add(f"prepare:{g.rt.name}", lambda: self._prepare(g, prepare, skipped),
                         estimate=ESTIMATES["prepare"])
            return
        except AipcError as exc:
            self._finish_all(g.items, "fail", f"venv spec: {exc.one_line()}")
            return
        self._early_choices(g)

    def _prepare(self, g: Group, prepare: Prepare, skipped: str) -> None:
        with self.progress.task(f"build {g.rt.name}") as echo:
            failure = prepare(self.wheels, echo)
        if failure:
            raise RowsFailed("skip", f"{skipped}; building it failed: {failure}")
        try:
            g.spec = g.rt.venv_spec(self.wheels, self.cache)
        except AipcError as exc:
            raise RowsFailed("skip" if isinstance(exc, RuntimeSkipped) else "fail", exc.one_line()) from None
        self._early_choices(g)

    def _early_choices(self, g: Group) -> None:
        assert g.spec is not None
        for item in g.pending():
            try:
                item.choice = g.rt.choose_device(item.case, self.opts.device, g.spec, None, self.probe)
            except AipcError as exc:
                self._finish(item, "fail", exc.one_line())
                continue
            if item.choice is not None:
                item.row.details["device_choice"] = item.choice.reason
                if item.choice.device is None:
                    self._finish(item, "skip", item.choice.reason)

    def _add_venv(self, g: Group, *, for_model: bool = False) -> Task:
        deps = [f"prepare:{g.rt.name}"] if f"prepare:{g.rt.name}" in self.dag.tasks else []
        # an install mostly waits on downloads and disk (uv: 1 CPU-s of 7 s measured), so it is not bounded
        task = self.dag.add(f"venv:{g.rt.name}", lambda: self._venv(g), deps, heavy=False, estimate=ESTIMATES["venv"])
        if for_model:
            self._model_needs_venv = g.rt.name
        return task

    def _venv(self, g: Group) -> None:
        """Make the runtime's venv, unless every row of it is already decided (and the model does not need it)."""
        if not g.pending() and self._model_needs_venv != g.rt.name:
            return
        spec = g.spec
        if spec is None:  # e.g. a fake runtime resolving late; the real ones have one by now
            spec = g.spec = g.rt.venv_spec(self.wheels, self.cache)
        with self.progress.task(f"venv {spec.name}") as echo:
            try:
                g.python = self.services.ensure_venv(spec, venvs_root(self.cache), echo=echo)
            except AipcError as exc:
                raise RowsFailed("fail", f"venv install failed: {exc.one_line()}") from None
            except OSError as exc:
                raise RowsFailed("fail", f"venv install failed: {type(exc).__name__}: {exc}") from None

    def _devices(self, g: Group) -> None:
        """The device decisions that need the venv (OpenVINO lists its devices), then this runtime's exports and
        its smoke task."""
        if g.python is None or g.spec is None:
            return
        if any(i.choice is None for i in g.pending()):  # the venv answers: keep its worker for the smokes
            session = self.services.start_session(g.python, g.rt.smoke_worker)
            if session is not None:
                with self._lock:
                    self._sessions[(str(g.python), str(g.rt.smoke_worker))] = session
        with self.progress.task(f"devices {g.rt.name}"):
            for item in g.pending():
                if item.choice is not None:
                    continue
                try:
                    item.choice = g.rt.choose_device(item.case, self.opts.device, g.spec, g.python, self.probe)
                    if item.choice is None:
                        raise AipcError(f"{g.rt.name}: no device decision with the venv made")
                except AipcError as exc:
                    self._finish(item, "fail", exc.one_line())
                    continue
                item.row.details["device_choice"] = item.choice.reason
                if item.choice.device is None:
                    self._finish(item, "skip", item.choice.reason)
        deps = [f"devices:{g.rt.name}"] + (["model"] if "model" in self.dag.tasks else [])
        for item in g.pending():
            key = self._export_task(g, item)
            if key:
                deps.append(key)
        if g.pending():
            self.dag.add(f"smoke:{g.rt.name}", lambda: self._smoke(g), deps, own=lambda seconds: seconds,
                         estimate=ESTIMATES["smoke"] + ESTIMATES["row"] * len(g.pending()),
                         on_blocked=partial(self._blocked, g))

    def _export_task(self, g: Group, item: Item) -> str:
        """The export task ``item`` needs (added once per kind, precision and device), or "" (the worker loads the
        model itself, or the row failed here)."""
        assert item.choice is not None and g.spec is not None
        wanted = g.rt.export_for(item.case, item.choice)
        user = self.ctx.model if self.opts.model is not None else None
        if wanted is None or (user is not None and wanted[0].is_export(user)):
            return ""
        recipe, device = wanted
        if user is not None:
            problems = model_problems(user)
            if problems:  # an export for the other runtime
                self._finish(item, "fail", f"{user} is not a {recipe.kind} export, nor a checkpoint ("
                             + "; ".join(problems) + ")")
                return ""
        key = f"export:{recipe.kind}:{item.case.precision}:{device}"
        item.export_key = key
        spec = g.spec
        deps = [f"venv:{g.rt.name}"] + (["model"] if "model" in self.dag.tasks else [])
        self.dag.add(key, lambda: self._export(key, recipe.kind, item.case.precision, device, spec), deps,
                     estimate=ESTIMATES["export"])
        return key

    def _export(self, key: str, kind: str, precision: str, device: str, spec: VenvSpec) -> None:
        assert self.ctx.model is not None
        with self.progress.task(f"export {kind} {precision}") as echo:
            try:
                model: Path | str = Path(self.services.ensure_export(
                    kind, self.ctx.model, precision, device=device, cache=self.cache, echo=echo, spec=spec))
            except AipcError as exc:  # the rows needing it fail; the runtime's other rows still run
                model = f"export failed: {exc.message}"
            except OSError as exc:  # e.g. a full disk
                model = f"export failed: {type(exc).__name__}: {exc}"
        with self._lock:
            self._exports[key] = model

    def _smoke(self, g: Group) -> float:
        """One worker process for every row of the runtime still to run; returns the worker's own seconds."""
        assert g.python is not None and self.ctx.model is not None
        todo: list[tuple[Item, Path]] = []
        requests = []
        venv_log = install_log(venv_dir(g.spec, venvs_root(self.cache))) if g.spec is not None else None
        for item in g.pending():
            assert item.choice is not None
            add_log(item.row, "venv", venv_log)
            model = self.ctx.model
            if item.export_key:
                made = self._exports.get(item.export_key, "export failed: it did not run")
                if isinstance(made, str):
                    self._finish(item, "fail", made)
                    continue
                model = made
                item.row.details["export"] = str(model)
                add_log(item.row, "export", export_log(model))
                notes = export_notes(model)
                if notes:
                    item.row.details["export_notes"] = notes
            request = dict(self.ctx.base_request, precision=item.case.precision, device=item.choice.device,
                           model=str(model))
            if item.case.api_key:
                request["api"] = item.case.api_key
            todo.append((item, model))
            requests.append(request)
        if not todo:
            return 0.0
        with self._lock:
            session = self._sessions.pop((str(g.python), str(g.rt.smoke_worker)), None)
        with self.progress.task(f"smoke {g.rt.name} ({len(todo)} rows)"):
            if session is not None:
                with session:
                    batch = session.batch(requests, self.opts.timeout)
                charge_thread_cpu(session.cpu_seconds)  # its process ran on the session's thread
            else:
                batch = self.services.run_batch(g.python, g.rt.smoke_worker, requests, self.opts.timeout)
        for (item, model), res in zip(todo, batch.results, strict=True):
            row = item.row
            row.api = res["api"] or row.api
            row.device = res["device"] or (item.choice.device if item.choice else "") or ""
            row.precision = res["precision"] or row.precision
            row.tokens, row.n_tokens = res["tokens"], res["n_tokens"]
            row.seconds = float(res["seconds"])  # the request's own time inside the worker
            row.details.update(worker=res["details"], batch={"rows": len(todo), "seconds": batch.seconds,
                                                             "wall_seconds": batch.wall,
                                                             "processes": batch.processes})
            note = recipe_note(model, row.device)  # e.g. an NPU export given as --model, run on the CPU
            if note:
                row.details["recipe_note"] = note
            self._finish(item, res["status"], f"{res['reason']} ({note})" if note and res["reason"] else
                         res["reason"] or note)
        return float(batch.seconds)

    # ---------------------------------------------------------------------------------------------- rows --
    def _finish(self, item: Item, status: str, reason: str) -> None:
        with self._lock:
            if item.finished:
                return
            item.finished = True
            item.row.status, item.row.reason = status, reason
        self.progress.done(item.row)

    def _finish_all(self, items: Sequence[Item], status: str, reason: str) -> None:
        for item in list(items):
            self._finish(item, status, reason)

    def _blocked(self, g: Group, exc: BaseException) -> None:
        """A task the runtime's rows needed failed (its venv, its build, the model): they end with its reason."""
        self._finish_all(g.pending(), *_task_reason(exc))

    # ----------------------------------------------------------------------------------------------- time --
    def _setup_seconds(self) -> dict[str, float]:
        out: dict[str, float] = {}
        names = {"model": "tiny_model", "prepare": "builds", "venv": "venvs", "devices": "devices",
                 "export": "exports"}
        for task in self.dag.tasks.values():
            kind = task.key.split(":", 1)[0]
            if kind in names and task.state in (DONE, FAILED):
                out[names[kind]] = round(out.get(names[kind], 0.0) + task.seconds, 3)
        return out

    def timing(self, wall: float) -> dict[str, Any]:
        """verify's wall time against its tasks: their sum and the critical path (the longest chain of dependent
        tasks), each smoke counted by its worker's own clock, every other task by its duration."""
        critical, chain = self.dag.critical_path()
        tasks = {t.key: {"seconds": round(t.seconds, 3), "own_seconds": t.own_seconds,
                         "cpu_seconds": None if t.cpu_seconds is None else round(t.cpu_seconds, 3), "state": t.state,
                         "started": round(t.started, 3), "deps": list(t.deps)}
                 for t in self.dag.tasks.values()}
        cpu = [t.cpu_seconds for t in self.dag.tasks.values() if t.cpu_seconds is not None]
        return {
            "workers": self.dag.workers,
            "tasks": tasks,
            "tasks_seconds": round(self.dag.total(), 3),
            "critical_path_seconds": round(critical, 3),
            "critical_path": chain,
            "wall_over_critical_path": round(wall / critical, 3) if critical > 0 else None,
            # CPU seconds of every command the tasks ran (venv installs, converters, workers): on N cores a run
            # cannot take less than cpu_seconds / N
            "cpu_seconds": round(sum(cpu), 3) if cpu else None,
            "cpus": os.cpu_count(),
        }

def add_log(row: Row, what: str, path: Path | None) -> None:
    """Record in ``row.details["logs"]`` the log of what made the row's ``what`` (venv, export), when it exists."""
    if path is not None and path.is_file():
        row.details.setdefault("logs", {})[what] = str(path)


def run_meta(opts: Options, ctx_model: Path | None, started: float, wall: float, rows: list[Row],
             setup: dict[str, float] | None = None, timing: dict[str, Any] | None = None) -> dict[str, Any]:
    """verify.json's header. ``timing`` (:meth:`Verifier.timing`): the wall time against the sum and the critical
    path of the tasks, smokes by their workers' own clocks; ``overhead_seconds`` is wall - critical path."""
    smoke = sum(r.seconds for r in rows)
    timing = dict(timing or {})
    critical = timing.get("critical_path_seconds")
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
        "smoke_seconds": round(smoke, 3),  # the rows' own times inside their workers
        "overhead_seconds": round(wall - (critical if critical is not None else smoke), 3),
        "setup_seconds": dict(setup or {}),
        **timing,
    }


def summary_line(wall: float, meta: Mapping[str, Any]) -> str:
    """The figures verify prints last: wall time against the sum and the critical path of its tasks."""
    text = f"wall {wall:.1f} s"
    if meta.get("critical_path_seconds"):
        text += (f" = {meta.get('wall_over_critical_path') or 0:.2f} x the critical path "
                 f"{meta['critical_path_seconds']:.1f} s (tasks {meta.get('tasks_seconds', 0.0):.1f} s summed, "
                 f"{meta.get('workers', '?')} workers)")
    if meta.get("cpu_seconds"):
        text += f", CPU {meta['cpu_seconds']:.1f} s on {meta.get('cpus') or '?'} CPUs"
    return text + f", smokes {float(meta.get('smoke_seconds') or 0.0):.1f} s"
