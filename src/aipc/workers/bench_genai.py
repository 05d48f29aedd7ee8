"""Bench worker of the onnxruntime-genai path (runs in the genai venv; stdlib + onnxruntime_genai only).

python bench_genai.py --request REQ.json --result RES.json   (protocol: aipc.runtimes.worker; bench keys in "bench")

Per run: request start -> tokenizer.encode -> Generator -> append_tokens (prefill) -> generate_next_token loop;
each token's timestamp is taken right after its generate_next_token() call; the ids are read after the loop.
The reference is onnxruntime-genai's own benchmark method (benchmark/python/benchmark_e2e.py): token-generation
latency = the duration of each generate_next_token() call after the first, decode tokens/s = 1 / its mean;
measured in the same loop, for the same runs.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_common import PROMPTS_NOTE, golden_check, main, memory_note, now, peak_rss, run_grid, versions
from devices import dml_wheel_installed

API = "onnxruntime-genai"
PACKAGES = ("onnxruntime-genai", "onnxruntime-genai-directml", "onnxruntime", "onnxruntime-directml")
REFERENCE = "onnxruntime-genai benchmark_e2e"


def _dml_available() -> tuple[bool, str]:
    if sys.platform != "win32":
        return False, "DirectML needs Windows with a DirectX 12 GPU (this is not Windows)"
    if not dml_wheel_installed():
        return False, "DirectML requested but the venv has no onnxruntime-genai-directml wheel (build it: nox -s build)"
    return True, ""


def probe(req: dict) -> dict:
    import onnxruntime_genai  # noqa: F401  (the runtime must import)

    device = str(req.get("device") or "cpu").lower()
    if device not in ("cpu", "dml"):
        return {"status": "fail", "reason": f"unsupported device {device!r} for onnxruntime-genai (cpu or dml)"}
    if device == "dml":
        ok, why = _dml_available()
        if not ok:
            return {"status": "skip", "reason": why}
    return {"status": "pass", "reason": "device available", "details": {"versions": versions(*PACKAGES)}}


def run(req: dict) -> dict:
    import onnxruntime_genai as og

    device = str(req.get("device") or "cpu").lower()
    gate = probe(req)
    if gate["status"] != "pass":
        return gate
    details: dict = {"versions": versions(*PACKAGES),
                     "prefill": f"{PROMPTS_NOTE}; a new Generator per run starts from an empty KV cache"}
    t = now()
    cfg = og.Config(req["model"])
    cfg.clear_providers()
    if device == "dml":
        cfg.append_provider("dml")
    model = og.Model(cfg)
    tok = og.Tokenizer(model)
    details["load_s"] = round(now() - t, 6)
    load_peak = peak_rss()
    used = "DML" if device == "dml" else "CPU"
    details["device_name"] = "DirectML adapter (default)" if device == "dml" else _cpu_name()
    details["driver_version"] = None

    def generate_ids(ids: list, n: int, t0: float) -> dict:
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=len(ids) + n, min_length=len(ids) + n, do_sample=False)
        gen = og.Generator(model, params)
        gen.append_tokens(ids)
        is_done, step = gen.is_done, gen.generate_next_token
        stamps, ref = [], []
        # Hot loop: a timestamp right after each generate_next_token() (the token exists then) and that call's own
        # duration (the reference). The ids are read once after the loop with get_sequence(), as genai's benchmark
        # does; reading each with get_next_tokens() would add a few microseconds per token to aipc's side only.
        while not is_done():
            a = now()
            step()
            b = now()
            stamps.append(b)
            ref.append(b - a)
        end = now() - t0
        seq = [int(x) for x in gen.get_sequence(0)]
        tokens = seq[len(ids):]
        del gen
        times = [s - t0 for s in stamps]
        reference = None
        if len(ref) > 1:
            lat = sum(ref[1:]) / len(ref[1:])  # generate_next_token() calls after the first
            reference = {"name": REFERENCE, "decode_tps": 1.0 / lat if lat > 0 else None,
                         "token_gen_latency_ms": lat * 1000.0, "n": len(ref) - 1}
        return {"token_times": times, "end": end, "tokens": tokens, "reference": reference}

    # the golden check first: fp32 must reproduce the reference ids, else nothing is scored
    prompt_ids = req.get("golden_prompt_ids")
    if not prompt_ids:
        prompt = tok.apply_chat_template(json.dumps(req["messages"]), add_generation_prompt=True)
        prompt_ids = [int(i) for i in tok.encode(prompt)]
    check = generate_ids([int(i) for i in prompt_ids], int(req.get("max_new_tokens") or 16), now())
    ok, details["golden"] = golden_check(check["tokens"], req)
    if not ok:
        return {"status": "fail", "device": used, "reason": details["golden"]["note"], "tokens": check["tokens"],
                "n_tokens": len(check["tokens"]), "details": details}

    def encode(text: str) -> list:
        return [int(i) for i in tok.encode(text)]

    def generate(text: str, n: int) -> dict:
        t0 = now()  # request start: tokenization is inside TTFT
        return generate_ids(encode(text), n, t0)

    cells, resettable = run_grid(req, encode, generate)
    details["cells"] = cells
    details["memory"] = {"peak_rss_bytes": max([load_peak or 0] + [r["peak_rss_bytes"] or 0 for c in cells
                                                                   for r in c["runs"]]) or None,
                         "device_memory_bytes": None,
                         "note": memory_note(resettable) + ("; DirectML memory is not exposed through genai"
                                                            if device == "dml" else "")}
    probe_times: list = []
    details["callback_us"] = _callback_us(probe_times, int(req["bench"].get("callback_probe", 2000)))
    return {"status": "pass", "device": used, "reason": details["golden"]["note"], "tokens": check["tokens"],
            "n_tokens": len(check["tokens"]), "details": details}


def _callback_us(sink: list, n: int) -> float:
    """Cost of the per-token bookkeeping aipc adds to the loop (one timestamp and one list append)."""
    from bench_common import callback_cost_us

    return callback_cost_us(lambda: sink.append(now()), n)


def _cpu_name() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or None


if __name__ == "__main__":
    sys.exit(main(API, run, probe))
