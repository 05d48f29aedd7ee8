"""Bench worker of the NPU library path (runs in the npu venv; stdlib + intel-npu-acceleration-library, torch and
transformers of that venv only).

python bench_npu.py --request REQ.json --result RES.json   (protocol: aipc.runtimes.worker; bench keys in "bench")

The HF checkpoint is loaded with transformers and compiled by ``intel_npu_acceleration_library.compile`` at the
requested dtype (int4 as in the cookbook; int8, fp16). Without an NPU the library silently runs on the CPU
(docs/upstream.md#npu §3): that is a skip unless the request sets ``allow_fallback``, and then the device is reported as
``cpu-fallback``, never as NPU. Per-token timestamps come from a transformers streamer's ``put`` calls.
"""

from __future__ import annotations

import os
import sys
import warnings

# before torch is imported (by the library): its model cache is a pickled module (docs/upstream.md#npu §3)
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_common import (
    PROMPTS_NOTE,
    Clock,
    callback_cost_us,
    generate_inputs,
    golden_check,
    hf_streamer,
    main,
    memory_note,
    now,
    peak_rss,
    run_grid,
    versions,
)
from smoke_npu import PRECISIONS, compile_dtype

API = "intel-npu-acceleration-library"
PACKAGES = ("intel-npu-acceleration-library", "torch", "transformers", "openvino")


def _npu_available() -> bool:
    from intel_npu_acceleration_library.backend import npu_available

    return bool(npu_available())


def probe(req: dict) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "NPU is not available in your system..." on import
        import intel_npu_acceleration_library  # noqa: F401

    if str(req.get("device") or "npu").lower() != "npu":
        return {"status": "fail", "reason": f"the NPU library runs on device npu, not {req.get('device')!r}"}
    if not _npu_available():
        if req.get("allow_fallback"):
            return {"status": "pass", "device": "cpu-fallback", "reason": "no NPU: measuring the CPU fallback"}
        return {"status": "skip", "reason": "no NPU (npu_available() is False); the library would silently run on "
                "the CPU instead (pass --allow-fallback to measure that, labelled cpu-fallback)"}
    return {"status": "pass", "device": "NPU", "reason": "NPU available"}


def run(req: dict) -> dict:
    gate = probe(req)
    if gate["status"] != "pass":
        return gate
    device = gate["device"]
    import torch
    from intel_npu_acceleration_library import compile as npu_compile
    from intel_npu_acceleration_library.compiler import CompilerConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    precision = str(req.get("precision") or "int4")
    if precision not in PRECISIONS:
        return {"status": "fail", "device": device,
                "reason": f"precision {precision!r} is not supported by the NPU library (int4, int8, fp16)"}
    details: dict = {"versions": versions(*PACKAGES),
                     "prefill": f"{PROMPTS_NOTE}; transformers generate() starts from an empty KV cache per call"}
    t = now()
    tok = AutoTokenizer.from_pretrained(req["model"])
    model = AutoModelForCausalLM.from_pretrained(req["model"], torch_dtype=torch.float32).eval()
    model = npu_compile(model, CompilerConfig(dtype=compile_dtype(precision)))
    details["load_s"] = round(now() - t, 6)
    load_peak = peak_rss()
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    if device == "NPU":
        try:
            from intel_npu_acceleration_library.backend import get_driver_version

            details["driver_version"] = str(get_driver_version())
        except Exception:  # docs/upstream.md#npu §5: every NPU query may raise
            details["driver_version"] = None
        details["device_name"] = "Intel NPU"
    else:
        details["driver_version"] = None
        details["device_name"] = "CPU (the library's fallback without an NPU)"
    clock = Clock()

    ids = req.get("golden_prompt_ids")
    if not ids:
        prompt = tok.apply_chat_template(req["messages"], tokenize=False, add_generation_prompt=True)
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
    ids = [int(i) for i in ids]
    n_check = int(req.get("max_new_tokens") or 16)
    inp = torch.tensor([ids], dtype=torch.long)
    with torch.no_grad():
        out = model.generate(input_ids=inp, attention_mask=torch.ones_like(inp), max_new_tokens=n_check,
                             min_new_tokens=n_check, do_sample=False, pad_token_id=pad)
    check_tokens = [int(x) for x in out[0, len(ids):]]
    ok, details["golden"] = golden_check(check_tokens, req)
    if not ok:
        return {"status": "fail", "device": device, "reason": details["golden"]["note"], "tokens": check_tokens,
                "n_tokens": len(check_tokens), "details": details}

    def encode(text: str) -> list:
        return [int(i) for i in tok(text, add_special_tokens=False)["input_ids"]]

    def generate(text: str, n: int) -> dict:
        streamer = hf_streamer(clock)  # before the request starts: not in TTFT
        clock.start()
        enc = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            model.generate(**generate_inputs(enc), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                           pad_token_id=pad, streamer=streamer)
        return {"token_times": list(clock.times), "end": now() - clock.t0, "reference": None}

    cells, resettable = run_grid(req, encode, generate)
    details["cells"] = cells
    peaks = [load_peak or 0] + [r["peak_rss_bytes"] or 0 for c in cells for r in c["runs"]]
    details["memory"] = {"peak_rss_bytes": max(peaks) or None, "device_memory_bytes": None,
                         "note": memory_note(resettable) + "; NPU memory is not exposed by the library"}
    probe_streamer = hf_streamer(Clock(), prompt_seen=True)
    value = torch.tensor([1])
    details["callback_us"] = callback_cost_us(lambda: probe_streamer.put(value),
                                              int(req["bench"].get("callback_probe", 2000)))
    return {"status": "pass", "device": device, "reason": details["golden"]["note"], "tokens": check_tokens,
            "n_tokens": len(check_tokens), "details": details}


if __name__ == "__main__":
    sys.exit(main(API, run, probe))
