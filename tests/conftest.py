"""Shared fixtures. Tests make their own data; nothing is loaded from a hub or the network at run time."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ``AIPC_CACHE`` for tests that must not share venvs or models with the user's cache."""
    cache = tmp_path / "aipc-cache"
    monkeypatch.setenv("AIPC_CACHE", str(cache))
    yield cache


def shared_cache() -> Path:
    """The cache shared by slow end-to-end tests (venvs, tiny model, downloaded sdists/wheels), so reruns are warm.

    It lives outside the checkout (CI clones afresh each run); everything in it is keyed by a fingerprint of its
    inputs, so reuse is safe. ``AIPC_TEST_CACHE`` overrides it (point it at an empty directory for a cold run).
    """
    from aipc.settings import test_cache_dir  # the one rule (aipc cache --info shows it)

    return test_cache_dir()


def write_pins(tmp_path: Path, **replace: str) -> Path:
    """A copy of the shipped pins file with exact text replacements (each must match), for refusal tests."""
    from aipc.pins import DEFAULT_PINS

    text = DEFAULT_PINS.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "pins.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_aipc(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120,
             clean_env: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -m aipc ARGS`` in a subprocess (output captured as text, never raises on a non-zero exit).

    ``env`` is laid over this process's environment; with ``clean_env`` the outer ``AIPC_*`` and ``GIT_*`` variables
    are dropped first (so a developer's AIPC_WORKDIR or a hook's GIT_DIR cannot leak into the test).
    """
    import sys

    base = dict(os.environ)
    if clean_env:
        base = {k: v for k, v in base.items() if not k.startswith(("AIPC_", "GIT_"))}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "aipc", *args], capture_output=True, text=True, env=base, cwd=cwd,
                          timeout=timeout, check=False)


def assert_one_line_error(rc: int, stderr: str, *needles: str, code: int | None = None, alone: bool = False) -> str:
    """The CLI's failure contract: a non-zero exit (``code`` exactly, when given), no traceback, exactly one
    ``aipc: error: ...`` line, printed last (with ``alone``: nothing else on stderr), containing every needle.
    Returns that line."""
    assert rc != 0 if code is None else rc == code, (rc, stderr)
    assert "Traceback" not in stderr, stderr
    printed = stderr.strip().splitlines()
    errors = [ln for ln in printed if ln.startswith("aipc: error:")]
    assert len(errors) == 1 and printed[-1] == errors[0], stderr
    assert not alone or len(printed) == 1, stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def fake_worker(tmp_path: Path, body: str, name: str = "w.py") -> Path:
    """A worker script following the protocol; ``body`` runs with ``req`` loaded and ``done(dict)`` to write.

    It speaks every form of the protocol (``aipc/workers/protocol.py``): one request; a batch (``{"requests": [...]}``,
    :func:`aipc.runtimes.worker.run_batch`: ``body`` runs once per request and ``done`` rewrites ``{"results": [...],
    "seconds": S}``, each result with its own seconds, then adds ``"done": true``); and ``--serve DIR``
    (:class:`aipc.runtimes.worker.WorkerSession`: request-N.json files answered in turn until ``{"action": "exit"}``).
    """
    script = tmp_path / name
    script.write_text(textwrap.dedent("""
        import argparse, json, os, sys, time
        ap = argparse.ArgumentParser()
        ap.add_argument("--request"); ap.add_argument("--result"); ap.add_argument("--serve")
        a = ap.parse_args()
        def jobs():
            if not a.serve:
                yield json.load(open(a.request)), a.result
                return
            n = 0
            while True:
                n += 1
                path = os.path.join(a.serve, f"request-{n}.json")
                while not os.path.exists(path):
                    time.sleep(0.01)
                payload = json.load(open(path))
                if payload == {"action": "exit"}:
                    return
                yield payload, os.path.join(a.serve, f"result-{n}.json")
        for payload, a.result in jobs():
            batch = isinstance(payload, dict) and isinstance(payload.get("requests"), list)
            t0, t_req, results = time.perf_counter(), [0.0], []
            def done(res, final=False):
                if batch:
                    if not final:
                        res.setdefault("seconds", round(time.perf_counter() - t_req[0], 4))
                        results.append(res)
                    res = {"results": results, "seconds": round(time.perf_counter() - t0, 4), "done": final}
                with open(a.result + ".tmp", "w") as fh:
                    json.dump(res, fh)
                os.replace(a.result + ".tmp", a.result)
            for req in (payload["requests"] if batch else [payload]):
                t_req[0] = time.perf_counter()
    """) + textwrap.indent(textwrap.dedent(body), "        ") + "\n    if batch:\n        done(None, final=True)\n",
        encoding="utf-8")
    return script
