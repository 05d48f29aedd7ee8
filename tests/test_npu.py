"""Unit tests of the NPU-library wheel build (aipc build-npu): pins, refusals, plans, wheel checks, ISA check, path.

Fast and offline: fixture sdists, fake OpenVINO packages and fake wheels are written here. The real build and run
are in test_npu_build.py.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from aipc.errors import AipcError, UsageError
from aipc.fsutil import sha256_file
from aipc.npu import build, isa, sdist
from aipc.npu.wheel import inspect_wheel, required_members, wheel_name
from aipc.platforms import get_platform
from aipc.runner import plan_json
from aipc.runtimes import npu as path
from conftest import assert_one_line_error, run_aipc, write_pins

ROOT = Path(__file__).resolve().parents[1]
PIN = sdist.SdistPin.from_pins(build.load_pins())


def make_sdist(tmp_path: Path, *, extra: dict[str, bytes] | None = None, top: str | None = None) -> Path:
    """A fixture sdist with the layout the build needs (our own placeholder files, no upstream code)."""
    top = top or PIN.top_dir
    files = {
        f"{top}/src/bindings.cpp": b"// fixture\n",
        f"{top}/intel_npu_acceleration_library/_version.py": b'__version__ = "v1.4.0"\n',
        f"{top}/intel_npu_acceleration_library/__init__.py": b"",
        **(extra or {}),
    }
    out = tmp_path / PIN.file
    with tarfile.open(out, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


# --- sdist pin ----------------------------------------------------------------------------------------------------


def test_pins_hold_the_sdist_sha_and_openvino_rule() -> None:
    pins = build.load_pins()
    assert PIN.sha256 == "85bc37169189a0bfdb536a74de454925a4750adc1000d29a6c87de1f1a3a8d7d"
    assert PIN.file == "intel_npu_acceleration_library-1.4.0.tar.gz"
    assert pins.npu["openvino"] == "2024.4.0"
    assert pins.npu["openvino_max_exclusive"] == "2025.1"


def test_npu_pin_reads_every_key_and_refuses_a_missing_one(tmp_path: Path) -> None:
    pin = sdist.NpuPin.from_pins(build.load_pins())
    assert pin.sdist == PIN
    assert (pin.openvino, pin.openvino_max_exclusive) == ("2024.4.0", "2025.1")
    assert (pin.python_min, pin.python_max, pin.python_span) == ((3, 8), (3, 12), "3.8-3.12")
    assert [r.split("==")[0] for r in pin.build_requires] == ["scikit-build-core", "cmake", "ninja"]
    no_max = write_pins(tmp_path, **{'openvino_max_exclusive = "2025.1"\n': ""})
    with pytest.raises(AipcError, match=r"\[npu\] lacks openvino_max_exclusive"):
        sdist.NpuPin.from_pins(build.load_pins(no_max))
    (tmp_path / "b").mkdir()
    bad_py = write_pins(tmp_path / "b", **{'python_max = "3.12"': 'python_max = "3"'})
    with pytest.raises(AipcError, match=r"python_max = '3' is not MAJOR.MINOR"):
        sdist.NpuPin.from_pins(build.load_pins(bad_py))


def test_verify_sdist_refuses_a_hash_mismatch(tmp_path: Path) -> None:
    bad = make_sdist(tmp_path)
    with pytest.raises(AipcError, match=r"expected 85bc3716.*refusing a tampered"):
        sdist.verify_sdist(bad, PIN)
    good_pin = sdist.SdistPin(PIN.file, sha256_file(bad), PIN.version)
    assert sdist.verify_sdist(bad, good_pin) == good_pin.sha256


def test_cli_refuses_a_tampered_sdist(tmp_path: Path) -> None:
    bad = make_sdist(tmp_path)
    proc = run_aipc("build-npu", "--sdist", str(bad), "--build-dir", str(tmp_path / "b"), "--wheels",
                    str(tmp_path / "w"))
    line = assert_one_line_error(proc.returncode, proc.stderr,
                                 "sha256", "85bc37169189a0bfdb536a74de454925a4750adc1000d29a6c87de1f1a3a8d7d",
                                 "fix:", code=1)
    assert sha256_file(bad) in line
    assert not (tmp_path / "w").exists()
    assert not (tmp_path / "b" / "sdist" / PIN.file).exists()  # nothing unverified is kept


def test_sdist_directory_without_the_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="directory without"):
        sdist.locate_sdist(tmp_path, PIN)
    with pytest.raises(UsageError, match="does not exist"):
        sdist.locate_sdist(tmp_path / "nope.tar.gz", PIN)
    make_sdist(tmp_path)
    assert sdist.locate_sdist(tmp_path, PIN) == tmp_path / PIN.file


def test_cached_bad_sdist_is_replaced_by_the_given_one(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    good = make_sdist(tmp_path / "in")
    pin = sdist.SdistPin(PIN.file, sha256_file(good), PIN.version)
    dest = tmp_path / "cache" / PIN.file
    dest.parent.mkdir()
    dest.write_bytes(b"damaged")
    assert sdist.obtain_sdist(dest, pin, given=good, download=None) == dest
    assert sha256_file(dest) == pin.sha256


def test_unpack_checks_members(tmp_path: Path) -> None:
    good = make_sdist(tmp_path)
    pin = sdist.SdistPin(PIN.file, sha256_file(good), PIN.version)
    src = sdist.unpack_sdist(good, pin, tmp_path / "src")
    assert (src / "src" / "bindings.cpp").read_text() == "// fixture\n"
    evil_dir = tmp_path / "evil"
    evil_dir.mkdir()
    evil = make_sdist(evil_dir, extra={f"{PIN.top_dir}/../escape.txt": b"x"})
    evil_pin = sdist.SdistPin(PIN.file, sha256_file(evil), PIN.version)
    with pytest.raises(AipcError, match="outside"):
        sdist.unpack_sdist(evil, evil_pin, tmp_path / "src2")
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "src2").exists()


def test_download_command_is_sdist_only_and_offline_capable(tmp_path: Path) -> None:
    cmd = sdist.download_command(PIN, tmp_path / "sdist", "py")
    req = tmp_path / "sdist-requirement.txt"
    assert cmd.argv[1:] == ("-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "--no-binary",
                            ":all:", "--require-hashes", "-r", str(req), "-d", str(tmp_path / "sdist"))
    assert sdist.requirement_text(PIN) == f"intel-npu-acceleration-library==1.4.0 --hash=sha256:{PIN.sha256}\n"
    offline = sdist.download_command(PIN, tmp_path / "sdist", "py", tmp_path / "house")
    assert "--no-index" in offline.argv
    assert offline.argv[offline.argv.index("--find-links") + 1] == str(tmp_path / "house")


# --- OpenVINO version rule ---------------------------------------------------------------------------------------


def fake_openvino(root: Path, version: str) -> Path:
    """An `openvino` package dir with just the CMake version file and get_cmake_path() (written here)."""
    major, minor, patch = version.split(".")
    pkg = root / "openvino"
    (pkg / "cmake").mkdir(parents=True)
    (pkg / "cmake" / "OpenVINOConfig-version.cmake").write_text(
        f"set(PACKAGE_VERSION_MAJOR {major})\nset(PACKAGE_VERSION_MINOR {minor})\nset(PACKAGE_VERSION_PATCH {patch})\n"
    )
    (pkg / "__init__.py").write_text("")
    (pkg / "utils.py").write_text(
        "from pathlib import Path\n\ndef get_cmake_path():\n    return str(Path(__file__).parent / 'cmake')\n"
    )
    dist = root / f"openvino-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: openvino\nVersion: {version}\n")
    return pkg


@pytest.mark.parametrize("version", ["2025.1.0", "2026.4.1"])
def test_openvino_dir_too_new_is_refused(tmp_path: Path, version: str) -> None:
    pkg = fake_openvino(tmp_path, version)
    assert build.openvino_dir_version(pkg) == (version, pkg / "cmake")
    proc = run_aipc("build-npu", "--plan", "--openvino-dir", str(pkg), "--build-dir", str(tmp_path / "b"))
    assert_one_line_error(proc.returncode, proc.stderr, f"OpenVINO {version}", "too new", "Unsupported dtype",
                          "openvino==2024.4.0", code=1)


def test_cli_refuses_a_too_new_openvino_version_before_building(tmp_path: Path) -> None:
    proc = run_aipc("build-npu", "--openvino", "2026.4.1", "--build-dir", str(tmp_path / "b"),
                    "--wheels", str(tmp_path / "w"))
    assert_one_line_error(proc.returncode, proc.stderr, "OpenVINO 2026.4.1 (--openvino) is too new", "2025.1", code=1)
    assert not (tmp_path / "b").exists()


def test_openvino_before_2025_1_is_accepted(tmp_path: Path) -> None:
    pkg = fake_openvino(tmp_path, "2025.0.0")
    cfg = build.make_config(build_dir=tmp_path / "b", wheels=tmp_path / "w", openvino_dir=pkg)
    wheel_step = next(s for s in cfg.steps() if s.name == "npu-wheel")
    assert f"cmake.define.OpenVINO_DIR={pkg / 'cmake'}" in wheel_step.commands[0].argv
    assert "openvino==" not in " ".join(cfg.venv_spec().steps[0])  # the given OpenVINO, not a pip one


def test_installed_openvino_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The build venv's openvino (imported, version from its metadata) obeys the rule: injected with a fake package."""
    fake_openvino(tmp_path / "site", "2026.4.1")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    assert build.probe_openvino(Path(sys.executable)) == "2026.4.1"
    cfg = build.make_config(build_dir=tmp_path / "b", wheels=tmp_path / "w")
    with pytest.raises(AipcError, match=r"OpenVINO 2026\.4\.1 \(installed in .*\) is too new"):
        cfg.check_venv_openvino(Path(sys.executable))


