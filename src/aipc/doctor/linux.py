"""Linux collectors: distribution, kernel, WSL, the ``intel_vpu`` NPU driver, ``/dev/accel`` access, memory.

Facts from github.com/intel/linux-npu-driver ``docs/overview.md`` as summarised in docs/upstream.md#npu §5:
the kernel module is ``intel_vpu``, the device node ``/dev/accel/accel0``, and a non-root user needs the
``render`` group (or ``video``) to open it.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

# PCI device IDs of Intel NPUs (docs/upstream.md#npu §5; Lunar/Panther Lake from a third-party table).
NPU_PCI_IDS = {"7d1d": "Meteor Lake", "ad1d": "Arrow Lake", "643e": "Lunar Lake", "b03e": "Panther Lake"}
NPU_UMD_LIBS = ("libze_intel_npu.so", "libze_intel_vpu.so", "libze_loader.so.1", "libnpu_driver_compiler.so")
# system library directories, in the order the loader searches them on Debian/Ubuntu (plus Fedora's lib64)
LIB_DIRS = ("/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib", "/lib/x86_64-linux-gnu", "/usr/lib64")
_SO_VERSION_RE = re.compile(r"libonnxruntime\.so\.(\d+\.\d+\.\d+)")


def os_release() -> dict[str, str]:
    """``/etc/os-release`` (or ``/usr/lib/os-release``) as :func:`platform.freedesktop_os_release` reads it; {} when
    neither is readable."""
    try:
        return dict(platform.freedesktop_os_release())
    except OSError:
        return {}


def parse_kernel_version(release: str) -> list[int] | None:
    """``6.8.0-45-generic`` -> [6, 8, 0]; None when it does not start with a version."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not match:
        return None
    return [int(g) for g in match.groups(default="0")]


def is_wsl(osrelease: str, proc_version: str, env: dict[str, str]) -> bool:
    text = (osrelease + " " + proc_version).lower()
    return "microsoft" in text or "wsl" in text or "WSL_DISTRO_NAME" in env


def module_loaded(name: str, proc_modules: str | None, sys_module: Path = Path("/sys/module")) -> bool | None:
    """True/False when it can be told, None when neither /proc/modules nor /sys/module is readable."""
    if (sys_module / name).exists():
        return True
    if proc_modules is not None:
        return any(line.split(" ", 1)[0] == name for line in proc_modules.splitlines())
    return False if sys_module.is_dir() else None


def module_available(name: str, kernel_release: str, modules_root: Path = Path("/lib/modules")) -> bool | None:
    """Is the module shipped for the running kernel (as a file or built in)? None when unknown."""
    root = modules_root / kernel_release
    if not root.is_dir():
        return None
    builtin = root / "modules.builtin"
    try:
        if builtin.is_file() and f"/{name}.ko" in builtin.read_text(encoding="utf-8", errors="replace"):
            return True
    except OSError:
        pass
    for pattern in (f"kernel/drivers/accel/ivpu/{name}.ko*", f"updates/**/{name}.ko*", f"extra/**/{name}.ko*"):
        if next(root.glob(pattern), None) is not None:
            return True
    return False


def npu_pci_devices(pci_root: Path = Path("/sys/bus/pci/devices")) -> list[dict[str, str]]:
    found = []
    try:
        devices = sorted(pci_root.iterdir())
    except OSError:
        return []
    for dev in devices:
        try:
            vendor = (dev / "vendor").read_text().strip().lower()
            device = (dev / "device").read_text().strip().lower()
        except OSError:
            continue
        if vendor == "0x8086" and device[2:] in NPU_PCI_IDS:
            found.append({"slot": dev.name, "id": f"8086:{device[2:]}", "platform": NPU_PCI_IDS[device[2:]]})
    return found


