"""What a bench run measures: the targets (path x API x device), the grid of prompt x generation lengths and the
run counts. Pure data; :mod:`aipc.bench.run` executes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import UsageError

PATHS = ("genai", "openvino", "npu")
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
    """One measured configuration; runs in its own subprocess in its path's venv."""

    path: str  # venv/path: genai | openvino | npu
    api: str
    device: str  # requested: cpu | gpu | npu | dml
    worker: str  # script in src/aipc/workers/
    export: str | None  # aipc.runtimes.export kind, None: the worker loads the HF checkpoint itself
    precision: str

    @property
    def key(self) -> str:
        return f"{self.path}/{self.api}/{self.device}/{self.precision}"

    @property
    def venv_path(self) -> str:
        """The verify path whose venv this target uses."""
        return "openvino-npu" if self.path == "openvino" and self.device == "npu" else self.path


API_GENAI = "onnxruntime-genai"
API_OPTIMUM = "OVModelForCausalLM"
API_OV_GENAI = "openvino_genai.LLMPipeline"
API_NPU_LIB = "intel-npu-acceleration-library"

# (path, api, device, worker, export kind)
_ALL: tuple[tuple[str, str, str, str, str | None], ...] = (
    ("genai", API_GENAI, "cpu", "bench_genai.py", "genai"),
    ("genai", API_GENAI, "dml", "bench_genai.py", "genai"),
    ("openvino", API_OPTIMUM, "cpu", "bench_openvino.py", "openvino"),
    ("openvino", API_OV_GENAI, "cpu", "bench_openvino.py", "openvino"),
    ("openvino", API_OPTIMUM, "gpu", "bench_openvino.py", "openvino"),
    ("openvino", API_OV_GENAI, "gpu", "bench_openvino.py", "openvino"),
    ("openvino", API_OPTIMUM, "npu", "bench_openvino.py", "openvino-npu"),
    ("openvino", API_OV_GENAI, "npu", "bench_openvino.py", "openvino-npu"),
    ("npu", API_NPU_LIB, "npu", "bench_npu.py", None),
)


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


def targets(paths: Sequence[str], devices: Sequence[str], settings: Settings) -> list[Target]:
    out = []
    for path, api, device, worker, export in _ALL:
        if path in paths and device in devices:
            out.append(Target(path, api, device, worker, export, precision_for(path, device, settings)))
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