def test_bad_openvino_dir_and_version_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"OpenVINOConfig-version\.cmake"):
        build.openvino_dir_version(tmp_path)
    with pytest.raises(UsageError, match="not a version"):
        build.check_openvino_version("latest", "2025.1")


# --- plans --------------------------------------------------------------------------------------------------------


def test_linux_plan(tmp_path: Path) -> None:
    cfg = build.make_config(platform="linux", build_dir=tmp_path / "b", wheels=tmp_path / "w")
    steps = cfg.steps()
    assert [s.name for s in steps] == ["npu-sdist", "npu-unpack", "npu-build-venv", "npu-wheel", "npu-collect"]
    entries = {e["name"]: e for e in plan_json(steps)}
    wheel = entries["npu-wheel"]
    argv = wheel["argv"]
    assert argv[0] == str(tmp_path / "b" / "venvs" / "npu-build-linux" / "bin" / "python")
    assert argv[1:6] == ["-m", "pip", "wheel", "--disable-pip-version-check", "--no-build-isolation"]
    assert str(ROOT / "src" / "aipc" / "native" / "npu") in argv
    assert f"cmake.define.NPU_SDIST_DIR={tmp_path / 'b' / 'src' / PIN.top_dir}" in argv
    assert f"build-dir={tmp_path / 'b' / 'cmake' / 'linux'}" in argv
    assert wheel["env"]["CMAKE_GENERATOR"] == "Ninja"
    install = [e for n, e in entries.items() if n.startswith("npu-build-venv[")][-1]["argv"]  # pip or uv
    assert "openvino==2024.4.0" in install
    assert any(a.startswith("scikit-build-core==") for a in install)
    assert steps[-1].outputs == [tmp_path / "w" / "intel_npu_acceleration_library-1.4.0-py3-none-linux_x86_64.whl"]
    # offline: a wheelhouse turns every pip call into --no-index
    off = build.make_config(platform="linux", build_dir=tmp_path / "b", wheels=tmp_path / "w",
                            find_links=tmp_path / "house", sdist_path=tmp_path / "s.tar.gz")
    off_entries = {e["name"]: e for e in plan_json(off.steps())}
    assert "--no-index" in [e for n, e in off_entries.items() if n.startswith("npu-build-venv[")][-1]["argv"]
    assert "download" not in off_entries["npu-sdist"]["argv"]


