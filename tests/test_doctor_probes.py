"""aipc doctor collectors: the real Linux collectors on this machine, and the parsers of recorded tool output
(PowerShell/CIM JSON, vswhere, os-release, tool versions) plus file-system scans on trees the tests write."""

from __future__ import annotations

import base64
import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from aipc.doctor import linux, windows
from aipc.doctor import probes as collect
from aipc.doctor.facts import SCHEMA, get, load_facts, save_facts, validate_facts
from aipc.platforms.vswhere import VC_COMPONENT, parse_vswhere
from aipc.platforms.windows import powershell_argv
from aipc.proc import Output, describe_returncode, run

# --- the real collectors on this machine -----------------------------------------------------------------------


def test_real_collectors_on_this_machine(tmp_path: Path) -> None:
    facts = collect.collect_facts(tmp_path, venv_root=tmp_path / "no-venvs")
    validate_facts(facts, "live")
    json.dumps(facts)  # serializable
    assert facts["schema"] == SCHEMA and facts["errors"] == {}
    assert facts["host"]["platform"] == "linux" and facts["windows"] is None
    assert facts["host"]["workdir"] == str(tmp_path.resolve())
    assert facts["host"]["disk_free_bytes"] > 0
    assert facts["python"]["bits"] == 64
    assert facts["python"]["version"] == platform.python_version()
    assert facts["python"]["executable"] == sys.executable
    lx = facts["linux"]
    assert lx["kernel"] == platform.release() and lx["kernel"]
    assert lx["kernel_version"][:2] == [int(x) for x in platform.release().split(".")[:2]]
    assert lx["memory_total_bytes"] > 1024**3
    assert lx["os_release"].get("ID")  # /etc/os-release is read
    assert isinstance(lx["accel_devices"], list) and isinstance(lx["wsl"], bool)
    assert lx["user"] and lx["uid"] == os.getuid()
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True).stdout
    assert facts["tools"]["git"]["version"] and facts["tools"]["git"]["version"] in git
    assert isinstance(facts["packages"]["installed"], dict)
    assert facts["devices"]["openvino"]["status"] in ("not-installed", "ok", "error", "crash", "timeout")
    assert facts["collect_seconds"] < 60


def test_save_and_load_facts_round_trip(tmp_path: Path) -> None:
    facts = collect.collect_facts(tmp_path, venv_root=tmp_path)
    save_facts(tmp_path / "f.json", facts)
    assert load_facts(tmp_path / "f.json") == json.loads(json.dumps(facts))


def test_packages_are_read_from_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    for name, ver in (("onnxruntime", "1.20.1"), ("onnxruntime_directml", "1.24.4"), ("unrelated", "1.0")):
        dist = site / f"{name}-{ver}.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    installed = collect.collect_packages()["installed"]
    assert installed["onnxruntime"] == "1.20.1" and installed["onnxruntime-directml"] == "1.24.4"
    assert "unrelated" not in installed


# --- small parsers ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("git version 2.45.1.windows.1\n", "2.45.1"),
    ("cmake version 3.31.2\n\nCMake suite maintained and supported by Kitware (kitware.com/cmake).\n", "3.31.2"),
    ("1.12.1\n", "1.12.1"),
    ("NuGet Version: 6.12.1.1\nusage: NuGet <command> [args] [options]\n", "6.12.1.1"),
    ("no version here\n", None),
])
def test_parse_tool_version(text: str, expected: str | None) -> None:
    assert collect.parse_tool_version(text) == expected


def test_os_release_kernel_wsl_meminfo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "freedesktop_os_release", lambda: {"ID": "ubuntu", "PRETTY_NAME": "Ubuntu 22.04"})
    assert linux.os_release() == {"ID": "ubuntu", "PRETTY_NAME": "Ubuntu 22.04"}

    def unreadable() -> dict[str, str]:
        raise OSError("no os-release")

    monkeypatch.setattr(platform, "freedesktop_os_release", unreadable)
    assert linux.os_release() == {}
    assert linux.parse_kernel_version("6.8.0-45-generic") == [6, 8, 0]
    assert linux.parse_kernel_version("6.6-rc1") == [6, 6, 0]
    assert linux.parse_kernel_version("weird") is None
    assert linux.is_wsl("5.15.167.4-microsoft-standard-WSL2", "", {})
    assert linux.is_wsl("", "", {"WSL_DISTRO_NAME": "Ubuntu"})
    assert not linux.is_wsl("6.8.0-45-generic", "Linux version 6.8.0-45-generic (buildd@lcy02)", {})
    mem = linux.parse_meminfo("MemTotal:       32617644 kB\nMemFree:  1 kB\nMemAvailable:   20000000 kB\n")
    assert mem == {"memory_total_bytes": 32617644 * 1024, "memory_available_bytes": 20000000 * 1024}


