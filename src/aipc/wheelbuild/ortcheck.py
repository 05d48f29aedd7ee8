"""The ONNX Runtime library checks used by ``aipc stage`` (the version facts are :mod:`aipc.ortversion`).

- The load check opens the staged library in a *subprocess* (a bad library can crash the process) and calls
  ``OrtGetApiBase()->GetApi(ORT_API_VERSION)`` and ``GetVersionString()``. ``OrtApiBase`` is
  ``struct { const OrtApi* (*GetApi)(uint32_t); const char* (*GetVersionString)(void); }``.
  It runs only when the library is for this host (same OS, binary format and machine); otherwise it is skipped
  with a reason, never reported as a pass. A file that is not a sound binary at all (empty, truncated, text) fails
  on every host (:func:`binary_problem`).
"""

from __future__ import annotations

import json
import platform as _pyplatform
import struct
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..platforms import Platform, host_platform_name
from ..proc import describe_returncode, run

# ELF e_machine and PE Machine values for the hosts aipc runs on
_ELF_MACHINES = {"x86_64": 62, "amd64": 62, "aarch64": 183, "arm64": 183}
_PE_MACHINES = {"x86_64": 0x8664, "amd64": 0x8664, "aarch64": 0xAA64, "arm64": 0xAA64}

LOAD_TIMEOUT = 60.0

# Runs as ``python -c _LOAD_SCRIPT <library> <api_version>``; stdlib only; prints one JSON object.
_LOAD_SCRIPT = r"""
import ctypes, json, os, sys
path, api = sys.argv[1], int(sys.argv[2])
out = {"loaded": False}
try:
    if hasattr(os, "add_dll_directory"):
        os.add_dll_directory(os.path.dirname(os.path.abspath(path)))
    lib = ctypes.CDLL(path)
    out["loaded"] = True
    class OrtApiBase(ctypes.Structure):
        _fields_ = [("GetApi", ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint32)),
                    ("GetVersionString", ctypes.CFUNCTYPE(ctypes.c_char_p))]
    fn = lib.OrtGetApiBase
    fn.restype = ctypes.POINTER(OrtApiBase)
    fn.argtypes = []
    base = fn()
    if not base:
        out["error"] = "OrtGetApiBase() returned NULL"
    else:
        raw = base.contents.GetVersionString()
        out["version"] = raw.decode("utf-8", "replace") if raw else None
        out["api_ok"] = bool(base.contents.GetApi(api))
except AttributeError as exc:
    out["error"] = "no OrtGetApiBase symbol (%s)" % exc
except OSError as exc:
    out["error"] = str(exc)
sys.stdout.write(json.dumps(out) + "\n")
sys.stdout.flush()
"""


@dataclass(frozen=True)
class LoadCheck:
    """Result of the load check: ``status`` is ``pass``, ``fail`` or ``skip``."""

    status: str
    reason: str
    library: str
    api_version: int
    version_string: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        if self.status == "pass":
            return (f"load check passed: {self.library}: GetApi({self.api_version}) is non-null, "
                    f"GetVersionString() = {self.version_string}")
        if self.status == "skip":
            return f"load check skipped: {self.reason}"
        return f"load check failed: {self.reason}"


def pe_file_version(path: Path) -> str | None:
    """The FILEVERSION of a PE file's VS_FIXEDFILEINFO (``a.b.c.d``), or None when it has none."""
    data = path.read_bytes()
    # dwSignature 0xFEEF04BD followed by dwStrucVersion 1.0, then dwFileVersionMS/LS
    at = data.find(struct.pack("<II", 0xFEEF04BD, 0x00010000))
    if at < 0 or at + 16 > len(data):
        return None
    ms, ls = struct.unpack_from("<II", data, at + 8)
    return f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"


def _host_machine() -> str:
    return _pyplatform.machine().lower()


