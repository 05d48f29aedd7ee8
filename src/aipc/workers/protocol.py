"""The worker side of aipc's worker protocol (runs inside a path venv: stdlib only, aipc is not installed there).

    python <worker>.py --request REQ.json --result RES.json

``serve(api, run)`` reads the request, calls ``run(request) -> dict`` and writes RES.json atomically, always:
``run``'s keys are laid over the base result (status fail, empty tokens), the total seconds are set, and any
exception ``run`` raises becomes a ``fail`` whose reason is the exception's first line (the traceback goes to
stderr and to ``details.traceback``). The caller (``aipc.runtimes.worker.run_worker``) turns a crash, a timeout or a
missing RES.json into a ``fail`` of its own.

A batch (one process loads the runtime once for several rows): REQ.json is ``{"requests": [req, ...]}`` and
RES.json is ``{"results": [res, ...], "seconds": S}``, rewritten atomically after each request (so the caller keeps
the results of the requests done before a crash or a timeout; the last write adds ``"done": true``). Each
result's ``seconds`` is that request's own time in the process; ``S`` is the process's own time for the batch
(``aipc.runtimes.worker.run_batch``).

A session (``aipc.runtimes.worker.WorkerSession``): ``python <worker>.py --serve DIR`` answers ``DIR/request-1.json``,
``request-2.json``... into ``result-N.json`` in turn, in one process, until ``{"action": "exit"}``: verify asks
OpenVINO's devices and then runs the smokes in the same process, so the runtime is imported once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence


def base_result(api: str, precision: str = "") -> dict:
    return {"status": "fail", "api": api, "device": "", "precision": precision, "tokens": [], "n_tokens": 0,
            "seconds": 0.0, "reason": "", "details": {}}


def write_result(path: str, result: dict) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    os.replace(tmp, path)


def compare(tokens: list[int], req: dict, vocab: int | None) -> tuple[str, str]:
    """Check generated ids: exact count, inside the vocabulary, and at fp32 equal to the golden reference.

    Ids, not decoded text, are compared (og's decoder truncates invalid byte-fallback sequences).
    """
    want = int(req.get("max_new_tokens") or 16)
    if len(tokens) != want:
        return "fail", f"generated {len(tokens)} tokens, expected {want}"
    if vocab and any(t < 0 or t >= vocab for t in tokens):
        return "fail", f"token id outside the vocabulary (size {vocab}): {tokens}"
    golden = req.get("golden")
    if golden is not None and req.get("precision") == "fp32":
        if tokens != list(golden):
            first = next((i for i, (a, b) in enumerate(zip(tokens, golden, strict=False)) if a != b), len(golden))
            return "fail", f"fp32 ids differ from the golden reference at token {first}: {tokens} != {golden}"
        return "pass", f"{want} tokens, equal to the golden reference"
    return "pass", f"{want} tokens generated" + (" (quantized: count and ids checked)" if golden is not None else "")


def prompt_mismatch(prompt_ids: list[int], req: dict) -> str:
    """Why the templated prompt's ids differ from the request's ``prompt_ids`` (the reference tokenizer's), or ""."""
    want = req.get("prompt_ids")
    if want is None or list(prompt_ids) == list(want):
        return ""
    return f"prompt ids differ from the reference tokenizer's: {list(prompt_ids)} != {list(want)}"


def failure(exc: BaseException, res: dict) -> dict:
    """Turn the exception being handled into a ``fail`` on ``res`` (keeping what ``res`` already holds)."""
    trace = traceback.format_exc()
    print(trace, end="", file=sys.stderr)
    text = str(exc).strip()
    res.update(status="fail", reason=f"{type(exc).__name__}: {text.splitlines()[0][:500] if text else ''}")
    res.setdefault("details", {})["traceback"] = trace[-2000:]
    return res


def _one(api: str, run: Callable[[dict], dict], req: object, t0: float) -> dict:
    res = base_result(api)
    try:
        if not isinstance(req, dict):
            raise TypeError(f"the request is a {type(req).__name__}, not a JSON object")
        res["precision"] = str(req.get("precision") or "")
        res.update(run(req))
    except Exception as exc:  # every catchable failure becomes a result
        failure(exc, res)
    res["seconds"] = round(time.perf_counter() - t0, 4)
    return res


# a worker in --serve mode waits this long for its next request, then exits (its caller is gone)
IDLE_SECONDS = 900.0


def answer(api: str, run: Callable[[dict], dict], request_path: str, result_path: str) -> None:
    """Answer one request file (one request or a batch) into ``result_path``; a finished batch says ``done``."""
    t0 = time.perf_counter()
    try:
        with open(request_path, encoding="utf-8") as fh:
            payload = json.load(fh)
    except Exception as exc:
        res = failure(exc, base_result(api))
        res["seconds"] = round(time.perf_counter() - t0, 4)
        write_result(result_path, res)
        return
    if isinstance(payload, dict) and isinstance(payload.get("requests"), list):  # a batch
        results: list[dict] = []
        write_result(result_path, {"results": results, "seconds": 0.0})
        for req in payload["requests"]:
            results.append(_one(api, run, req, time.perf_counter()))
            write_result(result_path, {"results": results, "seconds": round(time.perf_counter() - t0, 4)})
        write_result(result_path, {"results": results, "seconds": round(time.perf_counter() - t0, 4),
                                   "done": True})
        return
    write_result(result_path, _one(api, run, payload, t0))


def serve_dir(api: str, run: Callable[[dict], dict], folder: str, idle: float = IDLE_SECONDS) -> int:
    """``--serve DIR``: answer ``DIR/request-1.json``, ``request-2.json``... in turn (each written atomically by the
    caller) into ``result-N.json``, in this one process, until a request ``{"action": "exit"}`` or ``idle`` seconds
    without one."""
    n = 0
    while True:
        n += 1
        path = os.path.join(folder, f"request-{n}.json")
        waited = time.monotonic()
        while not os.path.exists(path):
            if time.monotonic() - waited > idle:
                return 0
            time.sleep(0.01)
        try:
            with open(path, encoding="utf-8") as fh:
                if json.load(fh) == {"action": "exit"}:
                    return 0
        except ValueError:
            pass  # answered as a failure below
        answer(api, run, path, os.path.join(folder, f"result-{n}.json"))


def serve(api: str, run: Callable[[dict], dict], argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=f"aipc worker ({api})")
    ap.add_argument("--request")
    ap.add_argument("--result")
    ap.add_argument("--serve", metavar="DIR", help="answer request-N.json files in DIR until told to exit")
    args = ap.parse_args(argv)
    if args.serve:
        return serve_dir(api, run, args.serve)
    if not args.request or not args.result:
        ap.error("--request and --result are required (or --serve DIR)")
    answer(api, run, args.request, args.result)
    return 0
