"""Stage a complete ORT_HOME from an ONNX Runtime source tree and build directory (owned by the stage work)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..platforms import Platform


def stage_ort_home(
    platform: Platform,
    ort_source: Path,
    ort_build: Path,
    out: Path,
    *,
    config: str = "Release",
    legacy_ort_dir: Path | None = None,
    check_load: bool = True,
) -> dict[str, Any]:
    """Stage ORT_HOME (include/, lib/, manifest.json) atomically into ``out``; returns the manifest."""
    raise NotImplementedError("stage is not implemented yet")


def register_cli(sub: "argparse._SubParsersAction[Any]") -> None:
    """Add ``aipc stage`` to the parser."""
