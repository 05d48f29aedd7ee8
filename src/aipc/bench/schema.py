"""The versioned ``bench.json`` schema and its validator (hand-written: aipc depends on nothing for this).

Version history: 1 = first version; 2 = each run of a cell has its own prompt: cells record ``prompts``,
``repeat_ttft_ms`` and ``prefill_check``, targets ``prefill``, summaries ``q1``/``q3``. A version-1 file is read by
upgrading it in memory (:func:`upgrade`: its runs repeated one prompt, quartiles are computed from its runs); other
versions are refused with a one-line error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import AipcError
from .metrics import METRICS, prefill_suspicion
from .stats import percentile

SCHEMA_NAME = "aipc-bench"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
STATUSES = ("pass", "fail", "skip")
SUMMARY_KEYS = ("n", "mean", "median", "stdev", "p90", "min", "max", "q1", "q3")
RUN_KEYS = ("ttft_ms", "tpot_ms", "decode_tps", "e2e_tps")


class SchemaError(AipcError):
    """A bench document does not follow the schema."""


def _need(obj: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: str,
          nullable: bool = False) -> Any:
    if key not in obj:
        raise SchemaError(f"{where}: missing key {key!r}")
    value = obj[key]
    if value is None and nullable:
        return None
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise SchemaError(f"{where}.{key}: expected {_names(types)}, got a boolean")
    if not isinstance(value, types):
        raise SchemaError(f"{where}.{key}: expected {_names(types)}, got {type(value).__name__}")
    return value


def _names(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in ts)


def _summary(obj: Any, where: str) -> None:
    if not isinstance(obj, Mapping):
        raise SchemaError(f"{where}: expected a summary object")
    for key in SUMMARY_KEYS:
        _need(obj, key, (int, float), where)
    if obj["n"] < 1 or obj["min"] > obj["max"]:
        raise SchemaError(f"{where}: inconsistent summary (n={obj['n']}, min={obj['min']}, max={obj['max']})")


def validate(doc: Any, source: str = "bench document") -> dict[str, Any]:
    """Return ``doc`` when it is a valid bench document, else raise :class:`SchemaError` naming the first problem."""
    if not isinstance(doc, dict):
        raise SchemaError(f"{source}: expected a JSON object")
    if doc.get("schema") != SCHEMA_NAME:
        found = f"\"schema\": {json.dumps(doc['schema'])}" if "schema" in doc else "no \"schema\" key"
        if "results" in doc and "schema_version" not in doc:
            found += " (a verify.json?)"
        raise SchemaError(f"{source}: not an aipc bench document: it has {found}, a bench.json has "
                          f"\"schema\": \"{SCHEMA_NAME}\"", hint="pass bench.json files written by `aipc bench`")
    version = doc.get("schema_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise SchemaError(f"{source}: schema_version {version!r} is not supported (this aipc reads "
                          f"{', '.join(map(str, READABLE_VERSIONS))})",
                          hint="rerun `aipc bench` with this aipc to get a current file")
    if version != SCHEMA_VERSION:
        doc = upgrade(doc)  # a dict again
    for key in ("created", "aipc_version"):
        _need(doc, key, str, source)
    for key in ("machine", "settings", "model", "harness"):
        _need(doc, key, dict, source)
    targets = _need(doc, "targets", list, source)
    for i, t in enumerate(targets):
        _target(t, f"{source}: targets[{i}]")
    valid: dict[str, Any] = doc
    return valid


def _target(t: Any, where: str) -> None:
    if not isinstance(t, dict):
        raise SchemaError(f"{where}: expected an object")
    for key in ("path", "api", "device", "precision", "status", "reason"):
        _need(t, key, str, where)
    if t["status"] not in STATUSES:
        raise SchemaError(f"{where}.status: {t['status']!r} is not one of {', '.join(STATUSES)}")
    for key in ("device_used", "device_name", "driver_version", "prefill"):
        _need(t, key, str, where, nullable=True)
    _need(t, "load_s", (int, float), where, nullable=True)
    _need(t, "versions", dict, where)
    memory = _need(t, "memory", dict, where)
    _need(memory, "peak_rss_mib", (int, float), f"{where}.memory", nullable=True)
    _need(memory, "device_memory_mib", (int, float), f"{where}.memory", nullable=True)
    _need(memory, "note", str, f"{where}.memory")
    cells = _need(t, "cells", list, where)
    if t["status"] == "pass" and not cells:
        raise SchemaError(f"{where}: a passing target has no measured cells")
    if t["status"] != "pass" and cells:
        raise SchemaError(f"{where}: a {t['status']} target must not carry scored cells")
    for j, c in enumerate(cells):
        cw = f"{where}.cells[{j}]"
        if not isinstance(c, dict):
            raise SchemaError(f"{cw}: expected an object")
        for key in ("prompt_tokens", "gen_tokens", "prompt_tokens_actual", "warmup_runs"):
            _need(c, key, int, cw)
        _need(c, "prompts", str, cw)
        _need(c, "repeat_ttft_ms", (int, float), cw, nullable=True)
        _need(c, "prefill_check", str, cw, nullable=True)
        runs = _need(c, "runs", list, cw)
        for k, r in enumerate(runs):
            if not isinstance(r, dict):
                raise SchemaError(f"{cw}.runs[{k}]: expected an object")
            for key in RUN_KEYS:
                _need(r, key, (int, float), f"{cw}.runs[{k}]")
        summary = _need(c, "summary", dict, cw)
        for key in ("ttft_ms", "tpot_ms", "decode_tps", "e2e_tps"):
            if key not in summary:
                raise SchemaError(f"{cw}.summary: missing metric {key!r}")
        for key, s in summary.items():
            if key not in METRICS:
                raise SchemaError(f"{cw}.summary: unknown metric {key!r}")
            _summary(s, f"{cw}.summary.{key}")
            if s["n"] != len(runs):
                raise SchemaError(f"{cw}.summary.{key}: n={s['n']} but {len(runs)} measured runs")
        agreement = _need(c, "agreement", dict, cw, nullable=True)
        if agreement is not None:
            for key in ("aipc_decode_tps", "reference_decode_tps", "ratio"):
                _need(agreement, key, (int, float), f"{cw}.agreement")
            _need(agreement, "reference", str, f"{cw}.agreement")


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """A version-1 document as version 2 (a copy; the file is not touched): its runs all repeated one prompt, it
    had no repeat probe, and the quartiles come from its per-run values. ``upgraded_from`` records the version."""
    out: dict[str, Any] = json.loads(json.dumps(doc))
    targets = out.get("targets")
    for t in targets if isinstance(targets, list) else []:
        if not isinstance(t, dict):
            continue
        t.setdefault("prefill", None)
        for c in t.get("cells") or []:
            if not isinstance(c, dict):
                continue
            runs = [r for r in c.get("runs") or [] if isinstance(r, dict)]
            for key, s in (c.get("summary") or {}).items():
                values = [float(r[key]) for r in runs if isinstance(r.get(key), (int, float))]
                if isinstance(s, dict) and values:
                    s.setdefault("q1", percentile(values, 25.0))
                    s.setdefault("q3", percentile(values, 75.0))
            c.setdefault("prompts", "same")
            c.setdefault("repeat_ttft_ms", None)
            ttft = [float(r["ttft_ms"]) for r in runs if isinstance(r.get("ttft_ms"), (int, float))]
            tpot = [float(r["tpot_ms"]) for r in runs if isinstance(r.get("tpot_ms"), (int, float))]
            prompt = c.get("prompt_tokens_actual")
            c.setdefault("prefill_check", prefill_suspicion(prompt if isinstance(prompt, int) else 0, "same", ttft,
                                                            tpot))
    out["schema_version"] = SCHEMA_VERSION
    out["upgraded_from"] = doc.get("schema_version")
    return out


def load(path: Path) -> dict[str, Any]:
    """Read and validate a bench.json; every problem is one line naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaError(f"{path}: no such file", hint="pass the bench.json written by `aipc bench`") from None
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"{path}: not valid JSON ({exc})", hint="pass the bench.json written by `aipc bench`") \
            from None
    return validate(doc, str(path))
