"""The library's PyPI sdist: obtain it (pip download, or a local file / directory), verify its pinned sha256, unpack.

The sdist (``intel_npu_acceleration_library-1.4.0.tar.gz``, 70 KB) is the only upstream input of the build;
docs/upstream.md#npu §2 (the PyPI sdist equals tag v1.4.0 apart from CRLF line endings).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..archives import safe_extract
from ..errors import AipcError, UsageError
from ..fsutil import atomic_copy, atomic_path, sha256_file
from ..pins import Pins
from ..runner import Command

DIST = "intel-npu-acceleration-library"


@dataclass(frozen=True)
class SdistPin:
    file: str  # intel_npu_acceleration_library-1.4.0.tar.gz
    sha256: str
    version: str

    @classmethod
    def from_pins(cls, pins: Pins) -> SdistPin:
        npu = pins.npu
        file, sha = str(npu.get("sdist", "")), str(npu.get("sdist_sha256", "")).lower()
        if not file.endswith(".tar.gz") or len(sha) != 64:
            raise AipcError(
                f"{pins.path}: [npu] needs sdist = \"<name>.tar.gz\" and a 64-digit sdist_sha256",
                hint="restore the [npu] table from src/aipc/pins.toml",
            )
        version = pins.releases.get(DIST, file[: -len(".tar.gz")].rpartition("-")[2])
        return cls(file, sha, version)

    @property
    def top_dir(self) -> str:
        """The directory the sdist unpacks to (``intel_npu_acceleration_library-1.4.0``)."""
        return self.file[: -len(".tar.gz")]

    @property
    def requirement(self) -> str:
        return f"{DIST}=={self.version}"


def _python(text: str, key: str, pins: Pins) -> tuple[int, int]:
    try:
        major, minor = (int(x) for x in text.split("."))
    except ValueError:
        raise AipcError(f"{pins.path}: [npu] {key} = {text!r} is not MAJOR.MINOR",
                        hint="restore the [npu] table from src/aipc/pins.toml") from None
    return major, minor


@dataclass(frozen=True)
class NpuPin:
    """Every ``[npu]`` fact the build and the path use, read once; a missing key is an error, never a default."""

    sdist: SdistPin
    openvino: str  # the openvino wheel the build venv installs
    openvino_max_exclusive: str  # refused from here on (element-type enum shift)
    # CPython span of the library's PyPI wheels (win_amd64) and of the pinned openvino's wheels
    python_min: tuple[int, int]
    python_max: tuple[int, int]
    build_requires: tuple[str, ...]

    KEYS = ("openvino", "openvino_max_exclusive", "python_min", "python_max", "build_requires")

    @classmethod
    def from_pins(cls, pins: Pins) -> NpuPin:
        npu = pins.npu
        missing = [k for k in cls.KEYS if k not in npu]
        if missing:
            raise AipcError(f"{pins.path}: [npu] lacks {', '.join(missing)}",
                            hint="restore the [npu] table from src/aipc/pins.toml")
        return cls(
            sdist=SdistPin.from_pins(pins),
            openvino=str(npu["openvino"]),
            openvino_max_exclusive=str(npu["openvino_max_exclusive"]),
            python_min=_python(str(npu["python_min"]), "python_min", pins),
            python_max=_python(str(npu["python_max"]), "python_max", pins),
            build_requires=tuple(str(r) for r in npu["build_requires"]),
        )

    def python_fits(self, python: tuple[int, int]) -> bool:
        return self.python_min <= python <= self.python_max

    @property
    def python_span(self) -> str:
        """``3.8-3.12``"""
        return "-".join(f"{v[0]}.{v[1]}" for v in (self.python_min, self.python_max))


def incoming_dir(sdist_dir: Path) -> Path:
    """Where the pipeline's ``pip download`` writes: the sdist is verified there, then renamed into ``sdist_dir``,
    so an interrupted download never leaves a partial file under the sdist's own name."""
    return sdist_dir / ".incoming"


def requirement_file(dest: Path) -> Path:
    """The hash-pinned requirement ``pip download`` reads (written next to ``dest`` by :func:`obtain_sdist`)."""
    return dest.parent / "sdist-requirement.txt"


def requirement_text(pin: SdistPin) -> str:
    return f"{pin.requirement} --hash=sha256:{pin.sha256}\n"


def download_argv(pin: SdistPin, dest: Path, python: str, find_links: Path | None = None) -> list[str | Path]:
    """``pip download`` of the sdist only (no wheels, no dependencies) into ``dest`` (paths left as paths).

    ``--require-hashes`` with the pinned sha256: pip checks the download before it runs the sdist's ``setup.py``
    to prepare its metadata, so a tampered sdist never executes (aipc checks the hash again afterwards).
    """
    index: list[str | Path] = ["--no-index", "--find-links", find_links] if find_links is not None else []
    return [python, "-m", "pip", "download", *index, "--disable-pip-version-check", "--no-deps",
            "--no-binary", ":all:", "--require-hashes", "-r", requirement_file(dest), "-d", dest]


