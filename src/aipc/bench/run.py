"""Execute a bench plan: each target in its own subprocess and venv (verify's machinery), then assemble the
versioned bench document and write bench.json, CSV, Markdown and charts.

Honesty rules: a target whose device is absent, whose venv cannot be had, or whose runtime cannot run here is a
``skip`` with the reason; a crash, a timeout, a golden-token mismatch or malformed timings is a ``fail``. Only a
``pass`` carries measured cells.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from .. import __version__
from ..errors import AipcError
from ..fsutil import atomic_write_json, atomic_write_text, claim_output_dir, use_output_dir
from ..heartbeat import Heartbeat
from ..log import LOG
from ..runtimes import RUNTIMES, by_name
from ..runtimes.base import Case, Choice, ExportRecipe, Runtime, RuntimeSkipped
from ..runtimes.devices import PresentProbe
from ..runtimes.export import export_log
from ..runtimes.model import load_golden
from ..runtimes.services import Services
from ..venvs import VenvSpec, cache_dir, install_log, venv_dir, venvs_root
from . import charts as charts_mod
from .machine import load_average, machine_info
from .metrics import cell_result, overhead
from .report import (
    agreement_lines,
    markdown,
    overhead_lines,
    prefill_lines,
    runs_csv,
    summary_csv,
    table_rows,
    text_table,
)
from .schema import SCHEMA_NAME, SCHEMA_VERSION, validate
from .stats import summarize
from .targets import Settings, Target, request

SPAWN_PROBES = 3
Echo = Callable[[str], None]
RunWorker = Callable[..., dict[str, Any]]
K = TypeVar("K")
V = TypeVar("V")


@dataclass
class BenchOptions:
    settings: Settings
    targets: list[Target]
    model: Path | None = None
    wheels: Path = Path("wheels")
    cache: Path = field(default_factory=cache_dir)
    runtimes: Sequence[Runtime] = RUNTIMES
    services: Services = field(default_factory=Services)


@dataclass
class ModelInfo:
    path: Path
    kind: str  # tiny | user
    golden: dict[str, Any] | None


@dataclass(frozen=True)
class Venv:
    python: Path
    spec: VenvSpec


@dataclass
class Shared:
    """What the targets of one run share, made once: venv specs and venvs by runtime, exports by (kind, precision,
    device) (a failure is kept and reported again, not retried), no-op spawn timings by interpreter."""

    specs: dict[str, VenvSpec | AipcError] = field(default_factory=dict)
    venvs: dict[str, Venv | AipcError] = field(default_factory=dict)
    exports: dict[tuple[str, str, str], Path | AipcError] = field(default_factory=dict)
    spawn: dict[str, list[float]] = field(default_factory=dict)


def resolve_model(opts: BenchOptions, echo: Echo) -> ModelInfo:
    if opts.model is None:
        path, kind = Path(opts.services.ensure_tiny_model(opts.cache, echo=echo, wheels=opts.wheels)), "tiny"
    else:
        path, kind = Path(opts.model).resolve(), "user"
    raw = load_golden(path)
    golden = None if raw is None else {"messages": raw["messages"], "prompt_ids": raw.get("prompt_ids"),
                                       "ids": raw["golden"]}
    return ModelInfo(path, kind, golden)


def once(memo: dict[K, V | AipcError], key: K, make: Callable[[], V]) -> V:
    """``make()`` once per run for ``key``; a failure is kept and raised again (reported, not retried)."""
    if key not in memo:
        try:
            memo[key] = make()
        except AipcError as exc:
            memo[key] = exc
    got = memo[key]
    if isinstance(got, AipcError):
        raise got
    return got


def spec_for(rt: Runtime, opts: BenchOptions, shared: Shared) -> VenvSpec:
    """The runtime's venv spec (asked once per run); raises :class:`RuntimeSkipped` (a skip)."""
    return once(shared.specs, rt.name, lambda: rt.venv_spec(opts.wheels, opts.cache))


def venv_for(rt: Runtime, spec: VenvSpec, opts: BenchOptions, shared: Shared, echo: Echo) -> Venv:
    """The runtime's venv (built once per run)."""
    return once(shared.venvs, rt.name,
                lambda: Venv(Path(opts.services.ensure_venv(spec, venvs_root(opts.cache), echo=echo)), spec))


def model_for(t: Target, model: ModelInfo, wanted: tuple[ExportRecipe, str] | None, exported: bool, venv: Venv,
              opts: BenchOptions, shared: Shared, echo: Echo) -> Path:
    """The folder the target's runtime loads: the model itself (a checkpoint the worker loads, or already an
    export), or verify's cached export of the checkpoint, converted in the target's own venv."""
    if wanted is None or exported:
        return model.path
    kind, device = wanted[0].kind, wanted[1]
    return once(shared.exports, (kind, t.precision, device),
                lambda: Path(opts.services.ensure_export(kind, model.path, t.precision, device=device,
                                                         cache=opts.cache, echo=echo, spec=venv.spec)))