def test_windows_plan_composed_on_linux(tmp_path: Path) -> None:
    cfg = build.make_config(platform="windows", build_dir=tmp_path / "b", wheels=tmp_path / "w")
    entries = {e["name"]: e for e in plan_json(cfg.steps())}
    wheel = entries["npu-wheel"]
    assert wheel["argv"][0].endswith("\\venvs\\npu-build-windows\\Scripts\\python.exe")
    assert "--no-build-isolation" in wheel["argv"]
    assert wheel["env"]["CMAKE_GENERATOR"] == "Visual Studio 17 2022"
    assert wheel["env"]["CMAKE_GENERATOR_PLATFORM"] == "x64"
    assert any(a.startswith("build-dir=") and a.endswith("\\cmake\\windows") for a in wheel["argv"])
    assert cfg.wheel_file == "intel_npu_acceleration_library-1.4.0-py3-none-win_amd64.whl"
    assert cfg.provenance()["flags"] == "/arch:AVX2 /W3 /WX"
    proc = run_aipc("build-npu", "--plan", "--json", "--platform", "windows", "--build-dir", str(tmp_path / "b"))
    assert proc.returncode == 0, proc.stderr
    assert any("Scripts\\python.exe" in e["argv"][0] for e in json.loads(proc.stdout))


