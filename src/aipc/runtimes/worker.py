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
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..proc import Streamed, describe_returncode, kill_tree, stream

STATUSES = ("pass", "fail", "skip")
# environment every worker gets: never reach a model hub, never read the user's site-packages
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONNOUSERSITE": "1", "PYTHONUTF8": "1"}
# what aipc's venv processes (workers, converters, the tiny-model generator) get on top: bytecode is written into
# aipc's own venvs even where the user's environment says not to (an empty value is "unset" for Python), else each
# run compiles torch and transformers from source again (uv installs no .pyc files: 20 CPU-s instead of 10 for the
# OpenVINO smoke, measured). Not part of any fingerprint: it changes no result
BYTECODE_ENV = {"PYTHONDONTWRITEBYTECODE": ""}


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
        worker_env.update(BYTECODE_ENV)
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


class WorkerSession:
    """One worker process kept for several requests in turn (``<worker>.py --serve DIR``, the protocol's session
    form): verify asks OpenVINO's devices and then runs that venv's smokes in the same process, so the runtime is
    imported once. Whatever goes wrong with the process (it cannot start, does not speak ``--serve``, dies, hangs)
    costs at most the request it was on: :meth:`run` then answers with a one-shot :func:`run_worker`, :meth:`batch`
    runs the requests left with :func:`run_batch`. Use it as a context manager (or call :meth:`close`): the process
    is told to exit, and killed (with its process tree) if it does not.
    """

    POLL = 0.01  # seconds between looks for a result file

    def __init__(self, python: Path, worker: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.python, self.worker, self.env = python, worker, env
        self._tmp = Path(tempfile.mkdtemp(prefix="aipc-session-"))
        self._io = self._tmp / "io"
        self._io.mkdir()
        (self._tmp / "cwd").mkdir()
        self._n = 0
        self._proc: subprocess.Popen[str] | None = None
        self._ended = threading.Event()
        self._streamed: Streamed | None = None
        self._problem = ""
        self.requests = 0  # answered by this process (the rest went to one-shot workers)
        worker_env: dict[str, str | None] = {"PYTHONPATH": None}
        worker_env.update(WORKER_ENV)
        worker_env.update(BYTECODE_ENV)
        worker_env.update(env or {})
        argv = [str(python), str(worker), "--serve", str(self._io)]
        self._thread = threading.Thread(target=self._run, args=(argv, worker_env), daemon=True,
                                        name=f"aipc-session:{worker.name}")
        self._thread.start()

    def _run(self, argv: list[str], env: dict[str, str | None]) -> None:
        try:
            with (self._tmp / "stderr.txt").open("w", encoding="utf-8", errors="replace") as err:
                self._streamed = stream(argv, cwd=self._tmp / "cwd", env=env, log=err, started=self._started)
        except OSError as exc:
            self._problem = f"cannot start worker {self.worker.name} with {self.python}: {exc.strerror or exc}"
        finally:
            self._ended.set()

    def _started(self, proc: subprocess.Popen[str]) -> None:
        self._proc = proc

    @property
    def alive(self) -> bool:
        return not self._ended.is_set()

    def _ask(self, payload: Any, timeout: float) -> tuple[Any, str]:
        """Send ``payload``; its result document (None: none) and, when the process did not finish it, why."""
        if not self.alive:
            return None, self._problem or "the worker process has ended"
        self._n += 1
        req = self._io / f"request-{self._n}.json"
        tmp = req.with_name(req.name + ".tmp")
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(tmp, req)
        res = self._io / f"result-{self._n}.json"
        deadline = time.monotonic() + timeout
        while True:
            ended = not self.alive
            doc = _read_json(res)
            if isinstance(doc, Mapping) and ("results" not in doc or doc.get("done")):
                return doc, ""
            if ended:
                done = self._streamed
                last = done.last_line()[:300] if done else ""
                code = describe_returncode(done.returncode) if done else "none"
                return doc, self._problem or (f"worker exited with code {code} without a result"
                                              + (f": {last}" if last else ""))
            if time.monotonic() > deadline:
                self.kill()
                self._ended.wait(10)
                return doc, f"timed out after {timeout:g} s (worker killed)"
            time.sleep(self.POLL)

    def run(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One request, as :func:`run_worker` answers it (``details.session``: answered by the kept process)."""
        doc, problem = self._ask(request, timeout)
        if isinstance(doc, Mapping) and not problem:
            self.requests += 1
            res = normalize_result(doc, request)
            res["details"]["session"] = True
            return res
        if problem.startswith("timed out"):
            return fail_result(request, problem)
        return run_worker(self.python, self.worker, request, timeout, env=self.env)

    def batch(self, requests: Sequence[dict[str, Any]], timeout: float) -> Batch:
        """Several requests, as :func:`run_batch` answers them; those the process did not finish go to
        :func:`run_batch` (a new process), except the one it died or hung in, which fails with the reason."""
        t0, answered = time.monotonic(), self.requests
        doc, problem = self._ask({"requests": list(requests)}, timeout * max(1, len(requests)))
        raw: Mapping[str, Any] = doc if isinstance(doc, Mapping) else {}
        listed = raw.get("results")
        got = [r for r in (listed if isinstance(listed, list) else []) if isinstance(r, Mapping)]
        own = 0.0
        with contextlib.suppress(TypeError, ValueError):
            own = float(raw.get("seconds") or 0.0)
        results = [normalize_result(r, q) for r, q in zip(got, requests, strict=False)]
        self.requests += len(results)
        for res in results:
            res["details"]["session"] = True
        wall = time.monotonic() - t0
        if len(results) == len(requests):
            return Batch(results, round(own, 4), round(wall, 4), 1)
        # it hung, or died after answering before (so it speaks the protocol): the request it was on fails with the
        # reason; a process that never answered (cannot start, no --serve) costs nothing: all go to a new process
        if results or problem.startswith("timed out") or (problem.startswith("worker exited") and answered):
            results.append(fail_result(requests[len(results)], problem))
        rest = run_batch(self.python, self.worker, requests[len(results):], timeout, env=self.env)
        return Batch(results + rest.results, round(own + rest.seconds, 4), round(wall + rest.wall, 4),
                     1 + rest.processes)

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds of the kept process (once it has ended; POSIX), to charge to the task that used it."""
        done = self._streamed
        return float(done.cpu_seconds or 0.0) if done is not None and not self.alive else 0.0

    def kill(self) -> None:
        if self._proc is not None and self.alive:
            kill_tree(self._proc)

    def close(self) -> None:
        """Tell the process to exit (killed after a few seconds if it does not); remove its folder."""
        if self.alive and self._proc is not None:
            self._n += 1
            req = self._io / f"request-{self._n}.json"
            tmp = req.with_name(req.name + ".tmp")
            tmp.write_text(json.dumps({"action": "exit"}), encoding="utf-8")
            os.replace(tmp, req)
            if not self._ended.wait(5):
                self.kill()
                self._ended.wait(10)
        self._thread.join(timeout=5)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> WorkerSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
