"""What aipc's intel-npu-acceleration-library wheel must (and must not) hold, per platform.

- the Python package from the sdist, the native library and the OpenVINO runtime in the directory
  ``backend/bindings.py`` loads from (``<pkg>/lib`` on Linux, ``<pkg>/lib/Release`` on Windows), under the names it
  loads (``libopenvino.so`` / ``openvino.dll``);
- no second copy of OpenVINO's Python package (``<pkg>/external/openvino`` shadows
  ``openvino``, docs/upstream.md#npu §3);
- the tag ``py3-none-<platform>`` (on Linux ``linux_x86_64``, or the manylinux tag :mod:`aipc.wheelfit` gives it
  when auditwheel says it qualifies): the native library is plain C ABI, loaded with ctypes, so one wheel serves every
  CPython >= 3.10.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import AipcError
from ..platforms import Platform
from ..wheelfit import tag_fits
from ..wheelhouse import WheelInfo

PACKAGE = "intel_npu_acceleration_library"
WHEEL_DIST = "intel_npu_acceleration_library"


def wheel_name(version: str, platform: Platform) -> str:
    return f"{WHEEL_DIST}-{version}-py3-none-{platform.wheel_platform_tag_prefix}.whl"


def lib_dir(platform: Platform) -> str:
    return f"{PACKAGE}/{platform.npu_lib_subdir}"


def required_members(platform: Platform) -> list[str]:
    lib = lib_dir(platform)
    return [
        f"{PACKAGE}/__init__.py",
        f"{PACKAGE}/backend/bindings.py",
        f"{lib}/{platform.npu_native_lib}",
        f"{lib}/{platform.npu_openvino_lib}",
    ]


def inspect_wheel(path: Path, platform: Platform) -> list[str]:
    """Problems with a built wheel (empty list when it is what aipc promises)."""
    problems = []
    try:
        tag_texts = WheelInfo.from_path(path).tags
    except AipcError as exc:
        return [exc.message]
    want_plat = platform.wheel_platform_tag_prefix
    if not all(t.startswith("py3-none-") for t in tag_texts):
        problems.append(f"tag {'.'.join(tag_texts)} is not py3-none-*: the wheel would be tied to one CPython")
    if not any(tag_fits(t.split("-")[-1], want_plat) for t in tag_texts):
        problems.append(f"tag {'.'.join(tag_texts)} is not for {platform.name} ({want_plat})")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (OSError, zipfile.BadZipFile) as exc:
        return [*problems, f"{path} is not a readable zip ({exc})"]
    for member in required_members(platform):
        if member not in names:
            problems.append(f"missing {member}")
    shadow = sorted({n.split("/")[0] + "/external/openvino" for n in names if "/external/openvino/" in n})
    if shadow or any("_pyopenvino" in n for n in names):
        what = ", ".join(shadow) or "_pyopenvino"
        problems.append(f"bundles OpenVINO's Python package ({what}): it shadows openvino")
    if not any(n.startswith(lib_dir(platform) + "/") and "openvino_intel_cpu_plugin" in n for n in names):
        problems.append(f"no OpenVINO CPU plugin in {lib_dir(platform)} (needed for the CPU fallback)")
    return problems


def check_wheel(path: Path, platform: Platform) -> None:
    problems = inspect_wheel(path, platform)
    if problems:
        raise AipcError(f"wheel {path.name} is not as expected: {'; '.join(problems)}",
                        hint="check aipc/native/npu/CMakeLists.txt install() rules and rebuild with --force")


def extract_member(path: Path, member: str, dest: Path) -> Path:
    """Extract one file of a wheel to ``dest`` (used to disassemble the native library)."""
    with zipfile.ZipFile(path) as zf:
        dest.write_bytes(zf.read(member))
    return dest
