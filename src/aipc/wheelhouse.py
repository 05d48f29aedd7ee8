"""The ``wheels/`` directory: aipc's build output, with ``SHA256SUMS`` and ``manifest.json``.

Conventions every producer follows (``build`` and ``build_npu``):
- a wheel is copied in atomically (temporary name, then rename), so ``wheels/`` never holds a partial file;
- ``SHA256SUMS`` (``<sha256>  <file>`` lines, sorted) and ``manifest.json`` are rewritten atomically after each add;
- a manifest entry records name, version, tags, sha256, size, and the producer's provenance (source commits, pins);
- writers hold the folder's lock (:func:`aipc.locks.hold`), and write only into a folder aipc made (its
  ``aipc-folder.json`` marker of kind ``wheels``, or an aipc ``manifest.json``) or a new or empty one;
- readers trust a wheel only when its sha256 agrees with the folder's ``SHA256SUMS`` (:func:`checked_wheel`);
  ``aipc wheels --check`` runs :func:`check_folder`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.metadata import Metadata
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from .errors import AipcError, UsageError
from .fsutil import atomic_copy, atomic_write_json, atomic_write_text, sha256_file, use_output_dir
from .locks import hold
from .settings import DEFAULT_WHEELS_DIR as DEFAULT_WHEELS_DIR
from .settings import wheels_dir as wheels_dir  # --wheels, else AIPC_WHEELS, else ./wheels

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
KIND = "wheels"  # the kind of folder (fsutil.MARKER) of a wheels/ folder


@dataclass(frozen=True)
class WheelInfo:
    file: str
    name: str
    version: str
    tags: tuple[str, ...]

    @classmethod
    def from_path(cls, path: Path) -> WheelInfo:
        try:
            name, version, _build, tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename as exc:
            raise AipcError(f"{path.name} is not a valid wheel file name ({exc})") from None
        return cls(path.name, str(name), str(version), tuple(sorted(str(t) for t in tags)))


def wheel_metadata_bytes(path: Path) -> bytes:
    """The bytes of the wheel's ``*.dist-info/METADATA`` (what a package index serves as its PEP 658 file)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1]
            if not names:
                raise AipcError(f"{path} has no .dist-info/METADATA", hint="rebuild the wheel")
            return zf.read(names[0])
    except zipfile.BadZipFile:
        raise AipcError(f"{path} is not a valid wheel (bad zip file)", hint="delete it and rebuild") from None


def wheel_metadata(path: Path) -> Metadata:
    """The wheel's ``*.dist-info/METADATA`` (core metadata, read by :mod:`packaging.metadata`). Not validated as a
    whole: a field is checked when it is read (``.requires_dist`` raises ``packaging.metadata.InvalidMetadata`` on a
    bad entry), so one odd field elsewhere does not stop the check of the one aipc needs."""
    try:
        text = wheel_metadata_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise AipcError(f"{path}: its METADATA is not UTF-8", hint="rebuild the wheel") from None
    return Metadata.from_email(text, validate=False)