def test_module_and_pci_scans(tmp_path: Path) -> None:
    sysmod = tmp_path / "sys_module"
    sysmod.mkdir()
    assert linux.module_loaded("intel_vpu", "snd 1 0 - Live\nintel_vpu 331776 0 - Live 0x0\n", sysmod) is True
    assert linux.module_loaded("intel_vpu", "snd 1 0 - Live\n", sysmod) is False
    assert linux.module_loaded("intel_vpu", None, tmp_path / "absent") is None
    (sysmod / "intel_vpu").mkdir()
    assert linux.module_loaded("intel_vpu", None, sysmod) is True
    mods = tmp_path / "modules"
    assert linux.module_available("intel_vpu", "6.8.0", mods) is None
    ivpu = mods / "6.8.0" / "kernel" / "drivers" / "accel" / "ivpu"
    ivpu.mkdir(parents=True)
    assert linux.module_available("intel_vpu", "6.8.0", mods) is False
    (ivpu / "intel_vpu.ko.zst").write_bytes(b"")
    assert linux.module_available("intel_vpu", "6.8.0", mods) is True
    pci = tmp_path / "pci"
    for slot, vendor, device in (("0000:00:0b.0", "0x8086", "0x7d1d"), ("0000:00:02.0", "0x8086", "0x7d55"),
                                 ("0000:01:00.0", "0x10de", "0x7d1d")):
        (pci / slot).mkdir(parents=True)
        (pci / slot / "vendor").write_text(vendor + "\n")
        (pci / slot / "device").write_text(device + "\n")
    assert linux.npu_pci_devices(pci) == [{"slot": "0000:00:0b.0", "id": "8086:7d1d", "platform": "Meteor Lake"}]


def test_accel_devices_scan(tmp_path: Path) -> None:
    node = tmp_path / "accel0"
    node.write_bytes(b"")
    node.chmod(0o660)
    (tmp_path / "other").write_bytes(b"")
    found = linux.accel_devices(tmp_path)
    assert [d["path"] for d in found] == [str(node)]
    assert found[0]["mode"] == "0o660" and isinstance(found[0]["readable"], bool)
    assert found[0]["group"] == linux.group_name(os.getgid())


def test_find_linux_ort_libraries(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "sys"
    a.mkdir()
    b.mkdir()
    (a / "libonnxruntime.so.1.17.1").write_bytes(b"")
    (a / "libonnxruntime.so").symlink_to("libonnxruntime.so.1.17.1")
    (b / "libonnxruntime.so.1.24.4").write_bytes(b"")
    libs = linux.find_ort_libraries(f"{a}{os.pathsep}{tmp_path / 'missing'}", (str(b),))
    assert [(Path(x["path"]).name, x["where"], x["version"]) for x in libs] == [
        ("libonnxruntime.so", "ld_library_path", "1.17.1"),  # the symlink; its target is the same file
        ("libonnxruntime.so.1.24.4", "system", "1.24.4"),
    ]


def test_store_python_detection() -> None:
    stub = r"C:\Users\u\AppData\Local\Microsoft\WindowsApps\python.exe"
    store = (r"C:\Program Files\WindowsApps\PythonSoftwareFoundation.Python.3.12_3.12.2288.0_x64__qbz5n2kfra8p0"
             r"\python3.12.exe")
    assert collect.is_store_python_path(stub) and collect.is_store_python_path(store)
    assert not collect.is_store_python_path(r"C:\Python312\python.exe")
    assert not collect.is_store_python_path(None)


def test_proc_run_never_raises(tmp_path: Path) -> None:
    assert run(["definitely-not-a-command-aipc"]).error == "not found: definitely-not-a-command-aipc"
    out = run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.5)
    assert out.error == "timeout after 0.5 s" and not out.ok
    out = run([sys.executable, "-c", "import sys; print('oops', file=sys.stderr); sys.exit(3)"])
    assert out.returncode == 3 and out.reason() == "exit code 3: oops"
    assert describe_returncode(3221225477) == "3221225477 (0xC0000005)"
    assert describe_returncode(-11) == "-11 (killed by signal 11, SIGSEGV)"