@pytest.mark.skipif(sys.platform == "win32", reason="a foreign-platform plan: Windows made on a POSIX host")
def test_windows_plan_on_linux_spells_every_path_the_windows_way(tmp_path: Path) -> None:
    """Every step of a Windows plan made here: Windows paths, no host interpreter, no pseudo-argv."""
    for given in (None, tmp_path / "s.tar.gz"):
        cfg = build.make_config(platform="windows", build_dir=tmp_path / "b", wheels=tmp_path / "w",
                                sdist_path=given)
        entries = plan_json(cfg.steps())
        assert {e["step"] for e in entries} >= {"npu-sdist", "npu-unpack", "npu-build-venv", "npu-wheel"}
        for e in entries:
            assert str(tmp_path) not in e["cwd"] and "\\b" in e["cwd"], e
            for arg in e["argv"]:
                assert str(tmp_path) not in arg, e  # a POSIX spelling of a build path
            assert cfg.python not in e["argv"], e  # the Linux host interpreter
            assert e["argv"][0] not in ("aipc",) and "+" not in e["argv"][0], e  # pseudo-commands
        venv = next(e for e in entries if e["name"] == "npu-build-venv[1]")
        assert venv["argv"][0] in ("python", "uv") and "python" in venv["argv"]  # the target's, either installer
        assert venv["argv"][-1].endswith("\\venvs\\npu-build-windows")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="host-specific message")
def test_building_for_another_platform_is_refused(tmp_path: Path) -> None:
    proc = run_aipc("build-npu", "--platform", "windows", "--build-dir", str(tmp_path / "b"))
    assert_one_line_error(proc.returncode, proc.stderr, "cannot build for windows on linux", "--plan", code=2)


