"""Bench worker of the OpenVINO path (runs in the openvino venv; stdlib + that venv's packages only).

python bench_openvino.py --request REQ.json --result RES.json   (protocol: aipc.runtimes.worker; bench keys in "bench")

Request key ``api``: ``OVModelForCausalLM`` (optimum-intel, the cookbook's ov_config) or
``openvino_genai.LLMPipeline``. Device: cpu | gpu | npu; a device OpenVINO does not list is a skip.

Per-token timestamps: LLMPipeline -> a ``StreamerBase`` subclass whose ``write`` is called once per generated
token; OVModelForCausalLM -> a transformers streamer whose ``put`` is called with the prompt first, then once per
token. For LLMPipeline the runtime's own ``PerfMetrics`` of the same generate call are recorded as the reference
(get_throughput().mean is its decode tokens/s).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_common import (
    PROMPTS_NOTE,
    Clock,
    callback_cost_us,
    golden_check,
    hf_streamer,
    main,
    memory_note,
    now,
    peak_rss,
    run_grid,
    versions,
)
from devices import available_devices, npu_sizing, optimum_config, pipeline_props, resolve_device

API_OPTIMUM = "OVModelForCausalLM"
API_GENAI = "openvino_genai.LLMPipeline"
PACKAGES = ("openvino", "openvino-genai", "openvino-tokenizers", "optimum-intel", "optimum", "transformers", "nncf")
REFERENCE = "openvino_genai.PerfMetrics"


def probe(req: dict) -> dict:
    api = req.get("api") or API_GENAI
    if api not in (API_OPTIMUM, API_GENAI):
        return {"status": "fail", "reason": f"unknown api {api!r} (use {API_OPTIMUM} or {API_GENAI})"}
    device, why = resolve_device(str(req.get("device") or "cpu"), available_devices())
    if device is None:
        return {"status": "skip", "reason": why}
    return {"status": "pass", "device": device, "reason": "device available"}


def _device_facts(device: str) -> dict:
    """FULL_DEVICE_NAME, a driver version and device memory where the plugin exposes them (queries may raise)."""
    import openvino as ov

    core = ov.Core()
    out = {"device_name": None, "driver_version": None, "device_memory_bytes": None, "device_memory_note": ""}
    try:
        supported = {str(p) for p in core.get_property(device, "SUPPORTED_PROPERTIES")}
    except Exception:
        supported = set()

    def get(name: str):
        if supported and name not in supported:
            return None
        try:
            return core.get_property(device, name)
        except Exception:  # docs/upstream.md#npu §5: wrap every device query
            return None

    name = get("FULL_DEVICE_NAME")
    out["device_name"] = str(name) if name is not None else None
    kind = device.split(".")[0]
    for prop in {"NPU": ("NPU_DRIVER_VERSION",), "GPU": ("GPU_DRIVER_VERSION", "DRIVER_VERSION")}.get(kind, ()):
        value = get(prop)
        if value is not None:
            out["driver_version"] = str(value)
            break
    if kind == "NPU":
        value = get("NPU_DEVICE_ALLOC_MEM_SIZE")
        if isinstance(value, int):
            out["device_memory_bytes"] = value
            out["device_memory_note"] = "NPU_DEVICE_ALLOC_MEM_SIZE after the runs"
    elif kind == "GPU":
        out["device_memory_note"] = ("GPU memory: the compiled model's GPU_MEMORY_STATISTICS where the API exposes "
                                     "it (OVModelForCausalLM), else null")
    else:
        out["device_memory_note"] = "CPU: model memory is process memory (RSS)"
    return out


def run(req: dict) -> dict:
    gate = probe(req)
    if gate["status"] != "pass":
        return gate
    device = gate["device"]
    api = req.get("api") or API_GENAI
    details: dict = {"versions": versions(*PACKAGES)}
    clock = Clock()
    if api == API_GENAI:
        check_tokens, encode, generate, load_s, probe_cb, mem, prefill = _setup_genai(req, device, clock)
    else:
        check_tokens, encode, generate, load_s, probe_cb, mem, prefill = _setup_optimum(req, device, clock)
    details["load_s"] = load_s
    details["prefill"] = prefill
    load_peak = peak_rss()
    ok, details["golden"] = golden_check(check_tokens, req)
    if not ok:
        return {"status": "fail", "device": device, "reason": details["golden"]["note"], "tokens": check_tokens,
                "n_tokens": len(check_tokens), "details": details}
    cells, resettable = run_grid(req, encode, generate)
    details["cells"] = cells
    facts = _device_facts(device)
    device_mem = facts["device_memory_bytes"] if facts["device_memory_bytes"] is not None else mem()
    details.update(device_name=facts["device_name"], driver_version=facts["driver_version"])
    peaks = [load_peak or 0] + [r["peak_rss_bytes"] or 0 for c in cells for r in c["runs"]]
    details["memory"] = {"peak_rss_bytes": max(peaks) or None, "device_memory_bytes": device_mem,
                         "note": memory_note(resettable) + "; " + facts["device_memory_note"]}
    details["callback_us"] = probe_cb(int(req["bench"].get("callback_probe", 2000)))
    return {"status": "pass", "device": device, "reason": details["golden"]["note"], "tokens": check_tokens,
            "n_tokens": len(check_tokens), "details": details}


def genai_props(req: dict, device: str) -> dict:
    """LLMPipeline properties: f32 compute for fp32 (the golden check), on NPU static shapes for the largest cell."""
    return pipeline_props(req, device, npu_sizing(req["bench"]["grid"]))


def optimum_ov_config(req: dict) -> dict:
    """OVModelForCausalLM's ov_config: the cookbook's, with f32 compute for fp32."""
    return optimum_config(req)


def _prompt_ids(req: dict, apply_template) -> list:
    ids = req.get("golden_prompt_ids")
    return [int(i) for i in ids] if ids else apply_template(req["messages"])


def _setup_genai(req: dict, device: str, clock: Clock):
    import numpy as np
    import openvino as ov
    import openvino_genai as ov_genai

    props = genai_props(req, device)
    prefill = no_prefix_cache(props, device, ov_genai.SchedulerConfig)
    t = now()
    pipe = ov_genai.LLMPipeline(req["model"], device, **props)
    load_s = now() - t
    tok = pipe.get_tokenizer()

    class TimingStreamer(ov_genai.StreamerBase):
        def write(self, token):  # one call per generated token (a list when several arrive at once)
            clock.tick(len(token) if isinstance(token, list) else 1)
            return ov_genai.StreamingStatus.RUNNING

        def end(self):
            return None

    streamer = TimingStreamer()

    def config(n: int):
        cfg = ov_genai.GenerationConfig(max_new_tokens=n, min_new_tokens=n, ignore_eos=True, do_sample=False)
        cfg.apply_chat_template = False  # the prompt is raw text (docs/upstream.md#paths §2)
        return cfg

    def template(messages):
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True)
        return [int(i) for i in tok.encode(prompt, add_special_tokens=False).input_ids.data[0]]

    ids = _prompt_ids(req, template)
    out = pipe.generate(ov.Tensor(np.array([ids], dtype=np.int64)), config(int(req.get("max_new_tokens") or 16)))
    check_tokens = [int(x) for x in out.tokens[0]]

    def encode(text: str) -> list:
        return [int(i) for i in tok.encode(text, add_special_tokens=False).input_ids.data[0]]

    def generate(text: str, n: int) -> dict:
        clock.start()  # request start: the pipeline tokenizes the text inside generate (in TTFT)
        # a one-element list returns DecodedResults (with perf_metrics); a bare str returns only the text
        res = pipe.generate([text], config(n), streamer)
        end = now() - clock.t0
        pm = res.perf_metrics
        reference = {
            "name": REFERENCE,
            "decode_tps": float(pm.get_throughput().mean),
            "tpot_ms": float(pm.get_tpot().mean),
            "ttft_ms": float(pm.get_ttft().mean),
            "generate_ms": float(pm.get_generate_duration().mean),
            "tokenization_ms": float(pm.get_tokenization_duration().mean),
            "num_generated_tokens": int(pm.get_num_generated_tokens()),
        }
        return {"token_times": list(clock.times), "end": end, "reference": reference}

    def probe_cb(n: int) -> float:
        sink = Clock()

        class Probe(ov_genai.StreamerBase):
            def write(self, token):
                sink.tick(1)
                return ov_genai.StreamingStatus.RUNNING

            def end(self):
                return None

        p = Probe()
        return callback_cost_us(lambda: p.write(1), n)

    def device_memory():
        return None

    return check_tokens, encode, generate, round(load_s, 6), probe_cb, device_memory, prefill


def no_prefix_cache(props: dict, device: str, scheduler_config) -> str:
    """Turn the pipeline's prefix cache off where it has one, in ``props``; returns how each run's prefill is kept.

    On CPU and GPU an LLMPipeline without a scheduler config runs on the continuous-batching (paged attention)
    backend with openvino.genai's latency-oriented scheduler config, which enables prefix caching: a repeated
    prompt then skips its prefill. The same config with prefix caching off is passed explicitly. On NPU the
    pipeline is stateful (static shapes) and has no prefix cache.
    """
    if device.upper().startswith("NPU"):
        return f"{PROMPTS_NOTE}; the NPU pipeline is stateful and has no prefix cache"
    cfg = scheduler_config()
    cfg.max_num_batched_tokens = 2**31 - 1  # as the latency-oriented default: no limit on the batch
    cfg.enable_prefix_caching = False
    props["scheduler_config"] = cfg
    return f"{PROMPTS_NOTE}; prefix caching disabled (SchedulerConfig.enable_prefix_caching=False)"


def _setup_optimum(req: dict, device: str, clock: Clock):
    import torch
    from optimum.intel import OVModelForCausalLM
    from transformers import AutoTokenizer

    t = now()
    tok = AutoTokenizer.from_pretrained(req["model"])
    model = OVModelForCausalLM.from_pretrained(req["model"], device=device, ov_config=optimum_ov_config(req))
    load_s = now() - t
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def template(messages):
        prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return [int(i) for i in tok(prompt, add_special_tokens=False)["input_ids"]]

    ids = _prompt_ids(req, template)
    n_check = int(req.get("max_new_tokens") or 16)
    inp = torch.tensor([ids], dtype=torch.long)
    out = model.generate(input_ids=inp, attention_mask=torch.ones_like(inp), max_new_tokens=n_check,
                         min_new_tokens=n_check, do_sample=False, pad_token_id=pad)
    check_tokens = [int(x) for x in out[0, len(ids):]]

    def encode(text: str) -> list:
        return [int(i) for i in tok(text, add_special_tokens=False)["input_ids"]]

    def generate(text: str, n: int) -> dict:
        streamer = hf_streamer(clock)  # before the request starts: not in TTFT
        clock.start()
        enc = tok(text, return_tensors="pt", add_special_tokens=False)
        model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=pad,
                       streamer=streamer)
        return {"token_times": list(clock.times), "end": now() - clock.t0, "reference": None}

    def probe_cb(n: int) -> float:
        s = hf_streamer(Clock(), prompt_seen=True)
        value = torch.tensor([1])
        return callback_cost_us(lambda: s.put(value), n)

    def device_memory():
        if not device.startswith("GPU"):
            return None
        try:  # optimum keeps the compiled model; the GPU plugin reports its allocations there
            stats = model.request.get_compiled_model().get_property("GPU_MEMORY_STATISTICS")
            return int(sum(int(v) for v in dict(stats).values()))
        except Exception:
            return None

    prefill = f"{PROMPTS_NOTE}; generate() starts from an empty KV cache on every call"
    return check_tokens, encode, generate, round(load_s, 6), probe_cb, device_memory, prefill


if __name__ == "__main__":
    sys.exit(main(API_GENAI, run, probe))
