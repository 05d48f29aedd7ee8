"""The genai build done right: dependency discovery and --deps-dir/--offline, `aipc deps` (file:// archives and a
local git repository), --jobs, --cmake-define, the build venv, aipc's own CMake tree (generator switch), the
RUNPATH check of the wheel, and git's own error lines. Fast tests run aipc through the CLI where a user would."""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from aipc.errors import AipcError
from aipc.fsutil import MARKER
from aipc.pins import load_pins
from aipc.platforms import get_platform
from aipc.proc import Output
from aipc.wheelbuild import cmakescan, deps, genai, wheelcheck
from aipc.wheelbuild import settings as bs
from aipc.wheelbuild.pipeline import Pipeline
from aipc.wheelhouse import read_manifest
from conftest import ROOT, assert_one_line_error, run_aipc
from fixture_deps import DepSources, fill_deps_dir, make_dep_sources, write_genai_cmake
from fixture_upstreams import make_upstreams

aipc = functools.partial(run_aipc, clean_env=True)
LINUX = get_platform("linux")
WINDOWS = get_platform("windows")


def settings(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> bs.BuildSettings:
    import argparse

    parser = argparse.ArgumentParser()
    bs.add_arguments(parser)
    return bs.from_args(parser.parse_args(list(args)), env or {}, cwd=cwd)


@pytest.fixture
def genai_tree(tmp_path: Path) -> tuple[Path, DepSources]:
    """A genai source tree (only its CMake dependency files) and the sources its deps.txt names."""
    sources = make_dep_sources(tmp_path / "sources")
    genai_dir = tmp_path / "genai"
    write_genai_cmake(genai_dir, sources)
    return genai_dir, sources


def option_defines(dml: bool) -> list[str]:
    return [f"USE_DML={'ON' if dml else 'OFF'}", "ENABLE_TESTS=OFF"]


# --- discovery ----------------------------------------------------------------------------------------------------


def test_discovery_reads_the_trees_and_evaluates_conditions_per_platform(genai_tree: tuple[Path, DepSources],
                                                                        tmp_path: Path) -> None:
    genai_dir, sources = genai_tree
    linux = {d.name: d for d in deps.discover(genai_dir, LINUX, option_defines(False))}
    # made available by the CMake for this configuration, then the rest of deps.txt (not needed)
    assert list(linux) == ["pybind11_project", "googletest", "onnxruntime_extensions", "microsoft_wil",
                           "cpp_client_telemetry"]
    assert linux["pybind11_project"].needed is True and linux["pybind11_project"].deps_name == "pybind11"
    assert linux["pybind11_project"].sha1 == sources.pybind11.sha1
    assert linux["microsoft_wil"].needed is False and linux["cpp_client_telemetry"].needed is False  # USE_DML
    ext = linux["onnxruntime_extensions"]
    assert ext.kind == "git" and ext.commit == sources.extensions_commit and ext.repo_name == "onnxruntime-extensions"
    windows = {d.name: d for d in deps.discover(genai_dir, WINDOWS, option_defines(True))}
    assert windows["microsoft_wil"].needed is True
    # a define of the user's turns an option off: ENABLE_PYTHON=OFF drops pybind11
    no_py = {d.name: d for d in deps.discover(genai_dir, LINUX, [*option_defines(False), "ENABLE_PYTHON=OFF"])}
    assert "pybind11_project" not in no_py and no_py["pybind11"].needed is False  # deps.txt only
    # nested: onnxruntime-extensions' own dependencies once its folder is known (GSL needed, opencv behind an option)
    deps_dir = fill_deps_dir(tmp_path / "deps", sources)
    res = deps.resolve(genai_dir, LINUX, option_defines(False), deps_dir)
    by_name = {d.name: d for d in res.deps}
    assert res.complete and by_name["GSL"].needed is True and by_name["GSL"].parent == "onnxruntime_extensions"
    assert "opencv" not in by_name  # behind OCOS_ENABLE_CV2, which is off
    assert res.folders["GSL"] == deps_dir / "gsl" and res.folders["pybind11_project"] == deps_dir / "pybind11"
    assert res.missing() == []
    assert res.defines(offline=True)[-1] == "FETCHCONTENT_FULLY_DISCONNECTED=ON"
    assert f"FETCHCONTENT_SOURCE_DIR_GSL={deps_dir / 'gsl'}" in res.defines(offline=False)


def test_folder_names_match_fetchcontent_deps_txt_or_repository_ignoring_case() -> None:
    dep = deps.Dependency("nlohmann_json", None, "https://codeload.github.com/nlohmann/json/zip/refs/tags/v3.11.3",
                          "archive", "a" * 40, None, "x:1", True)
    assert dep.folder_names == ("nlohmann_json", "json") and dep.default_folder == "json"
    assert deps.find_folder(dep, {"json": Path("/d/JSON")}) == Path("/d/JSON")
    gsl = deps.Dependency("GSL", None, "https://github.com/microsoft/GSL/archive/refs/tags/v4.0.0.zip", "archive",
                          None, None, "x:1", True)
    assert deps.find_folder(gsl, {"gsl": Path("/d/gsl")}) == Path("/d/gsl")
    assert deps.repo_name("https://github.com/microsoft/onnxruntime-extensions.git") == "onnxruntime-extensions"
    nuget = "https://www.nuget.org/api/v2/package/Microsoft.AI.DirectML/1.15.2"
    assert deps.repo_name(nuget) == "Microsoft.AI.DirectML"


def test_cmake_scanner_conditions() -> None:
    s = cmakescan.Scanner({"A": "ON", "V": "3.31.6", "S": "ort_genai", "U": cmakescan.UNKNOWN})
    calls = cmakescan.parse('if(A AND NOT B)\nset(X 1)\nelseif(C)\nset(X 2)\nelse()\nset(X 3)\nendif()\n'
                            'if (${V} VERSION_GREATER_EQUAL "3.24.0")\nset(Y new)\nelse()\nset(Y old)\nendif()\n'
                            'if(S)\nset(Z yes)\nendif()\nif(U)\nset(W 1)\nendif()  # comment (\n'
                            'function(f)\nset(F ran)\nendfunction()\nf()\n')
    s.run_calls(calls, Path("x.cmake"), True)
    assert s.variables["X"] == "1" and s.variables["Y"] == "new" and s.variables["Z"] == "yes"
    assert s.variables["W"] is cmakescan.UNKNOWN and s.variables["F"] == "ran"


@pytest.mark.skipif(not any((p / "shared" / "upstream" / "onnxruntime-genai").is_dir()
                            for p in (ROOT.parent, ROOT.parent.parent)),
                    reason="the real upstream trees (../shared/upstream) are not on this machine")
def test_discovery_on_the_real_upstream_trees_maps_every_dependency_to_a_folder() -> None:
    upstream = next(p / "shared" / "upstream" for p in (ROOT.parent, ROOT.parent.parent)
                    if (p / "shared" / "upstream" / "onnxruntime-genai").is_dir())
    s = settings("--platform", "linux", "--workdir", "/tmp/aipc-unused", "--genai-source",
                 str(upstream / "onnxruntime-genai"), "--deps-dir", str(upstream / "deps"), "--offline")
    res = Pipeline(s).dependencies()
    assert res is not None and res.complete
    needed = {d.name: res.folders[d.name] for d in res.deps if d.needed is not False}
    assert set(needed) == {"pybind11_project", "googletest", "onnxruntime_extensions", "GSL", "dlib", "dr_libs",
                           "nlohmann_json"}
    assert all(folder is not None for folder in needed.values()), needed
    assert needed["nlohmann_json"].name == "json" and needed["pybind11_project"].name == "pybind11"
    deps.check_offline(res)  # nothing missing


# --- offline refusal through the CLI ------------------------------------------------------------------------------


def test_offline_build_refuses_a_missing_dependency_before_anything_compiles(tmp_path: Path) -> None:
    up = make_upstreams(tmp_path)
    shutil.rmtree(tmp_path / "deps" / "gsl")
    args = ["--workdir", str(tmp_path / "w"), "--wheels", str(tmp_path / "wheels"), "--offline",
            "--source", str(tmp_path / "upstreams"), "--deps-dir", str(tmp_path / "deps")]
    proc = aipc("build", *args, env=up.env())
    assert_one_line_error(proc.returncode, proc.stderr, "offline: dependency GSL", up.deps.gsl.url,
                          up.deps.gsl.sha1, "expected a folder named gsl", code=2)
    assert "build-ort" not in proc.stderr and not (tmp_path / "w" / "ort_home").exists()
    # without --deps-dir at all: the first needed one is named
    proc = aipc("build", *args[:-2], env=up.env())
    assert_one_line_error(proc.returncode, proc.stderr, "offline: dependency pybind11_project",
                          "(no --deps-dir given)", "expected a folder named pybind11 (or pybind11_project)", code=2)
    # a --deps-dir that is not a folder
    proc = aipc("build", *args[:-1], str(tmp_path / "nope"), env=up.env())
    assert_one_line_error(proc.returncode, proc.stderr, "--deps-dir", "is not a directory", code=2)


def test_plan_shows_build_venv_jobs_defines_and_dependency_folders(tmp_path: Path) -> None:
    up = make_upstreams(tmp_path)
    env = {**up.env(), "AIPC_CMAKE_DEFINES": "CMAKE_CXX_FLAGS=-g -O1|MY_LIST=a;b", "AIPC_INSTALLER": "pip"}
    proc = aipc("plan", "--json", "--workdir", str(tmp_path / "w"), "--source", str(tmp_path / "upstreams"),
                "--deps-dir", str(tmp_path / "deps"), "--offline", "--jobs", "3", "--cmake-define", "FOO=1",
                "--cmake-define", "BAR:BOOL=OFF", env=env)
    assert proc.returncode == 0, proc.stderr
    by_name = {e["name"]: e for e in json.loads(proc.stdout)}
    tools, genai_reqs = by_name["build-venv[2]"]["argv"], by_name["build-venv[3]"]["argv"]
    assert tools[-2:] == ["cmake==3.31.6", "ninja==1.13.0"]
    assert genai_reqs[-2:] == ["-r", str(tmp_path / "upstreams" / "onnxruntime-genai" / "requirements-dev.txt")]
    g = by_name["build-genai"]
    argv, env_out = g["argv"], g["env"]
    assert argv[0] == str(tmp_path / "w" / "venv" / "bin" / "python")
    assert "--parallel" not in argv and env_out["CMAKE_BUILD_PARALLEL_LEVEL"] == "3"
    assert env_out["PATH"].startswith(str(tmp_path / "w" / "venv" / "bin") + os.pathsep)
    assert env_out["PYTHONUNBUFFERED"] == "1"
    assert argv[argv.index("--build_dir") + 1] == str(tmp_path / "w" / "genai-build")
    defines = argv[argv.index("--cmake_extra_defines") + 1:]
    assert defines[:2] == ["ENABLE_TESTS=OFF", "CMAKE_SKIP_BUILD_RPATH=ON"]
    assert f"FETCHCONTENT_SOURCE_DIR_GSL={tmp_path / 'deps' / 'gsl'}" in defines
    # the user's defines come last (CLI replaces the environment), in order
    assert defines[-2:] == ["FOO=1", "BAR:BOOL=OFF"] and "FETCHCONTENT_FULLY_DISCONNECTED=ON" in defines
    env_only = aipc("plan", "--json", "--steps", "build-genai", "--platform", "windows", env=env)
    (gw,) = [e for e in json.loads(env_only.stdout) if e["name"] == "build-genai"]
    assert gw["argv"][-2:] == ["CMAKE_CXX_FLAGS=-g -O1", "MY_LIST=a;b"]


def test_bad_cmake_define_and_jobs_are_one_line_errors(tmp_path: Path) -> None:
    proc = aipc("plan", "--cmake-define", "NOVALUE")
    assert_one_line_error(proc.returncode, proc.stderr, "--cmake-define 'NOVALUE' is not NAME=VALUE", code=2)
    proc = aipc("plan", env={"AIPC_CMAKE_DEFINES": "A=1|=2"})
    assert_one_line_error(proc.returncode, proc.stderr, "'=2' is not NAME=VALUE", "AIPC_CMAKE_DEFINES", code=2)
    proc = aipc("plan", "--jobs", "0")
    assert_one_line_error(proc.returncode, proc.stderr, "--jobs 0 must be at least 1", code=2)


def test_jobs_default_is_every_cpu_here_and_native_for_another_host() -> None:
    here = settings("--platform", "linux", "--workdir", "/tmp/x")
    assert here.build_jobs == (os.cpu_count() or 1)
    cmd = genai.genai_build_command(here, load_pins(), "1.24.4")
    assert "--parallel" not in cmd.argv and cmd.env["CMAKE_BUILD_PARALLEL_LEVEL"] == str(os.cpu_count() or 1)
    foreign = settings("--platform", "windows")
    assert foreign.build_jobs is None and "--parallel" in genai.genai_build_command(foreign, load_pins(), "1").argv
    assert "--parallel" not in genai.genai_build_command(settings("--platform", "windows", "--jobs", "2"),
                                                         load_pins(), "1").argv


# --- aipc's CMake tree ----------------------------------------------------------------------------------------------


def test_build_tree_is_marked_and_cleaned_on_a_generator_change_never_a_foreign_one(tmp_path: Path) -> None:
    s = settings("--platform", "linux", "--workdir", str(tmp_path / "w"))
    assert genai.prepare_build_tree(s) == "created"
    tree = Path(s.genai_build_dir)
    (tree / "CMakeCache.txt").write_text("CMAKE_GENERATOR:INTERNAL=Unix Makefiles\n")
    (tree / "obj.o").write_text("x")
    assert genai.prepare_build_tree(s) == "kept" and (tree / "obj.o").exists()
    ninja = settings("--platform", "linux", "--workdir", str(tmp_path / "w"), "--generator", "ninja")
    said: list[str] = []
    assert genai.prepare_build_tree(ninja, said.append) == "cleaned"
    assert not (tree / "obj.o").exists() and (tree / MARKER).is_file() and "fresh CMake tree" in said[0]
    # a tree aipc did not make (no marker) is refused and left alone
    other = settings("--platform", "linux", "--workdir", str(tmp_path / "v"))
    Path(other.genai_build_dir).mkdir(parents=True)
    (Path(other.genai_build_dir) / "mine.txt").write_text("user data")
    with pytest.raises(AipcError, match="is not a CMake tree aipc made"):
        genai.prepare_build_tree(other)
    assert (Path(other.genai_build_dir) / "mine.txt").read_text() == "user data"


@pytest.mark.slow
def test_generator_switch_jobs_defines_and_dirty_runpath_through_the_pipeline(tmp_path: Path) -> None:
    """One fixture build, then: --generator ninja cleans aipc's tree (the fixture, like CMake, refuses a tree made
    by another generator) and leaves the user's files in the source tree alone; --jobs bounds the compile;
    --cmake-define reaches CMake; a wheel whose library keeps the build RUNPATH is refused by the wheels step."""
    up = make_upstreams(tmp_path)
    src = tmp_path / "upstreams"
    user_file = src / "onnxruntime-genai" / "build" / "Linux" / "Release" / "user-notes.txt"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("mine")
    base = ["--workdir", str(tmp_path / "w"), "--wheels", str(tmp_path / "wheels"), "--offline", "--source",
            str(src), "--deps-dir", str(tmp_path / "deps"), "--jobs", "1"]
    first = aipc("build", *base, env=up.env())
    assert first.returncode == 0, first.stderr
    tree = tmp_path / "w" / "genai-build" / "Release"
    args = json.loads((tree / "aipc_fixture_args.json").read_text())
    assert args["generator"] == "Unix Makefiles" and args["jobs"] == "1" and args["tests_compiled"] is False
    assert args["cmake_version"] == "cmake version 3.31.6" and args["requests"] == "2.33.0"
    assert args["cmake"] == str(tmp_path / "w" / "venv" / "bin" / "cmake")
    entry = next(e for e in read_manifest(tmp_path / "wheels")["wheels"] if e["component"] == "onnxruntime_genai")
    assert entry["build"]["jobs"] == 1 and entry["build"]["offline"] is True
    assert entry["native"]["clean"]
    assert entry["native"]["elf_runpaths"] == {"onnxruntime_genai/libonnxruntime-genai.so": []}
    used = {d["name"]: d for d in entry["build"]["dependencies"]["dependencies"]}
    assert used["GSL"]["folder"] == str(tmp_path / "deps" / "gsl") and used["GSL"]["provenance"].startswith("provided")

    second = aipc("build", *base[:-2], "--jobs", "2", "--generator", "ninja", "--cmake-define", "MY_OPTION=42",
                  env=up.env())
    assert second.returncode == 0, second.stderr
    assert "starting a fresh CMake tree" in second.stderr
    args = json.loads((tree / "aipc_fixture_args.json").read_text())
    assert args["generator"] == "Ninja" and args["jobs"] == "2" and args["defines"]["MY_OPTION"] == "42"
    assert user_file.read_text() == "mine" and not (src / "onnxruntime-genai" / "build" / "Linux" / "Release"
                                                    / "CMakeCache.txt").exists()

    dirty = aipc("build", *base, "--cmake-define", "CMAKE_SKIP_BUILD_RPATH=OFF", env=up.env())
    line = assert_one_line_error(dirty.returncode, dirty.stderr, "onnxruntime_genai/libonnxruntime-genai.so has the "
                                 f"RUNPATH {tmp_path / 'w' / 'ort_home' / 'lib'}", "a path of the build machine",
                                 code=1)
    assert "CMAKE_SKIP_BUILD_RPATH=ON" in line


# --- the RUNPATH check ----------------------------------------------------------------------------------------------


def _so(tmp_path: Path, name: str, *link: str) -> bytes:
    src = tmp_path / "lib.c"
    src.write_text("int aipc_fixture(void) { return 1; }\n")
    out = tmp_path / name
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out), str(src), *link], check=True, timeout=60)
    return out.read_bytes()


