"""Stage a complete ORT_HOME from an ONNX Runtime source tree and build directory.

ORT_HOME is what onnxruntime-genai's CMake expects (docs/upstream.md#build §1.4):

- ``include/`` (flat): every ``include/onnxruntime/core/session/*.h`` and ``*.inc`` plus the platform's extra
  headers (``cpu_provider_factory.h``, ``provider_options.h``, on Windows ``dml_provider_factory.h``);
- ``lib/``: the platform's ORT libraries (Windows: ``onnxruntime.dll/.lib``, ``onnxruntime_providers_shared.dll/.lib``,
  ``DirectML.dll``; Linux: ``libonnxruntime.so*`` with its symlinks kept);
- ``manifest.json``: every staged file with size, sha256, source (and symlink target), the ORT and API versions,
  the platform and the load-check result.

Everything is staged into a temporary directory next to ``out``, validated there, then renamed into place, so a
failed run never loses a previously staged ORT_HOME. Validation: required files present; ``ORT_API_VERSION`` in the
staged header agrees with ``VERSION_NUMBER``; versioned library names agree with it; and, where the library is for
this host, it is loaded (in a subprocess) and ``GetApi(ORT_API_VERSION)`` / ``GetVersionString()`` are checked.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import ortversion
from ..argtypes import output_dir as output_dir_arg
from ..errors import AipcError, ExitCode, UsageError
from ..fsutil import atomic_write_json, claim_output_dir, output_dir, sha256_file
from ..platforms import PLATFORM_NAMES, Platform, get_platform
from ..settings import Option, add_options
from . import ortcheck, release
from .settings import RELEASE_KEYWORDS

# `aipc stage` is a step of the build, which gives it its whole command line (stage_argv): its options have no
# AIPC_* variable, so a variable set for the build (AIPC_ORT_RELEASE, AIPC_CONFIG...) cannot change a stage run
_C = ("stage",)
OPTIONS: tuple[Option, ...] = (
    Option("platform", "--platform", None, "target platform (default: this host)", choices=PLATFORM_NAMES,
           commands=_C),
    Option("ort_source", "--ort-source", None, "ONNX Runtime source tree (with --ort-release: where the headers come "
           "from when the release has none)", parse=Path, metavar="SRC", commands=_C),
    Option("ort_build", "--ort-build", None, "ORT's platform build directory, the one holding Release/ (e.g. "
           "build/Windows)", parse=Path, metavar="BUILD", commands=_C),
    Option("ort_release", "--ort-release", None, "stage from an official ORT release instead: a wheel, a .nupkg, an "
           "unpacked .nupkg or release archive (include/ and lib/), or the release.json of `aipc ort-release`",
           parse=Path, metavar="RELEASE", commands=_C),
    Option("out", "--out", None, "ORT_HOME to create, or replace when aipc staged it", parse=output_dir_arg,
           metavar="ORT_HOME", required=True, commands=_C),
    Option("config", "--config", None, "build configuration (default: Release)", default="Release", commands=_C),
    Option("legacy_ort_dir", "--legacy-ort-dir", None, "also fill this copy of ORT_HOME, e.g. genai's ort/ folder "
           "(read by its C examples)", parse=output_dir_arg, metavar="DIR", commands=_C),
    Option("no_load_check", "--no-load-check", None, "do not load the library to check it", kind="switch",
           commands=_C),
    Option("force", "--force", None, "replace ORT_HOME (and DIR) even when aipc made it for something else or its "
           "files were changed (a file aipc did not make is never replaced)", kind="switch", commands=_C),
)

MANIFEST = "manifest.json"
SCHEMA = 1
KIND = "ort-home"  # the kind of folder (fsutil.MARKER) of ORT_HOME and of its --legacy-ort-dir copy
_SESSION = Path("include", "onnxruntime", "core", "session")
_CORE = Path("include", "onnxruntime", "core")
_C_API = "onnxruntime_c_api.h"


@dataclass(frozen=True)
class StagedFile:
    """One file of ORT_HOME: ``dest`` relative to ORT_HOME (posix), where it came from, symlink target if any."""

    dest: str
    source: Path
    origin: str  # "ort_source" | "ort_build"
    symlink: str | None = None


@dataclass
class _Plan:
    headers: list[StagedFile]
    libs: list[StagedFile]
    artifact_dir: Path
    notes: list[str]


# --- discovery -------------------------------------------------------------------------------------------------


def _present(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def cmake_generator(cmake_build_dir: Path) -> str | None:
    """``CMAKE_GENERATOR`` recorded in ``<dir>/CMakeCache.txt`` (ORT configures ``build/<System>/<config>``)."""
    cache = cmake_build_dir / "CMakeCache.txt"
    if not cache.is_file():
        return None
    for line in cache.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("CMAKE_GENERATOR:"):
            return line.partition("=")[2].strip() or None
    return None


def find_artifact_dir(platform: Platform, ort_build: Path, config: str = "Release", *,
                      generator: str | None = None, hint: str | None = None) -> Path:
    """The directory of ``ort_build`` that holds the built libraries, for either generator layout (``aipc stage``
    and ``aipc build-ort`` alike).

    Multi-config generators (Visual Studio) put them in ``<build>/<config>/<config>/``, single-config ones (Ninja,
    Linux) in ``<build>/<config>/``. ``ort_build`` is ORT's platform build directory (e.g. ``build/Windows``);
    its parent ``build/`` is accepted too. The layout of ``generator`` (the one the caller built with) is tried
    first, else the one ``CMakeCache.txt`` records, then the others. ``hint`` replaces the fix of the errors (the
    default speaks to ``aipc stage --ort-build``).
    """
    if not ort_build.is_dir():
        raise AipcError(
            f"ORT build directory {ort_build} does not exist",
            hint=hint or f"build ORT first (aipc build-ort) and pass its platform build directory "
                         f"(the one holding {config}/, e.g. build/{platform.system}) with --ort-build",
        )
    roots = [ort_build]
    nested = ort_build / platform.system
    if nested.is_dir():
        roots.append(nested)
    searched: list[Path] = []
    for root in roots:
        candidates = [Path(c) for c in platform.artifact_dir_candidates(root, config)]
        used = generator or cmake_generator(root / config)
        if used is not None:  # the generator that configured this build decides the layout
            candidates.insert(0, root.joinpath(*platform.config_dirs(used, config)))
        for path in candidates:
            if path in searched:
                continue
            searched.append(path)
            if _present(path / platform.ort_main_lib):
                return path
    raise AipcError(
        f"missing {platform.ort_main_lib}: not found in {' or '.join(str(p) for p in searched)}",
        hint=hint or f"build ORT with --build_shared_lib --config {config} for {platform.name}, and pass its platform "
             f"build directory (e.g. build/{platform.system}) with --ort-build",
    )


def collect_headers(platform: Platform, ort_source: Path) -> list[StagedFile]:
    """Every session ``*.h``/``*.inc`` and the platform's extra headers, to be staged flat into ``include/``."""
    session = ort_source / _SESSION
    c_api = session / _C_API
    if not c_api.is_file():
        raise AipcError(
            f"missing {c_api}; {ort_source} is not a complete ONNX Runtime source tree",
            hint="pass the root of an ORT checkout (aipc fetch) with --ort-source",
        )
    sources = sorted(p for p in session.iterdir() if p.suffix in (".h", ".inc") and p.is_file())
    for rel in platform.ort_extra_headers:
        path = ort_source / _CORE / rel
        if not path.is_file():
            raise AipcError(
                f"missing {path} ({platform.name} needs it in ORT_HOME/include)",
                hint="pass a complete ORT checkout at the pinned tag with --ort-source",
            )
        sources.append(path)
    staged: dict[str, StagedFile] = {}
    for path in sources:
        dest = f"include/{path.name}"
        if dest in staged:
            raise AipcError(f"two headers would be staged as {dest}: {staged[dest].source} and {path}",
                            hint="remove the stray header from the ORT source tree")
        staged[dest] = StagedFile(dest, path, "ort_source")
    return list(staged.values())


