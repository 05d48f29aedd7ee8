"""An official ONNX Runtime release as the ORT side of the build (``--ort-release``), instead of building ORT.

Specs (docs/build.md, "ORT from an official release"):

- ``pypi``: the wheel of ``[onnxruntime] version`` (``onnxruntime`` on Linux), downloaded with
  ``pip download --no-deps --only-binary=:all:`` by the Python that builds genai (so both wheels share one Python);
  a plan for another platform adds pip's ``--platform/--implementation/--python-version``. The Windows wheel
  (``onnxruntime-directml``) has no ``onnxruntime.lib``, so there ``pypi`` is refused (the platform says why).
- ``nuget``: the pinned ``Microsoft.ML.OnnxRuntime.DirectML`` package (``[nuget]`` in pins.toml), downloaded over
  HTTPS from nuget.org's flat container; refused under ``--offline``.
- a local file or folder: a wheel, a ``.nupkg``, an unpacked ``.nupkg`` (``runtimes/<rid>/native/``) or an unpacked
  release archive (``include/`` and ``lib/``).

A download goes into a temporary path under ``<workdir>/ort_release/``, is checked (a readable zip whose name,
version or ``.nuspec`` are the ones asked for) and renamed into place; ``release.json`` records the file, its
sha256, version and origin, and a later step re-hashes the file against it. :class:`Release` reads what a package
holds (libraries by name, headers by name) the same way for every kind; ``stage`` builds ORT_HOME from it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any
from xml.etree import ElementTree

from ..archives import check_member_name
from ..errors import AipcError, UsageError
from ..fsutil import atomic_write_json, sha256_file
from ..ortversion import version_from_lib_name
from ..pins import Pins
from ..platforms import Platform
from ..proc import run
from ..wheelhouse import WheelInfo
from .buildvenv import pip_index_args
from .settings import RELEASE_KEYWORDS, BuildSettings

RELEASE_DIR = "ort_release"
RECORD = "release.json"
NUGET_URL = "https://api.nuget.org/v3-flatcontainer/{id}/{version}/{id}.{version}.nupkg"
DOWNLOAD_TIMEOUT = 600.0
C_API_HEADER = "onnxruntime_c_api.h"
HEADER_SUFFIXES = (".h", ".inc")
_VERSION_IN_NAME = re.compile(r"(\d+\.\d+\.\d+)(?![\d.]*\d)")
_NUGET_HINT = "use --ort-release nuget ({package} {version} from nuget.org) or pass a local .nupkg of it"

Echo = Callable[[str], None]


# --- what was asked for ----------------------------------------------------------------------------------------


def is_local(spec: str) -> bool:
    return spec not in RELEASE_KEYWORDS


def nuget_version(pins: Pins, platform: Platform) -> str:
    package = platform.ort_nuget_package
    version = pins.nuget.get(package)
    if not version:
        raise AipcError(f"{pins.path} pins no version of {package} in [nuget]",
                        hint=f'add "{package}" = "{pins.onnxruntime.version}" to [nuget]')
    return version


def api_version(version: str) -> int:
    """The C API version a release provides up to: its minor version (1.24.4 -> 24; a dev or nightly version such
    as ``1.25.0.dev20260125001`` or ``1.25.0-dev-...`` counts by its ``MAJOR.MINOR`` too)."""
    match = re.match(r"^(\d+)\.(\d+)(?:\.|$)", version)
    if not match:
        raise AipcError(f"the ORT release's version {version!r} does not start with MAJOR.MINOR",
                        hint="pass an unmodified ORT release (its wheel name, .nuspec or VERSION_NUMBER names it)")
    return int(match.group(2))


def version_from_name(name: str) -> str | None:
    """The last ``X.Y.Z`` in a file or folder name (``onnxruntime-linux-x64-1.24.4`` -> ``1.24.4``)."""
    found = _VERSION_IN_NAME.findall(name)
    return found[-1] if found else None


def planned_version(settings: BuildSettings, pins: Pins) -> str:
    """The release's version as far as it is known without reading any file (``aipc plan``)."""
    spec = settings.ort_release
    assert spec is not None
    if spec == "pypi":
        return pins.onnxruntime.version
    if spec == "nuget":
        return nuget_version(pins, settings.platform)
    name = PurePath(spec).name
    if name.endswith(".whl"):
        try:
            return WheelInfo.from_path(Path(name)).version
        except AipcError:
            pass
    return version_from_name(name) or pins.onnxruntime.version


