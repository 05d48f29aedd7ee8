"""aipc.archives: every member is checked (both separators, '..', absolute paths, drive letters, links, devices)
before anything is extracted; tar extraction uses filter="data" (no setuid bits, no foreign owners)."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from aipc.archives import ArchiveError, check_member_name, safe_extract
from aipc.errors import AipcError
from conftest import assert_one_line_error, run_aipc


def make_tar(path: Path, members: dict[str, bytes], *, mode: int = 0o644, links: dict[str, str] | None = None,
             hardlinks: dict[str, str] | None = None, fifo: str | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
        for name, target in (hardlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.LNKTYPE
            info.linkname = target
            tar.addfile(info)
        if fifo:
            info = tarfile.TarInfo(fifo)
            info.type = tarfile.FIFOTYPE
            tar.addfile(info)
    return path


def make_zip(path: Path, members: dict[str, bytes], *, symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


BAD_NAMES = [
    "pkg-1.4.0/..\\..\\..\\x.txt",  # the member: harmless on POSIX, outside the folder on Windows
    "pkg-1.4.0/../x.txt",
    "../x.txt",
    "/etc/x.txt",
    "\\x.txt",
    "C:\\x.txt",
    "c:x.txt",
    "pkg-1.4.0/C:/x.txt",
    "\\\\server\\share\\x.txt",
    "",
    ".",
    "pkg-1.4.0/a\x00b",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_member_names_are_refused(name: str) -> None:
    with pytest.raises(ArchiveError):
        check_member_name(name)


@pytest.mark.parametrize("name", ["pkg-1.4.0/src/a.cpp", "pkg-1.4.0/", "./pkg/a", "a..b/c..", "pkg/.hidden"])
def test_good_member_names_pass(name: str) -> None:
    check_member_name(name)


def test_top_folder_is_enforced() -> None:
    check_member_name("pkg-1.4.0/a", top="pkg-1.4.0")
    with pytest.raises(ArchiveError, match="outside"):
        check_member_name("other/a", top="pkg-1.4.0")


@pytest.mark.parametrize("name", ["pkg-1.4.0/..\\..\\..\\x.txt", "pkg-1.4.0/../../x.txt", "/tmp/aipc-abs.txt"])
def test_tar_with_an_escaping_member_extracts_nothing(tmp_path: Path, name: str) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", {"pkg-1.4.0/ok.txt": b"ok", name: b"evil"})
    dest = tmp_path / "out" / "x"
    with pytest.raises(ArchiveError) as info:
        safe_extract(archive, dest)
    assert repr(name)[1:-1] in str(info.value) or name in str(info.value)
    assert not dest.exists() or not any(dest.rglob("*"))
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo"])
def test_tar_links_and_devices_are_refused(tmp_path: Path, kind: str) -> None:
    archive = make_tar(
        tmp_path / "a.tar.gz", {"pkg/ok.txt": b"ok"},
        links={"pkg/l": "../../etc/passwd"} if kind == "symlink" else None,
        hardlinks={"pkg/h": "pkg/ok.txt"} if kind == "hardlink" else None,
        fifo="pkg/f" if kind == "fifo" else None,
    )
    with pytest.raises(ArchiveError, match=r"link|device"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "pkg" / "ok.txt").exists()


def test_tar_extracts_with_safe_modes(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", {"pkg/run.sh": b"#!/bin/sh\n", "pkg/sub/data.txt": b"d"}, mode=0o6777)
    names = safe_extract(archive, tmp_path / "out", top="pkg")
    assert sorted(names) == ["pkg/run.sh", "pkg/sub/data.txt"]
    run = tmp_path / "out" / "pkg" / "run.sh"
    assert run.read_bytes() == b"#!/bin/sh\n"
    mode = run.stat().st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID), oct(mode)
    assert not mode & stat.S_IWOTH, oct(mode)


def test_zip_members_are_checked_too(tmp_path: Path) -> None:
    good = make_zip(tmp_path / "good.zip", {"deps/a.txt": b"a"})
    assert safe_extract(good, tmp_path / "g") == ["deps/a.txt"]
    assert (tmp_path / "g" / "deps" / "a.txt").read_bytes() == b"a"
    for i, name in enumerate(["deps/..\\..\\x.txt", "../x.txt", "C:/x.txt"]):
        bad = make_zip(tmp_path / f"bad{i}.zip", {"deps/a.txt": b"a", name: b"evil"})
        with pytest.raises(ArchiveError):
            safe_extract(bad, tmp_path / f"b{i}")
        assert not (tmp_path / f"b{i}" / "deps" / "a.txt").exists()
    link = make_zip(tmp_path / "link.zip", {"deps/a.txt": b"a"}, symlink="deps/l")
    with pytest.raises(ArchiveError, match="link"):
        safe_extract(link, tmp_path / "l")


def test_not_an_archive_is_one_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(AipcError, match="not a tar or zip archive"):
        safe_extract(junk, tmp_path / "out")


def test_size_limit(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", {"pkg/big": b"x" * 5000})
    with pytest.raises(ArchiveError, match="larger"):
        safe_extract(archive, tmp_path / "out", max_bytes=1000)


def test_build_npu_refuses_the_windows_escape_member(tmp_path: Path) -> None:
    """The issue's case through the CLI: an sdist member `pkg-1.4.0/..\\..\\..\\x.txt` (with a matching sha pin)."""
    from aipc.fsutil import sha256_file
    from aipc.npu import build, sdist
    from conftest import write_pins

    pin = sdist.SdistPin.from_pins(build.load_pins())
    top = pin.top_dir
    evil = make_tar(tmp_path / pin.file, {
        f"{top}/src/bindings.cpp": b"// fixture\n",
        f"{top}/..\\..\\..\\x.txt": b"evil",
    })
    pins = write_pins(tmp_path, **{pin.sha256: sha256_file(evil)})
    proc = run_aipc("build-npu", "--sdist", str(evil), "--build-dir", str(tmp_path / "b"), "--wheels",
                    str(tmp_path / "w"), env={"AIPC_PINS": str(pins)}, timeout=300)
    assert_one_line_error(proc.returncode, proc.stderr, "..\\\\..\\\\..\\\\x.txt", code=1)
    assert not list(tmp_path.rglob("x.txt"))


@pytest.mark.parametrize("member", ["runtimes/win-x64/native/..\\..\\..\\evil.dll", "lib/../../evil.so", "C:/x.dll"])
def test_a_release_member_that_escapes_is_refused(tmp_path: Path, member: str) -> None:
    """The ORT release route copies single members of a .nupkg/.whl: their names are checked the same way."""
    from aipc.wheelbuild.release import Release

    pkg = make_zip(tmp_path / "ort.nupkg", {member: b"MZ evil"})
    rel = Release(path=pkg, kind="nupkg", version="1.24.4", libs={"evil.dll": member}, headers={}, record={})
    dest = tmp_path / "home" / "lib" / "evil.dll"
    with pytest.raises(ArchiveError):
        rel.extract(member, dest)
    assert not (tmp_path / "home").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ort.nupkg"]