def test_project_has_our_portable_flags_and_no_download() -> None:
    cmake = (ROOT / "src" / "aipc" / "native" / "npu" / "CMakeLists.txt").read_text()
    code = "\n".join(ln.split("#")[0] for ln in cmake.splitlines())  # ignore comments
    for banned in ("FetchContent", "lsb_release", "-march=native", "storage.openvinotoolkit.org"):
        assert banned not in code
    for flag in ("-march=x86-64-v3", "-Werror", "/arch:AVX2", "/WX", "$ORIGIN"):
        assert flag in code
    # one NPU_ARCH_FLAGS per compiler family, used by every target, and the platforms' provenance names the same
    arch = [tuple(m.split()) for m in re.findall(r"set\(NPU_ARCH_FLAGS ([^)]*)\)", code)]
    assert arch == [get_platform("linux").npu_compile_flags, get_platform("windows").npu_compile_flags]
    assert code.count("PRIVATE ${NPU_ARCH_FLAGS})") == 2  # the native library and the libopenvino.so preload
    assert "-march=x86-64-v3" not in code.replace("set(NPU_ARCH_FLAGS -march=x86-64-v3", "")  # no second copy
    pyproject = (ROOT / "src" / "aipc" / "native" / "npu" / "pyproject.toml").read_text()
    assert 'wheel.py-api = "py3"' in pyproject
    assert 'build-backend = "scikit_build_core.build"' in pyproject


# --- wheel checks -------------------------------------------------------------------------------------------------


def fake_wheel(directory: Path, platform_name: str, *, members: list[str] | None = None, tag: str | None = None
               ) -> Path:
    plat = get_platform(platform_name)
    name = wheel_name("1.4.0", plat) if tag is None else f"intel_npu_acceleration_library-1.4.0-{tag}.whl"
    path = directory / name
    lib = f"intel_npu_acceleration_library/{plat.npu_lib_subdir}"
    cpu = "openvino_intel_cpu_plugin.dll" if platform_name == "windows" else "libopenvino_intel_cpu_plugin.so"
    with zipfile.ZipFile(path, "w") as zf:
        for member in [*required_members(plat), f"{lib}/{cpu}", *(members or [])]:
            zf.writestr(member, b"x")
    return path


def test_windows_wheel_composition_is_checked_on_linux(tmp_path: Path) -> None:
    win = get_platform("windows")
    assert required_members(win)[2:] == [
        "intel_npu_acceleration_library/lib/Release/intel_npu_acceleration_library.dll",
        "intel_npu_acceleration_library/lib/Release/openvino.dll",
    ]
    assert inspect_wheel(fake_wheel(tmp_path, "windows"), win) == []
    (tmp_path / "a").mkdir()
    shadow = fake_wheel(tmp_path / "a", "windows",
                        members=["intel_npu_acceleration_library/external/openvino/__init__.py"])
    assert any("shadows openvino" in p for p in inspect_wheel(shadow, win))
    (tmp_path / "b").mkdir()
    cp = fake_wheel(tmp_path / "b", "windows", tag="cp311-cp311-win_amd64")
    assert any("not py3-none" in p for p in inspect_wheel(cp, win))
    linux_on_win = fake_wheel(tmp_path / "b", "linux")
    problems = inspect_wheel(linux_on_win, win)
    assert any("not for windows" in p for p in problems)
    assert any("missing intel_npu_acceleration_library/lib/Release/openvino.dll" in p for p in problems)


# --- instruction-set check -----------------------------------------------------------------------------------------


def test_isa_check_on_text() -> None:
    ok = "  10:\tvfmadd231ps %ymm2,%ymm1,%ymm0\n  14:\tvcvtps2ph $0x0,%ymm0,%xmm0\n"
    assert isa.beyond_x86_64_v3(ok) == []
    bad = "  10:\tvaddps %zmm2,%zmm1,%zmm0\n  18:\tkmovw %k1,%eax\n  20:\tvpternlogd $0x96,%ymm2,%ymm1,%ymm0\n"
    found = isa.beyond_x86_64_v3(bad)
    assert len(found) == 3
    assert "zmm" in found[0]


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("objdump") is None, reason="needs gcc and objdump")
def test_isa_check_catches_avx512_in_a_compiled_library(tmp_path: Path) -> None:
    src = tmp_path / "k.c"
    src.write_text(
        "void add(float *restrict a, const float *restrict b, int n) { for (int i = 0; i < n; i++) a[i] += b[i]; }\n"
    )
    libs = {}
    for name, flag in (("v3", "-march=x86-64-v3"), ("v4", "-march=x86-64-v4")):
        libs[name] = tmp_path / f"lib{name}.so"
        subprocess.run(["gcc", "-O3", flag, "-mprefer-vector-width=512", "-shared", "-fPIC", "-o", str(libs[name]),
                        str(src)], check=True)
    assert isa.check_library_isa(libs["v3"]) == []
    assert any("zmm" in line for line in isa.check_library_isa(libs["v4"]))