def group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def accel_devices(accel_root: Path = Path("/dev/accel")) -> list[dict[str, Any]]:
    """Every ``/dev/accel/accel*`` node with its owner group, mode and whether this process may open it."""
    result: list[dict[str, Any]] = []
    for node in sorted(accel_root.glob("accel*")):
        try:
            st = node.stat()
        except OSError as exc:
            result.append({"path": str(node), "error": str(exc)})
            continue
        result.append({
            "path": str(node),
            "group": group_name(st.st_gid),
            "mode": oct(st.st_mode & 0o777),
            "readable": os.access(node, os.R_OK),
            "writable": os.access(node, os.W_OK),
        })
    return result


def user_groups() -> dict[str, Any]:
    """The current user's groups in this session and as configured in /etc/group (differs until re-login)."""
    import grp
    import pwd

    uid = os.getuid()
    try:
        entry = pwd.getpwuid(uid)
        user, gid = entry.pw_name, entry.pw_gid
        configured = sorted({group_name(g) for g in os.getgrouplist(user, gid)})
    except KeyError:
        user, configured = str(uid), []
    session = sorted({group_name(g) for g in (*os.getgroups(), os.getgid())})
    existing = {name for name in ("render", "video") if _group_exists(grp, name)}
    result: dict[str, Any] = {"user": user, "uid": uid, "session_groups": session, "configured_groups": configured,
            "render_group_exists": "render" in existing, "video_group_exists": "video" in existing}
    return result


def _group_exists(grp: Any, name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def find_libs(names: tuple[str, ...], dirs: tuple[str, ...] = LIB_DIRS) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        for directory in dirs:
            hit = next(Path(directory).glob(name + "*"), None) if Path(directory).is_dir() else None
            if hit is not None:
                found[name] = str(hit)
                break
    return found


def ort_version_from_soname(path: Path) -> str | None:
    """``libonnxruntime.so.1.17.1`` (or a symlink to it) -> ``1.17.1``."""
    for candidate in (path.name, path.resolve().name if path.is_symlink() else ""):
        match = _SO_VERSION_RE.search(candidate)
        if match:
            return match.group(1)
    return None


def find_ort_libraries(ld_library_path: str, system_dirs: tuple[str, ...] = LIB_DIRS) -> list[dict[str, Any]]:
    """ONNX Runtime shared libraries on the loader's search path (Windows: the PowerShell script in windows.py)."""
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    dirs = [(d, "ld_library_path") for d in ld_library_path.split(os.pathsep) if d]
    dirs += [(d, "system") for d in system_dirs]
    for directory, where in dirs:
        try:
            entries = sorted(Path(directory).glob("libonnxruntime.so*"))
        except OSError:
            continue
        for lib in entries:
            key = str(lib.resolve())
            if key in seen:
                continue
            seen.add(key)
            found.append({"path": str(lib), "where": where, "version": ort_version_from_soname(lib)})
    return found


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` -> bytes for MemTotal and MemAvailable."""
    result: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"(MemTotal|MemAvailable):\s+(\d+)\s*kB", line)
        if match:
            key = "memory_total_bytes" if match.group(1) == "MemTotal" else "memory_available_bytes"
            result[key] = int(match.group(2)) * 1024
    return result


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def collect_linux() -> dict[str, Any]:
    release = platform.release()
    proc_modules = _read("/proc/modules")
    facts: dict[str, Any] = {
        "os_release": os_release(),
        "kernel": release,
        "kernel_version": parse_kernel_version(release),
        "wsl": is_wsl(_read("/proc/sys/kernel/osrelease") or "", _read("/proc/version") or "", dict(os.environ)),
        "intel_vpu_loaded": module_loaded("intel_vpu", proc_modules),
        "intel_vpu_available": module_available("intel_vpu", release),
        "npu_pci": npu_pci_devices(),
        "accel_devices": accel_devices(),
        "npu_user_space": find_libs(NPU_UMD_LIBS),
        **user_groups(),
        **parse_meminfo(_read("/proc/meminfo") or ""),
    }
    return facts
