"""What verify and bench do with a runtime, as one object they are handed: make its venv, run a worker (a batch of
requests in one worker, or a session: one worker process kept for several), make an export, make the tiny model.
The real ones by default; tests inject fakes (constructor injection, no module globals). verify calls them from
several threads at once (its tasks run concurrently, :mod:`aipc.dag`): fakes must allow that, and ``echo``
callbacks may come from any thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..venvs import ensure_venv
from .export import ensure_export
from .tinymodel import ensure_tiny_model
from .worker import Batch, WorkerSession, run_batch, run_worker


@dataclass(frozen=True)
class Services:
    ensure_venv: Callable[..., Path] = ensure_venv
    run_worker: Callable[..., dict[str, Any]] = run_worker
    run_batch: Callable[..., Batch] = run_batch  # several requests in one worker process
    # one worker process kept for several requests (None: the caller runs one-shot workers instead)
    start_session: Callable[..., WorkerSession | None] = WorkerSession
    ensure_export: Callable[..., Path] = ensure_export
    ensure_tiny_model: Callable[..., Path] = ensure_tiny_model
