"""The one "is it up to date" mechanism: fingerprints of plain data, and stamp files that record them.

A **fingerprint** is the sha256 of a step's material (its inputs and commands, a venv's spec, an export's recipe)
serialised as sorted JSON. Absolute paths under a *root* (the build's work directory, aipc's own package folder) are
written as ``${NAME}/rest`` first (:func:`portable`, both slash forms), so a work directory moved or copied elsewhere,
or used from another checkout, is still up to date.

A **stamp** (:class:`Stamp`) is a JSON file written atomically once the work it vouches for is complete:
``{"version": 2, "fingerprint": ..., <record>}``. Outputs are recorded with a digest each (:func:`output_digest`),
keyed by their portable path, and :func:`changed_output` says which one is missing or changed.

**Migration, not invalidation.** Stamps written before version 2 (no ``version`` key) hold the *legacy* fingerprint
(:func:`legacy_fingerprint`: the same JSON with absolute paths as they were). Rebuilding ONNX Runtime takes hours, so
a legacy stamp whose legacy fingerprint still matches is not thrown away: when the outputs it names exist (and match
their digests, if it recorded any), the owner rewrites it as version 2 with digests taken now and skips the work
(``stamp migrated``). A legacy stamp without digests is trusted for the outputs as they are at migration time; the
next change to them is detected as usual. A legacy stamp whose fingerprint does not match reruns the work, as before.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

from .fsutil import MARKER, atomic_write_json, dir_problems, sha256_file, sha256_text

VERSION = 2
Roots = Mapping[str, "str | os.PathLike[str]"]
_NAME_CHARS = r"\w.\-"


def _root_pattern(roots: Roots) -> list[tuple[re.Pattern[str], str]]:
    forms: list[tuple[str, str]] = []
    for name, root in roots.items():
        text = os.fspath(root).rstrip("/\\")
        if not text:
            continue
        for form in {text, text.replace("\\", "/"), text.replace("/", "\\")}:
            forms.append((form, name))
    forms.sort(key=lambda f: -len(f[0]))  # the longest (innermost) root first
    return [(re.compile(rf"(?<![{_NAME_CHARS}/\\]){re.escape(form)}(?![{_NAME_CHARS}])"), "${" + name + "}")
            for form, name in forms]


def _portable(value: Any, patterns: list[tuple[re.Pattern[str], str]]) -> Any:
    if isinstance(value, PurePath):
        value = os.fspath(value)
    if isinstance(value, str):
        for pattern, token in patterns:
            value = pattern.sub(token, value)  # a "${NAME}" token has no backslash or group reference
        return value
    if isinstance(value, Mapping):
        return {_portable(k, patterns) if isinstance(k, str) else k: _portable(v, patterns) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_portable(v, patterns) for v in value]
    return value


def portable(material: Any, roots: Roots) -> Any:
    """``material`` with every path under one of ``roots`` written as ``${NAME}/rest`` (also inside a longer string
    such as ``-DX=/work/dir/out``); paths become strings, tuples lists."""
    return _portable(material, _root_pattern(roots))


def fingerprint(material: Any, roots: Roots | None = None) -> str:
    """The version-2 fingerprint: sha256 of the sorted JSON of :func:`portable` material."""
    return sha256_text(json.dumps(portable(material, roots or {}), sort_keys=True, default=str))


def legacy_fingerprint(material: Any) -> str:
    """The version-1 fingerprint (absolute paths as they are); only to recognise stamps written before version 2."""
    return sha256_text(json.dumps(material, sort_keys=True, default=str))


def output_digest(path: Path) -> str | None:
    """What a stamp records of one output; None when it is missing or broken. A file: its sha256 (a symlink's target
    is followed); a folder aipc made (``fsutil.MARKER``): ``dir:`` + its marker's sha256, re-checked file by file
    against the marker; any other folder only has to exist (``dir``)."""
    try:
        if path.is_dir():
            if (path / MARKER).is_file():
                return "dir:" + sha256_file(path / MARKER) if not dir_problems(path) else None
            return "dir"
        if path.is_file():
            return sha256_file(path)
    except OSError:
        return None
    return None


def output_key(path: str | os.PathLike[str], roots: Roots) -> str:
    key = portable(os.fspath(path), roots)
    assert isinstance(key, str)
    return key


def digests(outputs: Iterable[str | os.PathLike[str]], roots: Roots) -> dict[str, str | None]:
    """``{portable path: digest}`` of ``outputs`` as they are now."""
    return {output_key(o, roots): output_digest(Path(o)) for o in outputs}


def changed_output(recorded: Mapping[str, Any] | None, outputs: Iterable[str | os.PathLike[str]], roots: Roots,
                   *, legacy: bool = False) -> Path | None:
    """The first of ``outputs`` that is missing, broken, or (when ``recorded`` holds digests) not what was recorded.
    ``legacy``: ``recorded`` is a version-1 stamp's digests, keyed by absolute path."""
    for out in outputs:
        path = Path(out)
        digest = output_digest(path)
        if digest is None:
            return path
        if recorded is not None:
            key = os.fspath(out) if legacy else output_key(out, roots)
            if recorded.get(key) != digest:
                return path
    return None


class Stamp:
    """One stamp file; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        """The stamp's content, or None when it is missing or unreadable (both mean "not up to date")."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def matches(self, fp: str, legacy: str | None = None) -> str | None:
        """``"current"`` when this is a version-2 stamp of ``fp``; ``"legacy"`` when it is a version-1 stamp whose
        fingerprint is ``legacy`` (migrate it: see the module docstring); None otherwise."""
        data = self.read()
        if data is None:
            return None
        if data.get("version") == VERSION:
            return "current" if data.get("fingerprint") == fp else None
        if "version" not in data and legacy is not None and data.get("fingerprint") == legacy:
            return "legacy"
        return None

    def write(self, fp: str, **record: Any) -> None:
        """Write the stamp atomically (a reader sees the old stamp or the new one, never half of one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, {"version": VERSION, "fingerprint": fp, **record})

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
