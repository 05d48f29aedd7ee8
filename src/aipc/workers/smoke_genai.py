"""Smoke worker of the onnxruntime-genai path (runs in the genai venv; stdlib + onnxruntime_genai only).

python smoke_genai.py --request REQ.json --result RES.json

Request keys (worker protocol): model (a genai export folder), device (cpu|dml), precision, max_new_tokens,
messages, golden (ids or null); optional prompt_ids (the reference tokenizer's ids of the templated prompt).
Greedy generation of exactly max_new_tokens with the Phi-3 chat template (docs/upstream.md#paths §3).
Checks: at fp32 the ids equal ``golden`` exactly; otherwise the count and that every id is inside the vocabulary.
Ids, not decoded text, are compared (og's decoder truncates invalid byte-fallback sequences, section 3).
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from devices import dml_wheel_installed
from protocol import compare, prompt_mismatch, serve

API = "onnxruntime-genai"


def run(req: dict) -> dict:
    res: dict = {"status": "fail", "details": {}}  # serve lays these keys over its base result
    device = str(req.get("device") or "cpu").lower()
    import onnxruntime_genai as og

    details = res["details"]
    details["onnxruntime_genai"] = getattr(og, "__version__", "")
    details["dml_wheel"] = dml_wheel_installed()
    if device not in ("cpu", "dml"):
        res.update(status="fail", reason=f"unsupported device {device!r} for onnxruntime-genai (cpu or dml)")
        return res
    if device == "dml" and not details["dml_wheel"]:
        res.update(status="skip", reason="DirectML requested but the venv has no onnxruntime-genai-directml wheel")
        return res
    t = time.monotonic()
    cfg = og.Config(req["model"])
    cfg.clear_providers()  # CPU: also runs a DML-targeted export on the CPU wheel (docs/upstream.md#paths §3)
    if device == "dml":
        cfg.append_provider("dml")
    model = og.Model(cfg)
    tok = og.Tokenizer(model)
    details["load_seconds"] = round(time.monotonic() - t, 4)
    res["device"] = "DML" if device == "dml" else "CPU"
    prompt = tok.apply_chat_template(json.dumps(req["messages"]), add_generation_prompt=True)
    ids = [int(i) for i in tok.encode(prompt)]
    details["prompt_tokens"] = len(ids)
    mismatch = prompt_mismatch(ids, req)
    if mismatch:
        res["reason"] = mismatch
        return res
    n = int(req.get("max_new_tokens") or 16)
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(ids) + n, min_length=len(ids) + n, do_sample=False)
    gen = og.Generator(model, params)
    t = time.monotonic()
    gen.append_tokens(ids)
    tokens: list[int] = []
    first = None
    while not gen.is_done():
        gen.generate_next_token()
        tokens.append(int(gen.get_next_tokens()[0]))
        if first is None:
            first = time.monotonic() - t
    details["generate_seconds"] = round(time.monotonic() - t, 4)
    details["first_token_seconds"] = round(first or 0.0, 4)
    vocab = None
    try:
        with open(os.path.join(req["model"], "genai_config.json"), encoding="utf-8") as fh:
            vocab = int(json.load(fh)["model"]["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    status, reason = compare(tokens, req, vocab)
    res.update(status=status, reason=reason, tokens=tokens, n_tokens=len(tokens))
    return res


def main() -> int:
    return serve(API, run)


if __name__ == "__main__":
    sys.exit(main())