def _wheel_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    path = tmp_path / "onnxruntime_genai-0.15.2-py3-none-linux_x86_64.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_runpath_check_refuses_a_build_path_and_accepts_origin(tmp_path: Path) -> None:
    clean = _so(tmp_path, "a.so", "-Wl,-rpath,$ORIGIN", "-Wl,--enable-new-dtags")
    bare = _so(tmp_path, "b.so")
    dirty = _so(tmp_path, "c.so", "-Wl,-rpath,/home/builder/ort_home/lib:$ORIGIN")
    old_style = _so(tmp_path, "d.so", "-Wl,-rpath,/opt/ort/lib", "-Wl,--disable-new-dtags")  # DT_RPATH
    ok = wheelcheck.require_clean(_wheel_with(tmp_path, {"onnxruntime_genai/a.so": clean,
                                                         "onnxruntime_genai/b.so": bare}))
    assert ok.elf == {"onnxruntime_genai/a.so": ["$ORIGIN"], "onnxruntime_genai/b.so": []}
    with pytest.raises(AipcError, match=r"onnxruntime_genai/c.so has the RUNPATH /home/builder/ort_home/lib"):
        wheelcheck.require_clean(_wheel_with(tmp_path, {"onnxruntime_genai/c.so": dirty}))
    report = wheelcheck.check_wheel(_wheel_with(tmp_path, {"x/d.so": old_style}))
    assert report.dirty == {"x/d.so": ["/opt/ort/lib"]}
    # genai's real build leaves "<ORT_HOME>/lib:" (a trailing empty entry: the current directory) - refused too
    trailing = _so(tmp_path, "e.so", "-Wl,-rpath,$ORIGIN:", "-Wl,--enable-new-dtags")
    report = wheelcheck.check_wheel(_wheel_with(tmp_path, {"x/e.so": trailing}))
    assert report.elf == {"x/e.so": ["$ORIGIN", ""]} and report.dirty == {"x/e.so": [""]}
    with pytest.raises(AipcError, match=r"x/e.so has the RUNPATH '' \(empty: the current directory\)"):
        wheelcheck.require_clean(_wheel_with(tmp_path, {"x/e.so": trailing}))


