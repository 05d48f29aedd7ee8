"""Is a built wheel clean: no build machine's path baked into its native libraries?

- ELF (Linux): every ``.so`` (and any other ELF member) is read with pyelftools; each ``DT_RUNPATH``/``DT_RPATH``
  entry must be relative to the library (``$ORIGIN``/``${ORIGIN}``). An absolute entry (genai's library gets
  ``<ORT_HOME>/lib`` from CMake's build RPATH) is a path of the machine that built it: the wheels step refuses it.
- PE (Windows): a DLL has no RUNPATH. The report lists, for each DLL/PYD, the DLLs it imports and where the
  Windows loader would find each: next to it in the wheel, in the ``onnxruntime`` package's ``capi`` folder (genai's
  ``_dll_directory.py`` adds it with ``os.add_dll_directory``), or the system. Nothing there names a build path,
  so a PE wheel is never refused for this; the record says what a DLL search would find.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AipcError

ORIGIN_PREFIXES = ("$ORIGIN", "${ORIGIN}")
# DLLs the onnxruntime(-directml) package ships in onnxruntime/capi (what genai's import adds to the search)
ORT_PACKAGE_DLLS = ("onnxruntime.dll", "directml.dll", "onnxruntime_providers_shared.dll")


@dataclass
class WheelReport:
    wheel: str
    elf: dict[str, list[str]] = field(default_factory=dict)  # member -> RUNPATH/RPATH entries
    dirty: dict[str, list[str]] = field(default_factory=dict)  # member -> entries naming a build path
    pe: dict[str, dict[str, str]] = field(default_factory=dict)  # member -> {imported dll: where it is found}

    def to_json(self) -> dict[str, Any]:
        return {"wheel": self.wheel, "elf_runpaths": self.elf, "build_paths": self.dirty, "pe_imports": self.pe,
                "clean": not self.dirty}


def elf_runpaths(data: bytes) -> list[str]:
    """The DT_RUNPATH and DT_RPATH entries of an ELF image (``:``-separated values split; empty entries kept)."""
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    entries: list[str] = []
    elf = ELFFile(io.BytesIO(data))
    for section in elf.iter_sections():
        if not isinstance(section, DynamicSection):
            continue
        for tag in section.iter_tags():
            if tag.entry.d_tag in ("DT_RUNPATH", "DT_RPATH"):
                value = getattr(tag, "runpath" if tag.entry.d_tag == "DT_RUNPATH" else "rpath")
                # an empty entry ("/b/ort_home/lib:" as genai's real build leaves it) is kept: the loader reads it
                # as the current directory, which is not the wheel's
                entries += str(value).split(":")
    return entries


def _is_relative_to_origin(entry: str) -> bool:
    return entry.startswith(ORIGIN_PREFIXES)


def pe_imports(data: bytes) -> list[str]:
    """The DLL names a PE image imports (its import directory), or [] when it has none or is not PE."""
    if data[:2] != b"MZ" or len(data) < 0x40:
        return []
    (pe,) = struct.unpack_from("<I", data, 0x3C)
    if data[pe:pe + 4] != b"PE\0\0":
        return []
    n_sections, = struct.unpack_from("<H", data, pe + 6)
    opt_size, = struct.unpack_from("<H", data, pe + 20)
    opt = pe + 24
    magic, = struct.unpack_from("<H", data, opt)
    dirs = opt + (112 if magic == 0x20B else 96)
    import_rva, _size = struct.unpack_from("<II", data, dirs + 8)
    if not import_rva:
        return []
    sections = []
    for i in range(n_sections):
        off = opt + opt_size + 40 * i
        vsize, vaddr, rsize, raw = struct.unpack_from("<IIII", data, off + 8)
        sections.append((vaddr, max(vsize, rsize), raw))

    def to_offset(rva: int) -> int:
        for vaddr, size, raw in sections:
            if vaddr <= rva < vaddr + size:
                return int(rva - vaddr + raw)
        raise ValueError(rva)

    names: list[str] = []
    try:
        at = to_offset(import_rva)
        while at + 20 <= len(data):
            name_rva = struct.unpack_from("<I", data, at + 12)[0]
            if not name_rva:
                break
            start = to_offset(name_rva)
            end = data.index(b"\0", start)
            names.append(data[start:end].decode("ascii", "replace"))
            at += 20
    except (ValueError, struct.error):
        return names
    return names


def check_wheel(wheel: Path) -> WheelReport:
    """Read every native member of ``wheel``; the report says what each would search at run time."""
    report = WheelReport(wheel.name)
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            folders: dict[str, set[str]] = {}
            for info in members:
                folder, _, base = info.filename.rpartition("/")
                folders.setdefault(folder, set()).add(base.lower())
            for info in members:
                with zf.open(info) as fh:
                    head = fh.read(4)
                if head == b"\x7fELF":
                    entries = elf_runpaths(zf.read(info))
                    report.elf[info.filename] = entries
                    bad = [e for e in entries if not _is_relative_to_origin(e)]
                    if bad:
                        report.dirty[info.filename] = bad
                elif head[:2] == b"MZ" and info.filename.lower().endswith((".dll", ".pyd")):
                    folder = info.filename.rpartition("/")[0]
                    found = {}
                    for dll in pe_imports(zf.read(info)):
                        low = dll.lower()
                        if low in folders.get(folder, set()):
                            found[dll] = "next to it in the wheel"
                        elif low in ORT_PACKAGE_DLLS:
                            found[dll] = "onnxruntime/capi (added by genai's _dll_directory.py)"
                        else:
                            found[dll] = "the system (System32 / the loader's search)"
                    report.pe[info.filename] = found
    except zipfile.BadZipFile:
        raise AipcError(f"{wheel} is not a valid wheel (bad zip file)", hint="delete it and rebuild") from None
    return report


def _shown(entry: str) -> str:
    return entry or "'' (empty: the current directory)"


def require_clean(wheel: Path) -> WheelReport:
    """Refuse a wheel whose libraries carry a build machine's path (one line naming the first)."""
    report = check_wheel(wheel)
    if report.dirty:
        member, entries = next(iter(report.dirty.items()))
        raise AipcError(
            f"{wheel.name}: {member} has the RUNPATH {', '.join(_shown(e) for e in entries)}, a path of the build "
            "machine (the wheel would load libraries from there, or nothing, elsewhere)",
            hint="rebuild genai with CMAKE_SKIP_BUILD_RPATH=ON (aipc passes it; check --cmake-define) "
                 "and run `aipc build-genai --force`",
        )
    return report