def download_command(pin: SdistPin, dest: Path, python: str, find_links: Path | None = None) -> Command:
    return Command.make(download_argv(pin, dest, python, find_links), cwd=dest.parent)


# what `--sdist FILE` does, as a command line: python -c COPY_VERIFIED FILE DEST SHA256
COPY_VERIFIED = (
    "import hashlib, shutil, sys; src, dest, sha = sys.argv[1:]; "
    "got = hashlib.sha256(open(src, 'rb').read()).hexdigest(); "
    "sys.exit(f'{src}: sha256 {got}, expected {sha}') if got != sha else shutil.copy2(src, dest)"
)


def locate_sdist(given: Path, pin: SdistPin) -> Path:
    """``--sdist PATH``: the sdist file itself, or a directory holding it (a pip download dir / wheelhouse)."""
    if given.is_dir():
        candidate = given / pin.file
        if candidate.is_file():
            return candidate
        raise UsageError(
            f"--sdist {given} is a directory without {pin.file}",
            hint=f"pass the file, or a directory made by `pip download --no-deps --no-binary :all: {pin.requirement}`",
        )
    if not given.is_file():
        raise UsageError(f"--sdist {given} does not exist", hint=f"pass the path of {pin.file} or its directory")
    return given


def verify_sdist(path: Path, pin: SdistPin) -> str:
    """Refuse a file whose sha256 is not the pinned one (tampered, truncated or another release)."""
    digest = sha256_file(path)
    if digest != pin.sha256:
        raise AipcError(
            f"sdist {path} has sha256 {digest}, expected {pin.sha256} (pinned in [npu] sdist_sha256): refusing a "
            f"tampered or different {pin.file}",
            hint=f"delete it and let aipc download {pin.requirement} again, or pass the genuine file with --sdist",
        )
    return digest


def obtain_sdist(dest: Path, pin: SdistPin, *, given: Path | None, download: Command | None) -> Path:
    """Put the verified sdist at ``dest``. ``given`` wins over ``download`` (a :func:`download_command`
    into ``incoming_dir(dest.parent)``); only a file that passed the sha256 check is renamed onto ``dest``."""
    if dest.is_file():
        try:
            verify_sdist(dest, pin)
            return dest
        except AipcError:
            dest.unlink()  # a stale or damaged cached copy: fetch again
    if given is not None:
        src = locate_sdist(given, pin)
        verify_sdist(src, pin)
        atomic_copy(src, dest)
        return dest
    if download is None:
        raise AipcError(f"no sdist at {dest} and no way to fetch it", hint="pass --sdist PATH")
    staging = incoming_dir(dest.parent)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    req = requirement_file(staging)
    req.write_text(requirement_text(pin), encoding="utf-8")
    try:
        proc = subprocess.run(download.argv, cwd=download.cwd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 and "Expected sha256" in proc.stderr:
            served = proc.stderr.split("Got", 1)[-1].split()[0] if "Got" in proc.stderr else "another hash"
            raise AipcError(
                f"the {pin.file} served by the index has sha256 {served}, expected {pin.sha256} (pinned in [npu] "
                f"sdist_sha256): refusing a tampered or different sdist (pip stopped before running its setup.py)",
                hint="check the index / --find-links you use, or pass the genuine file with --sdist",
            )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            raise AipcError(
                f"pip download of {pin.requirement} failed (exit {proc.returncode}): {tail[0][:200]}",
                hint="check network access to PyPI, or work offline with --sdist PATH (and --find-links DIR)",
            )
        got = staging / pin.file
        if not got.is_file():
            raise AipcError(f"pip download did not produce {pin.file}", hint="pass the sdist with --sdist PATH")
        verify_sdist(got, pin)
        os.replace(got, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def unpack_sdist(tar_path: Path, pin: SdistPin, dest: Path) -> Path:
    """Verify and unpack the sdist to ``dest`` (atomically); returns the source directory."""
    verify_sdist(tar_path, pin)
    with atomic_path(dest) as tmp:
        safe_extract(tar_path, tmp, top=pin.top_dir, what=f"sdist {tar_path}", hint="use the genuine PyPI sdist")
    src = dest / pin.top_dir
    if not (src / "src" / "bindings.cpp").is_file():
        raise AipcError(f"{tar_path} has no src/bindings.cpp", hint="use the genuine PyPI sdist")
    return src