def _lib_chain(name: str, origin_dir: Path, origin: str, notes: list[str]) -> list[StagedFile]:
    """``name`` and, while it is a symlink to a sibling, the files it points to (symlinks kept)."""
    chain: list[StagedFile] = []
    seen: set[str] = set()
    path = origin_dir / name
    while True:
        if path.name in seen:
            raise AipcError(f"{path} is part of a symlink loop", hint="rebuild ORT or fix the links by hand")
        seen.add(path.name)
        if path.is_symlink():
            target = os.readlink(path)
            if not (origin_dir / target).exists():
                raise AipcError(f"{path} is a broken symlink (-> {target})",
                                hint="rebuild ORT; its build directory is incomplete")
            if Path(target).name == target:  # a sibling: keep the link
                chain.append(StagedFile(f"lib/{name}", path, origin, symlink=target))
                name, path = target, origin_dir / target
                continue
            notes.append(f"lib/{name}: symlink to {target} outside {origin_dir}, staged as a copy")
        elif not path.is_file():
            raise AipcError(f"{path} is not a regular file", hint="rebuild ORT")
        chain.append(StagedFile(f"lib/{name}", path, origin))
        return chain


def _numbers(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.as_posix()))


def collect_libs(platform: Platform, artifact_dir: Path, ort_build: Path, version: str) -> tuple[
        list[StagedFile], list[str]]:
    """The required and optional libraries (with their symlink chains) and notes about what was left out."""
    notes: list[str] = []
    staged: dict[str, StagedFile] = {}
    fallbacks = dict(platform.ort_lib_fallbacks)

    def add(files: list[StagedFile]) -> None:
        for f in files:
            staged.setdefault(f.dest, f)

    for name in platform.ort_required_libs:
        if _present(artifact_dir / name):
            add(_lib_chain(name, artifact_dir, "ort_build", notes))
            continue
        found = sorted(ort_build.glob(fallbacks[name]), key=_numbers) if name in fallbacks else []
        if found:
            src = found[-1]  # the newest package version
            add(_lib_chain(src.name, src.parent, "ort_build", notes))
            notes.append(f"lib/{name}: not in {artifact_dir}, taken from {src}")
            continue
        where = str(artifact_dir) + (f" nor {ort_build}/{fallbacks[name]}" if name in fallbacks else "")
        raise AipcError(
            f"missing {name}: not in {where}",
            hint=f"rebuild ORT for {platform.name} with --build_shared_lib (it produces {name}) and stage again",
        )

    # the file the main library finally resolves to must be this version (libonnxruntime.so.1.24.4)
    for f in staged.values():
        libver = ortversion.version_from_lib_name(platform.ort_main_lib, Path(f.dest).name)
        if libver is not None and libver != version:
            raise AipcError(
                f"{f.source} is stale: it is ORT {libver}, but the source tree's VERSION_NUMBER is {version}",
                hint="rebuild ORT from the same checkout as --ort-source (or pass the matching --ort-source)",
            )

    for pattern in platform.ort_optional_libs:
        for path in sorted(artifact_dir.glob(pattern)):
            if f"lib/{path.name}" in staged or path.is_dir():
                continue
            libver = ortversion.version_from_lib_name(platform.ort_main_lib, path.name)
            if libver is not None and libver != version:
                notes.append(f"{path.name}: left out, a leftover of ORT {libver} (staging {version})")
                continue
            add(_lib_chain(path.name, artifact_dir, "ort_build", notes))
    return sorted(staged.values(), key=lambda f: f.dest), notes


