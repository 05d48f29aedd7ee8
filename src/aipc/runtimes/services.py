"""What verify and bench do with a runtime, as one object they are handed: make its venv, run a worker, make an
export, make the tiny model. The real ones by default; tests inject fakes (constructor injection, no module globals).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..venvs import ensure_venv
from .export import ensure_export
from .tinymodel import ensure_tiny_model
from .worker import run_worker


@dataclass(frozen=True)
class Services:
    ensure_venv: Callable[..., Path] = ensure_venv
    run_worker: Callable[..., dict[str, Any]] = run_worker
    ensure_export: Callable[..., Path] = ensure_export
    ensure_tiny_model: Callable[..., Path] = ensure_tiny_model
