"""Linux facts (docs/upstream.md#build §1.4 and 6). DirectML is Windows-only, so Linux builds CPU."""

from __future__ import annotations

from . import Platform

PLATFORM = Platform(
    name="linux",
    system="Linux",
    exe_suffix="",
    ort_build_script="build.sh",
    ort_platform_flags=(),
    # libonnxruntime.so and its versioned names; symlinks are kept when staged
    ort_required_libs=("libonnxruntime.so",),
    ort_optional_libs=("libonnxruntime.so.*", "libonnxruntime_providers_shared.so"),
    ort_main_lib="libonnxruntime.so",
    ort_extra_headers=(
        "providers/cpu/cpu_provider_factory.h",
        "framework/provider_options.h",
    ),
    ort_wheel_dist="onnxruntime",
    genai_wheel_dist="onnxruntime_genai",
    genai_platform_flags=(),
    default_generator="Ninja",
    multi_config_generators=("Ninja Multi-Config",),
    wheel_platform_tag_prefix="linux_x86_64",
    foreign_workdir="/tmp/aipc-build",
    python_command="python3",
    marker_env=(("sys_platform", "linux"), ("platform_system", "Linux"), ("os_name", "posix")),
    ort_build_requirements="tools/ci_build/github/linux/python/requirements.txt",
    binary_format="elf",
    # the onnxruntime wheel on PyPI holds onnxruntime/capi/libonnxruntime.so.<version> (no links, no headers) and
    # libonnxruntime_providers_shared.so; a release archive's lib/ holds the same plus the links
    ort_release_required_libs=("libonnxruntime.so.{version}",),
    ort_release_optional_libs=("libonnxruntime_providers_shared.so",),
    ort_release_links=("libonnxruntime.so.{major}", "libonnxruntime.so"),
    pip_platform="manylinux_2_28_x86_64",
    nuget_rid="linux-x64",
    npu_native_lib="libintel_npu_acceleration_library.so",
    npu_openvino_lib="libopenvino.so",
    npu_compile_flags=("-march=x86-64-v3", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wdouble-promotion",
                       "-Wfloat-conversion"),
)