def binary_problem(platform: Platform, lib: Path) -> str | None:
    """Why ``lib`` is not a shared library of ``platform``'s binary format at all (empty, truncated, text...): the
    load check fails on it, on any host. None when its headers are sound (whatever machine it is built for)."""
    try:
        size = lib.stat().st_size
        with lib.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        return f"{lib.name} cannot be read ({exc.strerror or exc})"
    what = f"{lib.name} ({size} bytes)"
    if platform.binary_format == "elf":
        if head[:4] != b"\x7fELF" or len(head) < 52 or head[4] not in (1, 2) or head[5] not in (1, 2):
            return f"{what} is not an ELF shared object (empty, truncated or not a library)"
        endian = "<" if head[5] == 1 else ">"
        if head[4] == 2:  # ELF64
            if len(head) < 64:
                return f"{what} is truncated inside its ELF header"
            (shoff,) = struct.unpack_from(endian + "Q", head, 40)
            shentsize, shnum = struct.unpack_from(endian + "HH", head, 58)
        else:
            (shoff,) = struct.unpack_from(endian + "I", head, 32)
            shentsize, shnum = struct.unpack_from(endian + "HH", head, 46)
        (e_type,) = struct.unpack_from(endian + "H", head, 16)
        if e_type not in (2, 3):  # ET_EXEC, ET_DYN
            return f"{what} is an ELF file of type {e_type}, not a shared object"
        if shoff + shentsize * shnum > size:
            return f"{what} is truncated: its ELF section headers end at byte {shoff + shentsize * shnum}"
        return None
    if platform.binary_format == "pe":
        if head[:2] != b"MZ" or len(head) < 64:
            return f"{what} is not a PE DLL (empty, truncated or not a library)"
        (pe_at,) = struct.unpack_from("<I", head, 0x3C)
        if pe_at + 24 > len(head) or head[pe_at:pe_at + 4] != b"PE\0\0":
            return f"{what} has no PE header (truncated or not a library)"
        nsections, = struct.unpack_from("<H", head, pe_at + 6)
        (opt_size,) = struct.unpack_from("<H", head, pe_at + 20)
        table = pe_at + 24 + opt_size
        end = 0
        for i in range(nsections):
            at = table + 40 * i
            if at + 40 > len(head):
                return f"{what} is truncated inside its PE section table"
            raw_size, raw_ptr = struct.unpack_from("<II", head, at + 16)
            end = max(end, raw_ptr + raw_size)
        if end > size:
            return f"{what} is truncated: its PE sections end at byte {end}"
        return None
    return f"unknown binary format for platform {platform.name}"


def binary_mismatch(platform: Platform, lib: Path) -> str | None:
    """Why a sound ``lib`` (see :func:`binary_problem`) cannot be loaded on this host (a reason to skip the load
    check: another OS or machine), or None when it can."""
    host = host_platform_name()
    if platform.name != host:
        return f"a {platform.name} library ({lib.name}) cannot be loaded on this {host} host"
    machine = _host_machine()
    with lib.open("rb") as fh:
        head = fh.read(4096)
    if platform.binary_format == "elf":
        endian = "<" if head[5] == 1 else ">"
        (e_machine,) = struct.unpack_from(endian + "H", head, 18)
        want = _ELF_MACHINES.get(machine)
        if want is not None and e_machine != want:
            return f"{lib.name} is built for ELF machine {e_machine}, this host is {machine}"
        return None
    if platform.binary_format == "pe":
        (pe_at,) = struct.unpack_from("<I", head, 0x3C)
        (pe_machine,) = struct.unpack_from("<H", head, pe_at + 4)
        want = _PE_MACHINES.get(machine)
        if want is not None and pe_machine != want:
            return f"{lib.name} is built for PE machine {pe_machine:#x}, this host is {machine}"
        return None
    return f"unknown binary format for platform {platform.name}"


def check_library(
    platform: Platform, lib: Path, api_version: int, expected_version: str, *, display: str | None = None,
    timeout: float = LOAD_TIMEOUT, expected_from: str = "VERSION_NUMBER",
) -> LoadCheck:
    """Load ``lib`` in a subprocess and check ``GetApi(api_version)`` and ``GetVersionString()``.

    Returns ``skip`` when the library is not for this host and ``fail`` (with the reason) when it cannot be
    loaded, crashes, is too old for the header's API version, or reports another version.
    """
    name = display or lib.name
    problem = binary_problem(platform, lib)
    if problem is not None:
        return LoadCheck("fail", problem, name, api_version)
    skip = binary_mismatch(platform, lib)
    if skip is not None:
        return LoadCheck("skip", skip, name, api_version)
    argv = [sys.executable, "-c", _LOAD_SCRIPT, str(lib), str(api_version)]
    proc = run(argv, timeout=timeout, cwd=lib.parent)
    if proc.error is not None:
        what = (f"loading it did not finish within {timeout:.0f} s" if proc.error.startswith("timeout")
                else f"the load check could not run ({proc.error})")
        return LoadCheck("fail", f"{name}: {what}", name, api_version)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    lib_said = " ".join(ln.strip() for ln in proc.stderr.splitlines() if ln.strip())[-300:]
    if proc.returncode != 0 or not lines:
        how = f"exit code {describe_returncode(proc.returncode)}"
        return LoadCheck("fail", f"{name}: the load check process crashed ({how})"
                         + (f": {lib_said}" if lib_said else ""), name, api_version)
    result = json.loads(lines[-1])
    version = result.get("version")
    if result.get("error"):
        what = "cannot be loaded" if not result.get("loaded") else "is not an ONNX Runtime library"
        return LoadCheck("fail", f"{name} {what}: {result['error']}", name, api_version, version)
    if not result.get("api_ok"):
        return LoadCheck(
            "fail",
            f"{name} is stale: GetApi({api_version}) returned NULL, the library (ORT {version}) does not support "
            f"the header's ORT_API_VERSION {api_version}" + (f" ({lib_said})" if lib_said else ""),
            name, api_version, version,
        )
    if version != expected_version:
        return LoadCheck(
            "fail",
            f"{name} is stale: GetVersionString() returned {version!r}, expected {expected_version} ({expected_from})",
            name, api_version, version,
        )
    return LoadCheck("pass", "", name, api_version, version)
