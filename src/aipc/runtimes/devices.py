"""Which device each path runs on: pure decisions over facts (tested with recorded fixtures), plus fact gathering.

- genai: DirectML when aipc's DML wheel is in the venv AND a DirectX 12 GPU is present, else CPU
  (docs/upstream.md#cookbook path 2; DirectML is a Windows API).
- openvino: the best device OpenVINO lists, NPU > GPU > CPU for ``LLMPipeline`` (NPU gets the NPU export);
  ``OVModelForCausalLM`` takes GPU > CPU, since it compiles dynamic shapes and the NPU plugin runs static shapes only
  (docs/upstream.md#npu §4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..platforms.windows import is_dx12_adapter, powershell_argv
from ..proc import run

DEVICES = ("auto", "cpu", "gpu", "npu", "dml")
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


def choose_genai_device(requested: str, *, dml_wheel: bool, gpus: list[GpuAdapter] | None,
                        gpu_reason: str = "") -> Choice:
    """cpu or dml for the onnxruntime-genai path; ``gpus`` None: not probed (nothing to run DirectML with)."""
    check_device(requested)
    no_dml = []
    if not dml_wheel:
        no_dml.append("no DirectML build of onnxruntime-genai in wheels/ (run `nox -s build`)")
    if gpus is None:
        if dml_wheel:
            no_dml.append("GPUs not probed")
    elif not gpus:
        no_dml.append(gpu_reason or "no DirectX 12 GPU")
    if requested == "cpu":
        return Choice("cpu", "CPU requested", "cpu")
    if requested == "npu":
        return Choice(None, "onnxruntime-genai has no NPU provider in this path (use openvino-npu)")
    if requested in ("gpu", "dml"):
        if not gpus or no_dml:
            return Choice(None, "DirectML not available: " + "; ".join(no_dml))
        return Choice("dml", f"DirectML on {gpus[0].name}", "dml")
    if not gpus or no_dml:
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