def _pypi_refusal(platform: Platform, pins: Pins) -> UsageError:
    return UsageError(
        f"--ort-release pypi cannot serve {platform.name}: {platform.ort_pypi_refusal}",
        hint=_NUGET_HINT.format(package=platform.ort_nuget_package, version=nuget_version(pins, platform))
        + f" (it holds runtimes/{platform.nuget_rid}/native/onnxruntime.lib and the headers)",
    )


def headers_hint(platform: Platform) -> str:
    nuget = (", or use --ort-release nuget (its package has them under build/native/include/)"
             if platform.ort_nuget_package else "")
    return ("pass --ort-source DIR, an ONNX Runtime source tree holding include/onnxruntime/core/session/"
            f"{C_API_HEADER} (a checkout of github.com/microsoft/onnxruntime at the release's tag or older){nuget}")


def check_route(settings: BuildSettings, pins: Pins) -> None:
    """Refuse a release route that cannot work, before anything is downloaded or built."""
    spec = settings.ort_release
    if spec is None:
        return
    plat = settings.platform
    if spec == "pypi" and plat.ort_pypi_refusal:
        raise _pypi_refusal(plat, pins)
    if spec == "nuget" and not plat.ort_nuget_package:
        raise UsageError(f"--ort-release nuget: aipc knows no ONNX Runtime NuGet package for {plat.name}",
                         hint="use --ort-release pypi or a local release archive (include/ and lib/)")
    if spec == "nuget" and settings.offline:
        raise UsageError(
            f"offline: refusing to download {plat.ort_nuget_package} {nuget_version(pins, plat)} from nuget.org",
            hint="pass the downloaded .nupkg with --ort-release FILE, or leave out --offline")
    if is_local(spec) and settings.is_host:
        path = Path(spec)
        if not path.exists():
            raise UsageError(f"--ort-release {spec} does not exist",
                             hint="pass pypi, nuget, or an existing wheel, .nupkg or unpacked release folder")
        if path.is_file() and path.suffix not in (".whl", ".nupkg"):
            raise UsageError(f"--ort-release {spec} is neither a wheel nor a .nupkg",
                             hint="unpack a release archive (.tgz/.zip) and pass its folder (with include/ and "
                                  "lib/), or pass a wheel or a .nupkg")
        check_libs(plat, open_release(plat, path))  # e.g. a DLL-only Windows wheel: refused before anything
    if settings.ort_source is not None and settings.is_host and not Path(settings.ort_source).is_dir():
        raise UsageError(f"--ort-source {settings.ort_source} does not exist (with --ort-release it supplies the "
                         "ONNX Runtime headers)", hint=headers_hint(plat))
    wheel_only = spec == "pypi" or spec.endswith(".whl")
    if wheel_only and settings.ort_source is None:
        what = "the onnxruntime wheel" if spec == "pypi" else PurePath(spec).name
        raise UsageError(f"--ort-release {spec}: {what} holds no ONNX Runtime headers and no --ort-source was given",
                         hint=headers_hint(plat))


# --- download commands -----------------------------------------------------------------------------------------


def pip_download_argv(python: str, requirement: str, dest: str | PurePath,
                      foreign: Platform | None = None, python_version: str | None = None,
                      index_args: Sequence[str] = ()) -> list[str]:
    """``pip download`` of one binary wheel; ``foreign`` adds pip's cross-platform options, ``index_args`` the
    settings' index options (:func:`aipc.wheelbuild.buildvenv.pip_index_args`)."""
    argv = [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *index_args, "--dest", str(dest)]
    if foreign is not None:
        version = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
        argv += ["--platform", foreign.pip_platform, "--implementation", "cp", "--python-version", version]
    return [*argv, requirement]


