"""Windows facts (docs/upstream.md#build §1.2, 1.4 and 6): the platform, the Visual Studio components, what makes a
display adapter a DirectX 12 GPU (doctor and the runtimes' device choice share that rule), and how aipc starts
PowerShell."""

from __future__ import annotations

import base64
import re

from . import Platform

PLATFORM = Platform(
    name="windows",
    system="Windows",
    exe_suffix=".exe",
    ort_build_script="build.bat",
    ort_platform_flags=("--use_dml",),
    ort_required_libs=(
        "onnxruntime.dll",
        "onnxruntime.lib",
        "onnxruntime_providers_shared.dll",
        "onnxruntime_providers_shared.lib",
        "DirectML.dll",
    ),
    ort_optional_libs=("D3D12Core.dll",),
    ort_main_lib="onnxruntime.dll",
    ort_extra_headers=(
        "providers/cpu/cpu_provider_factory.h",
        "framework/provider_options.h",
        "providers/dml/dml_provider_factory.h",
    ),
    ort_wheel_dist="onnxruntime_directml",
    genai_wheel_dist="onnxruntime_genai_directml",
    genai_platform_flags=("--use_dml",),
    default_generator="Visual Studio 17 2022",
    multi_config_generators=("Visual Studio 17 2022", "Visual Studio 18 2026", "Ninja Multi-Config"),
    wheel_platform_tag_prefix="win_amd64",
    foreign_workdir="C:\\b",
    python_command="python",
    marker_env=(("sys_platform", "win32"), ("platform_system", "Windows"), ("os_name", "nt")),
    ort_build_requirements="tools/ci_build/github/windows/python/requirements.txt",
    binary_format="pe",
    # DirectML.dll is copied next to onnxruntime.dll POST_BUILD; else take it from the restored NuGet package
    # (docs/upstream.md#build §6 and checklist in section 7)
    ort_lib_fallbacks=(("DirectML.dll", "packages/Microsoft.AI.DirectML.*/bin/x64-win/DirectML.dll"),),
    # Microsoft.ML.OnnxRuntime.DirectML (NuGet) holds onnxruntime.dll/.lib under runtimes/win-x64/native/ (with the
    # other .dll/.lib of the release's lib/, ORT's tools/nuget/generate_nuspec_for_native_nuget.py) and the headers
    # under build/native/include/ (genai's cmake/ortlib.cmake reads the same paths); genai links onnxruntime.lib
    # only. DirectML.dll is in Microsoft.AI.DirectML (bin/x64-win/), which genai's CMake fetches itself and the
    # onnxruntime-directml wheel installs beside genai, so it is optional here
    ort_release_required_libs=("onnxruntime.dll", "onnxruntime.lib"),
    ort_release_optional_libs=("onnxruntime_providers_shared.dll", "onnxruntime_providers_shared.lib",
                               "DirectML.dll", "D3D12Core.dll"),
    pip_platform="win_amd64",
    ort_nuget_package="Microsoft.ML.OnnxRuntime.DirectML",
    nuget_rid="win-x64",
    ort_pypi_refusal="the onnxruntime-directml wheel on PyPI holds onnxruntime.dll but no onnxruntime.lib, the "
                     "import library genai's build links against",
    venv_bin_dir="Scripts",
    npu_lib_subdir="lib/Release",
    npu_native_lib="intel_npu_acceleration_library.dll",
    npu_openvino_lib="openvino.dll",
    npu_compile_flags=("/arch:AVX2", "/W3", "/WX"),
)

# Visual Studio installer components the Windows builds need, each with what it is for and the upstream file that
# makes it needed. One list: `aipc doctor` checks each (vswhere -requires), scripts/bootstrap-windows.ps1 installs
# each (tests/test_bootstrap.py checks that its --add list is this one, plus the pinned Windows SDK component).
VS_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("Microsoft.VisualStudio.Workload.VCTools",
     "the C++ build tools workload (MSBuild, the Visual Studio 17 2022 generator that ORT's and genai's build.py "
     "use by default: onnxruntime tools/ci_build/build_args.py, onnxruntime-genai build.py)"),
    ("Microsoft.VisualStudio.Component.VC.Tools.x86.x64",
     "the x64 MSVC compiler and libraries (the toolset >= [toolchain] msvc_toolset_min; onnxruntime "
     "tools/ci_build/build_args.py --msvc_toolset)"),
    ("Microsoft.VisualStudio.Component.VC.Runtimes.x86.x64.Spectre",
     "the Spectre-mitigated MSVC libraries: onnxruntime-genai cmake/msvc_security.cmake compiles everything with "
     "/Qspectre, and under the Visual Studio generator MSBuild then stops with MSB8040 without them"),
)
# cmd.exe metacharacters: a build directory holding one breaks build.bat and the vcvars64.bat environment capture
CMD_METACHARACTERS = "&^%|<>!"
# the VS component MSBuild needs for genai's /Qspectre (the Ninja generator passes the flag to cl.exe and links the
# ordinary libraries: it does not need the component)
SPECTRE_COMPONENT = next(c for c, _ in VS_COMPONENTS if c.endswith(".Spectre"))
# the first onnxruntime-genai that looks nuget.exe up on PATH (find_program) instead of downloading nuget.exe 5.3.0
# itself with ExternalProject (cmake/external/onnxruntime_external_deps.cmake up to v0.15.x)
GENAI_NUGET_ON_PATH = "0.16.0.dev0"

