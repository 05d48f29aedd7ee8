"""Device helpers shared by the smoke and bench workers (stdlib only; the runtimes are imported lazily).

One copy each of: which OpenVINO device a requested kind means (``resolve_device``; "auto" is the host's to decide,
aipc.runtimes.openvino.choose_openvino_device, which sends the concrete device), the
devices OpenVINO lists (``available_devices``, ``list_devices``), the cookbook's optimum ``ov_config``, the
LLMPipeline properties (f32 compute for exact fp32 runs, static NPU sizing) and whether the venv holds the
DirectML build of onnxruntime-genai. Recipes and traps: docs/upstream.md#paths §2, docs/upstream.md#npu §4-5.
"""

from __future__ import annotations

import contextlib

COOKBOOK_OV_CONFIG = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "CACHE_DIR": ""}
NPU_DEFAULTS = {"MAX_PROMPT_LEN": 256, "MIN_RESPONSE_LEN": 64}  # static shapes of the NPU LLMPipeline


def available_devices() -> list[str]:
    import openvino as ov

    return list(ov.Core().available_devices)


def list_devices() -> list[dict]:
    """The devices OpenVINO lists, each with its FULL_DEVICE_NAME ("" where the query fails)."""
    import openvino as ov

    core = ov.Core()
    out = []
    for dev in core.available_devices:
        name = ""
        with contextlib.suppress(Exception):  # every device query may fail (docs/upstream.md#npu §5)
            name = str(core.get_property(dev, "FULL_DEVICE_NAME"))
        out.append({"device": dev, "name": name})
    return out


def resolve_device(requested: str, available: list[str]) -> tuple[str | None, str]:
    """The device ``requested`` names among ``available`` (``GPU`` -> the first ``GPU.n``), or None and why. The host
    decides "auto" (aipc's one OpenVINO device rule) and sends the concrete device."""
    req = requested.upper()
    if req == "AUTO":
        return None, "device auto reached the worker: the host picks the device (send CPU, GPU, NPU or a name)"
    if req in available:
        return req, ""
    match = [d for d in available if d.split(".")[0] == req] if "." not in req else []
    if match:
        return match[0], ""
    return None, f"no {req} device (OpenVINO sees: {', '.join(available) or 'none'})"


def exact_props(req: dict) -> dict:
    """fp32 rows are compared with the golden ids exactly: compute in f32 (GPU plugins default to f16 and CPUs with
    bf16/AMX to bf16 inference precision, which would turn a correct run into a mismatch)."""
    return {"INFERENCE_PRECISION_HINT": "f32"} if req.get("precision") == "fp32" else {}


def optimum_config(req: dict) -> dict:
    """The ``ov_config`` of OVModelForCausalLM: the cookbook's, plus f32 compute for fp32."""
    return {**COOKBOOK_OV_CONFIG, **exact_props(req)}


def pipeline_props(req: dict, device: str, npu: dict | None = None) -> dict:
    """LLMPipeline properties: on NPU the static sizing (``NPU_DEFAULTS`` overlaid with ``npu``), else exact_props."""
    if device.upper().startswith("NPU"):
        return {**NPU_DEFAULTS, **(npu or {})}
    return exact_props(req)


def npu_sizing(grid: list) -> dict:
    """NPU sizing that fits the largest (prompt tokens, generated tokens) cell of a bench grid (and the defaults)."""
    return {"MAX_PROMPT_LEN": max(NPU_DEFAULTS["MAX_PROMPT_LEN"], max(int(p) for p, _ in grid) + 64),
            "MIN_RESPONSE_LEN": max(NPU_DEFAULTS["MIN_RESPONSE_LEN"], max(int(g) for _, g in grid))}


def dml_wheel_installed() -> bool:
    """True when the venv holds onnxruntime-genai-directml (the DirectML build)."""
    from importlib import metadata

    try:
        metadata.distribution("onnxruntime-genai-directml")
    except metadata.PackageNotFoundError:
        return False
    return True