def pypi_requirement(platform: Platform, version: str) -> str:
    """The ORT wheel on PyPI for a platform: ``onnxruntime==1.24.4`` / ``onnxruntime-directml==1.24.4``."""
    return f"{platform.ort_wheel_dist.replace('_', '-')}=={version}"


def nuget_url(package: str, version: str) -> str:
    low = package.lower()
    return NUGET_URL.format(id=low, version=version.lower())


def release_dir(settings: BuildSettings) -> PurePath:
    return settings.workdir / RELEASE_DIR


# --- reading a release -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """A release package or folder: its libraries and headers by file name (members are zip names or paths)."""

    path: Path
    kind: str  # "wheel" | "nupkg" | "nupkg-dir" | "archive"
    version: str
    libs: dict[str, str]
    headers: dict[str, str]
    # wheel members' RECORD sha256 (urlsafe base64, as in RECORD), to verify what is extracted
    record: dict[str, str]

    @property
    def is_zip(self) -> bool:
        return self.kind in ("wheel", "nupkg")

    def extract(self, member: str, dest: Path) -> None:
        """Copy one member to ``dest``; a wheel member must match its RECORD hash; a member name that could land
        outside its folder (``..``, a backslash, a drive...) is refused (:func:`aipc.archives.check_member_name`)."""
        if self.is_zip:
            check_member_name(member, archive=self.path.name, hint=f"delete {self.path} and use the genuine package")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not self.is_zip:
            shutil.copy2(self.path / member, dest)
            return
        with zipfile.ZipFile(self.path) as zf, zf.open(member) as src, dest.open("wb") as out:
            digest = hashlib.sha256()
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        want = self.record.get(member)
        if self.kind == "wheel" and want is not None:
            got = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
            if got != want:
                raise AipcError(f"{self.path.name}: {member} does not match the wheel's RECORD hash",
                                hint=f"delete {self.path} and download it again")
        dest.chmod(0o644 if _is_header(dest.name) else 0o755)


def _flat(names: list[str], prefix: str, keep: Callable[[str], bool]) -> dict[str, str]:
    """Members directly below ``prefix`` (for headers: at any depth), by base name."""
    out: dict[str, str] = {}
    for name in names:
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        base = name.rsplit("/", 1)[-1]
        if keep(base):
            out.setdefault(base, name)
    return out


def _is_header(name: str) -> bool:
    return name.endswith(HEADER_SUFFIXES)


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise AipcError(f"{path} is not a readable zip file ({exc})",
                        hint="download it again (or pass another --ort-release)") from None


def _nuspec(path: Path, names: list[str]) -> tuple[str, str]:
    """(id, version) from a .nupkg's ``*.nuspec``."""
    specs = [n for n in names if n.endswith(".nuspec") and "/" not in n]
    if not specs:
        raise AipcError(f"{path.name} has no .nuspec: it is not a NuGet package", hint="pass a .nupkg from nuget.org")
    with zipfile.ZipFile(path) as zf:
        root = ElementTree.fromstring(zf.read(specs[0]))
    values = {el.tag.rsplit("}", 1)[-1]: (el.text or "").strip() for el in root.iter()}
    return values.get("id", ""), values.get("version", "")


def _wheel_record(path: Path, names: list[str]) -> dict[str, str]:
    records = [n for n in names if n.endswith(".dist-info/RECORD") and n.count("/") == 1]
    if not records:
        return {}
    with zipfile.ZipFile(path) as zf:
        text = zf.read(records[0]).decode("utf-8", "replace")
    out = {}
    for line in text.splitlines():
        parts = line.rsplit(",", 2)
        if len(parts) == 3 and parts[1].startswith("sha256="):
            out[parts[0]] = parts[1].removeprefix("sha256=")
    return out


