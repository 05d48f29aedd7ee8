"""The runtimes verify and bench iterate: one module each, behind :class:`aipc.runtimes.base.Runtime`.

A fourth runtime is one new module (its ``RUNTIME``: venv recipe, exports, device choice, smoke and bench workers)
and one line in :data:`RUNTIMES`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import UsageError
from . import genai, npu, openvino
from .base import ExportRecipe, Runtime

RUNTIMES: tuple[Runtime, ...] = (
    genai.RUNTIME,
    openvino.RUNTIME,
    npu.RUNTIME,
)


def paths(rts: Sequence[Runtime] = RUNTIMES) -> tuple[str, ...]:
    """Every ``--paths`` name, in verify's order (genai, openvino, npu, openvino-npu: an alias path comes last)."""
    first = [rt.paths[0] for rt in rts]
    return (*first, *[p for rt in rts for p in rt.paths[1:]])


def check_path(path: str, rts: Sequence[Runtime] = RUNTIMES) -> str:
    names = paths(rts)
    if path not in names:
        raise UsageError(f"unknown path {path!r}", hint=f"use one of: {', '.join(names)}")
    return path


def for_path(path: str, rts: Sequence[Runtime] = RUNTIMES) -> Runtime:
    """The runtime that answers ``path`` (``openvino-npu``: openvino)."""
    check_path(path, rts)
    return next(rt for rt in rts if path in rt.paths)


def by_name(name: str, rts: Sequence[Runtime] = RUNTIMES) -> Runtime:
    return next(rt for rt in rts if rt.name == name)


def export_recipes(rts: Sequence[Runtime] = RUNTIMES) -> tuple[ExportRecipe, ...]:
    return tuple(r for rt in rts for r in rt.exports)


def export_kinds(rts: Sequence[Runtime] = RUNTIMES) -> tuple[str, ...]:
    return tuple(r.kind for r in export_recipes(rts))
