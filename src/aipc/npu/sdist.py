"""The library's PyPI sdist: obtain it (pip download, or a local file / directory), verify its pinned sha256, unpack.

The sdist (``intel_npu_acceleration_library-1.4.0.tar.gz``, 70 KB) is the only upstream input of the build;
docs/upstream.md#npu §2 (the PyPI sdist equals tag v1.4.0 apart from CRLF line endings).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..archives import safe_extract
from ..errors import AipcError, UsageError
from ..fsutil import atomic_copy, atomic_path, sha256_file
from ..proc import run
from ..runner import Command
from ..runtimes.npu import DIST, NpuPin, SdistPin

__all__ = ["DIST", "NpuPin", "SdistPin"]  # the [npu] pins live with the npu runtime; the build reads them here too

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
        proc = run(download.argv, cwd=download.cwd, timeout=None)
        if proc.returncode != 0 and "Expected sha256" in proc.stderr:
            served = proc.stderr.split("Got", 1)[-1].split()[0] if "Got" in proc.stderr else "another hash"
            raise AipcError(
                f"the {pin.file} served by the index has sha256 {served}, expected {pin.sha256} (pinned in [npu] "
                f"sdist_sha256): refusing a tampered or different sdist (pip stopped before running its setup.py)",
                hint="check the index / --find-links you use, or pass the genuine file with --sdist",
            )
        if proc.returncode != 0:
            raise AipcError(
                f"pip download of {pin.requirement} failed ({proc.reason()[:250]})",
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