# --- OpenVINO device query in a subprocess, against a fake openvino package the test writes -------------------

def fake_openvino(root: Path, body: str) -> Path:
    pkg = root / "openvino"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return root


FAKE_OK = """
    def get_version():
        return "2026.4.1-fake"
    class Core:
        available_devices = ["CPU", "NPU"]
        def get_property(self, device, name):
            if name == "FULL_DEVICE_NAME":
                return {"CPU": "Fake CPU", "NPU": "Intel(R) AI Boost"}[device]
            if name == "NPU_DRIVER_VERSION":
                return 1004239
            raise RuntimeError("Unsupported configuration key")
"""


def test_openvino_probe_ok(tmp_path: Path) -> None:
    site = fake_openvino(tmp_path, FAKE_OK)
    res = collect.probe_openvino(sys.executable, env={"PYTHONPATH": str(site)}, timeout=60)
    assert res["status"] == "ok", res
    assert res["devices"] == ["CPU", "NPU"] and res["npu_driver_version"] == 1004239
    assert res["device_names"]["NPU"] == "Intel(R) AI Boost" and res["version"] == "2026.4.1-fake"


@pytest.mark.parametrize(("body", "status", "needle"), [
    ("raise ImportError('DLL load failed while importing _pyopenvino')", "error", "DLL load failed"),
    ("import os\nos.abort()", "crash", "killed by signal"),
    ("import time\ntime.sleep(30)", "timeout", "timeout after 2 s"),
])
def test_openvino_probe_failures_are_facts(tmp_path: Path, body: str, status: str, needle: str) -> None:
    site = fake_openvino(tmp_path, body)
    res = collect.probe_openvino(sys.executable, env={"PYTHONPATH": str(site)}, timeout=2)
    assert res["status"] == status, res
    assert needle in res["error"]


def test_openvino_interpreters_finds_aipc_venvs(tmp_path: Path) -> None:
    venv = tmp_path / "venvs" / "openvino"
    fake_openvino(venv / "lib" / "python3.11" / "site-packages", FAKE_OK)
    (venv / "bin").mkdir()
    (venv / "bin" / "python").symlink_to(sys.executable)
    npu = tmp_path / "venvs" / "npu"  # also has an (older) openvino; the OpenVINO path's venv comes first
    fake_openvino(npu / "lib" / "python3.11" / "site-packages", FAKE_OK)
    (npu / "bin").mkdir()
    (npu / "bin" / "python").symlink_to(sys.executable)
    (tmp_path / "venvs" / "genai" / "bin").mkdir(parents=True)  # a venv without openvino is not picked
    (tmp_path / "venvs" / "genai" / "bin" / "python").symlink_to(sys.executable)
    found = collect.openvino_interpreters(tmp_path / "venvs")
    assert found[-2:] == [str(venv / "bin" / "python"), str(npu / "bin" / "python")]
    assert str(tmp_path / "venvs" / "genai" / "bin" / "python") not in collect.openvino_interpreters(
        tmp_path / "venvs")


def test_collect_openvino_records_the_venv_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collect.importlib.util, "find_spec", lambda name: None)  # no openvino in this Python
    monkeypatch.setenv("AIPC_CACHE", str(tmp_path / "cache"))
    res = collect.collect_openvino()
    assert res["status"] == "not-installed" and res["venv_root"] == str(tmp_path / "cache" / "venvs")
    venv = tmp_path / "venvs" / "openvino"
    fake_openvino(venv / "lib" / "python3.11" / "site-packages", FAKE_OK)
    (venv / "bin").mkdir()
    (venv / "bin" / "python").symlink_to(sys.executable)
    monkeypatch.setattr(collect, "probe_openvino", lambda python: {"status": "error", "python": python})
    res = collect.collect_openvino(tmp_path / "venvs")
    assert res == {"status": "error", "python": str(venv / "bin" / "python"), "venv_root": str(tmp_path / "venvs")}


# --- Windows: recorded PowerShell / vswhere output, trees written by the tests ---------------------------------