# --- staging ---------------------------------------------------------------------------------------------------


def _copy_into(root: Path, files: list[StagedFile]) -> None:
    for f in files:
        dest = root / f.dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        if f.symlink is not None:
            os.symlink(f.symlink, dest)
        else:
            shutil.copy2(f.source, dest)


def _entry(root: Path, f: StagedFile) -> dict[str, Any]:
    path = root / f.dest
    real = path.resolve()
    entry: dict[str, Any] = {
        "path": f.dest,
        "size": real.stat().st_size,
        "sha256": sha256_file(real),
        "source": str(f.source),
        "origin": f.origin,
    }
    if f.symlink is not None:
        entry["symlink"] = f.symlink
    return entry


def _validate(platform: Platform, root: Path, version: str, api_version: int, plan: _Plan, check_load: bool) -> None:
    """Required files present in the staged tree and versions in agreement (before the load check)."""
    required = [f"include/{_C_API}"] + [f"include/{Path(h).name}" for h in platform.ort_extra_headers]
    required += [f"lib/{name}" for name in platform.ort_required_libs]
    for rel in required:
        path = root / rel
        if not path.exists():  # follows symlinks: a link to a missing file counts as missing
            raise AipcError(f"missing {rel} in the staged ORT_HOME (from {plan.artifact_dir})",
                            hint="rebuild ORT; its outputs are incomplete")
    header_api = ortversion.parse_api_version(root / "include" / _C_API)
    if header_api != api_version:
        also = ""
        if check_load:  # say which side the library is on, when it can be loaded here
            lib = ortcheck.check_library(platform, root / "lib" / platform.ort_main_lib, header_api, version,
                                       display=f"lib/{platform.ort_main_lib}")
            if lib.status == "fail":
                also = f" (and {lib.reason})"
            elif lib.status == "pass":
                also = f" (lib/{platform.ort_main_lib} accepts API {header_api})"
        raise AipcError(
            f"include/{_C_API} is stale: it defines ORT_API_VERSION {header_api}, but VERSION_NUMBER {version} "
            f"means API version {api_version}{also}",
            hint="stage headers and VERSION_NUMBER from one ORT checkout at the pinned tag (aipc fetch)",
        )
    if platform.binary_format == "pe":
        file_version = ortcheck.pe_file_version(root / "lib" / platform.ort_main_lib)
        if file_version is not None and file_version.split(".")[:2] != version.split(".")[:2]:
            raise AipcError(
                f"lib/{platform.ort_main_lib} is stale: its file version is {file_version}, but VERSION_NUMBER "
                f"is {version}",
                hint="rebuild ORT from the same checkout as --ort-source",
            )
        plan.notes.append(f"lib/{platform.ort_main_lib}: file version {file_version or 'not recorded'}")


