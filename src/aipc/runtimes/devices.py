"""Host facts the runtimes decide their device from (tested with recorded fixtures): the device names, the DirectX
12 GPUs (Windows), the devices OpenVINO lists in its venv; :class:`HostProbe` asks each once per run. The decisions
themselves are each runtime's (``genai.choose_genai_device``, ``openvino.choose_openvino_device``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..platforms import host_platform_name
from ..platforms.windows import is_dx12_adapter, powershell_argv
from ..proc import run
from .base import WORKERS_DIR, GpuAdapter

DEVICES = ("auto", "cpu", "gpu", "npu", "dml")
POWERSHELL_GPU_QUERY = (
    "Get-CimInstance Win32_VideoController | "
    "Select-Object Name,AdapterCompatibility,DriverVersion,PNPDeviceID,Status | ConvertTo-Json -Compress"
)


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise UsageError(f"unknown device {device!r}", hint=f"use one of: {', '.join(DEVICES)}")
    return device


def parse_video_controllers(text: str) -> list[GpuAdapter]:
    """DirectX 12 adapters (the doctor's rule, :func:`aipc.platforms.windows.is_dx12_adapter`) from
    ``Get-CimInstance Win32_VideoController | ConvertTo-Json`` output."""
    text = text.strip()
    if not text:
        return []
    try:
        data: Any = json.loads(text)
    except ValueError:
        return []
    rows = data if isinstance(data, list) else [data]
    return [GpuAdapter(str(row["Name"]).strip(), str(row.get("AdapterCompatibility") or ""),
                       str(row.get("DriverVersion") or ""))
            for row in rows
            if isinstance(row, dict) and is_dx12_adapter(row.get("Name"), row.get("DriverVersion"), row.get("Status"))]


def detect_dx12_gpus(platform: str, *, timeout: float = 20.0) -> tuple[list[GpuAdapter], str]:
    """DirectX 12 capable GPUs (Windows only) and, when there are none, why."""
    if platform != "windows":
        return [], "DirectX 12 / DirectML exists on Windows only"
    out = run(powershell_argv(POWERSHELL_GPU_QUERY), timeout=timeout)
    if out.returncode is None:
        return [], f"could not list display adapters ({out.reason()})"
    gpus = parse_video_controllers(out.stdout)
    return gpus, "" if gpus else "no hardware display adapter with a DirectX 12 (WDDM 2.0+) driver found"


RunWorker = Callable[..., dict[str, Any]]


class HostProbe:
    """The real :class:`aipc.runtimes.base.Probe`: each fact asked once, then remembered for the run."""

    def __init__(self, *, gpu_facts: Callable[[str], tuple[list[GpuAdapter], str]] = detect_dx12_gpus,
                 run_worker: RunWorker | None = None, timeout: float = 120.0,
                 phase: Callable[[str], None] | None = None) -> None:
        self.gpu_facts = gpu_facts
        self.run_worker = run_worker
        self.timeout = timeout
        self.phase = phase or (lambda text: None)
        self._gpus: tuple[list[GpuAdapter], str] | None = None
        self._openvino: list[str] | str | None = None
        self._lock = threading.RLock()  # verify asks from several threads: each fact is still asked once

    def gpus(self) -> tuple[list[GpuAdapter], str]:
        with self._lock:
            if self._gpus is None:  # PowerShell on Windows
                self._gpus = self.gpu_facts(host_platform_name())
            return self._gpus

    def openvino_devices(self, python: Path | None) -> list[str] | str | None:
        with self._lock:
            return self._openvino_devices(python)

    def _openvino_devices(self, python: Path | None) -> list[str] | str | None:
        if self._openvino is None:
            if python is None:
                return None
            if self.run_worker is None:
                from .worker import run_worker

                self.run_worker = run_worker
            req = {"action": "probe", "model": "", "device": "auto", "precision": "", "max_new_tokens": 0,
                   "messages": [], "golden": None}
            self.phase("probing OpenVINO devices")
            res = self.run_worker(python, WORKERS_DIR / "smoke_openvino.py", req, self.timeout)
            if res["status"] != "pass":
                self._openvino = str(res["reason"] or "probe failed")
            else:
                self._openvino = [str(d.get("device")) for d in res["details"].get("devices", [])]
        return self._openvino


class PresentProbe:
    """A probe that reports ``device`` as present (bench: a target's device is asked for; its absence is the
    worker's skip). Used to ask a runtime whether it refuses a device even where it exists."""

    def __init__(self, device: str) -> None:
        self.device = device

    def gpus(self) -> tuple[list[GpuAdapter], str]:
        return ([GpuAdapter(self.device.upper())] if self.device in ("gpu", "dml") else []), ""

    def openvino_devices(self, python: Path | None) -> list[str] | str | None:
        return [self.device.upper()]