PS_OUTPUT = "\ufeff" + json.dumps({
    "errors": {},
    "os": {"caption": "Microsoft Windows 11 Home", "version": "10.0.22631", "build": 22631, "ubr": 4460,
           "display_version": "23H2", "architecture": "64-bit", "total_memory_kb": 16466412,
           "free_memory_kb": 6218340},
    "processor_architecture": "AMD64",
    "long_paths_enabled": 0,
    "kits_root": "C:\\Program Files (x86)\\Windows Kits\\10\\",
    # PowerShell 5.1 may write a one-element list as a bare object
    "npu": {"name": "Intel(R) AI Boost", "device_id": "PCI\\VEN_8086&DEV_7D1D&SUBSYS_0CB21028&REV_04\\3&11583659&0&58",
            "status": "OK", "problem": 0, "class": "ComputeAccelerator", "driver_version": "32.0.100.3104"},
    "gpus": [{"name": "Intel(R) Arc(TM) Graphics", "driver_version": "31.0.101.5590", "device_id": "PCI\\VEN_8086",
              "vendor": "Intel Corporation", "status": "OK", "problem": 0}],
    "system32": "C:\\WINDOWS\\system32",
    "ort_dlls": {"path": "C:\\WINDOWS\\system32\\onnxruntime.dll", "file_version": "1.17.1.0",
                 "product_version": "1.17.1", "file_version_raw": "1.17.1.0", "where": "system32"},
    "directml_dll": {"path": "C:\\WINDOWS\\system32\\DirectML.dll", "file_version": "1.8.2"},
    "d3d12_dll": True,
    "vc_runtime": {"key": "HKLM:\\SOFTWARE\\Microsoft\\VisualStudio\\14.0\\VC\\Runtimes\\x64", "installed": 1,
                   "version": "v14.40.33810.00", "major": 14, "minor": 40, "bld": 33810},
    "msvcp140": None,
})


def test_parse_powershell_output_normalizes_lists() -> None:
    data = windows.parse_powershell_output("WARNING: noise before the document\n" + PS_OUTPUT + "\r\n")
    assert isinstance(data["npu"], list) and data["npu"][0]["driver_version"] == "32.0.100.3104"
    assert isinstance(data["ort_dlls"], list) and data["ort_dlls"][0]["where"] == "system32"
    assert data["gpus"][0]["name"] == "Intel(R) Arc(TM) Graphics"
    assert data["os"]["build"] == 22631
    empty = windows.parse_powershell_output(json.dumps({"errors": {"npu": "Access denied"}, "gpus": None}))
    assert empty["npu"] is None and empty["gpus"] == [] and empty["ort_dlls"] == []
    with pytest.raises(ValueError):
        windows.parse_powershell_output("Get-CimInstance : Access denied")


def test_powershell_script_is_passed_encoded() -> None:
    argv = powershell_argv(windows.POWERSHELL_SCRIPT)
    assert argv[0] == "powershell.exe" and argv[-2] == "-EncodedCommand"
    script = base64.b64decode(argv[-1]).decode("utf-16-le")
    assert script == windows.POWERSHELL_SCRIPT
    for needle in ("Win32_OperatingSystem", "LongPathsEnabled", "KitsRoot10", "DEVPKEY_Device_DriverVersion",
                   "Win32_VideoController", "onnxruntime.dll", r"VC\Runtimes\x64", "ConvertTo-Json"):
        assert needle in script
    # the NPU PCI IDs come from the one table in linux.py
    assert "$ids = @('VEN_8086&DEV_7D1D', 'VEN_8086&DEV_AD1D', 'VEN_8086&DEV_643E', 'VEN_8086&DEV_B03E')" in script
    assert len(linux.NPU_PCI_IDS) == 4


