"""Windows facts (docs/upstream.md#build §1.2, 1.4 and 6)."""

from __future__ import annotations

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
