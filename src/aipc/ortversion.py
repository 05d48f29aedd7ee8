"""ONNX Runtime version facts, shared by the build (``aipc stage``) and ``aipc doctor``.

- ``VERSION_NUMBER`` (ORT source root) holds the release version; ORT's C API version equals its minor
  (1.24.4 -> ``ORT_API_VERSION`` 24).
- ``onnxruntime_c_api.h`` defines ``#define ORT_API_VERSION N``.
- The fully versioned library is ``<main lib>.<version>`` (``libonnxruntime.so.1.24.4``).
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import AipcError

_API_RE = re.compile(r"^\s*#\s*define\s+ORT_API_VERSION\s+(\d+)\b", re.MULTILINE)
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def read_version_number(ort_source: Path) -> str:
    """ORT's release version from ``<ort_source>/VERSION_NUMBER``."""
    path = ort_source / "VERSION_NUMBER"
    if not path.is_file():
        raise AipcError(
            f"{path} is missing; {ort_source} does not look like an ONNX Runtime source tree",
            hint="pass the root of an ORT checkout (aipc fetch) with --ort-source",
        )
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    if not _VERSION_RE.match(text):
        raise AipcError(f"{path} holds {text[:40]!r}, expected a version such as 1.24.4",
                        hint="restore VERSION_NUMBER from the pinned ORT tag")
    return text


def api_version_for(version: str) -> int:
    """ORT's C API version for a release: its minor version (1.24.4 -> 24)."""
    match = _VERSION_RE.match(version)
    if not match:
        raise AipcError(f"ORT version {version!r} is not MAJOR.MINOR.PATCH")
    return int(match.group(2))


def parse_api_version(header: Path) -> int:
    """``ORT_API_VERSION`` as ``#define``d in an ``onnxruntime_c_api.h``."""
    match = _API_RE.search(header.read_text(encoding="utf-8", errors="replace"))
    if not match:
        raise AipcError(f"{header} has no '#define ORT_API_VERSION N'; the header is not an ORT C API header",
                        hint="stage from an unmodified ORT source tree")
    return int(match.group(1))


def version_from_lib_name(main_lib: str, name: str) -> str | None:
    """``1.24.4`` for ``libonnxruntime.so.1.24.4`` (the fully versioned name), else None."""
    prefix = main_lib + "."
    if name.startswith(prefix) and _VERSION_RE.match(name[len(prefix):]):
        return name[len(prefix):]
    return None
