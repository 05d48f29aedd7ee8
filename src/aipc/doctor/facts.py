"""The doctor's facts: a JSON-serializable, schema-versioned record of what the collectors found.

Layout (schema 1)::

    {"schema": 1, "aipc_version": "...", "collected_at": "...", "collect_seconds": 1.2,
     "host": {...}, "python": {...}, "tools": {...}, "packages": {...}, "runtime": {...},
     "devices": {...}, "linux": {...} | null, "windows": {...} | null, "errors": {collector: message}}

Checks read facts only through :func:`get`, which returns ``None`` for anything missing or of the wrong type, so a
partial facts file (a collector that timed out, an older aipc) gives ``skip`` verdicts instead of a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar, overload

from ..errors import UsageError
from ..fsutil import atomic_write_json

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
    if schema != SCHEMA:
        raise UsageError(
            f"facts file {source} has unsupported schema {schema!r} (this aipc reads schema {SCHEMA})", hint=fix
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


def load_facts(path: Path) -> Facts:
    """Read and validate a facts file written by ``--save-facts``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"facts file {path} does not exist", hint="pass a file written by --save-facts") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read facts file {path} ({exc})", hint="pass a file written by --save-facts") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"facts file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            hint="send the file exactly as `aipc doctor --save-facts` wrote it",
        ) from None
    return validate_facts(obj, str(path))


def save_facts(path: Path, facts: Facts) -> None:
    atomic_write_json(Path(path), facts)
