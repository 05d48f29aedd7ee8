"""What a bench run measures: the targets (path x API x device), the grid of prompt x generation lengths and the
run counts. Pure data; :mod:`aipc.bench.run` executes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..runtimes import RUNTIMES
from ..runtimes.base import Runtime


def bench_paths(runtimes: Sequence[Runtime] = RUNTIMES) -> tuple[str, ...]:
    """The paths with bench targets, in the runtimes' order."""
    return tuple(dict.fromkeys(b.path for rt in runtimes for b in rt.bench_targets()))


PATHS = bench_paths()
DEVICES = ("cpu", "gpu", "npu", "dml")
PRECISIONS = ("fp32", "fp16", "int8", "int4")
MIN_WARMUP = 1
MIN_REPETITIONS = 5

TINY_GRID: tuple[tuple[int, int], ...] = ((16, 16), (32, 16))
REAL_GRID: tuple[tuple[int, int], ...] = ((128, 128),)

# Words the synthetic prompts are made of (deterministically, by seed). They are plain English, so every Phi-3
# tokenizer (the tiny one was trained on the same kind of words) encodes them without special tokens.
_WORD_TEXT = (
    "the a of to in is it on for with as at by from this that you we model small language assistant user answer "
    "question hello world computer laptop intel npu gpu cpu runtime token generate text fast local offline test "
    "chat prompt reply please thanks here what how why when one two three four five six seven eight nine ten"
)
WORDS: tuple[str, ...] = tuple(_WORD_TEXT.split(" "))


@dataclass(frozen=True)
class Target:
    """One measured configuration; runs in its own subprocess in its runtime's venv."""

    path: str  # genai | openvino | npu
    api: str
    device: str  # requested: cpu | gpu | npu | dml
    worker: Path  # the runtime's bench worker script
    export: str | None  # aipc.runtimes export kind, None: the worker loads the HF checkpoint itself
    precision: str
    runtime: str = ""  # the runtime's name (its venv); "" = path

    @property
    def key(self) -> str:
        return f"{self.path}/{self.api}/{self.device}/{self.precision}"


@dataclass(frozen=True)
class Settings:
    warmup: int = MIN_WARMUP
    repetitions: int = MIN_REPETITIONS
    grid: tuple[tuple[int, int], ...] = TINY_GRID
    seed: int = 42
    tiny: bool = True
    precision: str | None = None  # None: fp32 for the tiny model, int4 for real ones (NPU targets: always int4)
    timeout: float = 900.0
    allow_fallback: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "warmup": self.warmup, "repetitions": self.repetitions, "grid": [list(c) for c in self.grid],
            "seed": self.seed, "model_kind": "tiny" if self.tiny else "user", "precision": self.precision,
            "decoding": "greedy", "allow_fallback": self.allow_fallback,
        }


def check_settings(s: Settings) -> Settings:
    if s.warmup < MIN_WARMUP:
        raise UsageError(f"--warmup {s.warmup}: at least {MIN_WARMUP} warm-up run is required (it is excluded)",
                         hint=f"use --warmup {MIN_WARMUP} or more")
    if s.repetitions < MIN_REPETITIONS:
        raise UsageError(f"--repetitions {s.repetitions}: at least {MIN_REPETITIONS} measured runs are required",
                         hint=f"use --repetitions {MIN_REPETITIONS} or more")
    if not s.grid:
        raise UsageError("empty grid", hint="pass --grid 16x16,32x16")
    for p, g in s.grid:
        if p < 1 or g < 2:
            raise UsageError(f"grid cell {p}x{g}: prompt needs >= 1 token and generation >= 2 tokens (TPOT is the "
                             "gap after the first token)", hint="e.g. --grid 128x128")
    if s.precision is not None and s.precision not in PRECISIONS:
        raise UsageError(f"unknown precision {s.precision!r}", hint=f"use one of: {', '.join(PRECISIONS)}")
    return s


def parse_grid(text: str) -> tuple[tuple[int, int], ...]:
    """``"16x16,32x16"`` -> ((16, 16), (32, 16))."""
    cells = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        bits = part.lower().split("x")
        if len(bits) != 2 or not all(b.strip().isdigit() for b in bits):
            raise UsageError(f"bad grid cell {part!r}", hint="write PROMPTxGEN cells separated by commas, e.g. 128x128")
        cells.append((int(bits[0]), int(bits[1])))
    if not cells:
        raise UsageError(f"empty grid {text!r}", hint="e.g. --grid 16x16,32x16")
    return tuple(dict.fromkeys(cells))


def parse_list(text: str | None, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    if text is None:
        return tuple(allowed)
    items = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        raise UsageError(f"unknown {what} {', '.join(bad) or repr(text)}", hint=f"use one of: {', '.join(allowed)}")
    return items


def precision_for(path: str, device: str, settings: Settings) -> str:
    if device == "npu":
        return "int4"  # the NPU recipes (docs/upstream.md#npu §4; the library compiled to int4 as in the cookbook)
    if settings.precision:
        return settings.precision
    return "fp32" if settings.tiny else "int4"


def targets(paths: Sequence[str], devices: Sequence[str], settings: Settings,
            runtimes: Sequence[Runtime] = RUNTIMES) -> list[Target]:
    out = []
    for rt in runtimes:
        for b in rt.bench_targets():
            if b.path in paths and b.device in devices:
                out.append(Target(b.path, b.api, b.device, rt.bench_worker, b.export,
                                  precision_for(b.path, b.device, settings), rt.name))
    if not out:
        raise UsageError(f"no target for paths {list(paths)} on devices {list(devices)}",
                         hint="the NPU library runs on --devices npu; genai on cpu or dml; openvino on cpu, gpu, npu")
    return out


def request(target: Target, model: str, settings: Settings, golden: dict[str, Any] | None) -> dict[str, Any]:
    """The worker request (shared smoke/bench protocol plus the ``bench`` key)."""
    messages = golden.get("messages") if golden else None
    ids = golden.get("ids") if golden else None
    return {
        "model": model,
        "device": target.device,
        "precision": target.precision,
        "max_new_tokens": len(ids) if ids else 16,
        "messages": messages or [{"role": "user", "content": "Hello! How can I help you today?"}],
        # exact-id check only where it is meaningful: fp32 (docs/upstream.md#paths §3: quantized runs diverge)
        "golden": ids if ids and target.precision == "fp32" else None,
        "golden_prompt_ids": golden.get("prompt_ids") if golden else None,
        "api": target.api,
        "allow_fallback": settings.allow_fallback,
        "bench": {
            "warmup": settings.warmup,
            "repetitions": settings.repetitions,
            "grid": [list(c) for c in settings.grid],
            "seed": settings.seed,
            "words": list(WORDS),
            "callback_probe": 2000,
        },
    }


def with_grid(settings: Settings, grid: tuple[tuple[int, int], ...] | None) -> Settings:
    if grid is None:
        return replace(settings, grid=TINY_GRID if settings.tiny else REAL_GRID)
    return replace(settings, grid=grid)
