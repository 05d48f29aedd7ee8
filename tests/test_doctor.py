"""aipc doctor: every check's verdict from recorded fact files the tests write, and the CLI (--facts/--save-facts).

The fact files model real machines: a healthy Core Ultra laptop on Windows 11, an old NPU driver, no NPU, an old
onnxruntime.dll in System32, no Visual Studio, long paths off, WSL, a Linux box with /dev/accel it cannot open...
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aipc.doctor import checks
from aipc.doctor.checks import CheckResult, run_checks
from aipc.doctor.facts import validate_facts
from aipc.errors import UsageError
from aipc.pins import DEFAULT_PINS, Pins, load_pins
from aipc.platforms.windows import VS_COMPONENTS, wddm_of

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024**3


def pip_ok(index: str) -> dict[str, Any]:
    """``tools.pip`` facts of a machine whose pip reaches its index."""
    return {"venv": True, "ensurepip": True, "config_files": [], "no_index": False,
            "sources": [{"kind": "index", "url": index, "ok": True, "status": 200, "seconds": 0.2}]}


def healthy_windows() -> dict[str, Any]:
    """A Core Ultra (Meteor Lake) laptop, Windows 11 24H2, everything aipc needs installed."""
    return {
        "schema": 1, "aipc_version": "0.1.0", "collected_at": "2026-11-20T10:00:00+00:00", "collect_seconds": 2.4,
        "host": {"platform": "windows", "system": "Windows", "release": "11", "version": "10.0.26100",
                 "machine": "AMD64", "cpu_count": 16, "workdir": "C:\\b\\aipc", "disk_free_bytes": 300 * GIB,
                 "disk_total_bytes": 950 * GIB},
        "python": {"version": "3.12.8", "version_info": [3, 12, 8], "implementation": "CPython", "bits": 64,
                   "executable": "C:\\Python312\\python.exe", "prefix": "C:\\Python312", "in_venv": False,
                   "store": False, "path_python": "C:\\Python312\\python.exe", "path_python_is_store_stub": False},
        "tools": {
            "git": {"path": "C:\\Program Files\\Git\\cmd\\git.exe", "version": "2.47.1"},
            "cmake": {"path": "C:\\Program Files\\CMake\\bin\\cmake.exe", "version": "3.31.2"},
            "ninja": {"path": "C:\\tools\\ninja.exe", "version": "1.12.1"},
            "nuget": {"path": None, "version": None},
            "pip": pip_ok("https://pypi.org/simple"),
        },
        "packages": {"interpreter": "C:\\Python312\\python.exe",
                     "installed": {"onnxruntime-directml": "1.24.4", "onnxruntime-genai-directml": "0.15.2",
                                   "numpy": "2.2.1"}},
        "runtime": {"ort_libraries": [], "aipc_wheels": {"dir": "C:\\b\\aipc\\wheels", "exists": True, "files": []}},
        "devices": {"openvino": {
            "status": "ok", "version": "2026.4.1-20468", "devices": ["CPU", "GPU", "NPU"],
            "device_names": {"CPU": "Intel(R) Core(TM) Ultra 7 155H", "GPU": "Intel(R) Arc(TM) Graphics (iGPU)",
                             "NPU": "Intel(R) AI Boost"},
            "npu_driver_version": 1004239, "python": "C:\\Users\\u\\AppData\\Local\\aipc\\venvs\\openvino\\python.exe",
            "seconds": 1.4}},
        "linux": None,
        "windows": {
            "os": {"caption": "Microsoft Windows 11 Pro", "version": "10.0.26100", "build": 26100, "ubr": 2605,
                   "display_version": "24H2", "architecture": "64-bit", "total_memory_kb": 32_000_000,
                   "free_memory_kb": 18_000_000},
            "processor_architecture": "AMD64",
            "processor_identifier": "Intel64 Family 6 Model 170 Stepping 4, GenuineIntel",
            "processor_name": "Intel(R) Core(TM) Ultra 7 155H",
            "long_paths_enabled": 1,
            "kits_root": "C:\\Program Files (x86)\\Windows Kits\\10\\",
            "sdk": [{"version": "10.0.22621.0", "d3d12_h": True}, {"version": "10.0.26100.0", "d3d12_h": True}],
            "npu": [{"name": "Intel(R) AI Boost", "device_id": "PCI\\VEN_8086&DEV_7D1D&SUBSYS_0CB21028&REV_04\\3&1",
                     "status": "OK", "problem": 0, "class": "ComputeAccelerator", "driver_version": "32.0.100.4239"}],
            "gpus": [{"name": "Intel(R) Arc(TM) Graphics", "driver_version": "32.0.101.6129",
                      "device_id": "PCI\\VEN_8086&DEV_7D55", "vendor": "Intel Corporation", "status": "OK",
                      "problem": 0}],
            "ort_dlls": [],
            "directml_dll": {"path": "C:\\Windows\\System32\\DirectML.dll", "file_version": "1.15.4",
                             "file_version_raw": "1.15.4.0"},
            "d3d12_dll": True,
            "vc_runtime": {"key": "HKLM:\\SOFTWARE\\Microsoft\\VisualStudio\\14.0\\VC\\Runtimes\\x64",
                           "installed": 1, "version": "v14.42.34433.00", "major": 14, "minor": 42, "bld": 34433},
            "msvcp140": {"path": "C:\\Windows\\System32\\msvcp140.dll", "file_version": "14.42.34433.0",
                         "file_version_raw": "14.42.34433.0"},
            "errors": {},
            "visual_studio": {
                "vswhere": "C:\\Program Files (x86)\\Microsoft Visual Studio\\Installer\\vswhere.exe",
                "instances": [{
                    "instance_id": "8a1f3c2e", "display_name": "Visual Studio Community 2022",
                    "installation_version": "17.12.35527.113",
                    "installation_path": "C:\\Program Files\\Microsoft Visual Studio\\2022\\Community",
                    "product_line_version": "2022", "product_id": "Microsoft.VisualStudio.Product.Community",
                    "is_complete": True, "has_vc_tools": True,
                    "components": {c: True for c, _ in VS_COMPONENTS},
                    "msvc_toolsets": [{"version": "14.38.33130", "cl_x64": True},
                                      {"version": "14.42.34433", "cl_x64": True}]}]},
        },
        "errors": {},
    }


def healthy_linux() -> dict[str, Any]:
    """A Core Ultra box on Ubuntu 24.04 with the NPU driver installed and the user in the render group."""
    return {
        "schema": 1, "aipc_version": "0.1.0", "collected_at": "2026-11-20T10:00:00+00:00", "collect_seconds": 1.1,
        "host": {"platform": "linux", "system": "Linux", "release": "6.8.0-45-generic", "version": "#45-Ubuntu",
                 "machine": "x86_64", "cpu_count": 16, "workdir": "/home/alice/src/aipc",
                 "disk_free_bytes": 200 * GIB, "disk_total_bytes": 500 * GIB},
        "python": {"version": "3.12.3", "version_info": [3, 12, 3], "implementation": "CPython", "bits": 64,
                   "executable": "/usr/bin/python3", "prefix": "/usr", "in_venv": False, "store": False,
                   "path_python": None, "path_python_is_store_stub": False},
        "tools": {"git": {"path": "/usr/bin/git", "version": "2.43.0"},
                  "cmake": {"path": "/usr/local/bin/cmake", "version": "3.30.1"},
                  "ninja": {"path": "/usr/bin/ninja", "version": "1.11.1"},
                  "nuget": {"path": None, "version": None},
                  "cc": {"command": "cc", "path": "/usr/bin/cc", "kind": "gcc", "version": "13.2.0"},
                  "pip": pip_ok("https://pypi.org/simple")},
        "packages": {"interpreter": "/usr/bin/python3", "installed": {}},
        "runtime": {"ort_libraries": [], "aipc_wheels": {"dir": "/home/alice/src/aipc/wheels", "exists": True,
                                                          "files": []}},
        "devices": {"openvino": {"status": "ok", "version": "2026.4.1", "devices": ["CPU", "GPU", "NPU"],
                                 "device_names": {"NPU": "Intel(R) AI Boost"}, "python": "/x/bin/python"}},
        "linux": {
            "os_release": {"ID": "ubuntu", "VERSION_ID": "24.04", "PRETTY_NAME": "Ubuntu 24.04.1 LTS"},
            "kernel": "6.8.0-45-generic", "kernel_version": [6, 8, 0], "wsl": False,
            "intel_vpu_loaded": True, "intel_vpu_available": True,
            "npu_pci": [{"slot": "0000:00:0b.0", "id": "8086:7d1d", "platform": "Meteor Lake"}],
            "accel_devices": [{"path": "/dev/accel/accel0", "group": "render", "mode": "0o660", "readable": True,
                               "writable": True}],
            "npu_user_space": {"libze_intel_npu.so": "/usr/lib/x86_64-linux-gnu/libze_intel_npu.so.1",
                               "libze_loader.so.1": "/usr/lib/x86_64-linux-gnu/libze_loader.so.1"},
            "user": "alice", "uid": 1000, "session_groups": ["alice", "render"],
            "configured_groups": ["alice", "render"], "render_group_exists": True, "video_group_exists": True,
            "memory_total_bytes": 32 * GIB, "memory_available_bytes": 20 * GIB,
        },
        "windows": None,
        "errors": {},
    }


@pytest.fixture(scope="module")
def pins() -> Pins:
    return load_pins(DEFAULT_PINS)


def verdicts(facts: dict[str, Any], pins: Pins) -> dict[str, CheckResult]:
    validate_facts(facts, "test")
    return {r.name: r for r in run_checks(facts, pins)}


def status_of(facts: dict[str, Any], pins: Pins) -> dict[str, str]:
    return {name: r.status for name, r in verdicts(facts, pins).items()}


def test_every_non_pass_has_a_fix_and_every_check_is_known(pins: Pins) -> None:
    for facts in (healthy_windows(), healthy_linux()):
        for r in run_checks(facts, pins):
            assert r.status in checks.STATUSES and r.category in checks.CATEGORIES
            if r.status in ("warn", "fail"):
                assert r.fix, r


def test_healthy_windows_ai_pc_passes(pins: Pins) -> None:
    res = verdicts(healthy_windows(), pins)
    not_pass = {n: (r.status, r.found) for n, r in res.items() if r.status != "pass"}
    # genai 0.15.2 downloads nuget.exe itself; the Linux-only checks do not apply
    assert set(not_pass) == {"nuget.exe", "NPU access (Linux)", "NPU user-space driver (Linux)", "C++ compiler"}, \
        not_pass
    assert all(s == "skip" for s, _ in not_pass.values())
    assert "Intel(R) AI Boost, driver 32.0.100.4239" in res["NPU"].found
    assert "MSVC 14.42.34433" in res["Visual Studio C++"].found  # the newest toolset is the one reported
    assert "SDK 10.0.26100.0" in res["Windows SDK (d3d12.h)"].found
    assert "WDDM 3.2" in res["DirectX 12"].found
    assert "NPU (Intel(R) AI Boost)" in res["OpenVINO devices"].found
    assert checks.exit_code(list(res.values())) == 0


def test_healthy_linux_ai_pc_passes(pins: Pins) -> None:
    res = verdicts(healthy_linux(), pins)
    for name in ("OS", "NPU", "NPU access (Linux)", "NPU user-space driver (Linux)", "OpenVINO devices", "CMake"):
        assert res[name].status == "pass", res[name]
    for name in ("Visual Studio C++", "Windows SDK (d3d12.h)", "long paths", "VC++ runtime", "GPU",
                 "NPU driver for OpenVINO GenAI"):
        assert res[name].status == "skip", res[name]
        assert res[name].found
    assert "Windows only" in res["Visual Studio C++"].found


@pytest.mark.parametrize(("driver", "genai", "library"), [
    ("32.0.100.2267", "fail", "fail"),   # Phi-3 failed on it (intel-npu-acceleration-library#67)
    ("31.0.100.1477", "fail", "fail"),
    ("32.0.100.3053", "fail", "pass"),   # >= 2408 for the library, < 3104 for OpenVINO GenAI
    ("32.0.100.3104", "pass", "pass"),
])
def test_npu_driver_minimums(pins: Pins, driver: str, genai: str, library: str) -> None:
    facts = healthy_windows()
    facts["windows"]["npu"][0]["driver_version"] = driver
    res = verdicts(facts, pins)
    assert res["NPU driver for OpenVINO GenAI"].status == genai
    assert res["NPU driver for the NPU library"].status == library
    if genai == "fail":
        assert "32.0.100.3104" in res["NPU driver for OpenVINO GenAI"].found
        assert "intel-npu-driver-windows" in res["NPU driver for OpenVINO GenAI"].fix
    assert checks.exit_code(list(res.values())) == (1 if genai == "fail" else 0)


def test_no_npu(pins: Pins) -> None:
    facts = healthy_windows()
    facts["windows"]["npu"] = []
    facts["devices"]["openvino"]["devices"] = ["CPU", "GPU"]
    res = verdicts(facts, pins)
    assert res["NPU"].status == "warn" and "no Intel NPU" in res["NPU"].found
    assert res["NPU driver for OpenVINO GenAI"].status == "skip"
    assert res["OpenVINO devices"].status == "pass"  # no NPU expected, so none missing


def test_npu_without_driver_and_openvino_not_seeing_it(pins: Pins) -> None:
    facts = healthy_windows()
    facts["windows"]["npu"] = [{"name": "Multimedia Video Controller", "device_id": "PCI\\VEN_8086&DEV_7D1D",
                                "status": "Error", "problem": 28, "class": None, "driver_version": None}]
    res = verdicts(facts, pins)
    assert res["NPU"].status == "fail" and "problem code 28" in res["NPU"].found
    facts = healthy_windows()
    facts["devices"]["openvino"]["devices"] = ["CPU", "GPU"]
    res = verdicts(facts, pins)
    assert res["OpenVINO devices"].status == "fail"
    assert "does not list it" in res["OpenVINO devices"].found


@pytest.mark.parametrize("status", ["crash", "timeout"])
def test_openvino_query_crash_is_a_failure(pins: Pins, status: str) -> None:
    facts = healthy_windows()
    facts["devices"]["openvino"] = {"status": status, "error": "exit code 3221225477 (0xC0000005)", "python": "p"}
    res = verdicts(facts, pins)
    assert res["OpenVINO devices"].status == "fail"
    assert "openvino#36456" in res["OpenVINO devices"].fix
    facts["devices"]["openvino"] = {"status": "not-installed", "searched": []}
    assert verdicts(facts, pins)["OpenVINO devices"].status == "skip"
    facts["devices"]["openvino"] = {"status": "error", "error": "ImportError: DLL load failed", "python": "p"}
    assert verdicts(facts, pins)["OpenVINO devices"].status == "warn"


@pytest.mark.parametrize(("where", "ver", "status"), [
    ("system32", "1.17.1.0", "warn"),   # Windows owns it: warn, explain
    ("path", "1.17.1.0", "fail"),       # a stale copy on PATH the user can remove
    ("path", "1.24.4.0", "pass"),
    ("system32", "1.26.0.0", "pass"),
    ("path", None, "fail"),
])
def test_onnxruntime_dll_shadowing(pins: Pins, where: str, ver: str | None, status: str) -> None:
    facts = healthy_windows()
    path = ("C:\\Windows\\System32" if where == "system32" else "C:\\old\\ort\\bin") + "\\onnxruntime.dll"
    facts["runtime"]["ort_libraries"] = [{"path": path, "where": where, "version": ver}]
    res = verdicts(facts, pins)["stray ONNX Runtime library"]
    assert res.status == status, res
    if ver == "1.17.1.0":
        assert "API 17" in res.found and "API 24" in res.found
    if status == "fail":
        assert "C:\\old\\ort\\bin" in res.fix
    if where == "system32" and status == "warn":
        assert "onnxruntime-genai#935" in res.fix


def test_linux_ort_library_on_ld_library_path(pins: Pins) -> None:
    facts = healthy_linux()
    facts["runtime"]["ort_libraries"] = [
        {"path": "/opt/old/libonnxruntime.so.1.16.3", "where": "ld_library_path", "version": "1.16.3"}]
    res = verdicts(facts, pins)["stray ONNX Runtime library"]
    assert res.status == "fail" and "LD_LIBRARY_PATH" in res.fix and "/opt/old" in res.fix


def test_no_visual_studio(pins: Pins) -> None:
    facts = healthy_windows()
    facts["windows"]["visual_studio"] = {"vswhere": None, "instances": []}
    res = verdicts(facts, pins)["Visual Studio C++"]
    assert res.status == "fail"
    assert "Microsoft.VisualStudio.2022.BuildTools" in res.fix and "VCTools" in res.fix


def test_visual_studio_variants(pins: Pins) -> None:
    facts = healthy_windows()
    inst = facts["windows"]["visual_studio"]["instances"][0]
    inst["has_vc_tools"] = False
    res = verdicts(facts, pins)["Visual Studio C++"]
    assert res.status == "fail" and "no C++ workload" in res.found and "modify --installPath" in res.fix
    inst["has_vc_tools"] = True
    inst["msvc_toolsets"] = [{"version": "14.39.33519", "cl_x64": True}]
    res = verdicts(facts, pins)["Visual Studio C++"]
    assert res.status == "fail" and "< 14.40" in res.found
    inst["msvc_toolsets"] = [{"version": "14.42.34433", "cl_x64": False}]
    assert verdicts(facts, pins)["Visual Studio C++"].status == "fail"
    inst["installation_version"] = "18.0.11111.16"
    inst["display_name"] = "Visual Studio Community 2026"
    inst["msvc_toolsets"] = [{"version": "14.50.35717", "cl_x64": True}]
    res = verdicts(facts, pins)["Visual Studio C++"]
    assert res.status == "fail" and "no Visual Studio 2022" in res.found


def test_long_paths_off(pins: Pins) -> None:
    for value in (0, None):
        facts = healthy_windows()
        facts["windows"]["long_paths_enabled"] = value
        res = verdicts(facts, pins)["long paths"]
        assert res.status == "fail"
        assert "LongPathsEnabled /t REG_DWORD /d 1" in res.fix


def test_windows_sdk_variants(pins: Pins) -> None:
    facts = healthy_windows()
    facts["windows"]["sdk"] = [{"version": "10.0.22621.0", "d3d12_h": False}]
    res = verdicts(facts, pins)["Windows SDK (d3d12.h)"]
    assert res.status == "fail" and "Windows11SDK.22621" in res.fix
    facts["windows"]["sdk"] = [{"version": "10.0.19041.0", "d3d12_h": True}]
    assert verdicts(facts, pins)["Windows SDK (d3d12.h)"].status == "warn"
    facts["windows"]["kits_root"] = None
    assert verdicts(facts, pins)["Windows SDK (d3d12.h)"].status == "fail"


def test_nuget_needed_for_genai_016(tmp_path: Path) -> None:
    text = DEFAULT_PINS.read_text(encoding="utf-8").replace('version = "0.15.2"', 'version = "0.16.0.dev0"')
    (tmp_path / "pins.toml").write_text(text, encoding="utf-8")
    pins16 = load_pins(tmp_path / "pins.toml")
    facts = healthy_windows()
    res = verdicts(facts, pins16)["nuget.exe"]
    assert res.status == "fail" and "Microsoft.NuGet" in res.fix
    facts["tools"]["nuget"] = {"path": "C:\\tools\\nuget.exe", "version": "6.12.1.1"}
    assert verdicts(facts, pins16)["nuget.exe"].status == "pass"


def test_short_build_path(pins: Pins) -> None:
    facts = healthy_windows()
    facts["host"]["workdir"] = "C:\\Users\\someone.with.a.long.name\\Documents\\GitHub\\aipc"
    res = verdicts(facts, pins)["short build path"]
    assert res.status == "warn" and "C:\\b" in res.fix
    facts["host"]["workdir"] = "C:\\my builds\\a"
    assert verdicts(facts, pins)["short build path"].status == "warn"


def test_wsl(pins: Pins) -> None:
    facts = healthy_linux()
    facts["linux"].update(wsl=True, kernel="5.15.167.4-microsoft-standard-WSL2", kernel_version=[5, 15, 167],
                          intel_vpu_loaded=False, npu_pci=[], accel_devices=[], npu_user_space={})
    facts["devices"]["openvino"]["devices"] = ["CPU"]
    res = verdicts(facts, pins)
    assert res["OS"].status == "pass" and "WSL" in res["OS"].found
    assert res["NPU"].status == "warn" and "WSL2 has no NPU" in res["NPU"].found
    assert res["NPU access (Linux)"].status == "skip"
    assert res["OpenVINO devices"].status == "pass"


def test_linux_accel_without_permission(pins: Pins) -> None:
    facts = healthy_linux()
    facts["linux"]["accel_devices"][0].update(readable=False, writable=False)
    facts["linux"].update(session_groups=["alice"], configured_groups=["alice"])
    facts["devices"]["openvino"]["devices"] = ["CPU", "GPU"]
    res = verdicts(facts, pins)
    access = res["NPU access (Linux)"]
    assert access.status == "fail"
    assert "/dev/accel/accel0" in access.found and "alice" in access.found
    assert access.fix == "sudo usermod -aG render alice, then log out and back in"
    assert res["NPU"].status == "pass"  # the device is there; access is the problem
    assert res["OpenVINO devices"].status == "pass"  # NPU not expected when it cannot be opened


def test_linux_accel_permission_variants(pins: Pins) -> None:
    facts = healthy_linux()
    node = facts["linux"]["accel_devices"][0]
    node.update(readable=False, writable=False, group="root", mode="0o600")
    facts["linux"]["session_groups"] = ["alice"]
    res = verdicts(facts, pins)["NPU access (Linux)"]
    assert "sudo chown root:render /dev/accel/accel0 && sudo chmod g+rw /dev/accel/accel0" in res.fix
    node.update(group="render", mode="0o660")
    facts["linux"].update(session_groups=["alice"], configured_groups=["alice", "render"])
    res = verdicts(facts, pins)["NPU access (Linux)"]
    assert res.status == "fail" and "log out and back in" in res.fix and "predates" in res.found


def test_linux_npu_driver_states(pins: Pins) -> None:
    facts = healthy_linux()
    facts["linux"].update(intel_vpu_loaded=False, accel_devices=[])
    res = verdicts(facts, pins)["NPU"]
    assert res.status == "fail" and "sudo modprobe intel_vpu" in res.fix and "Meteor Lake" in res.found
    facts["linux"].update(intel_vpu_loaded=True)
    assert verdicts(facts, pins)["NPU"].status == "fail"
    facts = healthy_linux()
    facts["linux"]["npu_user_space"] = {}
    res = verdicts(facts, pins)["NPU user-space driver (Linux)"]
    assert res.status == "warn" and "linux-npu-driver" in res.fix
    facts["linux"]["npu_user_space"] = {"libze_intel_vpu.so": "/usr/lib/libze_intel_vpu.so.1"}
    assert "v1.16.0" in verdicts(facts, pins)["NPU user-space driver (Linux)"].found
    facts = healthy_linux()
    facts["linux"].update(kernel="6.5.0-1-generic", kernel_version=[6, 5, 0])
    res = verdicts(facts, pins)["OS"]
    assert res.status == "warn" and "linux-generic-hwe-22.04" in res.fix


def test_both_ort_packages_installed(pins: Pins) -> None:
    facts = healthy_windows()
    facts["packages"]["installed"]["onnxruntime"] = "1.20.1"
    res = verdicts(facts, pins)["ONNX Runtime packages"]
    assert res.status == "fail"
    assert "onnxruntime 1.20.1 and onnxruntime-directml 1.24.4 are both installed" in res.found
    assert "#983" in res.found
    assert res.fix == ("python -m pip uninstall -y onnxruntime onnxruntime-directml && "
                       "python -m pip install onnxruntime-directml")
    facts = healthy_windows()
    facts["packages"]["installed"]["onnxruntime-genai"] = "0.15.2"
    assert verdicts(facts, pins)["ONNX Runtime packages"].status == "fail"


def test_incompatible_installed_genai_and_ort(pins: Pins) -> None:
    facts = healthy_windows()
    facts["packages"]["installed"]["onnxruntime-directml"] = "1.23.0"
    res = verdicts(facts, pins)["installed genai vs ONNX Runtime"]
    assert res.status == "fail"
    assert "needs ONNX Runtime >= 1.24.4" in res.found and "v0.15.0-v0.15.2" in res.found  # quotes the row
    assert res.fix == 'python -m pip install "onnxruntime-directml>=1.24.4"'
    facts["packages"]["installed"]["onnxruntime-genai-directml"] = "0.12.1"  # 0.12 pairs with 1.23
    assert verdicts(facts, pins)["installed genai vs ONNX Runtime"].status == "pass"
    facts["packages"]["installed"]["onnxruntime-genai-directml"] = "0.18.0"
    assert verdicts(facts, pins)["installed genai vs ONNX Runtime"].status == "warn"
    facts["packages"]["installed"].update({"onnxruntime": "1.26.0", "onnxruntime-genai-directml": "0.15.2"})
    res = verdicts(facts, pins)["installed genai vs ONNX Runtime"]  # judged against its own flavour
    assert res.status == "fail" and "onnxruntime-directml 1.23.0 is installed" in res.found
    del facts["packages"]["installed"]["onnxruntime"]
    del facts["packages"]["installed"]["onnxruntime-directml"]
    assert verdicts(facts, pins)["installed genai vs ONNX Runtime"].status == "fail"
    facts["packages"]["installed"] = {}
    assert verdicts(facts, pins)["installed genai vs ONNX Runtime"].status == "skip"


def test_vc_runtime(pins: Pins) -> None:
    facts = healthy_windows()
    facts["windows"]["vc_runtime"] = None
    facts["windows"]["msvcp140"] = None
    res = verdicts(facts, pins)["VC++ runtime"]
    assert res.status == "fail" and "vc_redist.x64.exe" in res.fix
    facts["windows"]["msvcp140"] = {"file_version_raw": "14.44.35208.0"}
    assert verdicts(facts, pins)["VC++ runtime"].status == "pass"
    facts["windows"]["vc_runtime"] = {"installed": 1, "version": "v14.29.30133.00"}
    assert verdicts(facts, pins)["VC++ runtime"].status == "warn"


def test_gpu_and_directx(pins: Pins) -> None:
    facts = healthy_windows()
    facts["windows"]["gpus"] = [{"name": "Microsoft Basic Display Adapter", "driver_version": "10.0.26100.1",
                                 "problem": 0}]
    res = verdicts(facts, pins)
    assert res["GPU"].status == "fail" and "intel-arc-iris-xe" in res["GPU"].fix
    assert res["DirectX 12"].status == "fail"
    facts = healthy_windows()
    facts["windows"]["gpus"][0]["problem"] = 43
    assert verdicts(facts, pins)["GPU"].status == "warn"
    facts["windows"]["d3d12_dll"] = False
    assert verdicts(facts, pins)["DirectX 12"].status == "fail"
    assert wddm_of("31.0.101.5590") == (3, 1)
    assert wddm_of("27.20.100.9316") == (2, 7)
    assert wddm_of("10.0.26100.1") is None


def test_os_versions(pins: Pins) -> None:
    for build, status in ((26100, "pass"), (22621, "pass"), (22000, "warn"), (19045, "warn")):
        facts = healthy_windows()
        facts["windows"]["os"]["build"] = build
        res = verdicts(facts, pins)["OS"]
        assert res.status == status, (build, res)
        if status == "warn":
            assert "22H2" in res.found and "Windows Update" in res.fix


def test_python_variants(pins: Pins) -> None:
    cases = [({"bits": 32}, "Python", "fail"), ({"version": "3.9.13"}, "Python", "fail"),
             ({"version": "3.14.0"}, "Python", "warn"),  # no DirectML wheels built for 3.14
             ({"version": "3.13.1"}, "Python for the NPU library", "warn"),
             ({"version": "3.15.0"}, "Python", "fail"),
             ({"store": True}, "Python installation", "warn"),
             ({"path_python": "C:\\Users\\u\\AppData\\Local\\Microsoft\\WindowsApps\\python.exe",
               "path_python_is_store_stub": True}, "Python installation", "warn")]
    for change, name, status in cases:
        facts = healthy_windows()
        facts["python"].update(change)
        res = verdicts(facts, pins)[name]
        assert res.status == status, (change, res)
    facts = healthy_windows()
    facts["python"]["path_python_is_store_stub"] = True
    assert "App execution aliases" in verdicts(facts, pins)["Python installation"].fix


def test_disk_memory_architecture(pins: Pins) -> None:
    for free, status in ((10, "fail"), (30, "warn"), (60, "pass")):
        facts = healthy_windows()
        facts["host"]["disk_free_bytes"] = free * GIB
        assert verdicts(facts, pins)["free disk"].status == status
    for kb, status in ((6_000_000, "fail"), (12_000_000, "warn"), (64_000_000, "pass")):
        facts = healthy_windows()
        facts["windows"]["os"]["total_memory_kb"] = kb
        assert verdicts(facts, pins)["memory"].status == status
    facts = healthy_linux()
    facts["linux"]["memory_total_bytes"] = 4 * GIB
    assert verdicts(facts, pins)["memory"].status == "fail"
    facts = healthy_windows()
    facts["windows"]["processor_architecture"] = "ARM64"
    assert verdicts(facts, pins)["architecture"].status == "fail"


def test_build_tools(pins: Pins) -> None:
    facts = healthy_windows()
    facts["tools"]["cmake"]["version"] = "3.25.1"
    facts["tools"]["git"] = {"path": None, "version": None}
    facts["tools"]["ninja"] = {"path": None, "version": None}
    res = verdicts(facts, pins)
    # the build venv can be made, so the builds run its pinned CMake: the old one on PATH only warns
    assert res["CMake"].status == "warn" and "below the minimum 3.28" in res["CMake"].found
    assert "cmake==3.31.6" in res["CMake"].found and 'pip install "cmake==3.31.6"' in res["CMake"].fix
    assert res["Git"].status == "fail" and "Git.Git" in res["Git"].fix
    assert res["Ninja"].status == "warn"
    facts = healthy_linux()
    facts["tools"]["ninja"] = {"path": None, "version": None}
    facts["tools"]["pip"]["sources"][0].update(ok=False, error="URLError: timed out")
    assert verdicts(facts, pins)["Ninja"].status == "fail"  # no build venv: the generator on Linux is missing
    facts["tools"]["cmake"] = {"path": "/usr/bin/cmake", "version": None, "error": "exit code 1: boom"}
    assert verdicts(facts, pins)["CMake"].status == "fail"


def test_missing_or_malformed_inner_facts_give_skips_not_tracebacks(pins: Pins) -> None:
    facts = healthy_windows()
    facts["windows"] = {"error": "PowerShell facts script failed: timeout after 30 s"}
    res = verdicts(facts, pins)
    assert res["OS"].status == "skip" and "timeout after 30 s" in res["OS"].found
    assert res["NPU"].status == "skip"
    facts = healthy_windows()
    facts["windows"]["npu"] = "garbage"
    facts["python"]["bits"] = "64"
    facts["tools"]["cmake"] = ["not", "a", "dict"]
    res = verdicts(facts, pins)
    assert res["NPU"].status == "skip" and res["Python"].status == "skip" and res["CMake"].status == "skip"
    assert not any("internal error" in r.found for r in res.values())


def test_a_check_that_raises_is_a_visible_failure(pins: Pins, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(facts: dict[str, Any], pins: Pins) -> CheckResult:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(checks, "CHECKS", [*checks.CHECKS, ("system", "broken", broken)])
    res = {r.name: r for r in run_checks(healthy_windows(), pins)}
    assert res["broken"].status == "fail" and "ZeroDivisionError: boom" in res["broken"].found


def test_validate_facts_errors() -> None:
    good = healthy_linux()
    validate_facts(good, "x")
    cases = [([], "JSON object"), ({**good, "schema": 2}, "unsupported schema 2"),
             ({k: v for k, v in good.items() if k != "tools"}, "no 'tools' section"),
             ({**good, "host": {"platform": "macos"}}, "host.platform"),
             ({**good, "linux": None}, "'linux' section is missing"),
             ({**good, "windows": 3}, "'windows' must be an object or null")]
    for obj, needle in cases:
        with pytest.raises(UsageError, match=needle) as exc:
            validate_facts(copy.deepcopy(obj), "f.json")
        assert exc.value.exit_code == 2


# --- CLI -------------------------------------------------------------------------------------------------------

def run_doctor(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "aipc", "doctor", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120, check=False)


def write(tmp_path: Path, name: str, obj: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj, encoding="utf-8")
    return path


def test_cli_recorded_facts_table_json_and_exit_codes(tmp_path: Path) -> None:
    healthy = write(tmp_path, "healthy.json", healthy_windows())
    proc = run_doctor("--facts", str(healthy), "--json", str(tmp_path / "report.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Intel(R) AI Boost, driver 32.0.100.4239" in proc.stdout
    assert f"aipc doctor: {len(checks.CHECKS)} checks" in proc.stdout and " s; facts: " in proc.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["fail"] == 0 and report["exit_code"] == 0 and report["platform"] == "windows"
    assert {c["name"] for c in report["checks"]} >= {"NPU", "Visual Studio C++", "VC++ runtime"}
    old = healthy_windows()
    old["windows"]["npu"][0]["driver_version"] = "32.0.100.2267"
    proc = run_doctor("--facts", str(write(tmp_path, "old.json", old)))
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout and "fix: update the Intel NPU driver" in proc.stdout


@pytest.mark.parametrize(("content", "needle"), [
    ("{not json", "is not valid JSON (line 1"),
    (json.dumps({"schema": 99}), "unsupported schema 99"),
    (json.dumps({"schema": 1, "host": {}}), "has no 'python' section"),
    ("[1, 2]", "does not hold a JSON object"),
])
def test_cli_bad_facts_file_is_one_line_exit_2(tmp_path: Path, content: str, needle: str) -> None:
    proc = run_doctor("--facts", str(write(tmp_path, "bad.json", content)))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aipc: error: facts file") and needle in lines[0], lines
    assert "--save-facts" in lines[0]  # says how to fix it


def test_cli_odd_but_valid_facts_do_not_crash(tmp_path: Path) -> None:
    facts = healthy_linux()
    facts["errors"] = ["not", "a", "dict"]
    facts["collect_seconds"] = "soon"
    facts["linux"] = {"error": "collector crashed"}
    proc = run_doctor("--facts", str(write(tmp_path, "odd.json", facts)))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "Linux kernel not recorded (collector crashed)" in proc.stdout
    assert "NPU devices not recorded" in proc.stdout
    facts = healthy_windows()
    facts["errors"] = {"windows": "PowerShell facts script failed: timeout after 30 s"}
    proc = run_doctor("--facts", str(write(tmp_path, "err.json", facts)))
    assert "note: collector windows failed: PowerShell facts script failed" in proc.stderr


def test_cli_missing_facts_file_and_bad_options(tmp_path: Path) -> None:
    proc = run_doctor("--facts", str(tmp_path / "nope.json"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_doctor("--facts", str(write(tmp_path, "h.json", healthy_linux())), "--workdir", str(tmp_path))
    assert proc.returncode == 2 and "cannot be combined" in proc.stderr
    proc = run_doctor("--workdir", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "not a directory" in proc.stderr


def test_cli_save_facts_then_facts_gives_the_same_verdicts(tmp_path: Path) -> None:
    live = run_doctor("--save-facts", str(tmp_path / "facts.json"), "--json", str(tmp_path / "live.json"),
                      "--workdir", str(tmp_path))
    assert live.returncode in (0, 1), live.stderr
    assert "facts written to" in live.stdout
    replay = run_doctor("--facts", str(tmp_path / "facts.json"), "--json", str(tmp_path / "replay.json"))
    assert replay.returncode == live.returncode, replay.stderr
    a = json.loads((tmp_path / "live.json").read_text())
    b = json.loads((tmp_path / "replay.json").read_text())
    assert a["checks"] == b["checks"] and a["summary"] == b["summary"]
    assert b["facts_source"].endswith("facts.json") and a["facts_source"] == "this machine"
    # the exit code follows the verdicts
    assert live.returncode == (1 if a["summary"]["fail"] else 0)


def test_broken_openvino_fix_names_the_real_venv_or_interpreter(pins: Pins) -> None:
    """The fix points at the venv that was probed (under the recorded venv root), not a hard-coded ~/.cache path."""
    facts = healthy_windows()
    root = "D:\\cache\\aipc\\venvs"
    facts["devices"]["openvino"] = {"status": "error", "error": "ImportError: DLL load failed",
                                    "python": root + "\\openvino\\Scripts\\python.exe", "venv_root": root}
    res = verdicts(facts, pins)["OpenVINO devices"]
    assert res.status == "warn"
    assert "delete D:\\cache\\aipc\\venvs\\openvino " in res.fix and "~/.cache" not in res.fix
    facts["devices"]["openvino"]["python"] = "C:\\Python312\\python.exe"  # openvino in the host Python
    res = verdicts(facts, pins)["OpenVINO devices"]
    assert "C:\\Python312\\python.exe -m pip install --force-reinstall openvino" in res.fix
    assert "delete" not in res.fix and "~/.cache" not in res.fix


def test_one_dx12_adapter_rule() -> None:
    from aipc.platforms.windows import is_dx12_adapter

    assert is_dx12_adapter("Intel(R) Arc(TM) Graphics", "32.0.101.6129", "OK")
    assert is_dx12_adapter("NVIDIA GeForce RTX 4060 Laptop GPU", "32.0.15.6094", None)  # status not reported
    assert not is_dx12_adapter("Intel(R) Arc(TM) Graphics", "32.0.101.6129", "Error")  # not working
    assert not is_dx12_adapter("Intel(R) HD Graphics", "10.18.10.4425", "OK")  # WDDM 1.x
    assert not is_dx12_adapter("Microsoft Basic Render Driver", "10.0.26100.1", "OK")
    assert not is_dx12_adapter("Microsoft Remote Display Adapter", "30.0.1.1", "OK")
    assert not is_dx12_adapter("", "32.0.101.6129", "OK")
