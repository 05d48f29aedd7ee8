"""The doctor's facts: a JSON-serializable, schema-versioned record of what the collectors found.

Layout (schema 1)::

    {"schema": 1, "aipc_version": "...", "collected_at": "...", "collect_seconds": 1.2,
     "host": {...}, "python": {...}, "tools": {...}, "packages": {...}, "runtime": {...},
     "devices": {...}, "linux": {...} | null, "windows": {...} | null, "errors": {collector: message}}

Checks read facts only through :func:`get`, which returns ``None`` for anything missing or of the wrong type, so a
partial facts file (a collector that timed out, an older aipc) gives ``skip`` verdicts instead of a traceback.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from pathlib import Path
from typing import Any, TypeVar, overload

from ..errors import AipcError, UsageError
from ..fsutil import atomic_write_text

SCHEMA = 1
# Top-level sections every facts file has; ``linux``/``windows`` may be null on the other platform.
SECTIONS = ("host", "python", "tools", "packages", "runtime", "devices", "linux", "windows")
PLATFORMS = ("linux", "windows")

Facts = dict[str, Any]
T = TypeVar("T")


@overload
def get(facts: Facts, dotted: str) -> Any: ...
@overload
def get(facts: Facts, dotted: str, kind: type[T]) -> T | None: ...


def get(facts: Facts, dotted: str, kind: type[Any] | None = None) -> Any:
    """``facts["a"]["b"]`` for ``"a.b"``; None when a level is missing, not a dict, or the value is not ``kind``."""
    node: Any = facts
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if kind is not None:
        if kind is int and isinstance(node, bool):
            return None
        if kind is float and isinstance(node, int) and not isinstance(node, bool):
            return float(node)
        if not isinstance(node, kind):
            return None
    return node


def validate_facts(obj: Any, source: str) -> Facts:
    """Check the structure of a facts document; raise :class:`UsageError` (exit 2) naming what is wrong."""
    fix = "record the facts again with `aipc doctor --save-facts FILE` (same aipc version)"
    if not isinstance(obj, dict):
        raise UsageError(f"facts file {source} does not hold a JSON object", hint=fix)
    schema = obj.get("schema")
    # `true` and `1.0` compare equal to 1 in Python; a schema is an integer and nothing else
    if type(schema) is not int or schema != SCHEMA:
        raise UsageError(
            f"facts file {source} has unsupported schema {json.dumps(schema)} (this aipc reads schema {SCHEMA}, "
            "an integer)", hint=fix
        )
    for section in SECTIONS:
        if section not in obj:
            raise UsageError(f"facts file {source} has no '{section}' section", hint=fix)
        value = obj[section]
        if section in PLATFORMS:
            if value is not None and not isinstance(value, dict):
                raise UsageError(f"facts file {source}: '{section}' must be an object or null", hint=fix)
        elif not isinstance(value, dict):
            raise UsageError(f"facts file {source}: '{section}' must be an object", hint=fix)
    platform = get(obj, "host.platform")
    if platform not in PLATFORMS:
        raise UsageError(
            f"facts file {source}: host.platform is {platform!r}, expected one of {', '.join(PLATFORMS)}", hint=fix
        )
    if not isinstance(obj.get(platform), dict):
        raise UsageError(f"facts file {source}: host.platform is {platform!r} but its '{platform}' section is missing",
                         hint=fix)
    return obj


# Bounds for reading a facts file: what --save-facts writes is a few tens of kB, nested < 10 deep, with integers of
# at most 20 digits (byte counts). Anything far beyond that is not a facts file and is refused in one line.
MAX_FACTS_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_INT_DIGITS = 40
_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET_RE = re.compile(r"[\[\]{}]")


class _BadFacts(ValueError):
    """A facts value that JSON allows but a facts file never holds (NaN, Infinity, a huge integer)."""


def decode_facts(data: bytes) -> str:
    """The text of a facts file: UTF-8 (with or without a BOM) or UTF-16 with a BOM (what Windows PowerShell's ``>``
    writes), or UTF-16 without one (told by its NUL bytes). Raises UnicodeDecodeError."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    if len(data) >= 2 and data[0] != 0 and data[1] == 0:
        return data.decode("utf-16-le")
    if len(data) >= 2 and data[0] == 0 and data[1] != 0:
        return data.decode("utf-16-be")
    return data.decode("utf-8")


def nesting_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text (brackets inside strings do not count); no recursion."""
    depth = deepest = 0
    for match in _BRACKET_RE.finditer(_STRING_RE.sub('""', text)):
        if match.group(0) in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _BadFacts(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadFacts(f"the number {text[:40]} is out of range")
    return value


def _parse_constant(name: str) -> Any:
    raise _BadFacts(f"{name} (not a JSON number)")


def parse_facts_text(text: str, source: str) -> Any:
    """``json.loads`` with the bounds above: refuses deep nesting, huge integers, NaN and Infinity (UsageError)."""
    fix = "send the file exactly as `aipc doctor --save-facts` wrote it"
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise UsageError(f"facts file {source} is nested {depth} levels deep (a facts file has at most {MAX_DEPTH})",
                         hint=fix)
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"facts file {source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", hint=fix,
        ) from None
    except _BadFacts as exc:
        raise UsageError(f"facts file {source} holds {exc}", hint=fix) from None
    except (ValueError, RecursionError) as exc:  # anything the bounds above did not foresee: still one line
        raise UsageError(f"facts file {source} cannot be read as JSON ({type(exc).__name__})", hint=fix) from None


def load_facts(path: Path) -> Facts:
    """Read and validate a facts file written by ``--save-facts`` (or re-saved by an editor or PowerShell)."""
    hint = "pass a file written by --save-facts"
    try:
        size = Path(path).stat().st_size
        if size > MAX_FACTS_BYTES:
            raise UsageError(f"facts file {path} is {size} bytes (a facts file is far below "
                             f"{MAX_FACTS_BYTES // (1024 * 1024)} MiB)", hint=hint)
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"facts file {path} does not exist", hint=hint) from None
    except OSError as exc:
        raise UsageError(f"cannot read facts file {path} ({exc.strerror or exc})", hint=hint) from None
    try:
        text = decode_facts(data)
    except UnicodeDecodeError as exc:
        raise UsageError(f"facts file {path} is neither UTF-8 nor UTF-16 text ({exc.reason} at byte {exc.start})",
                         hint=hint) from None
    return validate_facts(parse_facts_text(text, str(path)), str(path))


def facts_json(obj: Any) -> str:
    """JSON text for facts or a report; NaN and Infinity are refused (they are not JSON), never written."""
    try:
        return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    except ValueError as exc:
        raise AipcError(f"cannot write JSON: {exc}", hint="report this as an aipc bug") from None


def save_facts(path: Path, facts: Facts) -> None:
    write_json(path, facts, "--save-facts")


def write_json(path: Path, obj: Any, option: str) -> None:
    """Write a doctor output (``--json``/``--save-facts``) atomically; an OSError becomes one line (exit 2)."""
    text = facts_json(obj)
    try:
        atomic_write_text(Path(path), text)
    except OSError as exc:
        raise UsageError(f"cannot write {option} {path} ({exc.strerror or exc})",
                         hint=f"pass a writable file path to {option}") from None
