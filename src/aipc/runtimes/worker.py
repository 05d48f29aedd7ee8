"""Run one smoke worker in a subprocess with a timeout (the protocol: aipc/workers/protocol.py).

A worker is ``<venv python> <worker.py> --request REQ.json --result RES.json``. Whatever happens to it (a crash,
a driver fault killing the process, a hang, a missing or garbled RES.json), :func:`run_worker` returns a result
dict, with ``status`` ``fail`` and the reason (exit code or signal, and the last stderr line) when the worker did
not report one itself. aipc itself never crashes or hangs because of a worker.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping
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


def run_worker(
    python: Path, worker: Path, request: dict[str, Any], timeout: float, *, env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run a worker and return its (normalized) result; every failure mode becomes a ``fail`` with its reason.

    The worker runs in a fresh temporary directory (libraries that write caches into the CWD stay contained),
    in its own process group (POSIX) or process tree (Windows), which is killed as a whole on timeout.
    """
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="aipc-smoke-") as tmp_name:
        tmp = Path(tmp_name)
        req_path, res_path, err_path = tmp / "request.json", tmp / "result.json", tmp / "stderr.txt"
        req_path.write_text(json.dumps(request, indent=2), encoding="utf-8")
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
            return fail_result(request, f"cannot start worker {worker.name} with {python}: {exc.strerror or exc}")
        seconds = time.monotonic() - t0
        rc, timed_out = done.returncode, done.timed_out
        last = done.last_line()[:300]
        tail = list(done.tail)
        if timed_out:
            return fail_result(
                request, f"timed out after {timeout:g} s (worker killed)" + (f"; last output: {last}" if last else ""),
                seconds, stderr_tail=tail,
            )
        raw: Any = None
        if res_path.is_file():
            try:
                raw = json.loads(res_path.read_text(encoding="utf-8"))
            except ValueError as exc:
                return fail_result(request, f"worker wrote an unreadable result ({exc})", seconds, stderr_tail=tail)
        if not isinstance(raw, Mapping):
            how = f"exited with code {describe_returncode(rc)}"
            if raw is None:
                reason = f"worker {how} without a result" + (f": {last}" if last else "")
            else:
                reason = f"worker {how}; its result is not a JSON object"
            return fail_result(request, reason, seconds, exit_code=rc, stderr_tail=tail)
        res = normalize_result(raw, request)
        res["details"].setdefault("wall_seconds", round(seconds, 3))
        if rc != 0:
            res["details"]["exit_code"] = rc
            if res["status"] == "pass":
                res["status"] = "fail"
                res["reason"] = (f"worker reported pass but exited with code {describe_returncode(rc)}"
                                 + (f": {last}" if last else ""))
        if res["status"] == "fail":
            res["details"].setdefault("stderr_tail", tail)
        return res