# --- aipc deps ------------------------------------------------------------------------------------------------------


def test_aipc_deps_fills_a_folder_from_file_urls_and_a_local_git_repository(genai_tree: tuple[Path, DepSources],
                                                                            tmp_path: Path) -> None:
    genai_dir, sources = genai_tree
    out = tmp_path / "deps-out"
    proc = aipc("deps", "--genai-source", str(genai_dir), "--out", str(out), "--platform", "linux")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["aipc-deps.json", "aipc-folder.json", "googletest", "gsl",
                                                     "onnxruntime_extensions", "pybind11"]
    assert (out / "pybind11" / "include" / "pybind11" / "pybind11.h").is_file()  # the top folder was dropped
    ext_head = subprocess.run(["git", "-C", str(out / "onnxruntime_extensions"), "rev-parse", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert ext_head == sources.extensions_commit and not (out / "onnxruntime_extensions" / "AFTER").exists()
    record = json.loads((out / "aipc-deps.json").read_text())
    assert record["deps"]["gsl"]["sha1"] == sources.gsl.sha1 and record["deps"]["gsl"]["verified"] is True
    assert record["deps"]["onnxruntime_extensions"]["commit"] == sources.extensions_commit
    # the folder serves an offline build, which records that aipc deps fetched it
    res = deps.resolve(genai_dir, LINUX, option_defines(False), out)
    assert res.missing() == [] and {e["provenance"] for e in res.to_json()["dependencies"] if e["folder"]} == {
        "fetched by aipc deps"}
    # a rerun keeps what is there; Windows adds the USE_DML-only dependency
    again = aipc("deps", "--genai-source", str(genai_dir), "--out", str(out), "--platform", "windows")
    assert again.returncode == 0, again.stderr
    assert "already at" in again.stderr and (out / "microsoft_wil" / "CMakeLists.txt").is_file()
    listing = aipc("deps", "--genai-source", str(genai_dir), "--deps-dir", str(out))
    assert listing.returncode == 0 and f"-> {out / 'gsl'}" in listing.stdout


def test_aipc_deps_refuses_a_wrong_sha1_and_keeps_nothing(genai_tree: tuple[Path, DepSources],
                                                          tmp_path: Path) -> None:
    genai_dir, sources = genai_tree
    text = (genai_dir / "cmake" / "deps.txt").read_text().replace(sources.pybind11.sha1, "f" * 40)
    (genai_dir / "cmake" / "deps.txt").write_text(text)
    out = tmp_path / "deps-out"
    proc = aipc("deps", "--genai-source", str(genai_dir), "--out", str(out))
    assert_one_line_error(proc.returncode, proc.stderr, "download of pybind11_project",
                          f"has SHA1 {sources.pybind11.sha1}", "expected " + "f" * 40, code=1)
    assert [p.name for p in out.iterdir() if p.name not in ("aipc-deps.json", MARKER)] == []


def test_aipc_deps_reports_gits_own_error_lines(genai_tree: tuple[Path, DepSources], tmp_path: Path) -> None:
    genai_dir, sources = genai_tree
    text = (genai_dir / "cmake" / "deps.txt").read_text().replace(sources.extensions_commit, "e" * 40)
    (genai_dir / "cmake" / "deps.txt").write_text(text)
    out = tmp_path / "deps-out"
    proc = aipc("deps", "--genai-source", str(genai_dir), "--out", str(out), "--fetch-retries", "1")
    line = assert_one_line_error(proc.returncode, proc.stderr, "git checkout", "e" * 40, code=1)
    assert "fatal:" in line or "error:" in line  # git's own words, not its closing advice
    assert not (out / "onnxruntime_extensions").exists()


def test_git_error_lines_beat_the_trailing_advice() -> None:
    result = Output(128, "", "Cloning into 'x'...\nerror: unable to write file big.bin\n"
                                      "fatal: unable to checkout working tree\nwarning: Clone succeeded, but checkout "
                                      "failed.\nYou can inspect what was checked out with 'git status'\nand retry "
                                      "with 'git restore --source=HEAD :/'\n")
    assert result.last_line() == "error: unable to write file big.bin | fatal: unable to checkout working tree"
    assert Output(1, "", "just one line\n").last_line() == "just one line"


def test_unsafe_archives_are_refused(tmp_path: Path) -> None:
    evil_zip = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil_zip, "w") as zf:
        zf.writestr("top/ok.txt", "fine")
        zf.writestr("../outside.txt", "escape")
    with pytest.raises(AipcError, match=r"climbs with '\.\.'"):
        deps.extract(evil_zip, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "dest").exists()
    evil_tar = tmp_path / "evil.tar"
    with tarfile.open(evil_tar, "w") as tf:
        info = tarfile.TarInfo("top/link")
        info.type, info.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        tf.addfile(info)
    with pytest.raises(AipcError, match="is a link"):
        deps.extract(evil_tar, tmp_path / "dest2")
    good = tmp_path / "good.tar.gz"
    with tarfile.open(good, "w:gz") as tf:
        data = b"hello"
        info = tarfile.TarInfo("repo-1.0/src/a.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    deps.extract(good, tmp_path / "dest3")
    assert (tmp_path / "dest3" / "src" / "a.txt").read_bytes() == b"hello"


# --- Windows wheels: what a DLL search would find -----------------------------------------------------------------


def _pe_importing(*dlls: str) -> bytes:
    """A minimal PE32+ image whose import directory names ``dlls`` (enough for wheelcheck.pe_imports)."""
    import struct

    image = bytearray(0x400)
    image[0:2] = b"MZ"
    struct.pack_into("<I", image, 0x3C, 0x40)
    image[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<HH", image, 0x44, 0x8664, 1)  # machine, one section
    struct.pack_into("<H", image, 0x54, 240)  # size of the optional header (PE32+, 16 directories)
    opt = 0x58
    struct.pack_into("<H", image, opt, 0x20B)
    struct.pack_into("<II", image, opt + 112 + 8, 0x1000, 20 * (len(dlls) + 1))  # the import directory
    struct.pack_into("<8sIIII", image, opt + 240, b".idata", 0x200, 0x1000, 0x200, 0x200)
    name_rva = 0x1000 + 20 * (len(dlls) + 1)
    for i, dll in enumerate(dlls):
        struct.pack_into("<IIIII", image, 0x200 + 20 * i, 0, 0, 0, name_rva, 0)
        off = 0x200 + (name_rva - 0x1000)
        image[off:off + len(dll) + 1] = dll.encode() + b"\0"
        name_rva += len(dll) + 1
    return bytes(image)


def test_windows_wheel_records_where_each_imported_dll_is_found(tmp_path: Path) -> None:
    pyd = _pe_importing("onnxruntime-genai.dll", "python312.dll")
    dll = _pe_importing("onnxruntime.dll", "DirectML.dll", "D3D12Core.dll", "KERNEL32.dll")
    assert wheelcheck.pe_imports(dll) == ["onnxruntime.dll", "DirectML.dll", "D3D12Core.dll", "KERNEL32.dll"]
    wheel = tmp_path / "onnxruntime_genai_directml-0.15.2-cp312-cp312-win_amd64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("onnxruntime_genai/onnxruntime_genai.cp312-win_amd64.pyd", pyd)
        zf.writestr("onnxruntime_genai/onnxruntime-genai.dll", dll)
        zf.writestr("onnxruntime_genai/D3D12Core.dll", b"MZ")
    report = wheelcheck.require_clean(wheel)  # a PE wheel has no RUNPATH to refuse
    found = report.pe["onnxruntime_genai/onnxruntime-genai.dll"]
    assert found["D3D12Core.dll"] == "next to it in the wheel"
    assert found["onnxruntime.dll"].startswith("onnxruntime/capi") and found["DirectML.dll"].startswith("onnxruntime/")
    assert found["KERNEL32.dll"].startswith("the system")
    assert report.pe["onnxruntime_genai/onnxruntime_genai.cp312-win_amd64.pyd"]["onnxruntime-genai.dll"] == \
        "next to it in the wheel"
    assert report.to_json()["clean"] is True


# --- the step's log follows the build as it prints ----------------------------------------------------------------


def test_the_step_log_is_written_while_the_command_runs(tmp_path: Path) -> None:
    """A command that prints a line and then waits: the line is in the log before the command ends (the runner
    flushes each line; build.py gets PYTHONUNBUFFERED=1 so its own prints are not held in a pipe buffer)."""
    import sys
    import threading
    import time

    from aipc.runner import Command, Runner, Step

    go = tmp_path / "go"
    script = ("import os, sys, time\nprint('compiling a.cc')\n"
              f"while not os.path.exists({str(go)!r}): time.sleep(0.05)\nprint('done')\n")
    step = Step("build-genai", "test", [Command.make([sys.executable, "-c", script], tmp_path,
                                                     {"PYTHONUNBUFFERED": "1"}, timeout=60)])
    runner = Runner(tmp_path / "state", tmp_path / "logs", echo=lambda s: None)
    seen: list[bool] = []

    def watch() -> None:
        log = tmp_path / "logs" / "build-genai.log"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if log.is_file() and "compiling a.cc" in log.read_text().splitlines():  # the output line, not the argv
                seen.append(True)
                break
            time.sleep(0.05)
        go.write_text("")

    t = threading.Thread(target=watch)
    t.start()
    runner.run(step)
    t.join()
    assert seen == [True]
    assert "done" in (tmp_path / "logs" / "build-genai.log").read_text().splitlines()


def test_a_failed_clone_names_gits_own_error_in_the_line_and_the_fetch_log(tmp_path: Path) -> None:
    from fixture_upstreams import make_genai_repo, make_ort_repo, write_pins

    ort = make_ort_repo(tmp_path / "upstreams" / "onnxruntime")
    genai_repo = make_genai_repo(tmp_path / "upstreams" / "onnxruntime-genai")
    pins = write_pins(tmp_path / "pins.toml", ort, genai_repo)
    pins.write_text(pins.read_text().replace('tag = "v1.24.4"', 'tag = "v9.9.9"'))
    proc = aipc("fetch", "--workdir", str(tmp_path / "w"), "--offline", env={"AIPC_PINS": str(pins)})
    line = assert_one_line_error(proc.returncode, proc.stderr, "git clone", "v9.9.9", code=1)
    assert "fatal:" in line
    log = (tmp_path / "w" / "logs" / "fetch.log").read_text()
    assert "# failed:" in log and "fatal:" in log.split("# failed:", 1)[1]


def test_the_genai_wheel_must_carry_the_platform_and_build_python_tags(tmp_path: Path) -> None:
    from aipc.wheelbuild import wheelset as collect

    def wheel(name: str) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("onnxruntime_genai/__init__.py", "")
        return path

    collect.check_tags(wheel("onnxruntime_genai-0.15.2-cp311-cp311-linux_x86_64.whl"), LINUX, "3.11")
    collect.check_tags(wheel("onnxruntime_genai-0.15.2-cp311-cp311-manylinux_2_28_x86_64.whl"), LINUX, "3.11")
    collect.check_tags(wheel("onnxruntime_genai-0.15.2-py3-none-linux_x86_64.whl"), LINUX, "3.12")  # no CPython tag
    with pytest.raises(AipcError, match=r"is for cp312, but the build Python is 3\.11"):
        collect.check_tags(wheel("onnxruntime_genai-0.15.2-cp312-cp312-linux_x86_64.whl"), LINUX, "3.11")
    with pytest.raises(AipcError, match="is tagged win_amd64, not linux_x86_64"):
        collect.check_tags(wheel("onnxruntime_genai-0.15.2-cp311-cp311-win_amd64.whl"), LINUX, "3.11")
    collect.check_tags(wheel("onnxruntime_genai_directml-0.15.2-cp312-cp312-win_amd64.whl"), WINDOWS, "3.12")
