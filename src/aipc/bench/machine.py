"""Facts about the machine a bench ran on (recorded in bench.json): OS, CPU, memory, power source, Python."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any


def _linux_cpu() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _windows_cpu() -> str | None:
    if sys.platform != "win32":
        return None
    try:
        import winreg

        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0")
        value, _ = winreg.QueryValueEx(key, "ProcessorNameString")
        return str(value).strip()
    except (ImportError, OSError):
        return None


def _memory_gib() -> float | None:
    if sys.platform.startswith("linux"):
        try:
            for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / (1 << 20), 1)
        except (OSError, ValueError, IndexError):
            return None
    if sys.platform.startswith("win"):
        try:
            import ctypes

            class MemoryStatusEx(ctypes.Structure):
                _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                            ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                            ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                            ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                            ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

            stat = MemoryStatusEx()
            stat.dwLength = ctypes.sizeof(MemoryStatusEx)
            if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(stat)):  # type: ignore[attr-defined]
                return round(stat.ullTotalPhys / (1 << 30), 1)
        except (OSError, AttributeError):
            return None
    return None


def _power() -> str | None:
    """AC or battery: a battery power plan slows NPUs and iGPUs (docs/upstream.md#anchors §3)."""
    if sys.platform.startswith("linux"):
        supplies = Path("/sys/class/power_supply")
        try:
            mains = [p for p in supplies.iterdir() if (p / "type").read_text().strip() == "Mains"]
            if not mains:
                return None
            online = any((p / "online").read_text().strip() == "1" for p in mains if (p / "online").exists())
        except OSError:  # an unreadable supply is an unknown power source, not a lost bench run
            return None
        return "AC" if online else "battery"
    if sys.platform.startswith("win"):
        try:
            import ctypes

            class PowerStatus(ctypes.Structure):
                _fields_ = [("ACLineStatus", ctypes.c_byte), ("BatteryFlag", ctypes.c_byte),
                            ("BatteryLifePercent", ctypes.c_byte), ("SystemStatusFlag", ctypes.c_byte),
                            ("BatteryLifeTime", ctypes.c_ulong), ("BatteryFullLifeTime", ctypes.c_ulong)]

            st = PowerStatus()
            if ctypes.windll.kernel32.GetSystemPowerStatus(ctypes.byref(st)):  # type: ignore[attr-defined]
                return {0: "battery", 1: "AC"}.get(st.ACLineStatus, "unknown")
        except (OSError, AttributeError):
            return None
    return None


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), None where the OS has none (Windows): other work competing
    for the cores, the main source of the noise between two runs of the same code (docs/bench.md)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def machine_info() -> dict[str, Any]:
    cpu = _windows_cpu() if sys.platform.startswith("win") else _linux_cpu()
    return {
        "os": platform.system(),
        "os_release": platform.release(),
        "os_version": platform.version(),
        "arch": platform.machine(),
        "cpu": cpu or platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "power": _power(),
        "python": platform.python_version(),
        "load_avg": load_average(),  # at the start of the run; harness.load_avg_end at its end
    }
