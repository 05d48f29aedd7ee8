"""An official ORT release as the ORT side (``--ort-release``): staging ORT_HOME from a wheel, a NuGet package or
an unpacked archive, the route's plan, and every refusal, through the ``aipc`` command line. Fixtures only (a fake
``libonnxruntime`` compiled with gcc, wheels and .nupkg files written here), except the ``slow`` test, which stages
from the real ``onnxruntime`` wheel of PyPI."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aipc.errors import AipcError
from aipc.fsutil import sha256_file
from aipc.pins import load_pins
from aipc.platforms import get_platform
from aipc.wheelbuild import release
from conftest import ROOT, assert_one_line_error, run_aipc, shared_cache
from ort_fixtures import (
    compile_fake_ort,
    pe_stub,
    write_nupkg,
    write_ort_source,
    write_release_wheel,
)

VERSION = load_pins().onnxruntime.version  # the release the route pins: 1.24.4 (C API 24)
API = int(VERSION.split(".")[1])
LINUX_TAG = "py3-none-linux_x86_64"
on_linux_gcc = pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("gcc") is None,
                                  reason="needs a Linux host with gcc (the fake libonnxruntime is compiled)")

aipc = functools.partial(run_aipc, clean_env=True)


@pytest.fixture(scope="module")
def fake_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A libonnxruntime.so.<VERSION> exporting OrtGetApiBase: GetApi(v) non-NULL for v <= API."""
    if not sys.platform.startswith("linux") or shutil.which("gcc") is None:
        pytest.skip("needs a Linux host with gcc (the fake libonnxruntime is compiled)")
    return compile_fake_ort(tmp_path_factory.mktemp("lib") / f"libonnxruntime.so.{VERSION}", VERSION, API)


def linux_wheel(tmp_path: Path, lib: Path) -> Path:
    """What PyPI's onnxruntime wheel holds for the route: only onnxruntime/capi/libonnxruntime.so.<version>."""
    return write_release_wheel(tmp_path / "dl", "onnxruntime", VERSION, LINUX_TAG, {lib.name: lib.read_bytes()})


def headers_1_24_1(tmp_path: Path) -> Path:
    """A header tree one patch release older than the library, the same C API (as the upstream 1.24.1 headers)."""
    return write_ort_source(tmp_path / "onnxruntime", version=f"{VERSION.rsplit('.', 1)[0]}.1")


