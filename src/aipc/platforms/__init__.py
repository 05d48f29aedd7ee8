"""Platform facts, one module per platform (in the style of cibuildwheel's ``platforms/``).

Every file name, script name, flag and directory layout that differs between Windows and Linux lives in
``windows.py`` or ``linux.py``; planning and staging code asks the :class:`Platform` object and never
tests ``sys.platform`` itself, so Windows behaviour is planned and checked on Linux with ``--platform windows``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import PurePath

from ..errors import UsageError

PLATFORM_NAMES = ("windows", "linux")
# every distribution that installs the `onnxruntime` module (two in one environment shadow each other)
ORT_DISTS = ("onnxruntime", "onnxruntime-directml", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-qnn")


@dataclass(frozen=True)
class Platform:
    name: str
    # `platform.system()` as upstream build scripts use it for build/<System>/
    system: str
    exe_suffix: str
    # --- ONNX Runtime ---------------------------------------------------------------------------------------------
    ort_build_script: str
    # flags only this platform adds to ORT's build (besides the common ones)
    ort_platform_flags: tuple[str, ...]
    # the shared library and its companions that make up a complete ORT_HOME/lib
    ort_required_libs: tuple[str, ...]
    # glob patterns of optional extra libraries copied when present
    ort_optional_libs: tuple[str, ...]
    # the one library the ORT_HOME check loads and that genai's CMake requires
    ort_main_lib: str
    # headers beyond include/onnxruntime/core/session/*.{h,inc}, as paths below include/onnxruntime/core/
    ort_extra_headers: tuple[str, ...]
    # ORT wheel distribution name built with this platform's flags
    ort_wheel_dist: str
    genai_wheel_dist: str
    # genai build.py flags only this platform adds
    genai_platform_flags: tuple[str, ...]
    default_generator: str
    # generators that put outputs in an extra per-config directory (multi-config)
    multi_config_generators: tuple[str, ...]
    wheel_platform_tag_prefix: str
    # workdir of a plan for this platform made on another host (no local directory to start from): the short
    # build path docs/upstream.md#build §7.3 asks for on Windows
    foreign_workdir: str
    # the Python command on this platform's PATH (what a plan made on another host runs genai's build.py with)
    python_command: str
    # PEP 508 marker values of this platform, to evaluate a wheel's Requires-Dist for it on another host
    marker_env: tuple[tuple[str, str], ...]
    # binary format of this platform's shared libraries ("pe" or "elf"): the ORT_HOME load check only loads a
    # library whose format and machine match the host
    binary_format: str = ""
    # ONNX Runtime's Python build requirements, below its source tree: what ORT's own CI installs before build.py
    # (Windows: .github/workflows/windows_dml.yml, step "Install python modules")
    ort_build_requirements: str = ""
    # (library name, glob below ORT's platform build dir) to use when the library is not in the artifact dir
    ort_lib_fallbacks: tuple[tuple[str, str], ...] = ()
    # --- an official ORT release as the ORT side (aipc.wheelbuild.release; docs/build.md "ORT from an official
    # release")
    # the release libraries genai's build needs ("{version}" = the release's version): a release lacking one is
    # refused; then what is copied when present
    ort_release_required_libs: tuple[str, ...] = ()
    ort_release_optional_libs: tuple[str, ...] = ()
    # links made in ORT_HOME/lib, each pointing at the one before it (the first at the versioned library), as an
    # ORT build makes them: libonnxruntime.so.1 -> libonnxruntime.so.1.24.4, libonnxruntime.so -> .so.1
    ort_release_links: tuple[str, ...] = ()
    # where the libraries sit inside the ORT wheel on PyPI, and what pip's --platform calls this platform
    ort_wheel_lib_dir: str = "onnxruntime/capi"
    pip_platform: str = ""
    # the NuGet package of ORT for this platform (empty: none aipc uses) and its runtime identifier
    ort_nuget_package: str = ""
    nuget_rid: str = ""
    # why `--ort-release pypi` cannot serve this platform (empty: it can), said in the one-line refusal
    ort_pypi_refusal: str = ""
    # --- venvs and the NPU-library wheel (aipc.npu, docs/upstream.md#npu §2) ---------------------------------
    # directory of a venv's executables, and its Python
    venv_bin_dir: str = "bin"
    # where intel_npu_acceleration_library/backend/bindings.py loads its libraries from (below the package)
    npu_lib_subdir: str = "lib"
    npu_native_lib: str = ""
    # the OpenVINO library name bindings.py loads or that the native library imports
    npu_openvino_lib: str = ""
    # the architecture / warning flags aipc's aipc/native/npu/CMakeLists.txt uses with this platform's compiler: its
    # NPU_ARCH_FLAGS (the wheel's provenance records them; tests/test_npu.py checks that both name the same flags)
    npu_compile_flags: tuple[str, ...] = ()

    def config_dirs(self, generator: str, config: str) -> tuple[str, ...]:
        """Directories below ``build/<System>/`` that hold the binaries, for a generator and config."""
        if generator in self.multi_config_generators:
            return (config, config)
        return (config,)

    def artifact_dir_candidates(self, build_dir: PurePath, config: str) -> list[PurePath]:
        """Where the built binaries may be: multi-config layout first, then single-config."""
        return [build_dir / config / config, build_dir / config]


def get_platform(name: str | None = None) -> Platform:
    """The platform named (``windows`` or ``linux``), or the host's when ``name`` is None."""
    from . import linux, windows

    if name is None:
        name = host_platform_name()
    table = {"windows": windows.PLATFORM, "linux": linux.PLATFORM}
    try:
        return table[name]
    except KeyError:
        raise UsageError(
            f"unknown platform {name!r}", hint=f"use one of: {', '.join(PLATFORM_NAMES)}"
        ) from None


def host_platform_name() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform.startswith("linux"):
        return "linux"
    raise UsageError(f"unsupported host platform {sys.platform!r}", hint="run on Windows or Linux, or pass --platform")
