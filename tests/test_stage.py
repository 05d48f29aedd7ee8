"""Tests of ``aipc stage``: artifact discovery, staging of synthetic Windows/Linux trees, validation, bad input,
and the library load check against the real ``libonnxruntime.so`` of the ``onnxruntime`` wheel."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from aipc import cli as aipc_cli
from aipc import ortversion
from aipc.errors import AipcError
from aipc.fsutil import sha256_file
from aipc.platforms import get_platform, host_platform_name
from aipc.wheelbuild import ortcheck, stage
from aipc.wheelbuild.stage import find_artifact_dir, stage_ort_home
from conftest import assert_one_line_error, run_aipc, shared_cache
from ort_fixtures import (
    EXTRA_HEADERS,
    SESSION_HEADERS,
    elf_stub,
    ort_wheel_library,
    pe_stub,
    write_ort_build,
    write_ort_source,
)

WINDOWS_LIBS = {"onnxruntime.dll", "onnxruntime.lib", "onnxruntime_providers_shared.dll",
                "onnxruntime_providers_shared.lib", "DirectML.dll"}
on_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux host (ELF, symlinks)")

RunCli = Callable[[list[str]], tuple[int, str, str]]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """``aipc.cli.main`` in this process: (exit code, stdout, stderr)."""

    def run(argv: list[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = aipc_cli.main(argv)
        captured = capsys.readouterr()
        return rc, captured.out, captured.err

    return run


def _tree(tmp_path: Path, platform: str, generator: str | None = None, version: str = "1.24.4",
          **build_kw: object) -> tuple[Path, Path]:
    src = write_ort_source(tmp_path / "onnxruntime", version=version)
    build = tmp_path / "onnxruntime" / "build" / get_platform(platform).system
    write_ort_build(build, platform, generator, version, **build_kw)  # type: ignore[arg-type]
    return src, build


def _argv(platform: str, src: Path, build: Path, out: Path, *extra: str) -> list[str]:
    return ["stage", "--platform", platform, "--ort-source", str(src), "--ort-build", str(build), "--out", str(out),
            *extra]


def _listing(root: Path) -> dict[str, str]:
    """Relative path -> 'link:<target>' or sha256, for comparing trees."""
    result = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            result[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            result[rel] = sha256_file(path)
    return result


# --- discovery -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "generator", "expected"),
    [
        ("windows", "Visual Studio 17 2022", "Windows/Release/Release"),
        ("windows", "Ninja", "Windows/Release"),
        pytest.param("linux", "Ninja", "Linux/Release", marks=on_linux),
    ],
)
def test_artifact_discovery_per_generator_layout(tmp_path: Path, platform: str, generator: str, expected: str) -> None:
    build = tmp_path / "build" / get_platform(platform).system
    write_ort_build(build, platform, generator)
    assert find_artifact_dir(get_platform(platform), build, "Release") == tmp_path / "build" / expected
    # the parent build/ directory is accepted too
    assert find_artifact_dir(get_platform(platform), tmp_path / "build", "Release") == tmp_path / "build" / expected


def test_artifact_discovery_follows_the_generator_in_cmake_cache(tmp_path: Path) -> None:
    build = tmp_path / "build" / "Windows"
    # a Visual Studio build left its outputs in Release/Release; the tree was reconfigured and rebuilt with Ninja
    write_ort_build(build, "windows", "Visual Studio 17 2022")
    write_ort_build(build, "windows", "Ninja")
    assert find_artifact_dir(get_platform("windows"), build, "Release") == build / "Release"
    write_ort_build(build, "windows", "Visual Studio 17 2022")  # rewrites CMakeCache.txt
    assert find_artifact_dir(get_platform("windows"), build, "Release") == build / "Release" / "Release"


def test_artifact_discovery_names_main_lib_when_nothing_built(tmp_path: Path) -> None:
    build = tmp_path / "build" / "Windows"
    (build / "Release").mkdir(parents=True)
    with pytest.raises(AipcError, match=r"missing onnxruntime\.dll: not found in .*Release"):
        find_artifact_dir(get_platform("windows"), build, "Release")


# --- staging synthetic trees -----------------------------------------------------------------------------------


@pytest.mark.parametrize("generator", ["Visual Studio 17 2022", "Ninja"])
def test_stage_windows_tree(tmp_path: Path, generator: str, run_cli: RunCli) -> None:
    src, build = _tree(tmp_path, "windows", generator, extra_files=("D3D12Core.dll",))
    out = tmp_path / "ORT_HOME"
    rc, stdout, err = run_cli(_argv("windows", src, build, out))
    assert rc == 0, err
    assert "load check skipped:" in stdout
    includes = {p.name for p in (out / "include").iterdir()}
    assert includes == set(SESSION_HEADERS) | {Path(h).name for h in EXTRA_HEADERS}
    assert all(p.is_file() for p in (out / "include").iterdir())  # flat
    libs = {p.name for p in (out / "lib").iterdir()}
    assert libs == WINDOWS_LIBS | {"D3D12Core.dll"}  # no .pdb, no DirectML.Debug.dll

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["platform"] == "windows" and manifest["ort_version"] == "1.24.4" and manifest["api_version"] == 24
    assert manifest["load_check"]["status"] == "skip" and manifest["load_check"]["reason"]
    entries = {e["path"]: e for e in manifest["files"]}
    assert set(entries) == {f"include/{n}" for n in includes} | {f"lib/{n}" for n in libs}
    for rel, entry in entries.items():
        assert entry["sha256"] == sha256_file(out / rel)
        assert entry["size"] == (out / rel).stat().st_size
    art = find_artifact_dir(get_platform("windows"), build, "Release")
    assert entries["lib/onnxruntime.lib"]["source"] == str(art / "onnxruntime.lib")
    c_api = src / "include/onnxruntime/core/session/onnxruntime_c_api.h"
    assert entries["include/onnxruntime_c_api.h"]["source"] == str(c_api)
    assert entries["include/dml_provider_factory.h"]["origin"] == "ort_source"
    # only staging files remain next to ORT_HOME (no temporary directories)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ORT_HOME", "onnxruntime"]


def test_stage_windows_takes_directml_from_nuget_package_when_not_copied(tmp_path: Path) -> None:
    src, build = _tree(tmp_path, "windows", "Ninja", omit=("DirectML.dll",))
    for package in ("Microsoft.AI.DirectML.1.9.1", "Microsoft.AI.DirectML.1.15.4"):
        nuget = build / "packages" / package / "bin" / "x64-win"
        nuget.mkdir(parents=True)
        (nuget / "DirectML.dll").write_bytes(pe_stub(package.rpartition("DirectML.")[2] + ".0"))
    # the newest package wins (1.15.4 > 1.9.1, although "1.9" sorts after "1.1" as text)
    manifest = stage_ort_home(get_platform("windows"), src, build, tmp_path / "home")
    entry = next(e for e in manifest["files"] if e["path"] == "lib/DirectML.dll")
    assert entry["source"] == str(nuget / "DirectML.dll")
    assert any("DirectML.dll: not in" in note for note in manifest["notes"])


@on_linux
def test_stage_linux_tree_keeps_symlinks(tmp_path: Path, run_cli: RunCli) -> None:
    src, build = _tree(tmp_path, "linux")
    art = build / "Release"
    # a leftover of an older build in the same directory is left out, not staged
    (art / "libonnxruntime.so.1.23.0").write_bytes(b"old")
    out = tmp_path / "ORT_HOME"
    rc, stdout, err = run_cli(_argv("linux", src, build, out))
    assert rc == 0, err
    lib = out / "lib"
    assert os.readlink(lib / "libonnxruntime.so") == "libonnxruntime.so.1"
    assert os.readlink(lib / "libonnxruntime.so.1") == "libonnxruntime.so.1.24.4"
    assert not (lib / "libonnxruntime.so.1.24.4").is_symlink() and (lib / "libonnxruntime.so.1.24.4").is_file()
    assert {p.name for p in lib.iterdir()} == {"libonnxruntime.so", "libonnxruntime.so.1", "libonnxruntime.so.1.24.4",
                                              "libonnxruntime_providers_shared.so"}
    includes = {p.name for p in (out / "include").iterdir()}
    assert "dml_provider_factory.h" not in includes and "cpu_provider_factory.h" in includes
    manifest = json.loads((out / "manifest.json").read_text())
    entries = {e["path"]: e for e in manifest["files"]}
    assert entries["lib/libonnxruntime.so"]["symlink"] == "libonnxruntime.so.1"
    assert entries["lib/libonnxruntime.so"]["sha256"] == sha256_file(art / "libonnxruntime.so.1.24.4")
    assert "symlink" not in entries["lib/libonnxruntime.so.1.24.4"]
    assert any("1.23.0" in note and "left out" in note for note in manifest["notes"])
    # the fixture library is a sound ELF file for another machine: the load check is skipped, never passed
    assert manifest["load_check"]["status"] == "skip" and "built for ELF machine" in manifest["load_check"]["reason"]
    assert "load check skipped: libonnxruntime.so is built for ELF machine" in stdout


def test_restage_replaces_and_legacy_ort_dir_is_filled(tmp_path: Path, run_cli: RunCli) -> None:
    src, build = _tree(tmp_path, "windows")
    out, legacy = tmp_path / "ORT_HOME", tmp_path / "genai" / "ort"
    rc, _, err = run_cli(_argv("windows", src, build, out))
    assert rc == 0, err
    rebuilt = pe_stub("1.24.4.1")
    (build / "Release" / "Release" / "onnxruntime.dll").write_bytes(rebuilt)
    rc, stdout, err = run_cli(_argv("windows", src, build, out, "--legacy-ort-dir", str(legacy)))
    assert rc == 0, err  # an ORT_HOME aipc staged is replaced as a whole
    assert (out / "lib" / "onnxruntime.dll").read_bytes() == rebuilt
    assert _listing(legacy) == _listing(out)
    assert json.loads((legacy / "manifest.json").read_text())["legacy_ort_dir"] == str(legacy)
    assert "genai's ort/ folder" in stdout


def test_no_load_check_is_recorded_as_skip(tmp_path: Path) -> None:
    src, build = _tree(tmp_path, "windows")
    manifest = stage_ort_home(get_platform("windows"), src, build, tmp_path / "home", check_load=False)
    assert manifest["load_check"]["status"] == "skip"
    assert "--no-load-check" in manifest["load_check"]["reason"]


# --- bad input: one line, non-zero exit, nothing already staged is lost ----------------------------------------


def _stage_good(tmp_path: Path, platform: str, run_cli: RunCli) -> tuple[Path, Path, Path, dict[str, str]]:
    src, build = _tree(tmp_path, platform)
    out = tmp_path / "ORT_HOME"
    rc, _, err = run_cli(_argv(platform, src, build, out))
    assert rc == 0, err
    return src, build, out, _listing(out)


def _assert_one_line_failure(rc: int, err: str, *needles: str) -> None:
    assert_one_line_error(rc, err, *needles, alone=True)


def test_missing_source_directory(tmp_path: Path, run_cli: RunCli) -> None:
    _, build, out, before = _stage_good(tmp_path, "windows", run_cli)
    rc, _, err = run_cli(_argv("windows", tmp_path / "nope", build, out))
    _assert_one_line_failure(rc, err, "ORT source directory", str(tmp_path / "nope"), "does not exist")
    assert _listing(out) == before


def test_missing_build_directory(tmp_path: Path, run_cli: RunCli) -> None:
    src, _, out, before = _stage_good(tmp_path, "windows", run_cli)
    rc, _, err = run_cli(_argv("windows", src, tmp_path / "nobuild", out))
    _assert_one_line_failure(rc, err, "ORT build directory", "does not exist")
    assert _listing(out) == before


def test_missing_import_library(tmp_path: Path, run_cli: RunCli) -> None:
    src, build, out, before = _stage_good(tmp_path, "windows", run_cli)
    (find_artifact_dir(get_platform("windows"), build) / "onnxruntime.lib").unlink()
    rc, _, err = run_cli(_argv("windows", src, build, out))
    _assert_one_line_failure(rc, err, "missing onnxruntime.lib")
    assert _listing(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ORT_HOME", "onnxruntime"]


def test_missing_dml_header(tmp_path: Path, run_cli: RunCli) -> None:
    src, build, out, before = _stage_good(tmp_path, "windows", run_cli)
    (src / "include/onnxruntime/core/providers/dml/dml_provider_factory.h").unlink()
    rc, _, err = run_cli(_argv("windows", src, build, out))
    _assert_one_line_failure(rc, err, "missing", "dml_provider_factory.h")
    assert _listing(out) == before


def test_missing_version_number(tmp_path: Path, run_cli: RunCli) -> None:
    src, build = _tree(tmp_path, "windows")
    (src / "VERSION_NUMBER").unlink()
    rc, _, err = run_cli(_argv("windows", src, build, tmp_path / "home"))
    _assert_one_line_failure(rc, err, "VERSION_NUMBER", "is missing")
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("platform", ["windows", pytest.param("linux", marks=on_linux)])
def test_header_version_mismatch(tmp_path: Path, platform: str, run_cli: RunCli) -> None:
    src, build, out, before = _stage_good(tmp_path, platform, run_cli)
    write_ort_source(src, version="1.24.4", api_version=23)  # header from an older checkout
    rc, _, err = run_cli(_argv(platform, src, build, out))
    _assert_one_line_failure(rc, err, "onnxruntime_c_api.h is stale", "ORT_API_VERSION 23", "1.24.4", "24")
    assert _listing(out) == before


@on_linux
def test_library_version_mismatch_linux(tmp_path: Path, run_cli: RunCli) -> None:
    src, build, out, before = _stage_good(tmp_path, "linux", run_cli)
    write_ort_source(src, version="1.25.0")  # new source, old build
    rc, _, err = run_cli(_argv("linux", src, build, out))
    _assert_one_line_failure(rc, err, "libonnxruntime.so.1.24.4 is stale", "1.25.0")
    assert _listing(out) == before


def test_library_version_mismatch_windows(tmp_path: Path, run_cli: RunCli) -> None:
    src, build = _tree(tmp_path, "windows", dll_file_version="1.23.2.0")
    rc, _, err = run_cli(_argv("windows", src, build, tmp_path / "home"))
    _assert_one_line_failure(rc, err, "lib/onnxruntime.dll is stale", "1.23.2.0", "1.24.4")
    assert not (tmp_path / "home").exists()


@on_linux
def test_broken_symlink_is_named(tmp_path: Path, run_cli: RunCli) -> None:
    src, build = _tree(tmp_path, "linux")
    (build / "Release" / "libonnxruntime.so.1.24.4").unlink()
    rc, _, err = run_cli(_argv("linux", src, build, tmp_path / "home"))
    _assert_one_line_failure(rc, err, "libonnxruntime.so.1", "broken symlink")


def test_unknown_platform_is_a_usage_error(tmp_path: Path, run_cli: RunCli) -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli(["stage", "--platform", "macos", "--ort-source", "a", "--ort-build", "b", "--out", "c"])
    assert exc.value.code == 2


# --- ortcheck units ----------------------------------------------------------------------------------------------


def test_ortlib_version_helpers(tmp_path: Path) -> None:
    assert ortversion.api_version_for("1.24.4") == 24
    header = tmp_path / "h.h"
    header.write_text("//\n#  define ORT_API_VERSION 31\n#define ORT_API_VERSION_X 2\n")
    assert ortversion.parse_api_version(header) == 31
    header.write_text("#define NOTHING 1\n")
    with pytest.raises(AipcError, match="no '#define ORT_API_VERSION N'"):
        ortversion.parse_api_version(header)
    assert ortversion.version_from_lib_name("libonnxruntime.so", "libonnxruntime.so.1.24.4") == "1.24.4"
    assert ortversion.version_from_lib_name("libonnxruntime.so", "libonnxruntime.so.1") is None
    dll = tmp_path / "x.dll"
    dll.write_bytes(pe_stub("1.24.4.0"))
    assert ortcheck.pe_file_version(dll) == "1.24.4.0"
    dll.write_bytes(pe_stub(None))
    assert ortcheck.pe_file_version(dll) is None


@pytest.mark.parametrize("platform", ["linux", "windows"])
@pytest.mark.parametrize("damage", ["empty", "17 bytes", "text", "truncated"])
def test_a_file_that_is_no_binary_fails_the_load_check_on_any_host(tmp_path: Path, platform: str,
                                                                   damage: str) -> None:
    good = elf_stub() if platform == "linux" else pe_stub("1.24.4.0") + b"\0" * 64
    if platform == "windows":  # one section whose raw data ends at the last byte
        good = bytearray(good)
        good[64 + 6:64 + 8] = (1).to_bytes(2, "little")
        section = b".text\0\0\0" + bytes(8) + len(good).to_bytes(4, "little") + bytes(4) + bytes(16)
        good = bytes(good[:64 + 24]) + section + bytes(good[64 + 24 + 40:])  # raw data covers the whole file
    lib = tmp_path / ("libonnxruntime.so" if platform == "linux" else "onnxruntime.dll")
    lib.write_bytes(good)
    assert ortcheck.binary_problem(get_platform(platform), lib) is None
    lib.write_bytes({"empty": b"", "17 bytes": good[:17], "text": b"version https://git-lfs\n" * 4,
                     "truncated": good[:len(good) // 2]}[damage])
    check = ortcheck.check_library(get_platform(platform), lib, 24, "1.24.4")
    assert check.status == "fail", check
    assert "truncated" in check.reason or "not a" in check.reason


@on_linux
def test_stage_fails_on_a_truncated_library(tmp_path: Path, run_cli: RunCli) -> None:
    src, build = _tree(tmp_path, "linux")
    lib = build / "Release" / "libonnxruntime.so.1.24.4"
    lib.write_bytes(lib.read_bytes()[:17])  # what an interrupted build left
    out = tmp_path / "ORT_HOME"
    rc, _, err = run_cli(_argv("linux", src, build, out))
    assert_one_line_error(rc, err, "libonnxruntime.so", "not an ELF shared object", code=1)
    assert not out.exists()


def test_binary_mismatch_reasons(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.write_bytes(b"\x7fELF" + b"\x02\x01\x01" + b"\0" * 9 + b"\x03\x00" + (40).to_bytes(2, "little") + b"\0" * 40)
    other = "linux" if host_platform_name() == "windows" else "windows"
    assert "cannot be loaded on this" in (ortcheck.binary_mismatch(get_platform(other), lib) or "")
    if host_platform_name() == "linux":
        assert "ELF machine 40" in (ortcheck.binary_mismatch(get_platform("linux"), lib) or "")  # ARM32 != host


# --- the real library from the onnxruntime wheel ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real_lib() -> Path:
    if not sys.platform.startswith("linux"):
        pytest.skip("the onnxruntime wheel's libonnxruntime.so loads on Linux only")
    return ort_wheel_library(shared_cache())


def _real_version(lib: Path) -> str:
    return lib.name.removeprefix("libonnxruntime.so.")


@on_linux
def test_real_library_load_check_passes(tmp_path: Path, real_lib: Path, run_cli: RunCli) -> None:
    version = _real_version(real_lib)
    src, build = _tree(tmp_path, "linux", version=version, real_so=real_lib)
    out = tmp_path / "ORT_HOME"
    rc, stdout, err = run_cli(_argv("linux", src, build, out))
    assert rc == 0, err
    check = json.loads((out / "manifest.json").read_text())["load_check"]
    assert check["status"] == "pass" and check["version_string"] == version
    assert check["api_version"] == int(version.split(".")[1])
    assert f"GetVersionString() = {version}" in stdout


@on_linux
def test_real_library_too_old_for_header_is_stale(tmp_path: Path, real_lib: Path, run_cli: RunCli) -> None:
    version = _real_version(real_lib)
    major, minor, _ = version.split(".")
    newer = f"{major}.{int(minor) + 1}.0"
    # a header (and VERSION_NUMBER) one API version ahead of the library built from an older tree
    src, build = _tree(tmp_path, "linux", version=newer, real_so=real_lib)
    out = tmp_path / "ORT_HOME"
    rc, _, err = run_cli(_argv("linux", src, build, out))
    _assert_one_line_failure(rc, err, "lib/libonnxruntime.so", "is stale", f"GetApi({int(minor) + 1}) returned NULL",
                             f"ORT {version}")
    assert not out.exists()


@on_linux
def test_real_library_reporting_another_version_is_stale(tmp_path: Path, real_lib: Path, run_cli: RunCli) -> None:
    version = _real_version(real_lib)
    older = "1.24.4"
    assert older != version
    # the library file claims 1.24.4 by name; GetApi(24) works, but GetVersionString() says otherwise
    src, build = _tree(tmp_path, "linux", version=older, real_so=real_lib)
    rc, _, err = run_cli(_argv("linux", src, build, tmp_path / "home"))
    _assert_one_line_failure(rc, err, "lib/libonnxruntime.so", "is stale", f"GetVersionString() returned '{version}'")


@on_linux
def test_unloadable_elf_fails_naming_the_library(tmp_path: Path, run_cli: RunCli) -> None:
    src, build = _tree(tmp_path, "linux")
    lib = build / "Release" / "libonnxruntime.so.1.24.4"
    machine = {"x86_64": 62, "aarch64": 183}.get(os.uname().machine, 62)
    lib.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x03\x00" + machine.to_bytes(2, "little") + b"\0" * 100)
    rc, _, err = run_cli(_argv("linux", src, build, tmp_path / "home"))
    _assert_one_line_failure(rc, err, "lib/libonnxruntime.so", "cannot be loaded")
    assert not (tmp_path / "home").exists()


def test_file_system_error_is_one_line(tmp_path: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    src, build = _tree(tmp_path, "windows")
    (tmp_path / "afile").write_text("not a directory")
    with pytest.raises(SystemExit) as exc:  # refused at parse time, before any work (aipc.argtypes.output_dir)
        run_cli(_argv("windows", src, build, tmp_path / "afile" / "ORT_HOME"))
    assert exc.value.code == 2
    _assert_one_line_failure(2, capsys.readouterr().err, "cannot be made", "afile is not a folder")


def test_stage_argv_round_trips_through_the_parser() -> None:
    parser = aipc_cli._Parser(prog="aipc")
    stage.register_cli(parser.add_subparsers(dest="command"))
    argv = stage.stage_argv(get_platform("windows"), "C:\\b\\ort", "C:\\b\\ort\\build\\Windows", "C:\\b\\ort_home",
                            config="RelWithDebInfo", legacy_ort_dir="C:\\b\\genai\\ort", check_load=False)
    assert argv[:2] == ["aipc", "stage"]
    args = parser.parse_args(argv[1:])
    assert args.platform == "windows" and str(args.ort_source) == "C:\\b\\ort"
    assert str(args.ort_build) == "C:\\b\\ort\\build\\Windows" and str(args.out) == "C:\\b\\ort_home"
    assert args.config == "RelWithDebInfo" and str(args.legacy_ort_dir) == "C:\\b\\genai\\ort" and args.no_load_check


@on_linux
def test_real_library_header_ahead_of_version_number_names_both(
        tmp_path: Path, real_lib: Path, run_cli: RunCli) -> None:
    version = _real_version(real_lib)
    api = int(version.split(".")[1])
    src, build = _tree(tmp_path, "linux", version=version, real_so=real_lib)
    write_ort_source(src, version=version, api_version=api + 1)  # header newer than VERSION_NUMBER and library
    rc, _, err = run_cli(_argv("linux", src, build, tmp_path / "home"))
    _assert_one_line_failure(rc, err, "include/onnxruntime_c_api.h is stale", f"ORT_API_VERSION {api + 1}",
                             "lib/libonnxruntime.so is stale", f"GetApi({api + 1}) returned NULL")


def test_command_line_contract_in_a_subprocess(tmp_path: Path) -> None:
    """``aipc stage --platform P --ort-source SRC --ort-build BUILD --out ORT_HOME`` as checks outside drive it."""
    parser = aipc_cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "stage" in getattr(sub, "choices", {}), "aipc.wheelbuild.cli must register `stage` (stage.register_cli)"
    src, build = _tree(tmp_path, "windows", "Ninja")
    out = tmp_path / "ORT_HOME"
    argv = _argv("windows", src, build, out)
    ok = run_aipc(*argv)
    assert ok.returncode == 0, ok.stderr
    assert json.loads((out / "manifest.json").read_text())["platform"] == "windows"
    (build / "Release" / "onnxruntime.lib").unlink()
    bad = run_aipc(*argv)
    _assert_one_line_failure(bad.returncode, bad.stderr, "missing onnxruntime.lib")