# Display adapters that are not DirectX 12 hardware (software rendering, remote sessions); lower-case name prefixes.
SOFTWARE_ADAPTERS = ("microsoft basic display adapter", "microsoft basic render", "microsoft remote display")


def is_hardware_adapter(name: object) -> bool:
    """A display adapter with a vendor driver, not Windows' software or remote-session adapter."""
    return isinstance(name, str) and bool(name.strip()) and not name.strip().lower().startswith(SOFTWARE_ADAPTERS)


def wddm_of(driver_version: object) -> tuple[int, int] | None:
    """Windows display driver versions start with the WDDM level: 31.0.101.5590 -> WDDM 3.1, 27.x -> 2.7."""
    match = re.search(r"\d+", driver_version) if isinstance(driver_version, str) else None
    if match is None or not 20 <= int(match.group(0)) < 100:
        return None
    major = int(match.group(0))
    return major // 10, major % 10


# The highest WDDM each Windows build runs, from Microsoft's DXGK_WDDMVERSION reference (d3dkmddi.h: "WDDM version
# for Windows 10, version 1507" ... "Windows 11, version 24H2"): (first build, WDDM). Windows 10 stops at 2.7
# (2004-22H2, builds 19041-19045); 2.8 was Insider-only, 2.9 is Windows Server 2022.
OS_WDDM: tuple[tuple[int, tuple[int, int]], ...] = (
    (10240, (2, 0)),   # Windows 10 1507 (and 1511)
    (14393, (2, 1)),   # 1607
    (15063, (2, 2)),   # 1703
    (16299, (2, 3)),   # 1709
    (17134, (2, 4)),   # 1803
    (17763, (2, 5)),   # 1809
    (18362, (2, 6)),   # 1903, 1909
    (19041, (2, 7)),   # 2004 ... 22H2
    (20348, (2, 9)),   # Windows Server 2022
    (22000, (3, 0)),   # Windows 11 21H2
    (22621, (3, 1)),   # 22H2, 23H2
    (26100, (3, 2)),   # 24H2 (25H2 is the same platform release)
)
# builds after the last row the table can vouch for (a newer release may raise the WDDM level)
OS_WDDM_KNOWN_UNTIL = 26200


def os_wddm(build: object) -> tuple[int, int] | None:
    """The highest WDDM the Windows build runs, or None (unknown build, or before Windows 10)."""
    if not isinstance(build, int) or isinstance(build, bool) or build < OS_WDDM[0][0]:
        return None
    return [wddm for first, wddm in OS_WDDM if build >= first][-1]


def effective_wddm(build: object, driver_version: object) -> tuple[tuple[int, int] | None, str]:
    """The WDDM a GPU runs at: the lower of what its driver supports (:func:`wddm_of`) and what the OS build runs.
    Returns (version or None, text): a WDDM 3.1 driver on Windows 10 runs at 2.7; on a build newer than the table
    a driver above the table's top is "unknown"."""
    driver = wddm_of(driver_version)
    if driver is None:
        return None, "WDDM unknown (driver version not readable)"
    cap = os_wddm(build)
    d = f"{driver[0]}.{driver[1]}"
    if cap is None:
        return None, f"WDDM unknown (the driver supports {d}; the Windows build is not known)"
    if isinstance(build, int) and build > OS_WDDM_KNOWN_UNTIL and driver > cap:
        return None, f"WDDM unknown (the driver supports {d}; Windows build {build} is newer than aipc's table)"
    wddm = min(driver, cap)
    text = f"WDDM {wddm[0]}.{wddm[1]}"
    if driver > cap:
        text += f" (the driver supports {d}; Windows build {build} runs {cap[0]}.{cap[1]})"
    return wddm, text


def is_dx12_adapter(name: object, driver_version: object, status: object = "OK") -> bool:
    """The one rule for "a usable DirectX 12 GPU" (doctor and verify): a hardware adapter whose driver is WDDM 2.0+
    and whose Win32_VideoController status is OK (or not reported)."""
    wddm = wddm_of(driver_version)
    return (is_hardware_adapter(name) and wddm is not None and wddm >= (2, 0)
            and str(status or "OK").upper() == "OK")


def powershell_argv(script: str) -> list[str]:
    """Windows PowerShell running ``script`` without profile or prompts (encoded: no quoting rules apply)."""
    encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    return ["powershell.exe", "-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass",
            "-EncodedCommand", encoded]