def measure_spawn(run_worker: RunWorker, python: Path, worker: Path, n: int = SPAWN_PROBES) -> list[float]:
    """Wall seconds of a no-op worker round trip (process start, interpreter, REQ/RES JSON), host-measured."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        res = run_worker(python, worker, {"noop": True, "model": "", "device": "cpu", "precision": "fp32",
                                          "max_new_tokens": 0, "messages": [], "golden": None}, 120.0)
        dt = time.perf_counter() - t0
        if res.get("status") != "pass":
            raise AipcError(f"no-op worker {worker.name} failed: {res.get('reason')}")
        times.append(dt)
    return times


def _empty_target(t: Target, status: str, reason: str, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "path": t.path, "api": t.api, "device": t.device, "precision": t.precision, "status": status,
        "reason": reason, "device_used": None, "device_name": None, "driver_version": None, "prefill": None,
        "load_s": None,
        "versions": {}, "memory": {"peak_rss_mib": None, "device_memory_mib": None, "note": ""}, "golden": None,
        "overhead": None, "cells": [], "seconds": 0.0, "logs": {},
    }
    entry.update(extra)
    return entry


def target_entry(t: Target, res: dict[str, Any], warmup: int) -> dict[str, Any]:
    """Turn a worker result into the target's bench.json entry (metrics computed here, the same for all paths)."""
    d = res.get("details") or {}
    mem = d.get("memory") or {}

    def mib(v: Any) -> float | None:
        return round(float(v) / (1 << 20), 2) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    entry = _empty_target(
        t, str(res.get("status")), str(res.get("reason") or ""),
        device_used=res.get("device") or None, device_name=d.get("device_name"),
        driver_version=None if d.get("driver_version") is None else str(d.get("driver_version")),
        prefill=None if d.get("prefill") is None else str(d.get("prefill")),
        load_s=d.get("load_s") if isinstance(d.get("load_s"), (int, float)) else None,
        versions={str(k): str(v) for k, v in (d.get("versions") or {}).items()},
        memory={"peak_rss_mib": mib(mem.get("peak_rss_bytes")),
                "device_memory_mib": mib(mem.get("device_memory_bytes")), "note": str(mem.get("note") or "")},
        golden=d.get("golden"), seconds=float(res.get("seconds") or 0.0),
    )
    if entry["status"] != "pass":
        return entry
    try:
        cells = [cell_result(c, warmup) for c in d.get("cells") or []]
        if not cells:
            raise AipcError("the worker reported pass but measured no cell")
    except (AipcError, KeyError, TypeError, ValueError) as exc:
        msg = exc.one_line() if isinstance(exc, AipcError) else f"malformed worker timings ({exc!r})"
        entry.update(status="fail", reason=msg)
        return entry
    cb = d.get("callback_us")
    entry["cells"] = [c.to_json() for c in cells]
    entry["overhead"] = overhead(cells, float(cb) if isinstance(cb, (int, float)) else None).to_json()
    return entry


def as_exported(t: Target, exported: bool, settings: Settings) -> Target:
    """A target run on a folder that already is an export: its precision is what the export holds."""
    return replace(t, precision="as-exported") if exported and settings.precision is None else t


def decide(rt: Runtime, t: Target, spec: VenvSpec) -> tuple[Choice | None, tuple[ExportRecipe, str] | None]:
    """The runtime's own device decision for the target's device, taken as present (its absence is the worker's
    skip): a refusal (e.g. OVModelForCausalLM on the NPU: dynamic shapes) and the export the device needs."""
    case = Case(t.path, t.api, t.precision)
    choice = rt.choose_device(case, t.device, spec, None, PresentProbe(t.device))
    if choice is not None and choice.device is None:
        return choice, None
    return choice, rt.export_for(case, choice or Choice(t.device, f"{t.device} requested"))


def run_target(t: Target, model: ModelInfo, opts: BenchOptions, shared: Shared, echo: Echo) -> dict[str, Any]:
    t0 = time.monotonic()
    s = opts.settings
    run_worker = opts.services.run_worker
    try:
        rt = by_name(t.runtime or t.path, opts.runtimes)
        spec = spec_for(rt, opts, shared)
        choice, wanted = decide(rt, t, spec)
        if choice is not None and choice.device is None:
            return _empty_target(t, "skip", choice.reason)
        exported = wanted is not None and wanted[0].is_export(model.path)
        t = as_exported(t, exported, s)
        venv = venv_for(rt, spec, opts, shared, echo)
        base = request(t, "", s, model.golden)
        probe = run_worker(venv.python, t.worker, {**base, "probe": True}, 300.0)
        if probe.get("status") != "pass":
            status = "skip" if probe.get("status") == "skip" else "fail"
            return _empty_target(t, status, str(probe.get("reason") or "probe failed"),
                                 seconds=time.monotonic() - t0)
        key = str(venv.python)
        if key not in shared.spawn:
            shared.spawn[key] = measure_spawn(run_worker, venv.python, t.worker)
        folder = model_for(t, model, wanted, exported, venv, opts, shared, echo)
        req = {**base, "model": str(folder)}
        echo(f"[aipc] bench {t.key}: {len(s.grid)} cell(s) x ({s.warmup} warm-up + {s.repetitions} runs)")
        with Heartbeat(f"bench {t.key}", echo):  # a target measures for minutes: say so while it does
            res = run_worker(venv.python, t.worker, req, s.timeout)
    except RuntimeSkipped as exc:
        return _empty_target(t, "skip", exc.one_line(), seconds=time.monotonic() - t0)
    except AipcError as exc:
        return _empty_target(t, "fail", exc.one_line(), seconds=time.monotonic() - t0)
    entry = target_entry(t, res, s.warmup)
    entry["logs"] = target_logs(venv, folder if folder != model.path else None, opts.cache)
    return entry


