"""Which device each path runs on: pure decisions over facts (tested with recorded fixtures), plus fact gathering.

- genai: DirectML when aipc's DML wheel is in the venv AND a DirectX 12 GPU is present, else CPU
  (cookbook.md path 2; DirectML is a Windows API).
- openvino: the best device OpenVINO lists, NPU > GPU > CPU for ``LLMPipeline`` (NPU gets the NPU export);
  ``OVModelForCausalLM`` takes GPU > CPU, since it compiles dynamic shapes and the NPU plugin runs static shapes only
  (shared/docs/npu.md section 4).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

DEVICES = ("auto", "cpu", "gpu", "npu", "dml")
# display adapters that are not DirectX 12 hardware
_SOFTWARE_ADAPTERS = ("microsoft basic display adapter", "microsoft remote display adapter", "microsoft basic render")
POWERSHELL_GPU_QUERY = (
    "Get-CimInstance Win32_VideoController | "
    "Select-Object Name,AdapterCompatibility,DriverVersion,PNPDeviceID,Status | ConvertTo-Json -Compress"
)


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise UsageError(f"unknown device {device!r}", hint=f"use one of: {', '.join(DEVICES)}")
    return device


@dataclass(frozen=True)
class Choice:
    """A device decision: ``device`` is None when the row cannot run here (a skip), with the reason."""

    device: str | None
    reason: str
    export: str = ""  # which export the device needs (genai: cpu|dml; openvino: openvino|openvino-npu)


@dataclass(frozen=True)
class GpuAdapter:
    name: str
    vendor: str = ""
    driver: str = ""


def parse_video_controllers(text: str) -> list[GpuAdapter]:
    """Hardware display adapters from ``Get-CimInstance Win32_VideoController | ConvertTo-Json`` output."""
    text = text.strip()
    if not text:
        return []
    try:
        data: Any = json.loads(text)
    except ValueError:
        return []
    rows = data if isinstance(data, list) else [data]
    out = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        name = str(row.get("Name") or "").strip()
        if not name or name.lower().startswith(_SOFTWARE_ADAPTERS):
            continue
        status = str(row.get("Status") or "OK")
        if status not in ("OK", ""):
            continue
        out.append(GpuAdapter(name, str(row.get("AdapterCompatibility") or ""), str(row.get("DriverVersion") or "")))
    return out


def detect_dx12_gpus(platform: str, *, timeout: float = 20.0) -> tuple[list[GpuAdapter], str]:
    """DirectX 12 capable GPUs (Windows only) and, when there are none, why."""
    if platform != "windows":
        return [], "DirectX 12 / DirectML exists on Windows only"
    try:
        proc = subprocess.run(["powershell", "-NoProfile", "-NonInteractive", "-Command", POWERSHELL_GPU_QUERY],
                              capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"could not list display adapters ({exc})"
    gpus = parse_video_controllers(proc.stdout)
    return gpus, "" if gpus else "no hardware display adapter (DirectX 12 GPU) found"


def choose_genai_device(requested: str, *, dml_wheel: bool, gpus: list[GpuAdapter], gpu_reason: str = "") -> Choice:
    """cpu or dml for the onnxruntime-genai path."""
    check_device(requested)
    no_dml = []
    if not dml_wheel:
        no_dml.append("no DirectML build of onnxruntime-genai in wheels/ (run `nox -s build`)")
    if not gpus:
        no_dml.append(gpu_reason or "no DirectX 12 GPU")
    if requested == "cpu":
        return Choice("cpu", "CPU requested", "cpu")
    if requested == "npu":
        return Choice(None, "onnxruntime-genai has no NPU provider in this path (use openvino-npu)")
    if requested in ("gpu", "dml"):
        if no_dml:
            return Choice(None, "DirectML not available: " + "; ".join(no_dml))
        return Choice("dml", f"DirectML on {gpus[0].name}", "dml")
    if no_dml:
        return Choice("cpu", "CPU (DirectML not available: " + "; ".join(no_dml) + ")", "cpu")
    return Choice("dml", f"DirectML on {gpus[0].name}", "dml")


def choose_openvino_device(requested: str, available: list[str], api: str) -> Choice:
    """An OpenVINO device for ``api`` (``optimum`` or ``genai``) among ``available`` (e.g. ['CPU', 'GPU.0', 'NPU'])."""
    check_device(requested)

    def first(kind: str) -> str | None:
        return next((d for d in available if d.split(".")[0].upper() == kind), None)

    seen = ", ".join(available) or "none"
    if requested == "dml":
        return Choice(None, "DirectML is not an OpenVINO device")
    if requested == "npu" and api == "optimum":
        return Choice(None, "OVModelForCausalLM compiles dynamic shapes; the NPU runs LLMs through LLMPipeline "
                            "(path openvino-npu)")
    if requested != "auto":
        found = first(requested.upper())
        if found is None:
            return Choice(None, f"no {requested.upper()} device (OpenVINO sees: {seen})")
        return Choice(found, f"{requested.upper()} requested", _ov_export(found))
    order = ("GPU", "CPU") if api == "optimum" else ("NPU", "GPU", "CPU")
    for kind in order:
        found = first(kind)
        if found is not None:
            return Choice(found, f"best device OpenVINO sees ({seen})", _ov_export(found))
    return Choice(None, f"OpenVINO lists no usable device ({seen})")


def _ov_export(device: str) -> str:
    return "openvino-npu" if device.upper().startswith("NPU") else "openvino"
