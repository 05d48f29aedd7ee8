"""Smoke worker of the OpenVINO paths (runs in the openvino venv; stdlib + that venv's packages only).

python smoke_openvino.py --request REQ.json --result RES.json

Request keys (worker protocol): model (an OpenVINO export folder), device (an OpenVINO device name such as CPU,
GPU, GPU.0 or NPU, as aipc's device rule chose it), precision, max_new_tokens, messages, golden (ids or null);
path-specific:
- ``api``: ``optimum`` (OVModelForCausalLM with the cookbook's ov_config) or ``genai`` (openvino_genai.LLMPipeline);
- ``action``: ``probe`` only lists the devices OpenVINO sees (details.devices), nothing is loaded;
- ``prompt_ids``: the reference tokenizer's ids of the templated prompt (checked when given);
- ``npu_config``: LLMPipeline properties for device NPU (MAX_PROMPT_LEN, MIN_RESPONSE_LEN, ...).
Recipes and traps: docs/upstream.md#paths §2, docs/upstream.md#npu §4. Ids, not text, are compared.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from devices import list_devices, optimum_config, pipeline_props, resolve_device
from protocol import compare, prompt_mismatch, serve

APIS = {"optimum": "OVModelForCausalLM", "genai": "LLMPipeline"}


def vocab_size(model: str) -> int | None:
    try:
        with open(os.path.join(model, "config.json"), encoding="utf-8") as fh:
            return int(json.load(fh)["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_optimum(req: dict, device: str, res: dict) -> None:
    t = time.monotonic()
    from optimum.intel import OVModelForCausalLM
    from transformers import AutoTokenizer

    details = res["details"]
    details["import_seconds"] = round(time.monotonic() - t, 4)
    t = time.monotonic()
    tok = AutoTokenizer.from_pretrained(req["model"])
    ov_config = optimum_config(req)
    model = OVModelForCausalLM.from_pretrained(req["model"], device=device, ov_config=ov_config)
    details["load_seconds"] = round(time.monotonic() - t, 4)
    details["ov_config"] = ov_config
    prompt = tok.apply_chat_template(req["messages"], tokenize=False, add_generation_prompt=True)
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
    ids = [int(i) for i in enc["input_ids"][0]]
    n = int(req.get("max_new_tokens") or 16)
    t = time.monotonic()
    out = model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    details["generate_seconds"] = round(time.monotonic() - t, 4)
    finish(req, res, ids, [int(x) for x in out[0, len(ids):]])


def run_genai(req: dict, device: str, res: dict) -> None:
    import openvino as ov
    import openvino_genai as ov_genai

    details = res["details"]
    props = pipeline_props(req, device, req.get("npu_config"))
    if device.startswith("NPU"):
        details["npu_config"] = props
    details["properties"] = props
    t = time.monotonic()
    pipe = ov_genai.LLMPipeline(req["model"], device, props) if props else ov_genai.LLMPipeline(req["model"], device)
    details["load_seconds"] = round(time.monotonic() - t, 4)
    tok = pipe.get_tokenizer()
    prompt = tok.apply_chat_template(req["messages"], add_generation_prompt=True)
    enc = tok.encode(prompt, add_special_tokens=False)
    ids = [int(i) for i in enc.input_ids.data[0]]
    n = int(req.get("max_new_tokens") or 16)
    cfg = ov_genai.GenerationConfig(max_new_tokens=n, min_new_tokens=n, ignore_eos=True, do_sample=False)
    t = time.monotonic()
    out = pipe.generate(ov.Tensor(enc.input_ids.data), cfg)
    details["generate_seconds"] = round(time.monotonic() - t, 4)
    tokens = [int(x) for x in out.tokens[0]]
    try:
        perf = out.perf_metrics
        details["ttft_ms"] = round(float(perf.get_ttft().mean), 3)
        details["tpot_ms"] = round(float(perf.get_tpot().mean), 3)
    except Exception:  # metrics are informative only
        pass
    finish(req, res, ids, tokens)


def finish(req: dict, res: dict, prompt_ids: list[int], tokens: list[int]) -> None:
    res["details"]["prompt_tokens"] = len(prompt_ids)
    res["tokens"], res["n_tokens"] = tokens, len(tokens)
    mismatch = prompt_mismatch(prompt_ids, req)
    if mismatch:
        res["status"], res["reason"] = "fail", mismatch
        return
    res["status"], res["reason"] = compare(tokens, req, vocab_size(req["model"]))


def run(req: dict) -> dict:
    api = str(req.get("api") or "genai")
    res: dict = {"status": "fail", "api": APIS.get(api, api), "details": {}}  # laid over serve's base result
    import openvino as ov

    res["details"]["openvino"] = ov.get_version()
    devices = list_devices()
    available = [d["device"] for d in devices]
    res["details"]["devices"] = devices
    if req.get("action") == "probe":
        res.update(status="pass", api="openvino.Core", reason="devices: " + ", ".join(available))
        return res
    if api not in APIS:
        res["reason"] = f"unknown api {api!r} (optimum or genai)"
        return res
    device, why = resolve_device(str(req.get("device") or "CPU"), available)
    if device is None:
        res.update(status="skip", reason=why)
        return res
    res["device"] = device
    if api == "optimum":
        run_optimum(req, device, res)
    else:
        run_genai(req, device, res)
    return res


def main() -> int:
    return serve("OpenVINO", run)


if __name__ == "__main__":
    sys.exit(main())