def target_logs(venv: Venv, export: Path | None, cache: Path | None) -> dict[str, str]:
    """The logs of what the target ran in: its venv's install and its export's conversion (those that exist)."""
    found = {"venv": install_log(venv_dir(venv.spec, venvs_root(cache))),
             "export": export_log(export) if export is not None else None}
    return {what: str(path) for what, path in found.items() if path is not None and path.is_file()}


def run_bench(opts: BenchOptions, echo: Echo | None = None) -> dict[str, Any]:
    say = echo or LOG  # progress lines on stderr (stdout carries the results)
    t0 = time.monotonic()
    machine = machine_info()  # at the start: its load average is the load the runs begin under
    shared = Shared()
    entries: list[dict[str, Any]] = []
    model = resolve_model(opts, say)
    for t in opts.targets:
        entry = run_target(t, model, opts, shared, say)
        key = "/".join(entry[k] for k in ("path", "api", "device", "precision"))
        say(f"[aipc] bench {key}: {entry['status']}" + (f" ({entry['reason']})" if entry["reason"] else ""))
        entries.append(entry)
    wall = time.monotonic() - t0
    venv_names = {p: Path(p).parents[1].name for p in shared.spawn}
    doc: dict[str, Any] = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aipc_version": __version__,
        "machine": machine,
        "settings": opts.settings.to_json(),
        "model": {"path": str(model.path), "kind": model.kind, "golden": bool(model.golden)},
        "harness": {
            "spawn_ms": {venv_names[p]: summarize([x * 1000.0 for x in v]).to_json()
                         for p, v in shared.spawn.items()},
            "wall_s": round(wall, 3),
            "load_avg_end": load_average(),
            "worker_s": round(sum(e.get("seconds", 0.0) for e in entries), 3),
        },
        "targets": entries,
    }
    return validate(doc, "generated bench document")


RESULTS_KIND = "bench-results"  # the kind of folder (fsutil.MARKER) of `aipc bench --out DIR`


def claim_results_dir(out: Path, *, create: bool = False) -> Path:
    """``--out``: new, empty, or a results folder aipc wrote (also one from before markers: it holds bench.json);
    checked before the benchmark runs, created and marked when the results are written."""
    def recognise(d: Path) -> bool:
        return (d / "bench.json").is_file()

    if create:
        return use_output_dir(out, RESULTS_KIND, recognise=recognise)
    return claim_output_dir(out, RESULTS_KIND, replace=False, recognise=recognise)


def write_outputs(doc: dict[str, Any], out: Path, want_charts: bool = True) -> tuple[list[Path], str]:
    """Write bench.json, bench.csv, bench-runs.csv, bench.md and the charts; returns (files, chart note)."""
    out = claim_results_dir(out, create=True)
    atomic_write_json(out / "bench.json", doc)
    atomic_write_text(out / "bench.csv", summary_csv(doc))
    atomic_write_text(out / "bench-runs.csv", runs_csv(doc))
    files = [out / "bench.json", out / "bench.csv", out / "bench-runs.csv"]
    chart_files: list[Path] = []
    note = ""
    if not want_charts:
        note = "charts skipped: --no-charts"
    elif (missing := charts_mod.matplotlib_missing()) is not None:
        note = missing
    elif not any(t["status"] == "pass" for t in doc["targets"]):
        note = "charts skipped: no target passed"
    else:
        chart_files = charts_mod.write_charts(doc, out / "charts")
    atomic_write_text(out / "bench.md", markdown(doc, [p.relative_to(out).as_posix() for p in chart_files], note))
    files.append(out / "bench.md")
    return files + chart_files, note


def console_report(doc: dict[str, Any]) -> str:
    lines = [text_table(table_rows(doc)), "", "prefill (each run's TTFT includes its own):"]
    lines += [f"  {line}" for line in prefill_lines(doc)] or ["  no target passed"]
    lines += ["agreement (decode tokens/s, same runs):"]
    lines += [f"  {line}" for line in agreement_lines(doc)] or ["  no target with a reference measurement passed"]
    lines += ["harness overhead:"]
    lines += [f"  {line}" for line in overhead_lines(doc)] or ["  not measured (no worker ran)"]
    return "\n".join(lines)
