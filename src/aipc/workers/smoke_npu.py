"""Smoke worker of the NPU-library path (runs in the npu venv; stdlib + that venv's packages only).

python smoke_npu.py --request REQ.json --result RES.json

Request keys (worker protocol): model (a Hugging Face Phi-3 checkpoint folder), device (auto|cpu|npu; gpu/dml give
``skip``), precision (int4|int8|fp16; fp32 gives ``skip``: the library has no fp32 compile), max_new_tokens,
messages, golden (ids or null; reported as ``details.golden_prefix_match`` only); path-specific:
- ``action``: ``probe`` imports the library and reports ``npu_available()`` only, nothing is compiled;
- ``prompt_ids``: token ids of the prompt, used instead of the folder's tokenizer and chat template.

What it does (docs/upstream.md#npu §3 and 6): import intel_npu_acceleration_library, ask ``npu_available()``,
compile the model with ``NPUModelForCausalLM.from_pretrained(dir, config=CompilerConfig(dtype=...))`` and generate
``max_new_tokens`` tokens greedily. The device is reported as ``NPU`` only when ``npu_available()`` is True; without
an NPU the library silently runs on the OpenVINO CPU device, reported as ``cpu-fallback``. Known traps handled: the
library writes ``./cache`` and ``./nc_workspace`` into the working directory (a temporary one is used),
``torch.load`` of its model cache needs ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` on torch >= 2.6, and compiled
kernels are shared through a global cache that must be cleared between models (``backend.clear_cache()``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from protocol import compare, failure, serve

# before torch is imported (by the library): its model cache is a pickled module (docs/upstream.md#npu §3)
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

API = "intel-npu-acceleration-library"
DEVICES = ("auto", "cpu", "npu")
PRECISIONS = ("int4", "int8", "fp16")
OTHER_DEVICES = ("gpu", "dml")  # devices of the other paths
OTHER_PRECISIONS = ("fp32",)  # the library compiles fp16 / int8 / int4 only


def compile_dtype(precision: str):
    import intel_npu_acceleration_library as npu_lib
    import torch

    return {"int4": npu_lib.int4, "int8": torch.int8, "fp16": torch.float16}[precision]


def prompt_ids(req: dict) -> list[int]:
    if req.get("prompt_ids"):
        return [int(i) for i in req["prompt_ids"]]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(req["model"])
    messages = req.get("messages") or [{"role": "user", "content": "Hello"}]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return [int(i) for i in ids]


def library_facts(npu_lib, backend) -> dict:
    facts = {"library_version": str(getattr(npu_lib, "__version__", "")), "library_file": npu_lib.__file__}
    available = bool(backend.npu_available())
    facts["npu_available"] = available
    if available:
        try:  # every NPU query may fail (docs/upstream.md#npu §5)
            facts["npu_driver_version"] = int(backend.get_driver_version())
        except Exception as exc:
            facts["npu_driver_version_error"] = str(exc)
    return facts


def run(req: dict, res: dict) -> None:
    details = res["details"]
    device = str(req.get("device") or "auto").lower()
    precision = str(req.get("precision") or "int4").lower()
    res["precision"] = precision
    if device not in DEVICES:
        # a device of another path (gpu, dml) is not this path's failure: skip; anything else is bad input
        status = "skip" if device in OTHER_DEVICES else "fail"
        res.update(status=status, reason=f"device {device!r} is not supported by {API} (use one of: "
                                         f"{', '.join(DEVICES)}; it runs on the NPU or falls back to CPU)")
        return
    if precision not in PRECISIONS and req.get("action") != "probe":
        status = "skip" if precision in OTHER_PRECISIONS else "fail"
        res.update(status=status, reason=f"precision {precision!r} is not supported by {API} "
                                         f"(CompilerConfig dtype: {', '.join(PRECISIONS)})")
        return
    model_dir = str(req.get("model") or "")
    if req.get("action") != "probe" and not os.path.isfile(os.path.join(model_dir, "config.json")):
        res.update(status="fail", reason=f"model folder {model_dir!r} has no config.json")
        return

    t = time.monotonic()
    import intel_npu_acceleration_library as npu_lib
    import torch
    from intel_npu_acceleration_library import backend
    from intel_npu_acceleration_library.compiler import CompilerConfig

    details["import_seconds"] = round(time.monotonic() - t, 4)
    details.update(library_facts(npu_lib, backend))
    on_npu = details["npu_available"]
    res["device"] = "NPU" if on_npu else "cpu-fallback"
    if req.get("action") == "probe":
        res.update(status="pass", reason="NPU present" if on_npu else "no NPU: the library falls back to CPU")
        return

    want = int(req.get("max_new_tokens") or 16)
    ids = prompt_ids(req)
    details["prompt_tokens"] = len(ids)
    t = time.monotonic()
    from intel_npu_acceleration_library import NPUModelForCausalLM

    model = NPUModelForCausalLM.from_pretrained(model_dir, config=CompilerConfig(dtype=compile_dtype(precision)))
    details["compile_seconds"] = round(time.monotonic() - t, 4)
    try:
        input_ids = torch.tensor([ids], dtype=torch.long)
        gen_cfg = getattr(model, "generation_config", None)
        pad = getattr(gen_cfg, "pad_token_id", None)
        if pad is None:
            eos = getattr(gen_cfg, "eos_token_id", None)
            pad = (eos[0] if isinstance(eos, list) else eos) if eos is not None else 0
        t = time.monotonic()
        with torch.no_grad():
            out = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=want,
                                 min_new_tokens=want, do_sample=False, pad_token_id=pad)
        details["generate_seconds"] = round(time.monotonic() - t, 4)
    finally:
        backend.clear_cache()  # kernels of this model must not be reused by the next one (docs/upstream.md#npu §3)
    tokens = [int(i) for i in out[0, len(ids):].tolist()]
    res["tokens"], res["n_tokens"] = tokens, len(tokens)
    golden = req.get("golden")
    if golden:
        same = 0
        for a, b in zip(tokens, golden, strict=False):
            if a != b:
                break
            same += 1
        details["golden_prefix_match"] = same  # informational: quantized ids may differ from fp32
    status, reason = compare(tokens, req, getattr(getattr(model, "config", None), "vocab_size", None))
    if status != "pass":
        res.update(status=status, reason=reason)
    elif device == "npu" and not on_npu:
        res.update(status="skip", reason=f"device npu requested but npu_available() is False (no NPU or driver); "
                                         f"the {want} tokens came from the CPU fallback")
    else:
        where = "on the NPU" if on_npu else "on the CPU fallback (no NPU present)"
        res.update(status="pass", reason=f"{want} tokens generated at {precision} {where}")


def run_in_tempdir(req: dict) -> dict:
    """Run with a private working directory: the library writes ./cache and ./nc_workspace (docs/upstream.md#npu §3)."""
    res: dict = {"api": API, "details": {}}  # run() sets the precision it uses
    if req.get("model"):
        req["model"] = os.path.abspath(req["model"])
    cwd = os.getcwd()
    work = tempfile.mkdtemp(prefix="aipc-npu-")
    try:
        os.chdir(work)
        run(req, res)
    except Exception as exc:  # keep what run() found (device, details) with the failure
        failure(exc, res)
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)
    return res


def main(argv: list[str] | None = None) -> int:
    return serve(API, run_in_tempdir, argv)


if __name__ == "__main__":
    sys.exit(main())