def open_release(platform: Platform, path: Path) -> Release:
    """Read what a release holds (see the module docstring for the kinds)."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"ORT release {path} does not exist",
                         hint="pass an existing wheel, .nupkg or unpacked release folder")
    if path.is_dir():
        native = path / "runtimes" / platform.nuget_rid / "native"
        if native.is_dir():
            return _open_dir(path, "nupkg-dir", native, path / "build" / "native" / "include")
        if (path / "lib").is_dir():
            return _open_dir(path, "archive", path / "lib", path / "include")
        raise UsageError(f"{path} is not an unpacked ONNX Runtime release: it has no lib/ (nor runtimes/"
                         f"{platform.nuget_rid}/native/)",
                         hint="pass the folder an onnxruntime-<os>-<arch>-<version> archive unpacks to, "
                              "or a wheel or .nupkg")
    names = _zip_names(path)
    if path.suffix == ".whl":
        info = WheelInfo.from_path(path)
        lib_dir = platform.ort_wheel_lib_dir + "/"
        libs = _flat([n for n in names if n.count("/") == lib_dir.count("/")], lib_dir, lambda b: not _is_header(b))
        return Release(path, "wheel", info.version, libs, {}, _wheel_record(path, names))
    if path.suffix == ".nupkg":
        _package, version = _nuspec(path, names)
        native_dir = f"runtimes/{platform.nuget_rid}/native/"
        libs = _flat([n for n in names if n.count("/") == native_dir.count("/")], native_dir, lambda b: True)
        headers = _flat(names, "build/native/include/", _is_header)
        return Release(path, "nupkg", version or version_from_name(path.name) or "", libs, headers, {})
    raise UsageError(f"{path} is neither a wheel nor a .nupkg",
                     hint="pass a wheel, a .nupkg or the folder of an unpacked release archive")


def _open_dir(path: Path, kind: str, lib_dir: Path, include_dir: Path) -> Release:
    libs = {p.name: p.relative_to(path).as_posix() for p in sorted(lib_dir.iterdir())
            if p.is_file() and not p.is_symlink()}
    headers: dict[str, str] = {}
    if include_dir.is_dir():
        for p in sorted(include_dir.rglob("*")):
            if p.is_file() and _is_header(p.name):
                headers.setdefault(p.name, p.relative_to(path).as_posix())
    version = None
    number = path / "VERSION_NUMBER"
    if number.is_file():
        version = number.read_text(encoding="utf-8", errors="replace").strip()
    if not version:
        versioned = [v for v in (version_from_name(n) for n in libs) if v]
        version = versioned[0] if versioned else version_from_name(path.name)
    if not version:
        raise AipcError(f"cannot tell the ONNX Runtime version of {path}: no VERSION_NUMBER, no versioned library "
                        "and no version in the folder name",
                        hint="write the release's version (e.g. 1.24.4) into VERSION_NUMBER in that folder")
    return Release(path, kind, version, libs, headers, {})


def _release_lib_dir(platform: Platform, rel: Release) -> str:
    return {"wheel": platform.ort_wheel_lib_dir + "/", "nupkg": f"runtimes/{platform.nuget_rid}/native/",
            "nupkg-dir": f"runtimes/{platform.nuget_rid}/native/", "archive": "lib/"}[rel.kind]


def _release_missing(platform: Platform, rel: Release, missing: list[str]) -> AipcError:
    where = f"{rel.path.name} ({_release_lib_dir(platform, rel)})"
    if platform.ort_pypi_refusal and platform.ort_main_lib in rel.libs and any(n.endswith(".lib") for n in missing):
        return AipcError(
            f"{where} holds {platform.ort_main_lib} but no {', '.join(n for n in missing if n.endswith('.lib'))}: a "
            "DLL-only release (such as the onnxruntime-directml wheel) cannot be linked against",
            hint=f"use --ort-release nuget or a local {platform.ort_nuget_package} .nupkg from nuget.org (it holds "
                 f"runtimes/{platform.nuget_rid}/native/onnxruntime.lib), or a release archive whose lib/ has it",
        )
    others = sorted(v for v in (version_from_lib_name(platform.ort_main_lib, n) for n in rel.libs) if v)
    if others:
        return AipcError(f"{where} holds ORT {', '.join(others)}, but the release says {rel.version}: missing "
                         f"{', '.join(missing)}", hint="pass an unmodified ORT release")
    return AipcError(f"{where} has no {', '.join(missing)}: it is not a complete {platform.name} ONNX Runtime release",
                     hint=f"pass an ORT release for {platform.name} (see `aipc build --help`, --ort-release)")


def check_libs(platform: Platform, rel: Release) -> list[str]:
    """The release's libraries genai's build needs (``platform.ort_release_required_libs``), the versioned main
    library first; a release lacking one is refused (a DLL-only Windows release with the way to a ``.lib``)."""
    fmt = {"version": rel.version, "major": rel.version.split(".")[0]}
    required = [n.format(**fmt) for n in platform.ort_release_required_libs]
    missing = [n for n in required if n not in rel.libs]
    if missing:
        raise _release_missing(platform, rel, missing)
    return required


# --- acquiring it ----------------------------------------------------------------------------------------------


def read_record(settings: BuildSettings) -> dict[str, Any] | None:
    path = Path(release_dir(settings)) / RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_recorded_file(record: dict[str, Any]) -> Path:
    """The release file of ``record``, re-hashed: it must still be what was downloaded or inspected."""
    path = Path(record["file"])
    if not path.exists():
        raise AipcError(f"the ORT release {path} recorded by step ort-release is gone",
                        hint="run `aipc ort-release` (or `aipc build`) again")
    if path.is_file() and sha256_file(path) != record["sha256"]:
        raise AipcError(f"the ORT release {path} changed since step ort-release recorded it (sha256 differs)",
                        hint="run `aipc ort-release --force` to record it again")
    return path


def tree_sha256(path: Path) -> str:
    """sha256 over a folder's files (relative name and content), for an unpacked release."""
    digest = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.is_symlink():
            digest.update(p.relative_to(path).as_posix().encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return digest.hexdigest()


def _verify_zip(path: Path, what: str) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        raise AipcError(f"{what} {path.name} is not a readable zip file ({exc})",
                        hint="download it again") from None
    if bad is not None:
        raise AipcError(f"{what} {path.name} is damaged ({bad} fails its CRC check)", hint="download it again")


def run_pip_download(argv: list[str], dest: Path, what: str) -> Path:
    """Run ``pip download`` into the empty folder ``dest`` and return the one wheel it wrote."""
    proc = run(argv, timeout=DOWNLOAD_TIMEOUT)
    if proc.error is not None and proc.error.startswith("timeout"):
        raise AipcError(f"pip download {what} did not finish within {DOWNLOAD_TIMEOUT:.0f} s",
                        hint="check the network or pip's index settings, or pass a local wheel")
    if proc.error is not None:
        raise AipcError(f"cannot start {argv[0]} to download {what} ({proc.error})",
                        hint="pass an existing --python")
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip() and "WARNING" not in ln]
        said = lines[-1] if lines else f"exit {proc.returncode}, {len(wheels)} wheels"
        raise AipcError(f"pip download {what} failed: {said[:300]}",
                        hint="check network access or pip's configuration (index-url / find-links; on an "
                             "air-gapped machine a local wheelhouse), or pass a local wheel with --ort-release FILE")
    return wheels[0]