def read_manifest(directory: Path) -> dict[str, Any]:
    import json

    path = directory / MANIFEST
    if not path.is_file():
        return {"schema": 1, "wheels": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise AipcError(
            f"{path} is not valid JSON ({exc})", hint=f"delete {path}; the next build rewrites it"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("wheels"), list):
        raise AipcError(f"{path} has no 'wheels' list", hint=f"delete {path}; the next build rewrites it")
    for i, entry in enumerate(data["wheels"]):
        name = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\:\0"):
            raise AipcError(f"{path}: wheels[{i}] has no valid \"file\" (a wheel's file name, got {name!r})",
                            hint=f"delete {path}; the next build rewrites it")
        if not isinstance(entry.get("sha256"), str):
            raise AipcError(f"{path}: wheels[{i}] ({name}) has no \"sha256\"",
                            hint=f"delete {path}; the next build rewrites it")
    return data


def is_wheels_dir(directory: Path) -> bool:
    """True when ``directory`` holds an aipc ``manifest.json`` (a wheels folder made before folders had markers)."""
    try:
        read_manifest(directory)
    except AipcError:
        return False
    return (directory / MANIFEST).is_file()


def _entries(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["file"]: e for e in manifest["wheels"] if isinstance(e, dict) and isinstance(e.get("file"), str)}


def add_wheels(directory: Path, wheels: list[Path], provenance: dict[str, Any],
               retire: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Copy wheels into ``directory`` atomically and record them in SHA256SUMS and manifest.json (holding the
    folder's lock, so two writers never lose each other's entries). ``retire``: file names the new wheels replace
    (e.g. the ``linux_x86_64`` name of a wheel now tagged manylinux); each is removed only when aipc made it (listed
    in the manifest with the sha256 it still has), any other file of that name is left alone."""
    directory = use_output_dir(directory, KIND, recognise=is_wheels_dir)
    with hold("wheels", directory, f"the wheels folder {directory}"):
        return _add_wheels(directory, wheels, provenance, retire)


def collected_name(directory: Path, wheel: Path) -> str:
    """The name ``wheel`` has in ``directory`` once collected: the file whose manifest ``fit`` record says it was
    made from these very bytes (retagged, licenses added: :mod:`aipc.wheelfit`), else ``wheel``'s own name."""
    try:
        entries = read_manifest(directory)["wheels"]
    except AipcError:
        return wheel.name
    made_from = [e for e in entries if isinstance(e.get("fit"), dict) and e["fit"].get("from") == wheel.name]
    if made_from and wheel.is_file():
        digest = sha256_file(wheel)
        for entry in made_from:
            if entry["fit"].get("from_sha256") == digest:
                return str(entry["file"])
    return wheel.name


def _refuse_stranger(directory: Path, dest: Path, src: Path, entries: dict[str, dict[str, Any]]) -> None:
    """A wheel file aipc did not record is never overwritten by another one."""
    if dest.exists() and dest.name not in entries and sha256_file(dest) != sha256_file(src):
        raise UsageError(f"{dest} is not listed in {directory / MANIFEST}: aipc did not put it there",
                         hint=f"move it out of {directory}, or pass another --wheels folder")


def _add_wheels(directory: Path, wheels: list[Path], provenance: dict[str, Any],
                retire: Sequence[str] = ()) -> list[dict[str, Any]]:
    manifest = read_manifest(directory)
    entries = _entries(manifest)
    added = []
    new_names = {src.name for src in wheels}
    for name in retire:
        old, entry = directory / name, entries.get(name)
        if name in new_names or entry is None or not old.is_file():
            continue
        if sha256_file(old) == entry.get("sha256"):  # aipc made it and it is unchanged
            old.unlink()
            del entries[name]
    for src in wheels:
        info = WheelInfo.from_path(src)
        dest = directory / info.file
        if src.resolve() != dest.resolve():
            _refuse_stranger(directory, dest, src, entries)
            atomic_copy(src, dest)
        entry = {
            "file": info.file,
            "name": info.name,
            "version": info.version,
            "tags": list(info.tags),
            "sha256": sha256_file(dest),
            "size": dest.stat().st_size,
            **provenance,
        }
        entries[info.file] = entry
        added.append(entry)
    # drop entries whose file is gone (e.g. deleted by hand)
    manifest["wheels"] = [entries[k] for k in sorted(entries) if (directory / k).is_file()]
    write_index(directory, manifest)
    return added


def write_index(directory: Path, manifest: dict[str, Any]) -> None:
    atomic_write_json(directory / MANIFEST, manifest)
    lines = [f"{e['sha256']}  {e['file']}" for e in manifest["wheels"]]
    atomic_write_text(directory / SUMS, "".join(line + "\n" for line in lines))


def read_sums(directory: Path) -> dict[str, str] | None:
    """``SHA256SUMS`` as file -> sha256 (None when the folder has none)."""
    try:
        text = (directory / SUMS).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise AipcError(f"cannot read {directory / SUMS} ({exc})", hint=f"rebuild the wheels in {directory}") from None
    sums = {}
    for line in text.splitlines():
        digest, sep, name = line.partition("  ")
        if line.strip():
            if not sep or len(digest) != 64:
                raise AipcError(f"{directory / SUMS} has a malformed line {line[:80]!r}",
                                hint=f"rebuild the wheels in {directory} (aipc wheels --check {directory})")
            sums[name] = digest
    return sums


def checked_wheel(wheel: Path) -> Path:
    """``wheel``, after checking it against its folder's ``SHA256SUMS`` (when the folder has one): a wheel that is
    not listed there, or whose bytes changed, is refused before anything installs it."""
    sums = read_sums(wheel.parent)
    if sums is None:
        return wheel
    digest = sums.get(wheel.name)
    if digest is None:
        raise AipcError(f"{wheel} is not listed in {wheel.parent / SUMS}: refusing to install it",
                        hint=f"rebuild it with aipc, or move it out of {wheel.parent}")
    if sha256_file(wheel) != digest:
        raise AipcError(f"{wheel} does not match its sha256 in {wheel.parent / SUMS} (changed or damaged): "
                        "refusing to install it", hint=f"rebuild it (aipc wheels --check {wheel.parent} lists all)")
    return wheel


def refuse_tampered(directory: Path) -> None:
    """Before a run installs anything from ``directory`` (verify, smoke, bench): every wheel there must agree with
    its ``SHA256SUMS`` (:func:`checked_wheel`); one line names the first that does not."""
    if directory.is_dir():
        for wheel in sorted(directory.glob("*.whl")):
            checked_wheel(wheel)


def check_folder(directory: Path) -> list[str]:
    """Every problem of a wheels folder: SHA256SUMS missing, a listed wheel missing or changed, a wheel on disk
    not listed, manifest.json disagreeing with SHA256SUMS (empty when the folder is consistent)."""
    if not directory.is_dir():
        return [f"{directory} is not a folder"]
    if not any(directory.glob("*.whl")) and not (directory / SUMS).exists() and not (directory / MANIFEST).exists():
        return []  # no wheels built yet (e.g. a fresh clone's wheels/)
    problems = verify_sums(directory)
    sums = read_sums(directory) or {}
    for path in sorted(directory.glob("*.whl")):
        if path.name not in sums:
            problems.append(f"{path.name}: on disk but not listed in {SUMS}")
    try:
        entries = _entries(read_manifest(directory))
    except AipcError as exc:
        return [*problems, exc.message]
    for name in sorted(set(entries) | set(sums)):
        if name not in entries:
            problems.append(f"{name}: in {SUMS} but not in {MANIFEST}")
        elif name not in sums:
            problems.append(f"{name}: in {MANIFEST} but not in {SUMS}")
        elif entries[name].get("sha256") != sums[name]:
            problems.append(f"{name}: {MANIFEST} and {SUMS} disagree on its sha256")
    return problems


def verify_sums(directory: Path) -> list[str]:
    """Re-hash every wheel listed in SHA256SUMS; returns the problems found (empty when all match)."""
    problems = []
    sums = directory / SUMS
    if not sums.is_file():
        return [f"{sums} is missing"]
    for line in sums.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: listed in {SUMS} but missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name}: sha256 does not match {SUMS}")
    return problems


def wheel_fits_host(wheel: Path) -> bool:
    """True when pip on this interpreter could install ``wheel`` (one of its tags is supported here)."""
    from packaging.tags import sys_tags

    try:
        tags = parse_wheel_filename(wheel.name)[3]
    except InvalidWheelFilename:  # an odd file name is simply not usable
        return False
    supported = set(sys_tags())
    return any(t in supported for t in tags)


def find_wheels(directory: Path, dist_name: str, prefer_version: str | None = None) -> list[Path]:
    """Wheels in ``directory`` whose normalized distribution name is ``dist_name``: newest version first, and among
    wheels of one version (e.g. one per Python) the most recently written first. With ``prefer_version``, the
    wheels of that version (compared as versions: ``1.24.4`` == ``1.24.4.0``) come before all others."""
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    want = canonicalize_name(dist_name)
    found = []
    if directory.is_dir():
        for path in directory.glob("*.whl"):
            try:
                info = WheelInfo.from_path(path)
            except AipcError:
                continue
            if canonicalize_name(info.name) == want:
                found.append((Version(info.version), path.stat().st_mtime, path))
    ordered = sorted(found, reverse=True)
    try:
        preferred = Version(prefer_version) if prefer_version is not None else None
    except InvalidVersion:
        preferred = None
    return [p for v, _, p in ordered if v == preferred] + [p for v, _, p in ordered if v != preferred]


def merge_wheelhouses(dest: Path, parts: list[Path]) -> list[dict[str, Any]]:
    """Merge wheels/ directories (e.g. CI artifacts, one per build job) into ``dest``: every part's SHA256SUMS is
    verified first, then its wheels are copied with their manifest entries (provenance kept) and ``dest``'s
    SHA256SUMS and manifest.json are rewritten. Returns the merged manifest entries (sorted by file)."""
    parts = sorted(parts)
    for part in parts:
        problems = verify_sums(part)
        if problems:
            raise AipcError(f"{part}: {'; '.join(problems)}", hint="download or rebuild that artifact")
        sums = {
            name: digest
            for digest, _, name in (line.partition("  ") for line in (part / SUMS).read_text(encoding="utf-8")
                                    .splitlines() if line.strip())
        }
        for entry in read_manifest(part)["wheels"]:
            if sums.get(entry["file"]) != entry.get("sha256"):
                raise AipcError(f"{part}: {entry['file']} of {MANIFEST} is not listed in {SUMS} with its sha256",
                                hint="download or rebuild that artifact")
    dest = use_output_dir(dest, KIND, recognise=is_wheels_dir)
    with hold("wheels", dest, f"the wheels folder {dest}"):
        manifest = read_manifest(dest)
        entries = _entries(manifest)
        for part in parts:
            for entry in read_manifest(part)["wheels"]:
                _refuse_stranger(dest, dest / entry["file"], part / entry["file"], entries)
                atomic_copy(part / entry["file"], dest / entry["file"])
                entries[entry["file"]] = entry
        manifest["wheels"] = [entries[k] for k in sorted(entries) if (dest / k).is_file()]
        write_index(dest, manifest)
        return list(manifest["wheels"])