def stage_ort_home(
    platform: Platform,
    ort_source: Path,
    ort_build: Path,
    out: Path,
    *,
    config: str = "Release",
    legacy_ort_dir: Path | None = None,
    check_load: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Stage ORT_HOME (include/, lib/, manifest.json) atomically into ``out``; returns the manifest.

    ``out`` (and ``legacy_ort_dir``) must be new, empty, or an ORT_HOME aipc staged (``force``: also a folder aipc
    made for something else or changed since), never the ORT source or build tree."""
    try:
        return _stage(platform, Path(ort_source), Path(ort_build), Path(out), config, legacy_ort_dir, check_load,
                      force)
    except OSError as exc:  # a file system problem (permissions, disk full, a file where a directory should be)
        where = f" {exc.filename}" if exc.filename else ""
        raise AipcError(f"cannot stage ORT_HOME {out}:{where}: {exc.strerror or exc}",
                        hint="check the paths, permissions and free disk space, then stage again") from None


def _stage(
    platform: Platform, ort_source: Path, ort_build: Path, out: Path, config: str, legacy_ort_dir: Path | None,
    check_load: bool, force: bool,
) -> dict[str, Any]:
    ort_source = Path(ort_source).absolute()
    ort_build = Path(ort_build).absolute()
    inputs = [ort_source, ort_build]
    out = claim_output_dir(out, KIND, force=force, inputs=inputs, recognise=is_ort_home)
    if legacy_ort_dir is not None:
        legacy_ort_dir = claim_output_dir(legacy_ort_dir, KIND, force=force, inputs=[*inputs, out],
                                          recognise=is_ort_home)
    if not ort_source.is_dir():
        raise AipcError(f"ORT source directory {ort_source} does not exist",
                        hint="fetch ORT first (aipc fetch) and pass its checkout with --ort-source")
    version = ortversion.read_version_number(ort_source)
    api_version = ortversion.api_version_for(version)
    headers = collect_headers(platform, ort_source)
    artifact_dir = find_artifact_dir(platform, ort_build, config)
    libs, notes = collect_libs(platform, artifact_dir, ort_build, version)
    plan = _Plan(headers, libs, artifact_dir, notes)

    with output_dir(out, KIND, force=force, inputs=inputs, recognise=is_ort_home) as tmp:
        _copy_into(tmp, headers + libs)
        _validate(platform, tmp, version, api_version, plan, check_load)
        main = tmp / "lib" / platform.ort_main_lib
        if check_load:
            check = ortcheck.check_library(platform, main, api_version, version,
                                         display=f"lib/{platform.ort_main_lib} (from {artifact_dir})")
        else:
            check = ortcheck.LoadCheck("skip", "disabled with --no-load-check", f"lib/{platform.ort_main_lib}",
                                     api_version)
        if check.status == "fail":
            raise AipcError(check.reason, hint="rebuild ORT from the same checkout as --ort-source and stage again")
        manifest: dict[str, Any] = {
            "schema": SCHEMA,
            "platform": platform.name,
            "ort_version": version,
            "api_version": api_version,
            "config": config,
            "ort_source": str(ort_source),
            "ort_build": str(ort_build),
            "artifact_dir": str(artifact_dir),
            "files": [_entry(tmp, f) for f in headers + libs],
            "load_check": check.to_json(),
            "notes": plan.notes,
        }
        _write_manifest(tmp, manifest, legacy_ort_dir)
    _copy_legacy(out, legacy_ort_dir, force=force, inputs=inputs)
    return manifest


def _write_manifest(tmp: Path, manifest: dict[str, Any], legacy_ort_dir: Path | None) -> None:
    """ORT_HOME's manifest.json (both routes), naming the legacy copy when there is one."""
    if legacy_ort_dir is not None:
        manifest["legacy_ort_dir"] = str(Path(legacy_ort_dir).absolute())
    atomic_write_json(tmp / MANIFEST, manifest)


def _copy_legacy(out: Path, legacy_ort_dir: Path | None, *, force: bool, inputs: list[Path]) -> None:
    """The ``--legacy-ort-dir`` copy of a finished ORT_HOME (a folder aipc owns, replaced as a whole)."""
    if legacy_ort_dir is not None:
        with output_dir(legacy_ort_dir, KIND, force=force, inputs=[*inputs, out], recognise=is_ort_home) as copy:
            shutil.copytree(out, copy, symlinks=True, dirs_exist_ok=True)


def is_ort_home(folder: Path) -> bool:
    """True when ``folder`` holds an ORT_HOME manifest.json aipc wrote (before folders carried fsutil.MARKER)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("schema") == SCHEMA and "ort_version" in data and "files" in data


# --- staging from an official release (--ort-release) ------------------------------------------------------------


def _release_record(path: Path, rel: release.Release) -> dict[str, Any]:
    sha = sha256_file(path) if path.is_file() else release.tree_sha256(path)
    return {"file": str(path), "name": path.name, "kind": rel.kind, "sha256": sha, "version": rel.version,
            "source": "local"}


def stage_release(
    platform: Platform,
    release_path: Path,
    ort_source: Path | None,
    out: Path,
    *,
    record: dict[str, Any] | None = None,
    legacy_ort_dir: Path | None = None,
    check_load: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Stage ORT_HOME from an official release (a wheel, .nupkg, unpacked .nupkg or release archive, or the
    ``release.json`` that ``aipc ort-release`` wrote); headers from the release, else from ``ort_source``."""
    try:
        return _stage_release(platform, Path(release_path), ort_source, Path(out), record, legacy_ort_dir,
                              check_load, force)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise AipcError(f"cannot stage ORT_HOME {out}:{where}: {exc.strerror or exc}",
                        hint="check the paths, permissions and free disk space, then stage again") from None


def _stage_release(
    platform: Platform, release_path: Path, ort_source: Path | None, out: Path, record: dict[str, Any] | None,
    legacy_ort_dir: Path | None, check_load: bool, force: bool,
) -> dict[str, Any]:
    if release_path.name == release.RECORD and release_path.is_file():
        try:
            record = json.loads(release_path.read_text(encoding="utf-8"))
            path = release.check_recorded_file(record)
        except (ValueError, KeyError, TypeError):
            raise AipcError(f"{release_path} is not a release record written by `aipc ort-release`",
                            hint="run `aipc ort-release` again") from None
    else:
        path = release_path.absolute()
    inputs = [path, *([Path(ort_source)] if ort_source is not None else [])]
    out = claim_output_dir(out, KIND, force=force, inputs=inputs, recognise=is_ort_home)
    if legacy_ort_dir is not None:
        legacy_ort_dir = claim_output_dir(legacy_ort_dir, KIND, force=force, inputs=[*inputs, out],
                                          recognise=is_ort_home)
    rel = release.open_release(platform, path)
    version = rel.version
    release_api = release.api_version(version)
    fmt = {"version": version, "major": version.split(".")[0]}
    required = release.check_libs(platform, rel)
    names = required + [n for n in platform.ort_release_optional_libs if n in rel.libs]
    notes = [f"lib/{n}: not in the release (optional)" for n in platform.ort_release_optional_libs
             if n not in rel.libs]

    source_headers: list[StagedFile] = []
    if _C_API in rel.headers:
        headers_from = f"{path.name} (the release)"
        wanted = {Path(h).name for h in platform.ort_extra_headers}
        absent = sorted(wanted - set(rel.headers))
        if absent:
            raise AipcError(f"{path.name} has ORT headers but not {', '.join(absent)} ({platform.name} needs them in "
                            "ORT_HOME/include)", hint=release.headers_hint(platform))
        if ort_source is not None:
            notes.append(f"headers taken from the release; --ort-source {ort_source} not used")
    elif ort_source is not None:
        ort_source = Path(ort_source).absolute()
        if not ort_source.is_dir():
            raise AipcError(f"ORT source directory {ort_source} does not exist", hint=release.headers_hint(platform))
        source_headers = collect_headers(platform, ort_source)
        headers_from = str(ort_source)
    else:
        raise AipcError(f"{path.name} holds no ONNX Runtime headers ({_C_API}) and no --ort-source was given",
                        hint=release.headers_hint(platform))

    with output_dir(out, KIND, force=force, inputs=inputs, recognise=is_ort_home) as tmp:
        entries: list[dict[str, Any]] = []
        for name in names:
            rel.extract(rel.libs[name], tmp / "lib" / name)
            entries.append(_release_entry(tmp, f"lib/{name}", f"{path}!{rel.libs[name]}" if rel.is_zip
                                          else str(path / rel.libs[name]), "release"))
        target = required[0]
        for link in platform.ort_release_links:
            name = link.format(**fmt)
            os.symlink(target, tmp / "lib" / name)
            entry = _release_entry(tmp, f"lib/{name}", f"made by aipc (-> {target})", "aipc")
            entries.append({**entry, "symlink": target})
            target = name
        if source_headers:
            _copy_into(tmp, source_headers)
            entries += [_entry(tmp, f) for f in source_headers]
        else:
            for base, member in sorted(rel.headers.items()):
                rel.extract(member, tmp / "include" / base)
                entries.append(_release_entry(tmp, f"include/{base}", f"{path}!{member}" if rel.is_zip
                                              else str(path / member), "release"))
        header_api = ortversion.parse_api_version(tmp / "include" / _C_API)
        main_rel = f"lib/{platform.ort_main_lib}"
        if check_load:
            check = ortcheck.check_library(platform, tmp / "lib" / platform.ort_main_lib, header_api, version,
                                         display=f"{main_rel} (from {path.name})",
                                         expected_from=f"the release {path.name}")
        else:
            check = ortcheck.LoadCheck("skip", "disabled with --no-load-check", main_rel, header_api)
        newer = (f"the headers are newer than the release: include/{_C_API} (from {headers_from}) defines "
                 f"ORT_API_VERSION {header_api}, but")
        newer_hint = (f"stage headers of ORT {version} or older (--ort-source at tag v{version}), or use a release at "
                      f"least as new as the headers")
        if check.status == "fail":
            if f"GetApi({header_api}) returned NULL" in check.reason:
                raise AipcError(f"{newer} {main_rel} (ORT {check.version_string}) returns NULL from "
                                f"GetApi({header_api})", hint=newer_hint)
            raise AipcError(check.reason, hint="pass an unmodified ORT release")
        if check.status == "skip" and header_api > release_api:
            raise AipcError(f"{newer} ORT {version} provides API versions up to {release_api} (GetApi({header_api}) "
                            "would return NULL)", hint=newer_hint)
        if platform.binary_format == "pe":
            file_version = ortcheck.pe_file_version(tmp / "lib" / platform.ort_main_lib)
            if file_version is not None and file_version.split(".")[:2] != version.split(".")[:2]:
                raise AipcError(f"{main_rel} of {path.name} has file version {file_version}, but the release is "
                                f"{version}", hint="pass an unmodified ORT release")
            notes.append(f"{main_rel}: file version {file_version or 'not recorded'}")
        manifest: dict[str, Any] = {
            "schema": SCHEMA,
            "platform": platform.name,
            "ort_version": version,
            "api_version": header_api,
            "release_api_version": release_api,
            "release": record or _release_record(path, rel),
            "headers_from": headers_from,
            "files": sorted(entries, key=lambda e: str(e["path"])),
            "load_check": check.to_json(),
            "notes": notes,
        }
        _write_manifest(tmp, manifest, legacy_ort_dir)
    _copy_legacy(out, legacy_ort_dir, force=force, inputs=inputs)
    return manifest


def _release_entry(root: Path, dest: str, source: str, origin: str) -> dict[str, Any]:
    real = (root / dest).resolve()
    return {"path": dest, "size": real.stat().st_size, "sha256": sha256_file(real), "source": source,
            "origin": origin}


# --- command line ----------------------------------------------------------------------------------------------


def stage_argv(
    platform: Platform,
    ort_source: str | os.PathLike[str] | None,
    ort_build: str | os.PathLike[str] | None,
    out: str | os.PathLike[str],
    *,
    config: str = "Release",
    legacy_ort_dir: str | os.PathLike[str] | None = None,
    check_load: bool = True,
    ort_release: str | os.PathLike[str] | None = None,
) -> list[str]:
    """The ``aipc stage`` command line equivalent to a :func:`stage_ort_home` call (or, with ``ort_release``, a
    :func:`stage_release` call: ``ort_source`` may then be None), for plans and logs."""
    argv = ["aipc", "stage", "--platform", platform.name]
    if ort_release is not None:
        argv += ["--ort-release", os.fspath(ort_release)]
        if ort_source is not None:
            argv += ["--ort-source", os.fspath(ort_source)]
        argv += ["--out", os.fspath(out)]
    else:
        assert ort_source is not None and ort_build is not None
        argv += ["--ort-source", os.fspath(ort_source), "--ort-build", os.fspath(ort_build), "--out",
                 os.fspath(out), "--config", config]
    if legacy_ort_dir is not None:
        argv += ["--legacy-ort-dir", os.fspath(legacy_ort_dir)]
    if not check_load:
        argv.append("--no-load-check")
    return argv


def _cmd_stage(args: argparse.Namespace) -> int:
    platform = get_platform(args.platform)
    if args.ort_release is not None:
        spec = str(args.ort_release)
        if spec.lower() in RELEASE_KEYWORDS and not args.ort_release.exists():
            raise UsageError(f"aipc stage --ort-release takes a release file or folder, not {spec!r}",
                             hint=f"download it first: `aipc ort-release --ort-release {spec.lower()}` writes "
                                  f"<workdir>/{release.RELEASE_DIR}/{release.RECORD}, pass that; or run `aipc build "
                                  f"--ort-release {spec.lower()} --steps ort-release stage`")
        if args.ort_build is not None:
            raise UsageError("--ort-build and --ort-release name two different ORTs",
                             hint="pass --ort-build (with --ort-source) for an ORT build, or --ort-release")
        manifest = stage_release(platform, args.ort_release, args.ort_source, args.out,
                                 legacy_ort_dir=args.legacy_ort_dir, check_load=not args.no_load_check,
                                 force=args.force)
        _print_staged(args, platform, manifest, f"release {manifest['release']['file']}, headers from "
                                                f"{manifest['headers_from']}")
        return ExitCode.OK
    if args.ort_source is None or args.ort_build is None:
        raise UsageError("aipc stage needs --ort-source and --ort-build (an ORT build), or --ort-release",
                         hint="pass --ort-source SRC --ort-build BUILD, or --ort-release FILE [--ort-source SRC]")
    manifest = stage_ort_home(
        platform, args.ort_source, args.ort_build, args.out, config=args.config,
        legacy_ort_dir=args.legacy_ort_dir, check_load=not args.no_load_check, force=args.force,
    )
    _print_staged(args, platform, manifest, str(manifest["artifact_dir"]))
    return ExitCode.OK


def _print_staged(args: argparse.Namespace, platform: Platform, manifest: dict[str, Any], origin: str) -> None:
    files = manifest["files"]
    n_headers = sum(1 for f in files if f["path"].startswith("include/"))
    n_libs = len(files) - n_headers
    out = Path(args.out).absolute()
    print(f"staged ORT_HOME {out}: ORT {manifest['ort_version']} (API {manifest['api_version']}), "
          f"{platform.name}, {n_headers} headers, {n_libs} library files from {origin}")
    for note in manifest["notes"]:
        print(f"  note: {note}")
    print(ortcheck.LoadCheck(**manifest["load_check"]).summary())
    if args.legacy_ort_dir is not None:
        print(f"also filled genai's ort/ folder {manifest['legacy_ort_dir']}")
    print(f"manifest: {out / MANIFEST}")


def register_cli(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``aipc stage`` to the parser."""
    p = sub.add_parser(
        "stage", help="stage and validate ORT_HOME (flat include/, lib/, manifest.json) for onnxruntime-genai",
        description="Copy ORT's headers (flat) and libraries into ORT_HOME, write manifest.json, and validate "
                    "it: required files, header API version vs VERSION_NUMBER, and (on the library's own "
                    "platform) a load check of GetApi(ORT_API_VERSION) and GetVersionString().",
    )
    add_options(p, OPTIONS, "stage")
    p.set_defaults(func=_cmd_stage)