def _download_url(url: str, dest: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as resp, dest.open("wb") as out:
            shutil.copyfileobj(resp, out, 1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise AipcError(f"download of {url} failed: {reason}",
                        hint="check network access, or download the .nupkg elsewhere and pass it with "
                             "--ort-release FILE") from None


def _install(tmp_file: Path, final: Path) -> None:
    """Move a verified download into place (rename on the same file system)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(tmp_file), str(final))


def acquire(settings: BuildSettings, pins: Pins, echo: Echo = lambda s: None) -> dict[str, Any]:
    """Download (or inspect) the release, verify it and write ``release.json``; returns that record."""
    spec = settings.ort_release
    assert spec is not None
    plat = settings.platform
    out = Path(release_dir(settings))
    previous = read_record(settings)
    if is_local(spec):
        path = Path(spec)
        rel = open_release(plat, path)
        sha = sha256_file(path) if path.is_file() else tree_sha256(path)
        record = {"spec": spec, "kind": rel.kind, "file": str(path), "name": path.name, "sha256": sha,
                  "version": rel.version, "source": "local"}
        echo(f"[aipc]   ORT release {path} ({rel.kind}, ORT {rel.version}), sha256 {sha[:16]}...")
    else:
        if spec == "pypi":
            version = pins.onnxruntime.version
            requirement = pypi_requirement(plat, version)
            source = f"PyPI {requirement}"
        else:
            version = nuget_version(pins, plat)
            requirement = f"{plat.ort_nuget_package} {version}"
            source = nuget_url(plat.ort_nuget_package, version)
        if previous and previous.get("spec") == spec and previous.get("source") == source:
            try:
                check_recorded_file(previous)
                echo(f"[aipc]   ORT release {previous['file']} already downloaded and unchanged")
                return previous
            except AipcError:
                pass
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".incoming-", dir=out) as tmp_name:
            tmp = Path(tmp_name)
            if spec == "pypi":
                argv = pip_download_argv(settings.python, requirement, tmp, index_args=pip_index_args(settings))
                echo(f"[aipc]   $ {' '.join(argv)}")
                got = run_pip_download(argv, tmp, requirement)
                info = WheelInfo.from_path(got)
                if info.version != version:
                    raise AipcError(f"pip downloaded {got.name}, not version {version}",
                                    hint="check pip's constraints and index settings")
                _verify_zip(got, "the wheel")
            else:
                got = tmp / f"{plat.ort_nuget_package.lower()}.{version}.nupkg"
                echo(f"[aipc]   download {source}")
                _download_url(source, got)
                _verify_zip(got, "the NuGet package")
                package, got_version = _nuspec(got, _zip_names(got))
                if package.lower() != plat.ort_nuget_package.lower() or got_version != version:
                    raise AipcError(f"{source} holds {package} {got_version}, not {plat.ort_nuget_package} {version}",
                                    hint="check the [nuget] pin")
            sha = sha256_file(got)
            final = out / got.name
            _install(got, final)
        rel = open_release(plat, final)
        record = {"spec": spec, "kind": rel.kind, "file": str(final), "name": final.name, "sha256": sha,
                  "version": rel.version, "source": source}
        echo(f"[aipc]   ORT release {final.name}: ORT {rel.version}, sha256 {sha}")
    atomic_write_json(out / RECORD, record)
    return record


# --- the ORT wheel that goes beside the genai wheel --------------------------------------------------------------


def ort_wheel_for(settings: BuildSettings, pins: Pins, record: dict[str, Any], echo: Echo = lambda s: None) -> Path:
    """The ORT wheel that matches the release: the release itself when it is a wheel, otherwise the platform's ORT
    wheel of the release's version from pip (``onnxruntime-directml==<version>`` for the NuGet route), downloaded
    by the Python that built genai into ``<workdir>/ort_release/wheel/`` (reused while its version matches)."""
    if record.get("kind") == "wheel":
        return check_recorded_file(record)
    plat = settings.platform
    version = str(record["version"])
    requirement = pypi_requirement(plat, version)
    have = downloaded_ort_wheel(settings, version)
    if have is not None:
        return have
    out = Path(release_dir(settings)) / "wheel"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".incoming-", dir=out) as tmp_name:
        tmp = Path(tmp_name)
        argv = pip_download_argv(settings.python, requirement, tmp, index_args=pip_index_args(settings))
        echo(f"[aipc]   $ {' '.join(argv)}")
        got = run_pip_download(argv, tmp, requirement)
        if WheelInfo.from_path(got).version != version:
            raise AipcError(f"pip downloaded {got.name}, not version {version}",
                            hint="check pip's constraints and index settings")
        _verify_zip(got, "the wheel")
        echo(f"[aipc]   {got.name}: sha256 {sha256_file(got)}")
        final = out / got.name
        _install(got, final)
    return final


def downloaded_ort_wheel(settings: BuildSettings, version: str) -> Path | None:
    """The ORT wheel of ``version`` that :func:`ort_wheel_for` downloaded before and that installs here, if any."""
    from ..wheelhouse import find_wheels, wheel_fits_host

    out = Path(release_dir(settings)) / "wheel"
    for have in find_wheels(out, settings.platform.ort_wheel_dist, prefer_version=version):
        if WheelInfo.from_path(have).version == version and wheel_fits_host(have):
            return have
    return None