# --- the verify path -----------------------------------------------------------------------------------------------


def test_npu_venv_spec_without_a_wheel_skips_with_reason(tmp_path: Path) -> None:
    spec, reason = path.npu_venv_spec(tmp_path)
    if sys.platform.startswith("linux"):
        assert spec is None
        assert "no intel-npu-acceleration-library wheel for linux" in reason
        assert "nox -s build_npu" in reason


def test_npu_venv_spec_uses_aipcs_wheel(tmp_path: Path) -> None:
    wheel = fake_wheel(tmp_path, "linux")
    (tmp_path / "intel_npu_acceleration_library-1.4.0-py3-none-win_amd64.whl").write_bytes(b"")
    spec, reason = path.npu_venv_spec(tmp_path)
    assert spec is not None, reason
    assert spec.torch == "2.13.0"
    assert spec.local_wheels == (wheel,)
    assert spec.steps[0][0] == str(wheel)
    assert spec.constraints == path.CONSTRAINTS
    assert build.ensure_wheel(tmp_path) == wheel  # present: nothing is built
    text = path.CONSTRAINTS.read_text()
    for line in ("transformers==4.46.3", "neural-compressor==3.1.1", "setuptools<81", "numpy<2;", "torch==2.13.0"):
        assert line in text
    assert path.WORKER.is_file()


def test_pypi_wheels_exist_for_windows_cp38_to_cp312_only() -> None:
    assert path.pypi_wheel_exists("windows", (3, 12))
    assert not path.pypi_wheel_exists("windows", (3, 13))
    assert not path.pypi_wheel_exists("linux", (3, 11))


# --- the worker's bad input (no library needed: refused before import) -----------------------------------------


