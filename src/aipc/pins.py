"""The pins file (``src/aipc/pins.toml``): typed access, validation and the genai <-> ORT compatibility check.

``AIPC_PINS=/path/to/pins.toml`` (or ``--pins`` on the command line) selects another pins file, e.g. in tests.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .errors import PinsError, PinsFileError, os_reason
from .settings import pins_file
from .tables import format_table

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_PINS = Path(__file__).with_name("pins.toml")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class SourcePin:
    """An upstream git repository pinned by tag and full commit SHA."""

    name: str
    repo: str
    tag: str
    commit: str
    version: str


@dataclass(frozen=True)
class CompatRow:
    genai: str
    ort_min: str
    row: str
    source: str = ""  # where a row written by `aipc pins update` was read (upstream file and tag)

    def matches_genai(self, genai_version: str) -> bool:
        return _version(genai_version, "genai version") in SpecifierSet(self.genai, prereleases=True)


@dataclass(frozen=True)
class Pins:
    path: Path
    onnxruntime: SourcePin
    onnxruntime_genai: SourcePin
    genai_has_no_telemetry: bool
    nuget: dict[str, str]
    toolchain: dict[str, str]
    build_tools: dict[str, str]
    wheel_pythons: tuple[str, ...]
    releases: dict[str, str]
    npu: dict[str, Any]
    drivers: dict[str, str]
    compat: tuple[CompatRow, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def _version(text: str, what: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion as exc:
        raise PinsError(f"{what} {text!r} is not a valid version", hint="use a PEP 440 version such as 1.24.4") from exc


def _table(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise PinsError(f"{path}: missing table [{key}]", hint=f"add a [{key}] table (see {DEFAULT_PINS})")
    return value


def _str(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise PinsError(f"{where}: missing or empty string '{key}'", hint=f"set {key} = \"...\" in [{where}]")
    return value


def _source(data: dict[str, Any], key: str, path: Path) -> SourcePin:
    table = _table(data, key, path)
    commit = _str(table, "commit", key)
    if not _SHA_RE.match(commit):
        raise PinsError(
            f"{path}: [{key}] commit {commit!r} is not a full 40-digit lowercase git SHA",
            hint="pin the full commit the tag points to (git rev-parse TAG^{commit})",
        )
    version = _str(table, "version", key)
    _version(version, f"[{key}] version")
    return SourcePin(key, _str(table, "repo", key), _str(table, "tag", key), commit, version)


def load_pins(path: Path | None = None) -> Pins:
    """Load and validate a pins file; errors name the file and the key (:class:`PinsFileError`, exit 2)."""
    try:
        return _load_pins(path)
    except PinsFileError:
        raise
    except PinsError as exc:
        raise PinsFileError(exc.message, hint=exc.hint) from None


def _load_pins(path: Path | None) -> Pins:
    if path is None:
        path = pins_file() or DEFAULT_PINS
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PinsError(f"pins file {path} does not exist", hint="pass an existing file with --pins") from exc
    except IsADirectoryError as exc:
        raise PinsError(f"pins file {path} is a folder", hint="pass the pins.toml file itself with --pins") from exc
    except OSError as exc:
        raise PinsError(f"cannot read pins file {path} ({os_reason(exc)})", hint="pass a readable file") from exc
    except UnicodeDecodeError as exc:
        raise PinsError(f"pins file {path} is not UTF-8 text ({exc.reason})", hint="pass a TOML file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PinsError(f"pins file {path} is not valid TOML ({exc})", hint="fix the syntax error") from exc
    if data.get("schema") != 1:
        raise PinsError(f"{path}: unsupported schema {data.get('schema')!r}", hint="set schema = 1")
    genai_table = _table(data, "onnxruntime_genai", path)
    compat_rows = []
    for i, raw in enumerate(data.get("compat", [])):
        where = f"compat[{i}]"
        row = CompatRow(_str(raw, "genai", where), _str(raw, "ort_min", where), _str(raw, "row", where),
                        str(raw.get("source", "")))
        try:
            SpecifierSet(row.genai)
        except InvalidSpecifier as exc:
            raise PinsError(f"{path}: {where} genai {row.genai!r} is not a version specifier") from exc
        _version(row.ort_min, f"{where} ort_min")
        compat_rows.append(row)
    if not compat_rows:
        raise PinsError(f"{path}: no [[compat]] rows", hint="add the genai <-> ORT compatibility table")
    python = _table(data, "python", path)
    return Pins(
        path=path,
        onnxruntime=_source(data, "onnxruntime", path),
        onnxruntime_genai=_source(data, "onnxruntime_genai", path),
        genai_has_no_telemetry=bool(genai_table.get("has_no_telemetry", False)),
        nuget={str(k): str(v) for k, v in _table(data, "nuget", path).items()},
        toolchain={str(k): str(v) for k, v in _table(data, "toolchain", path).items()},
        build_tools={str(k): str(v) for k, v in _table(data, "build_tools", path).items()},
        wheel_pythons=tuple(str(v) for v in python.get("wheel_versions", [])),
        releases={str(k): str(v) for k, v in _table(data, "releases", path).items()},
        npu=dict(_table(data, "npu", path)),
        drivers={str(k): str(v) for k, v in data.get("drivers", {}).items()},
        compat=tuple(compat_rows),
    )


def compat_row_for(pins: Pins, genai_version: str) -> CompatRow:
    for row in pins.compat:
        if row.matches_genai(genai_version):
            return row
    raise PinsError(
        f"onnxruntime-genai {genai_version} is not in the compatibility table of {pins.path}",
        hint="pin a genai release listed there, or add its row from docs/upstream.md#build §5",
    )


def check_compat(pins: Pins, genai_version: str | None = None, ort_version: str | None = None) -> CompatRow:
    """Refuse an incompatible genai/ORT combination before anything is built; the message quotes the table row."""
    genai_version = genai_version or pins.onnxruntime_genai.version
    ort_version = ort_version or pins.onnxruntime.version
    row = compat_row_for(pins, genai_version)
    if _version(ort_version, "ORT version") < _version(row.ort_min, "ort_min"):
        raise PinsError(
            f"onnxruntime-genai {genai_version} needs ONNX Runtime >= {row.ort_min}, but ORT {ort_version} is pinned "
            f"(compatibility table row: {row.row})",
            hint=f"pin onnxruntime >= {row.ort_min} or a genai release whose row accepts ORT {ort_version}",
        )
    return row


def format_pins(pins: Pins, as_json: bool = False) -> str:
    if as_json:
        return json.dumps(pins.to_json(), indent=2, sort_keys=True)
    lines = [f"pins file: {pins.path}"]
    lines.append(format_table(None, [[src.name, src.version, f"tag {src.tag}", f"commit {src.commit}", f"({src.repo})"]
                                     for src in (pins.onnxruntime, pins.onnxruntime_genai)]))
    lines.append("nuget: " + ", ".join(f"{k} {v}" for k, v in pins.nuget.items()))
    lines.append("toolchain: " + ", ".join(f"{k} {v}" for k, v in pins.toolchain.items()))
    lines.append("wheel pythons: " + ", ".join(pins.wheel_pythons))
    lines.append("releases: " + ", ".join(f"{k}=={v}" for k, v in pins.releases.items()))
    lines.append("genai <-> ORT compatibility:")
    table = format_table(None, [[f"genai {row.genai}", f"needs ORT >= {row.ort_min}"] for row in pins.compat])
    lines.extend("  " + line for line in table.splitlines())
    try:
        row = check_compat(pins)
        pair = f"genai {pins.onnxruntime_genai.version} + ORT {pins.onnxruntime.version}"
        lines.append(f"pinned pair: {pair}: compatible (row: genai {row.genai} needs ORT >= {row.ort_min})")
    except PinsError as exc:
        lines.append(f"pinned pair: INCOMPATIBLE: {exc.one_line()}")
    return "\n".join(lines)
