"""Synthetic ONNX Runtime source and build trees for tests (reusable by any area's tests).

Everything here is written by the tests themselves: the headers are minimal files we write (never copies of
upstream headers), the libraries are dummy bytes, except :func:`ort_wheel_library`, which extracts the real
``libonnxruntime.so`` from the ``onnxruntime`` wheel on PyPI (downloaded once, cached under
``tests.conftest.shared_cache()``).

- :func:`write_ort_source` writes ``VERSION_NUMBER`` and the header layout of ``include/onnxruntime/core``.
- :func:`write_ort_build` writes ORT's build outputs in the layout a generator produces:
  Windows + Visual Studio -> ``build/Windows/Release/Release/``, Windows + Ninja -> ``build/Windows/Release/``,
  Linux -> ``build/Linux/Release/`` (``libonnxruntime.so -> .so.1 -> .so.<version>`` symlinks).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from aipc.fsutil import atomic_path
from aipc.platforms import Platform, get_platform

DEFAULT_VERSION = "1.24.4"

# header names below include/onnxruntime/core/session (what ORT ships there, by name only)
SESSION_HEADERS = (
    "onnxruntime_c_api.h",
    "onnxruntime_cxx_api.h",
    "onnxruntime_cxx_inline.h",
    "onnxruntime_ep_c_api.h",
    "onnxruntime_experimental_c_api.h",
    "onnxruntime_experimental_c_api.inc",
    "onnxruntime_float16.h",
    "onnxruntime_lite_custom_op.h",
    "onnxruntime_run_options_config_keys.h",
    "onnxruntime_session_options_config_keys.h",
)
EXTRA_HEADERS = (
    "providers/cpu/cpu_provider_factory.h",
    "providers/dml/dml_provider_factory.h",
    "framework/provider_options.h",
)
# files in the session directory that are not headers and must not be staged
SESSION_NON_HEADERS = ("README.md", "onnxruntime_c_api.cc")


def api_version_of(version: str) -> int:
    return int(version.split(".")[1])


def write_ort_source(root: Path, version: str = DEFAULT_VERSION, api_version: int | None = None,
                     omit: tuple[str, ...] = ()) -> Path:
    """A minimal ORT source tree: ``VERSION_NUMBER`` and headers (``ORT_API_VERSION`` = minor unless given).

    ``omit`` lists paths below ``include/onnxruntime/core`` (e.g. ``providers/dml/dml_provider_factory.h``) or
    session header names to leave out."""
    api = api_version_of(version) if api_version is None else api_version
    root.mkdir(parents=True, exist_ok=True)
    (root / "VERSION_NUMBER").write_text(version + "\n", encoding="utf-8")
    core = root / "include" / "onnxruntime" / "core"
    session = core / "session"
    session.mkdir(parents=True, exist_ok=True)
    for name in SESSION_HEADERS:
        if name in omit:
            continue
        if name == "onnxruntime_c_api.h":
            text = (f"// aipc test fixture: minimal C API header\n#pragma once\n#include <stdint.h>\n"
                    f"#define ORT_API_VERSION {api}\n"
                    "typedef struct OrtApi OrtApi;\n"
                    "typedef struct OrtApiBase {\n"
                    "  const OrtApi* (*GetApi)(uint32_t version);\n"
                    "  const char* (*GetVersionString)(void);\n"
                    "} OrtApiBase;\n"
                    "const OrtApiBase* OrtGetApiBase(void);\n"
                    '#include "onnxruntime_ep_c_api.h"\n')
        else:
            text = f"// aipc test fixture: {name}\n#pragma once\n"
        (session / name).write_text(text, encoding="utf-8")
    for name in SESSION_NON_HEADERS:
        (session / name).write_text("not a header\n", encoding="utf-8")
    for rel in EXTRA_HEADERS:
        if rel in omit:
            continue
        path = core / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"// aipc test fixture: {rel}\n#pragma once\n", encoding="utf-8")
    return root


def foreign_machine() -> str:
    """A machine this host is not (x86_64 <-> aarch64), so no host ever tries to load a fixture library."""
    import platform

    return "x86_64" if platform.machine().lower() in ("aarch64", "arm64") else "aarch64"


def pe_stub(file_version: str | None, machine: str | None = None) -> bytes:
    """Real-looking DLL bytes: ``MZ``, a PE header (a DLL for ``machine``, default :func:`foreign_machine`, with no
    sections) and, when given, a VS_FIXEDFILEINFO with ``file_version`` (a.b.c[.d])."""
    code = {"x86_64": 0x8664, "aarch64": 0xAA64}[machine or foreign_machine()]
    header = b"MZ" + b"\0" * 58 + struct.pack("<I", 64)  # e_lfanew -> 64
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", code, 0, 0, 0, 0, 0, 0x2022)  # no sections, IMAGE_FILE_DLL
    data = header + coff + b"aipc test fixture, not a real DLL\0"
    if file_version is not None:
        parts = [int(p) for p in file_version.split(".")] + [0] * 4
        ms, ls = (parts[0] << 16) | parts[1], (parts[2] << 16) | parts[3]
        data += b"\0" * 8 + struct.pack("<IIIIII", 0xFEEF04BD, 0x00010000, ms, ls, ms, ls)
    return data


def elf_stub(machine: str | None = None, *, size: int = 4096) -> bytes:
    """Real-looking shared-object bytes: an ELF64 little-endian ET_DYN header for ``machine`` (default
    :func:`foreign_machine`) whose section headers end exactly at ``size``; nothing loadable."""
    code = {"x86_64": 62, "aarch64": 183}[machine or foreign_machine()]
    shnum, shentsize = 2, 64
    shoff = size - shnum * shentsize
    header = (b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
              + struct.pack("<HHIQQQIHHHHHH", 3, code, 1, 0, 0, shoff, 0, 64, 0, 0, shentsize, shnum, 0))
    return header + b"aipc test fixture, not a real library\0".ljust(size - len(header), b"\0")


def write_ort_build(
    build_dir: Path,
    platform: str | Platform,
    generator: str | None = None,
    version: str = DEFAULT_VERSION,
    real_so: Path | None = None,
    *,
    config: str = "Release",
    omit: tuple[str, ...] = (),
    dll_file_version: str | None = None,
    extra_files: tuple[str, ...] = (),
) -> Path:
    """ORT's platform build directory (e.g. ``build/Windows``) with the outputs of a shared-library build.

    Returns the artifact directory. ``generator`` defaults to the platform's default (Visual Studio on Windows,
    Ninja on Linux). ``real_so`` is a real ``libonnxruntime.so`` copied in as ``libonnxruntime.so.<version>``.
    ``omit`` leaves library names out; ``dll_file_version`` (Windows) defaults to ``<version>.0``.
    """
    plat = get_platform(platform) if isinstance(platform, str) else platform
    generator = generator or plat.default_generator
    art = build_dir.joinpath(*plat.config_dirs(generator, config))
    art.mkdir(parents=True, exist_ok=True)
    # what a configured build directory also holds (and stage must ignore)
    (build_dir / config / "CMakeCache.txt").write_text(f"CMAKE_GENERATOR:INTERNAL={generator}\n", encoding="utf-8")
    if plat.name == "windows":
        files = {
            "onnxruntime.dll": pe_stub(dll_file_version or f"{version}.0"),
            "onnxruntime.lib": b"!<arch>\naipc fixture import library\n",
            "onnxruntime.pdb": b"fixture pdb\n",
            "onnxruntime_providers_shared.dll": pe_stub(f"{version}.0"),
            "onnxruntime_providers_shared.lib": b"!<arch>\naipc fixture\n",
            "DirectML.dll": pe_stub("1.15.4.0"),
            "DirectML.pdb": b"fixture pdb\n",
            "DirectML.Debug.dll": pe_stub("1.15.4.0"),
        }
        for name, data in files.items():
            if name not in omit:
                (art / name).write_bytes(data)
    else:
        versioned = f"libonnxruntime.so.{version}"
        if versioned not in omit:
            if real_so is not None:
                shutil.copy2(real_so, art / versioned)
            else:
                (art / versioned).write_bytes(elf_stub())
        major = version.split(".")[0]
        soname = f"libonnxruntime.so.{major}"
        for link, target in ((soname, versioned), ("libonnxruntime.so", soname)):
            if link not in omit:
                os.symlink(target, art / link)
        if "libonnxruntime_providers_shared.so" not in omit:
            (art / "libonnxruntime_providers_shared.so").write_bytes(b"aipc fixture\n")
    for name in extra_files:
        (art / name).write_bytes(b"aipc fixture extra\n")
    return art


def pinned_wheel_version() -> str:
    from aipc.pins import load_pins

    return load_pins().releases["onnxruntime"]


def ort_wheel_library(cache: Path, version: str | None = None) -> Path:
    """The real ``libonnxruntime.so.<version>`` from the ``onnxruntime`` wheel on PyPI (Linux only), cached.

    Downloads the wheel once with pip (``--no-deps --only-binary=:all:``) and extracts only the library."""
    version = version or pinned_wheel_version()
    dest = cache / f"onnxruntime-{version}-lib"
    lib = dest / f"libonnxruntime.so.{version}"
    if lib.is_file():
        return lib
    with tempfile.TemporaryDirectory(prefix="aipc-ortwheel-") as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", f"onnxruntime=={version}", "--no-deps",
             "--only-binary=:all:", "-d", tmp, "-q"],
            capture_output=True, text=True, timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"pip download onnxruntime=={version} failed: {proc.stderr.strip()[-500:]}")
        (wheel,) = Path(tmp).glob("onnxruntime-*.whl")
        member = f"onnxruntime/capi/libonnxruntime.so.{version}"
        with zipfile.ZipFile(wheel) as zf, atomic_path(dest) as out:
            out.mkdir()
            (out / lib.name).write_bytes(zf.read(member))
            (out / "SOURCE").write_text(f"{wheel.name}:{member}\n", encoding="utf-8")
    return lib


# --- official-release fixtures (``--ort-release``): wheels and NuGet packages written by the tests ---------------


def compile_fake_ort(dest: Path, version: str = DEFAULT_VERSION, api_version: int | None = None) -> Path:
    """A real ELF shared library exporting ``OrtGetApiBase`` (the stand-in of ``fixture_upstreams.ORT_C_SOURCE``:
    ``GetApi(v)`` is non-NULL for ``1 <= v <= api_version``, ``GetVersionString()`` is ``version``), compiled with
    gcc against headers from :func:`write_ort_source`. Needs gcc (callers skip without it)."""
    from fixture_upstreams import ORT_C_SOURCE  # late: fixture_upstreams imports this module

    with tempfile.TemporaryDirectory(prefix="aipc-fakeort-") as tmp:
        src = write_ort_source(Path(tmp) / "ort", version, api_version)
        c_file = Path(tmp) / "fake_ort.c"
        c_file.write_text(ORT_C_SOURCE, encoding="utf-8")
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([os.environ.get("CC", "gcc"), "-shared", "-fPIC", "-O1",
                        "-I", str(src / "include" / "onnxruntime" / "core" / "session"),
                        f'-DORT_FIXTURE_VERSION="{version}"', "-o", str(dest), str(c_file)],
                       check=True, capture_output=True, timeout=120)
    return dest


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    """A zip archive (deterministic timestamps); a ``*.dist-info/RECORD`` entry is filled in for wheels."""
    import base64
    import hashlib

    files = dict(files)
    records = [n for n in files if n.endswith(".dist-info/RECORD")]
    if records:
        lines = []
        for name, data in files.items():
            if name in records:
                continue
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            lines.append(f"{name},sha256={digest},{len(data)}")
        lines.append(f"{records[0]},,")
        files[records[0]] = ("\n".join(lines) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return path


def write_release_wheel(directory: Path, dist: str, version: str, tag: str, libs: dict[str, bytes]) -> Path:
    """An ORT wheel shaped like PyPI's: ``onnxruntime/capi/<libs>`` and a dist-info (no headers, no links)."""
    info = f"{dist}-{version}.dist-info"
    files = {f"onnxruntime/capi/{name}": data for name, data in libs.items()}
    files["onnxruntime/__init__.py"] = f'__version__ = "{version}"\n'.encode()
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n".encode()
    files[f"{info}/RECORD"] = b""
    return write_zip(directory / f"{dist}-{version}-{tag}.whl", files)