def test_collect_windows_with_recorded_output(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []

    def fake_run(argv: Any, timeout: float = 0, **_: Any) -> Output:
        calls.append(tuple(argv))
        return Output(0, PS_OUTPUT, "")

    monkeypatch.setattr(windows, "run", fake_run)
    data = windows.collect_windows()
    assert data["long_paths_enabled"] == 0 and calls[0][0] == "powershell.exe"
    monkeypatch.setattr(windows, "run", lambda argv, timeout=0, **_: Output(None, "", "",
                                                                              "timeout after 30 s"))
    assert windows.collect_windows() == {"error": "PowerShell facts script failed: timeout after 30 s"}


VSWHERE_ALL = json.dumps([
    {"instanceId": "8a1f3c2e", "installDate": "2024-11-02T09:12:44Z", "installationName": "VisualStudio/17.12.3",
     "installationPath": "<VS1>", "installationVersion": "17.12.35527.113", "productId":
     "Microsoft.VisualStudio.Product.Community", "isComplete": True, "displayName": "Visual Studio Community 2022",
     "catalog": {"productDisplayVersion": "17.12.3", "productLineVersion": "2022"}},
    {"instanceId": "77bb01aa", "installationPath": "<VS2>", "installationVersion": "17.9.34616.47",
     "displayName": "Visual Studio Build Tools 2022", "catalog": {"productLineVersion": "2022"}},
])


def test_parse_vswhere_and_msvc_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vs1, vs2 = tmp_path / "vs1", tmp_path / "vs2"
    for root, ver, cl in ((vs1, "14.42.34433", True), (vs1, "14.29.30133", False), (vs2, "14.39.33519", True)):
        d = root / "VC" / "Tools" / "MSVC" / ver / "bin" / "Hostx64" / "x64"
        d.mkdir(parents=True)
        if cl:
            (d / "cl.exe").write_bytes(b"MZ")
    everything = VSWHERE_ALL.replace("<VS1>", str(vs1).replace("\\", "\\\\")).replace(
        "<VS2>", str(vs2).replace("\\", "\\\\"))
    parsed = parse_vswhere(everything)
    assert parsed[0]["display_name"] == "Visual Studio Community 2022" and parsed[0]["product_line_version"] == "2022"
    assert windows.msvc_toolsets(vs1) == [{"version": "14.29.30133", "cl_x64": False},
                                          {"version": "14.42.34433", "cl_x64": True}]
    vswhere = tmp_path / "vswhere.exe"
    vswhere.write_bytes(b"")
    monkeypatch.setattr(windows, "vswhere_exe", lambda environ=None: str(vswhere))
    seen: list[list[str]] = []

    def fake_run(argv: list[str], timeout: float = 0, **_: Any) -> Output:
        seen.append(list(argv))
        if "-requires" in argv:  # only the Community instance has the C++ workload
            return Output(0, json.dumps([json.loads(everything)[0]]), "")
        return Output(0, everything, "")

    monkeypatch.setattr(windows, "run", fake_run)
    vs = windows.collect_visual_studio()
    assert [i["has_vc_tools"] for i in vs["instances"]] == [True, False]
    assert vs["instances"][1]["msvc_toolsets"] == [{"version": "14.39.33519", "cl_x64": True}]
    vc_call = next(a for a in seen if VC_COMPONENT in a)  # the queries run in parallel: any order
    assert vc_call[3:5] == ["-requires", VC_COMPONENT]
    assert vc_call[-3:] == ["-format", "json", "-utf8"]
    monkeypatch.setattr(windows, "vswhere_exe", lambda environ=None: str(tmp_path / "absent.exe"))
    assert windows.collect_visual_studio() == {"vswhere": None, "instances": []}


def test_windows_sdk_scan_and_finish(tmp_path: Path) -> None:
    kits = tmp_path / "Windows Kits" / "10"
    for ver, header in (("10.0.19041.0", False), ("10.0.22621.0", True)):
        um = kits / "Include" / ver / "um"
        um.mkdir(parents=True)
        if header:
            (um / "d3d12.h").write_text("/* test header */\n")
    (kits / "Include" / "wdf").mkdir()
    assert windows.sdk_versions(kits) == [{"version": "10.0.19041.0", "d3d12_h": False},
                                          {"version": "10.0.22621.0", "d3d12_h": True}]
    data = windows.parse_powershell_output(PS_OUTPUT)
    data["kits_root"] = str(kits)
    facts: dict[str, Any] = {"windows": data, "runtime": {}}
    windows.finish_windows_facts(facts)
    assert get(facts, "windows.sdk", list)[-1] == {"version": "10.0.22621.0", "d3d12_h": True}
    assert facts["runtime"]["ort_libraries"] == [
        {"path": "C:\\WINDOWS\\system32\\onnxruntime.dll", "where": "system32", "version": "1.17.1.0"}]