@pytest.mark.parametrize(
    ("request_fields", "status", "reason"),
    [
        ({"device": "gpu"}, "skip", "device 'gpu' is not supported"),
        ({"device": "tpu"}, "fail", "device 'tpu' is not supported"),
        ({"precision": "fp32"}, "skip", "precision 'fp32' is not supported"),
        ({"precision": "q3"}, "fail", "precision 'q3' is not supported"),
        ({"model": "/nonexistent"}, "fail", "has no config.json"),
    ],
)
def test_worker_refuses_what_it_cannot_run(tmp_path: Path, request_fields: dict[str, str], status: str,
                                           reason: str) -> None:
    req = {"model": str(tmp_path), "device": "auto", "precision": "int4", "max_new_tokens": 4, "messages": [],
           "golden": None, **request_fields}
    (tmp_path / "req.json").write_text(json.dumps(req))
    proc = subprocess.run([sys.executable, str(path.WORKER), "--request", str(tmp_path / "req.json"),
                           "--result", str(tmp_path / "res.json")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    res = json.loads((tmp_path / "res.json").read_text())
    assert res["status"] == status
    assert reason in res["reason"]
    assert res["api"] == "intel-npu-acceleration-library"


def test_worker_reports_a_missing_library_as_fail(tmp_path: Path) -> None:
    """Everything past the input checks runs inside the catch-all: here the import fails (no library in this venv)."""
    (tmp_path / "config.json").write_text("{}")
    req = {"model": str(tmp_path), "device": "auto", "precision": "int4", "max_new_tokens": 4, "messages": [],
           "golden": None}
    (tmp_path / "req.json").write_text(json.dumps(req))
    argv = ["w", "--request", str(tmp_path / "req.json"), "--result", str(tmp_path / "res.json")]
    code = (
        "import runpy, sys; sys.modules['intel_npu_acceleration_library'] = None; "
        f"sys.argv = {argv!r}; runpy.run_path({str(path.WORKER)!r}, run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "res.json").read_text())
    assert res["status"] == "fail"
    assert res["reason"].startswith(("ModuleNotFoundError", "ImportError")), res["reason"]
    assert "traceback" in res["details"]


def test_ensure_npu_wheel_reports_why_it_cannot_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_kwargs: object) -> None:
        raise AipcError("no compiler here", hint="install one")

    monkeypatch.setattr(build, "make_config", refuse)
    said: list[str] = []
    assert build.ensure_wheel(tmp_path, echo=said.append) is None
    assert said and "cannot build it here: no compiler here; fix: install one" in said[0]


def test_pip_download_refuses_a_tampered_sdist_before_running_it(tmp_path: Path) -> None:
    """The online route: pip checks the pinned hash before it would run the sdist's setup.py (offline index here)."""
    index = tmp_path / "index"
    index.mkdir()
    make_sdist(index)  # named like the real one, different bytes
    dest = tmp_path / "b" / "sdist" / PIN.file
    cmd = sdist.download_command(PIN, sdist.incoming_dir(dest.parent), sys.executable, find_links=index)
    with pytest.raises(AipcError, match=r"refusing a tampered or different sdist \(pip stopped before"):
        sdist.obtain_sdist(dest, PIN, given=None, download=cmd)
    assert not dest.exists()


def test_build_python_without_an_openvino_wheel_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "python3.13"
    fake.write_text("#!/bin/sh\necho 3 13\n")
    fake.chmod(0o755)
    proc = run_aipc("build-npu", "--plan", "--python", str(fake), "--build-dir", str(tmp_path / "b"))
    assert_one_line_error(proc.returncode, proc.stderr, "openvino 2024.4.0 has wheels for CPython 3.8-3.12 only",
                          "CPython 3.13",
                          "--python", code=1)
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    proc = run_aipc("build-npu", "--plan", "--python", str(broken), "--build-dir", str(tmp_path / "b"))
    assert_one_line_error(proc.returncode, proc.stderr, "is not a working Python interpreter", code=2)
    # an installed OpenVINO needs no wheel: any interpreter will do
    pkg = fake_openvino(tmp_path, "2024.4.0")
    proc = run_aipc("build-npu", "--plan", "--python", str(fake), "--openvino-dir", str(pkg), "--build-dir",
                    str(tmp_path / "b"))
    assert proc.returncode == 0, proc.stderr


def test_download_lands_through_staging_and_an_interrupted_one_leaves_nothing(tmp_path: Path) -> None:
    """pip writes into incoming_dir(); only a verified file is renamed onto the sdist's own name."""
    import dataclasses

    from aipc.fsutil import sha256_file
    from aipc.runner import Command

    (tmp_path / "fixture").mkdir()
    fixture = make_sdist(tmp_path / "fixture")
    pin = dataclasses.replace(PIN, sha256=sha256_file(fixture))
    dest = tmp_path / "b" / "sdist" / pin.file
    staging = sdist.incoming_dir(dest.parent)

    def fake_pip(code: str) -> Command:
        return Command.make([sys.executable, "-c", code, str(fixture), str(staging / pin.file)], tmp_path)

    half = "import sys; open(sys.argv[2], 'wb').write(open(sys.argv[1], 'rb').read()[:100]); sys.exit('killed')"
    with pytest.raises(AipcError, match=r"pip download of .* failed"):
        sdist.obtain_sdist(dest, pin, given=None, download=fake_pip(half))
    assert not dest.exists() and not staging.exists()

    whole = "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])"
    assert sdist.obtain_sdist(dest, pin, given=None, download=fake_pip(whole)) == dest
    assert sha256_file(dest) == pin.sha256 and not staging.exists()
