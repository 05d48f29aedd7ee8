"""Run a smoke worker in a subprocess with a timeout (the protocol: aipc/workers/protocol.py): one request
(:func:`run_worker`) or a batch of them in one process (:func:`run_batch`).

A worker is ``<venv python> <worker.py> --request REQ.json --result RES.json``. Whatever happens to it (a crash,
a driver fault killing the process, a hang, a missing or garbled RES.json), :func:`run_worker` returns a result
dict, with ``status`` ``fail`` and the reason (exit code or signal, and the last stderr line) when the worker did
not report one itself. aipc itself never crashes or hangs because of a worker.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..proc import describe_returncode, stream

STATUSES = ("pass", "fail", "skip")
# environment every worker gets: never reach a model hub, never read the user's site-packages
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONNOUSERSITE": "1", "PYTHONUTF8": "1"}


def fail_result(request: Mapping[str, Any], reason: str, seconds: float = 0.0, **details: Any) -> dict[str, Any]:
    """A ``fail`` result in the protocol's shape (for failures detected outside the worker)."""
    return normalize_result(
        {"status": "fail", "reason": reason, "seconds": seconds, "details": details}, request
    )


def normalize_result(raw: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """Fill missing keys and refuse malformed values: a result that breaks the protocol becomes a ``fail``."""
    res: dict[str, Any] = {
        "status": raw.get("status"),
        "api": str(raw.get("api") or request.get("api") or ""),
        "device": str(raw.get("device") or ""),
        "precision": str(raw.get("precision") or request.get("precision") or ""),
        "tokens": raw.get("tokens") if raw.get("tokens") is not None else [],
        "n_tokens": raw.get("n_tokens"),
        "seconds": raw.get("seconds"),
        "reason": str(raw.get("reason") or ""),
        "details": dict(raw.get("details") or {}) if isinstance(raw.get("details"), Mapping) else {},
    }
    problems = []
    if res["status"] not in STATUSES:
        problems.append(f"status {res['status']!r} is not one of {'/'.join(STATUSES)}")
    tokens = res["tokens"]
    if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
        problems.append("tokens is not a list of integers")
        res["tokens"] = []
    if res["n_tokens"] is None:
        res["n_tokens"] = len(res["tokens"])
    elif not isinstance(res["n_tokens"], int):
        problems.append("n_tokens is not an integer")
        res["n_tokens"] = len(res["tokens"])
    try:
        res["seconds"] = float(res["seconds"] or 0.0)
    except (TypeError, ValueError):
        problems.append("seconds is not a number")
        res["seconds"] = 0.0
    if problems:
        res["details"]["raw_status"] = raw.get("status")
        res["status"] = "fail"
        res["reason"] = "worker result breaks the protocol: " + "; ".join(problems)
    return res


@dataclass
class _Process:
    """One worker process as seen from outside: how it ended and what RES.json held (None: nothing readable)."""

    raw: Any
    seconds: float  # aipc's timing around the process
    returncode: int | None = None
    timed_out: bool = False
    last: str = ""
    tail: list[str] = field(default_factory=list)
    problem: str = ""  # it could not start, or its RES.json is unreadable


def _spawn(python: Path, worker: Path, payload: Any, timeout: float, env: Mapping[str, str] | None) -> _Process:
    """Run ``worker`` on ``payload`` in a fresh temporary directory, in its own process group (POSIX) or process
    tree (Windows), which is killed as a whole on timeout."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="aipc-smoke-") as tmp_name:
        tmp = Path(tmp_name)
        req_path, res_path, err_path = tmp / "request.json", tmp / "result.json", tmp / "stderr.txt"
        req_path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        run_dir = tmp / "cwd"
        run_dir.mkdir()
        worker_env: dict[str, str | None] = {"PYTHONPATH": None}  # aipc is not installed in path venvs
        worker_env.update(WORKER_ENV)
        worker_env.update(env or {})
        argv = [str(python), str(worker), "--request", str(req_path), "--result", str(res_path)]
        try:
            with err_path.open("w", encoding="utf-8", errors="replace") as err:
                done = stream(argv, cwd=run_dir, env=worker_env, log=err, timeout=timeout)
        except OSError as exc:
            return _Process(None, time.monotonic() - t0,
                            problem=f"cannot start worker {worker.name} with {python}: {exc.strerror or exc}")
        proc = _Process(None, time.monotonic() - t0, done.returncode, done.timed_out, done.last_line()[:300],
                        list(done.tail))
        if res_path.is_file():
            try:
                proc.raw = json.loads(res_path.read_text(encoding="utf-8"))
            except ValueError as exc:
                proc.problem = f"worker wrote an unreadable result ({exc})"
        return proc


def _died(proc: _Process, timeout: float) -> str:
    """Why a worker process gave no (complete) result."""
    if proc.timed_out:
        return f"timed out after {timeout:g} s (worker killed)" + (f"; last output: {proc.last}" if proc.last else "")
    if proc.problem:
        return proc.problem
    how = f"exited with code {describe_returncode(proc.returncode)}"
    return f"worker {how} without a result" + (f": {proc.last}" if proc.last else "")


def _finish(raw: Mapping[str, Any], request: Mapping[str, Any], proc: _Process) -> dict[str, Any]:
    """A worker's own result, checked against how its process ended."""
    res = normalize_result(raw, request)
    rc = proc.returncode
    if rc:
        res["details"]["exit_code"] = rc
        if res["status"] == "pass":
            res["status"] = "fail"
            res["reason"] = (f"worker reported pass but exited with code {describe_returncode(rc)}"
                             + (f": {proc.last}" if proc.last else ""))
    if res["status"] == "fail":
        res["details"].setdefault("stderr_tail", proc.tail)
    return res


def run_worker(
    python: Path, worker: Path, request: dict[str, Any], timeout: float, *, env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run a worker and return its (normalized) result; every failure mode becomes a ``fail`` with its reason.

    The worker runs in a fresh temporary directory (libraries that write caches into the CWD stay contained),
    in its own process group (POSIX) or process tree (Windows), which is killed as a whole on timeout.
    ``details.wall_seconds`` is aipc's timing around the process; ``seconds`` is the worker's own clock.
    """
    proc = _spawn(python, worker, request, timeout, env)
    seconds = proc.seconds
    if proc.problem.startswith("cannot start"):
        return fail_result(request, proc.problem)
    if proc.timed_out or proc.problem:
        return fail_result(request, _died(proc, timeout), seconds, stderr_tail=proc.tail)
    if not isinstance(proc.raw, Mapping):
        if proc.raw is None:
            reason = _died(proc, timeout)
        else:
            reason = f"worker exited with code {describe_returncode(proc.returncode)}; its result is not a JSON object"
        return fail_result(request, reason, seconds, exit_code=proc.returncode, stderr_tail=proc.tail)
    res = _finish(proc.raw, request, proc)
    res["details"].setdefault("wall_seconds", round(seconds, 3))
    return res


@dataclass
class Batch:
    """The results of :func:`run_batch`, in request order, and the clocks of the processes that made them."""

    results: list[dict[str, Any]]
    seconds: float  # the worker processes' own clocks, summed (measured inside them)
    wall: float  # aipc's timing around them
    processes: int


def run_batch(
    python: Path, worker: Path, requests: Sequence[dict[str, Any]], timeout: float, *,
    env: Mapping[str, str] | None = None,
) -> Batch:
    """Run several requests in one worker process (the runtime is imported and initialised once); ``timeout`` is
    per request. A process that dies or hangs fails the request it was on (with the reason) and the rest run in a
    new process, so one crash costs one row. Each result's ``seconds`` is the request's own time in the worker."""
    results: list[dict[str, Any]] = []
    own = wall = 0.0
    processes = 0
    while len(results) < len(requests):
        todo = list(requests[len(results):])
        proc = _spawn(python, worker, {"requests": todo}, timeout * len(todo), env)
        processes += 1
        wall += proc.seconds
        raw: Mapping[str, Any] = proc.raw if isinstance(proc.raw, Mapping) else {}
        listed = raw.get("results")
        got: list[Any] = listed if isinstance(listed, list) else []
        with contextlib.suppress(TypeError, ValueError):
            own += float(raw.get("seconds") or 0.0)
        complete = len(got) >= len(todo)  # else the exit code belongs to the request it died in, not these
        for req, res in zip(todo, got, strict=False):
            results.append(_finish(res, req, proc if complete else replace(proc, returncode=0))
                           if isinstance(res, Mapping) else
                           fail_result(req, "worker result breaks the protocol: a result is not a JSON object"))
        if len(got) < len(todo):  # the process ended inside todo[len(got)]: that request fails with the reason
            req = todo[len(got)]
            if proc.problem.startswith("cannot start"):  # nothing will start: every request left fails alike
                results.extend(fail_result(r, proc.problem) for r in todo[len(got):])
                break
            if proc.raw is not None and not isinstance(proc.raw, Mapping):
                reason = "worker result breaks the protocol: the batch result is not a JSON object"
            elif proc.raw is not None and "results" not in raw:
                reason = "worker result breaks the protocol: no results (does it speak the batch protocol?)"
            else:
                reason = _died(proc, timeout * len(todo))
            results.append(fail_result(req, reason, exit_code=proc.returncode, stderr_tail=proc.tail))
    return Batch(results, round(own, 4), round(wall, 4), processes)