def stage(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return aipc("stage", *args, cwd=cwd)


# --- Linux: the pypi route from a local wheel ------------------------------------------------------------------


@on_linux_gcc
def test_linux_wheel_stages_with_links_and_older_headers(tmp_path: Path, fake_lib: Path) -> None:
    wheel = linux_wheel(tmp_path, fake_lib)
    src = headers_1_24_1(tmp_path)
    out = tmp_path / "ORT_HOME"
    proc = stage("--platform", "linux", "--ort-release", str(wheel), "--ort-source", str(src), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    lib = out / "lib"
    assert os.readlink(lib / "libonnxruntime.so") == "libonnxruntime.so.1"
    assert os.readlink(lib / "libonnxruntime.so.1") == f"libonnxruntime.so.{VERSION}"
    assert (lib / f"libonnxruntime.so.{VERSION}").read_bytes() == fake_lib.read_bytes()
    for header in ("onnxruntime_c_api.h", "cpu_provider_factory.h", "provider_options.h"):
        assert (out / "include" / header).is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    # the release's version counts, not the header tree's VERSION_NUMBER (1.24.1): GetApi(24) decides
    assert manifest["ort_version"] == VERSION and manifest["api_version"] == API
    assert manifest["release"] == {"file": str(wheel), "name": wheel.name, "kind": "wheel",
                                   "sha256": sha256_file(wheel), "version": VERSION, "source": "local"}
    assert manifest["headers_from"] == str(src)
    assert manifest["load_check"]["status"] == "pass" and manifest["load_check"]["version_string"] == VERSION
    links = {f["path"]: f.get("symlink") for f in manifest["files"]}
    assert links["lib/libonnxruntime.so"] == "libonnxruntime.so.1"
    assert f"GetVersionString() = {VERSION}" in proc.stdout


@on_linux_gcc
def test_header_newer_than_the_library_is_refused(tmp_path: Path, fake_lib: Path) -> None:
    wheel = linux_wheel(tmp_path, fake_lib)
    src = write_ort_source(tmp_path / "onnxruntime", version=f"1.{API + 1}.0")  # ORT_API_VERSION API + 1
    out = tmp_path / "ORT_HOME"
    proc = stage("--platform", "linux", "--ort-release", str(wheel), "--ort-source", str(src), "--out", str(out))
    assert_one_line_error(proc.returncode, proc.stderr, "the headers are newer than the release",
                          f"ORT_API_VERSION {API + 1}", f"NULL from GetApi({API + 1})", f"ORT {VERSION}")
    assert not out.exists()


@on_linux_gcc
def test_a_wheel_without_headers_needs_ort_source(tmp_path: Path, fake_lib: Path) -> None:
    wheel = linux_wheel(tmp_path, fake_lib)
    proc = stage("--platform", "linux", "--ort-release", str(wheel), "--out", str(tmp_path / "home"))
    assert_one_line_error(proc.returncode, proc.stderr, "holds no ONNX Runtime headers", "--ort-source DIR",
                          "include/onnxruntime/core/session/onnxruntime_c_api.h")


@on_linux_gcc
def test_release_archive_folder_with_its_own_headers(tmp_path: Path, fake_lib: Path) -> None:
    """An unpacked onnxruntime-linux-x64-<version> archive: include/ (flat) and lib/ with the links."""
    folder = tmp_path / f"onnxruntime-linux-x64-{VERSION}"
    (folder / "lib").mkdir(parents=True)
    shutil.copy2(fake_lib, folder / "lib" / fake_lib.name)
    os.symlink(fake_lib.name, folder / "lib" / "libonnxruntime.so.1")
    hdr = write_ort_source(tmp_path / "hdr", VERSION)
    (folder / "include").mkdir()
    for p in (hdr / "include").rglob("*.h"):
        shutil.copy2(p, folder / "include" / p.name)
    (folder / "VERSION_NUMBER").write_text(VERSION + "\n")
    out = tmp_path / "home"
    proc = stage("--platform", "linux", "--ort-release", str(folder), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["release"]["kind"] == "archive" and manifest["headers_from"].endswith("(the release)")
    assert manifest["load_check"]["status"] == "pass"


def test_wheel_of_another_version_inside_is_named(tmp_path: Path) -> None:
    wheel = write_release_wheel(tmp_path, "onnxruntime", VERSION, LINUX_TAG,
                                {"libonnxruntime.so.1.23.0": b"\x7fELF not really"})
    proc = stage("--platform", "linux", "--ort-release", str(wheel), "--ort-source",
                 str(headers_1_24_1(tmp_path)), "--out", str(tmp_path / "home"))
    assert_one_line_error(proc.returncode, proc.stderr, "holds ORT 1.23.0", f"says {VERSION}")


# --- Windows: DLL-only releases and NuGet packages -------------------------------------------------------------


def test_dll_only_windows_release_is_refused(tmp_path: Path) -> None:
    """The onnxruntime-directml wheel: DLLs, no onnxruntime.lib."""
    wheel = write_release_wheel(tmp_path, "onnxruntime_directml", VERSION, "cp311-cp311-win_amd64",
                                {"onnxruntime.dll": pe_stub(f"{VERSION}.0"), "DirectML.dll": pe_stub("1.15.4.0"),
                                 "onnxruntime_providers_shared.dll": pe_stub(f"{VERSION}.0")})
    out = tmp_path / "home"
    proc = stage("--platform", "windows", "--ort-release", str(wheel), "--ort-source",
                 str(write_ort_source(tmp_path / "src", VERSION)), "--out", str(out))
    assert_one_line_error(proc.returncode, proc.stderr, "DLL-only", "no onnxruntime.lib", "--ort-release nuget",
                          "runtimes/win-x64/native/onnxruntime.lib")
    assert not out.exists()


@pytest.mark.skipif(sys.platform.startswith("win"), reason="builds for this (Linux) host")
def test_incomplete_release_is_refused_by_build_before_anything(tmp_path: Path) -> None:
    """The libraries are checked before anything runs (the DLL-only rule of a Windows host is the same check)."""
    wheel = write_release_wheel(tmp_path, "onnxruntime_directml", VERSION, "cp311-cp311-win_amd64",
                                {"onnxruntime.dll": pe_stub(f"{VERSION}.0")})
    proc = aipc("build", "--workdir", str(tmp_path / "w"), "--ort-release", str(wheel), "--ort-source",
                str(write_ort_source(tmp_path / "src", VERSION)), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, f"has no libonnxruntime.so.{VERSION}",
                          "not a complete linux ONNX Runtime release")
    assert not (tmp_path / "w").exists()


def test_nuget_package_with_headers_stages(tmp_path: Path) -> None:
    nupkg = write_nupkg(tmp_path / f"microsoft.ml.onnxruntime.directml.{VERSION}.nupkg")
    out = tmp_path / "home"
    proc = stage("--platform", "windows", "--ort-release", str(nupkg), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["release"]["kind"] == "nupkg" and manifest["release"]["version"] == VERSION
    assert manifest["headers_from"].endswith("(the release)")
    assert manifest["load_check"]["status"] == "skip"  # a Windows DLL is not loaded on this host
    for name in ("onnxruntime.dll", "onnxruntime.lib", "onnxruntime_providers_shared.lib"):
        assert (out / "lib" / name).is_file()
    assert (out / "include" / "dml_provider_factory.h").is_file()
    assert "lib/DirectML.dll: not in the release (optional)" in manifest["notes"]


def test_nuget_package_without_headers(tmp_path: Path) -> None:
    nupkg = write_nupkg(tmp_path / "ort.nupkg", headers=False)
    out = tmp_path / "home"
    bare = stage("--platform", "windows", "--ort-release", str(nupkg), "--out", str(out))
    assert_one_line_error(bare.returncode, bare.stderr, "ort.nupkg holds no ONNX Runtime headers", "--ort-source DIR")
    assert not out.exists()
    src = headers_1_24_1(tmp_path)
    ok = stage("--platform", "windows", "--ort-release", str(nupkg), "--ort-source", str(src), "--out", str(out))
    assert ok.returncode == 0, ok.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["headers_from"] == str(src) and manifest["ort_version"] == VERSION
    assert (out / "include" / "dml_provider_factory.h").is_file()


def test_nuget_header_newer_than_library_refused_without_loading(tmp_path: Path) -> None:
    """Where the DLL cannot be loaded (here), the rule is static: a 1.N library serves API versions up to N."""
    nupkg = write_nupkg(tmp_path / "ort.nupkg", api_version=API + 1)
    proc = stage("--platform", "windows", "--ort-release", str(nupkg), "--out", str(tmp_path / "home"))
    assert_one_line_error(proc.returncode, proc.stderr, "the headers are newer than the release",
                          f"ORT_API_VERSION {API + 1}", f"up to {API}")


def test_nuget_package_without_import_library(tmp_path: Path) -> None:
    nupkg = write_nupkg(tmp_path / "ort.nupkg", omit=("onnxruntime.lib",))
    proc = stage("--platform", "windows", "--ort-release", str(nupkg), "--out", str(tmp_path / "home"))
    assert_one_line_error(proc.returncode, proc.stderr, "DLL-only", "no onnxruntime.lib")


def test_not_a_release(tmp_path: Path) -> None:
    folder = tmp_path / "nothing"
    folder.mkdir()
    proc = stage("--platform", "linux", "--ort-release", str(folder), "--out", str(tmp_path / "home"))
    assert_one_line_error(proc.returncode, proc.stderr, "is not an unpacked ONNX Runtime release", "no lib/")
    both = stage("--platform", "linux", "--ort-release", str(folder), "--ort-build", str(folder), "--out", "x")
    assert_one_line_error(both.returncode, both.stderr, "--ort-build and --ort-release", code=2)
    keyword = stage("--platform", "linux", "--ort-release", "pypi", "--out", str(tmp_path / "home"), cwd=tmp_path)
    assert_one_line_error(keyword.returncode, keyword.stderr, "takes a release file or folder, not 'pypi'",
                          "aipc ort-release --ort-release pypi", code=2)
    neither = stage("--platform", "linux", "--out", str(tmp_path / "home"))
    assert_one_line_error(neither.returncode, neither.stderr, "--ort-source and --ort-build", code=2)


# --- the plan of the route -------------------------------------------------------------------------------------


def plan(*args: str) -> subprocess.CompletedProcess[str]:
    return aipc("plan", "--json", "--ccache", "off", *args)


def test_plan_windows_nuget_route(tmp_path: Path) -> None:
    proc = plan("--platform", "windows", "--ort-release", "nuget")
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    steps = [e["step"] for e in entries]
    assert list(dict.fromkeys(steps)) == ["fetch", "build-venv", "ort-release", "stage", "build-genai", "wheels"]
    # the build venv (pinned CMake/Ninja) without ORT's own requirements: no ORT is built on this route
    assert not [e for e in entries if e["step"] == "build-venv" and any(a.endswith("requirements.txt")
                                                                        for a in e["argv"])]
    by_name = {e["name"]: e for e in entries}
    assert "onnxruntime" not in " ".join(by_name["fetch[1]"]["argv"]).replace("onnxruntime-genai", "")
    package = get_platform("windows").ort_nuget_package
    acquire = by_name["ort-release"]
    assert release.nuget_url(package, VERSION) in acquire["description"]
    assert acquire["argv"][:2] == ["aipc", "ort-release"] and "nuget" in acquire["argv"]
    assert by_name["stage"]["argv"][:6] == ["aipc", "stage", "--platform", "windows", "--ort-release",
                                            "C:\\b\\ort_release\\release.json"]
    assert by_name["build-genai"]["env"]["ONNXRUNTIME_VERSION"] == VERSION
    assert "--use_dml" in by_name["build-genai"]["argv"]
    pip = by_name["wheels[2]"]["argv"]
    assert pip[1:5] == ["-m", "pip", "download", "--no-deps"] and "--only-binary=:all:" in pip
    assert pip[-1] == f"onnxruntime-directml=={VERSION}"
    assert pip[pip.index("--platform") + 1] == "win_amd64" and "--python-version" in pip
    assert list(tmp_path.iterdir()) == []


def test_plan_windows_pypi_is_refused_with_the_lib_rule() -> None:
    proc = plan("--platform", "windows", "--ort-release", "pypi")
    assert_one_line_error(proc.returncode, proc.stderr, "--ort-release pypi cannot serve windows",
                          "no onnxruntime.lib", "--ort-release nuget", code=2)


def test_plan_linux_pypi_route(tmp_path: Path) -> None:
    src = headers_1_24_1(tmp_path)
    proc = plan("--platform", "linux", "--workdir", "/tmp/aipc-release-plan", "--ort-release", "pypi",
                "--ort-source", str(src))
    assert proc.returncode == 0, proc.stderr
    by_name = {e["name"]: e for e in json.loads(proc.stdout)}
    assert "build-ort" not in by_name
    pip = by_name["ort-release"]["argv"]
    assert pip[1:] [:5] == ["-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    assert pip[-1] == f"onnxruntime=={VERSION}"
    assert by_name["stage"]["argv"][4:8] == ["--ort-release", "/tmp/aipc-release-plan/ort_release/release.json",
                                             "--ort-source", str(src)]
    assert by_name["build-genai"]["env"]["ONNXRUNTIME_VERSION"] == VERSION
    assert not Path("/tmp/aipc-release-plan").exists()


def test_plan_pypi_route_takes_the_wheelhouse_of_find_links(tmp_path: Path) -> None:
    """--find-links DIR serves the release wheel as it serves the build venv (--offline: the only source)."""
    house = tmp_path / "wheelhouse"
    proc = plan("--platform", "linux", "--workdir", "/tmp/aipc-release-plan", "--ort-release", "pypi", "--ort-source",
                str(headers_1_24_1(tmp_path)), "--find-links", str(house), "--offline")
    assert proc.returncode == 0, proc.stderr
    (pip,) = [e["argv"] for e in json.loads(proc.stdout) if e["name"] == "ort-release"]
    assert pip[pip.index("--find-links") + 1] == str(house) and "--no-index" in pip


@pytest.mark.parametrize(("args", "needles", "code"), [
    (("--platform", "linux", "--ort-release", "pypi"), ("holds no ONNX Runtime headers", "--ort-source DIR"), 2),
    (("--platform", "windows", "--ort-release", "nuget", "--offline"),
     ("offline: refusing to download", "--ort-release FILE"), 2),
    (("--platform", "linux", "--ort-release", "nuget"), ("no ONNX Runtime NuGet package for linux",), 2),
    (("--platform", "linux", "--ort-release", "pypi", "--ort-repo", "https://example.invalid/ort.git"),
     ("--ort-repo", "--ort-release"), 2),
    (("--platform", "windows", "--ort-release", "nuget", "--steps", "build-ort"),
     ("step build-ort builds ONNX Runtime from source", "--ort-release nuget"), 2),
    (("--platform", "windows", "--steps", "ort-release"), ("step ort-release needs --ort-release",), 2),
])
def test_plan_refusals(args: tuple[str, ...], needles: tuple[str, ...], code: int) -> None:
    proc = plan(*args)
    assert_one_line_error(proc.returncode, proc.stderr, *needles, code=code)


def test_missing_local_release_is_refused_before_anything(tmp_path: Path) -> None:
    proc = aipc("build", "--workdir", str(tmp_path / "w"), "--ort-release", str(tmp_path / "nope.whl"), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, "nope.whl does not exist", code=2)
    assert not (tmp_path / "w").exists()


# --- the pipeline's ort-release and stage steps ----------------------------------------------------------------


@on_linux_gcc
def test_pipeline_records_the_local_release_then_stages_it(tmp_path: Path, fake_lib: Path) -> None:
    wheel = linux_wheel(tmp_path, fake_lib)
    src = headers_1_24_1(tmp_path)
    args = ("--workdir", str(tmp_path / "w"), "--ort-release", str(wheel), "--ort-source", str(src))
    proc = aipc("build", "--steps", "ort-release", "stage", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "w" / "ort_release" / "release.json").read_text())
    assert record["sha256"] == sha256_file(wheel) and record["version"] == VERSION and record["kind"] == "wheel"
    manifest = json.loads((tmp_path / "w" / "ort_home" / "manifest.json").read_text())
    assert manifest["release"] == record and manifest["load_check"]["status"] == "pass"
    again = aipc("build", "--steps", "ort-release", "stage", *args, cwd=tmp_path)
    assert again.returncode == 0 and "[aipc] stage: up to date" in again.stderr
    # the release changed after it was recorded: stage refuses to use it
    linux_wheel(tmp_path, fake_lib).write_bytes(wheel.read_bytes() + b"\0")
    changed = aipc("build", "--steps", "stage", "--force", *args, cwd=tmp_path)
    assert_one_line_error(changed.returncode, changed.stderr, "changed since step ort-release recorded it")


# --- the real onnxruntime wheel of PyPI (slow: downloads it once into the shared test cache) ---------------------


def upstream_headers() -> Path | None:
    """The ORT header tree of the unmodified upstream sources (``AIPC_UPSTREAM``, else where ``aipc check-upstream``
    looks for them beside the checkout), if present."""
    from aipc.wheelbuild.upstream import DEFAULT_UPSTREAM

    path = Path(os.environ.get("AIPC_UPSTREAM") or ROOT / DEFAULT_UPSTREAM) / "onnxruntime"
    return path if (path / "include" / "onnxruntime" / "core" / "session" / "onnxruntime_c_api.h").is_file() else None


@pytest.mark.slow
def test_real_pypi_wheel_stages_and_loads(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the onnxruntime wheel's libonnxruntime.so loads on Linux only")
    headers = upstream_headers()
    if headers is None:
        pytest.skip("no upstream ORT header tree (set AIPC_UPSTREAM to the folder holding onnxruntime/)")
    cache = shared_cache() / f"onnxruntime-{VERSION}-wheel"
    wheels = sorted(cache.glob("onnxruntime-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(subprocess.run(["mktemp", "-d", "-p", str(cache)], capture_output=True, text=True,
                                  check=True).stdout.strip())
        try:
            got = release.run_pip_download(
                release.pip_download_argv(sys.executable, f"onnxruntime=={VERSION}", tmp), tmp, "onnxruntime")
        except AipcError as exc:  # no network here: a reason to skip, said as such
            shutil.rmtree(tmp, ignore_errors=True)
            pytest.skip(f"cannot download onnxruntime=={VERSION}: {exc}")
        os.replace(got, cache / got.name)
        shutil.rmtree(tmp, ignore_errors=True)
        wheels = [cache / got.name]
    out = tmp_path / "ORT_HOME"
    proc = stage("--platform", "linux", "--ort-release", str(wheels[0]), "--ort-source", str(headers),
                 "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["load_check"]["status"] == "pass" and manifest["load_check"]["version_string"] == VERSION
    assert os.readlink(out / "lib" / "libonnxruntime.so.1") == f"libonnxruntime.so.{VERSION}"


# --- the whole route against the fixture genai (slow: the build venv's pip installs, the fixture compile) ---------


@pytest.mark.slow
@on_linux_gcc
def test_release_route_end_to_end_with_fixture_genai(tmp_path: Path, fake_lib: Path) -> None:
    from fixture_upstreams import make_upstreams

    up = make_upstreams(tmp_path)
    wheel = linux_wheel(tmp_path, fake_lib)
    src = headers_1_24_1(tmp_path)
    args = ("--workdir", str(tmp_path / "w"), "--wheels", str(tmp_path / "wheels"), "--offline",
            "--ort-release", str(wheel), "--ort-source", str(src), "--deps-dir", str(up.deps_dir))
    proc = aipc("build", *args, env=up.env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for step in ("fetch", "ort-release", "stage", "build-genai", "wheels"):
        assert f"[aipc] {step}: " in proc.stderr
    assert "build-ort" not in proc.stderr and not (tmp_path / "w" / "ort").exists()
    out = tmp_path / "wheels"
    by_part = {e["component"]: e for e in json.loads((out / "manifest.json").read_text())["wheels"]}
    # the genai wheel aipc built gets the manylinux tag auditwheel reports; the ORT release is copied byte for byte
    genai_fit = by_part["onnxruntime_genai"]["fit"]
    assert genai_fit["from"] == f"onnxruntime_genai-0.15.2-{LINUX_TAG}.whl"
    assert by_part["onnxruntime_genai"]["file"].startswith("onnxruntime_genai-0.15.2-py3-none-manylinux")
    assert "fit" not in by_part["onnxruntime"]
    assert sorted(p.name for p in out.glob("*.whl")) == sorted([wheel.name, by_part["onnxruntime_genai"]["file"]])
    assert by_part["onnxruntime"]["sha256"] == sha256_file(wheel)
    assert by_part["onnxruntime_genai"]["requires_onnxruntime"] == f"onnxruntime>={VERSION}"
    recorded = by_part["onnxruntime"]["source"]["onnxruntime_release"]
    assert recorded["sha256"] == sha256_file(wheel) and recorded["version"] == VERSION
    again = aipc("build", *args, env=up.env(), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("up to date, skipped") == 6, again.stderr


def test_missing_ort_source_is_refused_before_anything(tmp_path: Path) -> None:
    proc = aipc("build", "--workdir", str(tmp_path / "w"), "--ort-release", "pypi", "--ort-source",
                str(tmp_path / "no-headers"), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, "no-headers does not exist", "--ort-source DIR", code=2)
    assert not (tmp_path / "w").exists()


# --- downloads, in-process: the NuGet package from a file:// feed, the ORT wheel through a stand-in pip --------------


def windows_settings(tmp_path: Path, spec: str, **extra: str) -> release.BuildSettings:
    from aipc.wheelbuild import settings as bs

    s = bs.from_args({"platform": "windows", "workdir": str(tmp_path / "w"), "ort_release": spec, **extra},
                     environ={})
    # a Windows host's settings, made here: paths of this host, so the download code runs for real
    return bs.BuildSettings(**{**s.__dict__, "workdir": tmp_path / "w", "is_host": True})


def test_nuget_download_is_verified_recorded_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    feed = tmp_path / "feed"
    package = get_platform("windows").ort_nuget_package.lower()
    nupkg = write_nupkg(feed / package / VERSION / f"{package}.{VERSION}.nupkg")
    monkeypatch.setattr(release, "NUGET_URL", feed.as_uri() + "/{id}/{version}/{id}.{version}.nupkg")
    s = windows_settings(tmp_path, "nuget")
    record = release.acquire(s, load_pins())
    final = tmp_path / "w" / "ort_release" / nupkg.name
    assert record["file"] == str(final) and record["sha256"] == sha256_file(nupkg) == sha256_file(final)
    assert record["version"] == VERSION and record["kind"] == "nupkg" and record["source"].startswith("file:")
    assert json.loads((tmp_path / "w" / "ort_release" / "release.json").read_text()) == record
    assert [p.name for p in final.parent.iterdir() if p.name.startswith(".")] == []  # no temporary left
    nupkg.unlink()  # a second run does not download again: the recorded file is unchanged
    assert release.acquire(s, load_pins()) == record


@pytest.mark.parametrize(("package", "payload", "needle"), [
    ("Microsoft.ML.OnnxRuntime", None, "not Microsoft.ML.OnnxRuntime.DirectML"),
    (None, b"PK\x03\x04 truncated", "not a readable zip file"),
])
def test_nuget_download_that_is_not_the_package_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            package: str | None, payload: bytes | None,
                                                            needle: str) -> None:
    feed = tmp_path / "feed"
    low = get_platform("windows").ort_nuget_package.lower()
    dest = feed / low / VERSION / f"{low}.{VERSION}.nupkg"
    if payload is None:
        write_nupkg(dest, package=package or "")
    else:
        dest.parent.mkdir(parents=True)
        dest.write_bytes(payload)
    monkeypatch.setattr(release, "NUGET_URL", feed.as_uri() + "/{id}/{version}/{id}.{version}.nupkg")
    with pytest.raises(AipcError, match=needle):
        release.acquire(windows_settings(tmp_path, "nuget"), load_pins())
    assert not (tmp_path / "w" / "ort_release" / f"{low}.{VERSION}.nupkg").exists()
    assert not (tmp_path / "w" / "ort_release" / "release.json").exists()


def fake_pip_python(tmp_path: Path, wheel: Path) -> Path:
    """A stand-in for ``python -m pip download ... --dest DIR REQ``: copies ``wheel`` into DIR, records its argv."""
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\n"
                      f'echo "$@" >> "{tmp_path / "pip-argv.txt"}"\n'
                      'while [ "$#" -gt 0 ]; do if [ "$1" = "--dest" ]; then dest="$2"; fi; shift; done\n'
                      f'cp "{wheel}" "$dest/"\n')
    script.chmod(0o755)
    return script


@pytest.mark.skipif(sys.platform.startswith("win"), reason="the stand-in pip is a shell script")
def test_nuget_route_fetches_the_matching_directml_wheel(tmp_path: Path) -> None:
    directml = write_release_wheel(tmp_path / "index", "onnxruntime_directml", VERSION, "cp311-cp311-win_amd64",
                                   {"onnxruntime.dll": pe_stub(f"{VERSION}.0")})
    s = windows_settings(tmp_path, "nuget", python=str(fake_pip_python(tmp_path, directml)))
    record = {"kind": "nupkg", "version": VERSION}
    got = release.ort_wheel_for(s, load_pins(), record)
    assert got == tmp_path / "w" / "ort_release" / "wheel" / directml.name and got.read_bytes() == directml.read_bytes()
    argv = (tmp_path / "pip-argv.txt").read_text().split()
    assert argv[:5] == ["-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    assert argv[-1] == f"onnxruntime-directml=={VERSION}"


@on_linux_gcc
def test_pypi_route_downloads_through_pip_and_fetches_a_deleted_download_again(tmp_path: Path,
                                                                                  fake_lib: Path) -> None:
    """The pypi route, offline: a stand-in pip serves the wheel (PyPI's own layout) and records its argv."""
    from aipc.wheelbuild import settings as bs
    from aipc.wheelbuild.pipeline import Pipeline

    served = linux_wheel(tmp_path / "index", fake_lib)
    python = fake_pip_python(tmp_path, served)
    s = bs.from_args({"workdir": str(tmp_path / "w"), "ort_release": "pypi", "python": str(python),
                      "ort_source": str(headers_1_24_1(tmp_path))}, environ={}, cwd=tmp_path)
    Pipeline(s, echo=lambda line: None).run(["ort-release", "stage"])
    record = json.loads((tmp_path / "w" / "ort_release" / "release.json").read_text())
    got = Path(record["file"])
    assert got.parent == tmp_path / "w" / "ort_release" and got.name == served.name
    assert record["sha256"] == sha256_file(served) and record["source"] == f"PyPI onnxruntime=={VERSION}"
    argv = (tmp_path / "pip-argv.txt").read_text().split()
    assert argv[:5] == ["-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    assert argv[-1] == f"onnxruntime=={VERSION}" and "--platform" not in argv  # this host: pip picks the tags
    assert json.loads((tmp_path / "w" / "ort_home" / "manifest.json").read_text())["release"] == record
    Pipeline(s, echo=lambda line: None).run(["ort-release"])  # up to date: no second download
    assert len((tmp_path / "pip-argv.txt").read_text().splitlines()) == 1
    got.unlink()
    Pipeline(s, echo=lambda line: None).run(["ort-release"])  # the download is gone: fetched again
    assert len((tmp_path / "pip-argv.txt").read_text().splitlines()) == 2 and got.is_file()


def test_windows_ninja_release_route_captures_msvc_env_before_genai(tmp_path: Path) -> None:
    """No ORT build on this route, so the msvc-env step runs before build-genai (in the plan and when run)."""
    from aipc.proc import Output
    from aipc.wheelbuild.pipeline import Pipeline

    plan_steps = [st.name for st in Pipeline(windows_settings(tmp_path, "nuget", generator="ninja")).plan()]
    assert plan_steps == ["fetch", "build-venv", "ort-release", "stage", "msvc-env", "build-genai", "wheels"]

    def vs(cmd: object) -> Output:
        if isinstance(cmd, list):
            return Output(0, "C:\\VS\r\n", "")
        return Output(0, "PATH=C:\\VS\\bin;C:\\Windows\r\nINCLUDE=C:\\VS\\include\r\n"
                               "VCToolsInstallDir=C:\\VS\\VC\\Tools\\MSVC\\14.44\\\r\n", "")

    pipe = Pipeline(windows_settings(tmp_path, "nuget", generator="ninja"), echo=lambda line: None, msvc_runner=vs)
    with pytest.raises(AipcError, match=r"build\.py") as err:  # genai is not fetched: the step after msvc-env stops
        pipe.run(["build-genai"])
    assert "MSVC" not in str(err.value)
    env = json.loads((tmp_path / "w" / "state" / "msvc-env.json").read_text())
    assert env["INCLUDE"] == "C:\\VS\\include"
