"""Windows collectors: one PowerShell/CIM/registry script (JSON out), vswhere, and file-system scans.

No extra dependencies: PowerShell (built into Windows) answers the CIM and registry questions in one process, so
the doctor pays its start-up once. Parsing is separate from running so that tests can feed recorded output.
Sources: docs/upstream.md#npu §5 (NPU name "Intel(R) AI Boost", DEVPKEY_Device_DriverVersion, PCI IDs),
docs/upstream.md#build §6-7 (MSVC >= 14.40, d3d12.h, System32 onnxruntime.dll, VC++ runtime).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..platforms.vswhere import VC_COMPONENT, VSWHERE_TIMEOUT, parse_vswhere, vswhere_argv, vswhere_exe
from ..platforms.windows import VS_COMPONENTS, powershell_argv
from ..proc import Output, run
from .linux import NPU_PCI_IDS

POWERSHELL_TIMEOUT = 30.0

POWERSHELL_SCRIPT = r"""
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try { [Console]::OutputEncoding = [Text.Encoding]::UTF8 } catch {}
$r = [ordered]@{ errors = [ordered]@{} }
function Reg($path, $name) {
  try { (Get-ItemProperty -Path $path -Name $name -ErrorAction Stop).$name } catch { $null }
}
function Ver($p) {
  try {
    $i = (Get-Item -LiteralPath $p -ErrorAction Stop).VersionInfo
    [ordered]@{ path = $p; file_version = $i.FileVersion; product_version = $i.ProductVersion;
      file_version_raw = ('{0}.{1}.{2}.{3}' -f $i.FileMajorPart, $i.FileMinorPart, $i.FileBuildPart,
                          $i.FilePrivatePart) }
  } catch { $null }
}
try {
  $o = Get-CimInstance Win32_OperatingSystem
  $cv = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
  $r.os = [ordered]@{ caption = $o.Caption; version = $o.Version; build = [int]$o.BuildNumber; ubr = (Reg $cv 'UBR');
    display_version = (Reg $cv 'DisplayVersion'); architecture = $o.OSArchitecture;
    total_memory_kb = [int64]$o.TotalVisibleMemorySize; free_memory_kb = [int64]$o.FreePhysicalMemory }
} catch { $r.errors.os = "$_" }
$r.processor_architecture = $env:PROCESSOR_ARCHITECTURE
$r.processor_identifier = $env:PROCESSOR_IDENTIFIER
try { $r.processor_name = "$(@(Get-CimInstance Win32_Processor)[0].Name)".Trim() } catch { $r.errors.processor = "$_" }
try {
  $mem = @(Get-CimInstance Win32_PhysicalMemory) | Measure-Object -Property Capacity -Sum
  $r.installed_memory_bytes = [int64]$mem.Sum
} catch { $r.errors.memory = "$_" }
$r.long_paths_enabled = Reg 'HKLM:\SYSTEM\CurrentControlSet\Control\FileSystem' 'LongPathsEnabled'
$kits = Reg 'HKLM:\SOFTWARE\Microsoft\Windows Kits\Installed Roots' 'KitsRoot10'
if (-not $kits) { $kits = Reg 'HKLM:\SOFTWARE\WOW6432Node\Microsoft\Windows Kits\Installed Roots' 'KitsRoot10' }
$r.kits_root = $kits
try {
  $ids = @(%NPU_IDS%)
  $npu = @(Get-CimInstance Win32_PnPEntity | Where-Object {
    $n = "$($_.Name)"; $h = "$($_.PNPDeviceID)"
    ($n -match 'AI Boost|NPU Accelerator') -or (@($ids | Where-Object { $h -like "*$_*" }).Count -gt 0) })
  $r.npu = @($npu | ForEach-Object {
    $dev = $_
    $devId = "$($dev.PNPDeviceID)"
    $dv = $null
    try {
      $dv = (Get-PnpDeviceProperty -InstanceId $devId -KeyName 'DEVPKEY_Device_DriverVersion' -ErrorAction Stop).Data
    } catch {
      try {
        $filter = "DeviceID='" + ($devId -replace '\\', '\\') + "'"
        $dv = (Get-CimInstance Win32_PnPSignedDriver -Filter $filter).DriverVersion
      } catch {}
    }
    [ordered]@{ name = $dev.Name; device_id = $devId; status = $dev.Status; problem = [int]$dev.ConfigManagerErrorCode;
      class = $dev.PNPClass; driver_version = $dv } })
} catch { $r.errors.npu = "$_" }
try {
  $r.gpus = @(Get-CimInstance Win32_VideoController | ForEach-Object {
    [ordered]@{ name = $_.Name; driver_version = $_.DriverVersion; device_id = $_.PNPDeviceID;
      vendor = $_.AdapterCompatibility; status = $_.Status; problem = [int]$_.ConfigManagerErrorCode } })
} catch { $r.errors.gpus = "$_" }
$sys32 = Join-Path $env:SystemRoot 'System32'
$r.system32 = $sys32
$dlls = @(); $seen = @{}
foreach ($d in @($sys32) + @("$env:PATH" -split ';')) {
  if (-not $d) { continue }
  try {
    $p = Join-Path $d 'onnxruntime.dll'
    $k = $p.ToLowerInvariant()
    if (-not $seen.ContainsKey($k)) {
      $seen[$k] = 1
      if (Test-Path -LiteralPath $p) {
        $v = Ver $p
        if ($v) { $v['where'] = $(if ($d.TrimEnd('\') -ieq $sys32) { 'system32' } else { 'path' }); $dlls += ,$v }
      }
    }
  } catch {}
}
$r.ort_dlls = $dlls
$r.directml_dll = Ver (Join-Path $sys32 'DirectML.dll')
$r.d3d12_dll = Test-Path -LiteralPath (Join-Path $sys32 'd3d12.dll')
$vc = $null
$vcKeys = @('HKLM:\SOFTWARE\Microsoft\VisualStudio\14.0\VC\Runtimes\x64',
            'HKLM:\SOFTWARE\WOW6432Node\Microsoft\VisualStudio\14.0\VC\Runtimes\x64')
foreach ($k in $vcKeys) {
  try {
    $p = Get-ItemProperty -Path $k -ErrorAction Stop
    $vc = [ordered]@{ key = $k; installed = [int]$p.Installed; version = $p.Version; major = $p.Major;
      minor = $p.Minor; bld = $p.Bld }
    break
  } catch {}
}
$r.vc_runtime = $vc
$r.msvcp140 = Ver (Join-Path $sys32 'msvcp140.dll')
[Console]::Out.Write((ConvertTo-Json -InputObject $r -Depth 6 -Compress))
""".replace("%NPU_IDS%", ", ".join(f"'VEN_8086&DEV_{dev.upper()}'" for dev in NPU_PCI_IDS))

# Keys of the PowerShell document that are lists; PowerShell 5.1 may serialize a one-element list as an object.
_LIST_KEYS = ("npu", "gpus", "ort_dlls")


def parse_powershell_output(stdout: str) -> dict[str, Any]:
    """The script's JSON document, with list-valued keys always lists. Raises ValueError when it is not JSON."""
    text = stdout.strip().lstrip("\ufeff")
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in the PowerShell output")
    data = json.loads(text[start:])
    if not isinstance(data, dict):
        raise ValueError("the PowerShell output is not a JSON object")
    for key in _LIST_KEYS:
        value = data.get(key)
        if value is None:
            data[key] = [] if key not in data.get("errors", {}) else None
        elif isinstance(value, dict):
            data[key] = [value]
    return data


def msvc_toolsets(installation_path: Path) -> list[dict[str, Any]]:
    """``<VS>/VC/Tools/MSVC/<version>`` directories, and whether each has the x64 compiler."""
    root = installation_path / "VC" / "Tools" / "MSVC"
    try:
        dirs = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return []
    return [{"version": d.name, "cl_x64": (d / "bin" / "Hostx64" / "x64" / "cl.exe").is_file()} for d in dirs]


def sdk_versions(kits_root: Path) -> list[dict[str, Any]]:
    """``<KitsRoot10>/Include/<version>`` directories, and whether each has ``um/d3d12.h``."""
    root = kits_root / "Include"
    try:
        dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name[:1].isdigit())
    except OSError:
        return []
    return [{"version": d.name, "d3d12_h": (d / "um" / "d3d12.h").is_file()} for d in dirs]


def collect_visual_studio(runner: Callable[..., Output] | None = None) -> dict[str, Any]:
    """Every Visual Studio instance, whether it has the x64 C++ tools, which of :data:`VS_COMPONENTS` it has
    (one ``vswhere -requires`` per component, in parallel) and its MSVC toolsets."""
    run_one = runner or run
    vswhere = vswhere_exe(os.environ)
    if not Path(vswhere).is_file():
        return {"vswhere": None, "instances": []}
    argvs = {"": vswhere_argv(vswhere, json=True)}
    argvs.update({c: vswhere_argv(vswhere, requires=(c,), json=True) for c, _ in VS_COMPONENTS})
    with ThreadPoolExecutor(max_workers=len(argvs)) as pool:
        outs = dict(zip(argvs, pool.map(lambda a: run_one(a, timeout=VSWHERE_TIMEOUT), argvs.values()), strict=True))
    everything = outs.pop("")
    if not everything.ok:
        return {"vswhere": str(vswhere), "instances": [], "error": everything.reason()}
    instances = parse_vswhere(everything.stdout)
    having: dict[str, set[Any] | None] = {}
    for component, out in outs.items():
        try:
            having[component] = {i["instance_id"] for i in parse_vswhere(out.stdout)} if out.ok else None
        except ValueError:
            having[component] = None
    for inst in instances:
        inst["has_vc_tools"] = inst["instance_id"] in (having.get(VC_COMPONENT) or set())
        # a component whose query failed is left out (unknown), not recorded as missing
        inst["components"] = {c: inst["instance_id"] in ids for c, ids in having.items() if ids is not None}
        path = inst.get("installation_path")
        inst["msvc_toolsets"] = msvc_toolsets(Path(path)) if path else []
    return {"vswhere": str(vswhere), "instances": instances}


def collect_windows() -> dict[str, Any]:
    out = run(powershell_argv(POWERSHELL_SCRIPT), timeout=POWERSHELL_TIMEOUT)
    if not out.ok:
        return {"error": f"PowerShell facts script failed: {out.reason()}"}
    try:
        return parse_powershell_output(out.stdout)
    except ValueError as exc:
        return {"error": f"PowerShell facts script gave unreadable output: {exc}"}


def finish_windows_facts(facts: dict[str, Any]) -> None:
    """Facts that need the results of two collectors, or a file-system scan after the registry answer."""
    win = facts["windows"]
    kits = win.get("kits_root")
    win["sdk"] = sdk_versions(Path(kits)) if isinstance(kits, str) and kits else []
    dlls = win.get("ort_dlls")
    if isinstance(dlls, list):
        facts.setdefault("runtime", {})["ort_libraries"] = [
            {"path": d.get("path"), "where": d.get("where"),
             "version": d.get("file_version_raw") or d.get("file_version")}
            for d in dlls if isinstance(d, dict)
        ]