def write_nupkg(path: Path, package: str = "Microsoft.ML.OnnxRuntime.DirectML", version: str = DEFAULT_VERSION,
                api_version: int | None = None, headers: bool = True, omit: tuple[str, ...] = ()) -> Path:
    """A ``.nupkg`` shaped like Microsoft.ML.OnnxRuntime.DirectML: ``<id>.nuspec``, the Windows libraries under
    ``runtimes/win-x64/native/`` (dummy PE bytes) and, with ``headers``, flat headers under
    ``build/native/include/``. ``omit`` leaves library or header names out."""
    nuspec = ('<?xml version="1.0" encoding="utf-8"?>\n'
              '<package xmlns="http://schemas.microsoft.com/packaging/2012/06/nuspec.xsd"><metadata>'
              f"<id>{package}</id><version>{version}</version><authors>aipc fixture</authors>"
              "</metadata></package>\n")
    files = {f"{package}.nuspec": nuspec.encode()}
    native = "runtimes/win-x64/native/"
    libs = {"onnxruntime.dll": pe_stub(f"{version}.0"), "onnxruntime.lib": b"!<arch>\naipc fixture\n",
            "onnxruntime.pdb": b"fixture pdb\n", "onnxruntime_providers_shared.dll": pe_stub(f"{version}.0"),
            "onnxruntime_providers_shared.lib": b"!<arch>\naipc fixture\n"}
    files.update({native + name: data for name, data in libs.items() if name not in omit})
    if headers:
        with tempfile.TemporaryDirectory(prefix="aipc-nupkg-") as tmp:
            src = write_ort_source(Path(tmp), version, api_version)
            core = src / "include" / "onnxruntime" / "core"
            for p in sorted(core.rglob("*")):
                if p.is_file() and p.suffix in (".h", ".inc") and p.name not in omit:
                    files[f"build/native/include/{p.name}"] = p.read_bytes()
    return write_zip(path, files)
