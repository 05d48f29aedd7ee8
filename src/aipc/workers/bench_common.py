"""Shared helpers of the bench workers (stdlib only; imported by bench_genai/openvino/npu.py from this folder).

The workers record raw facts only: per run, the time of every generated token and of the end of the generate
call, in seconds since the request started (``time.perf_counter``), the time spent outside generation, the peak
process memory, and the runtime's own figures for the same run (the reference). aipc turns them into metrics.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from protocol import serve

now = time.perf_counter


# --- memory -----------------------------------------------------------------------------------------------------

def reset_peak_rss() -> bool:
    """Reset the peak-RSS counter (Linux: ``/proc/self/clear_refs`` value 5). False where it cannot be reset."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            return True
        except OSError:
            return False
    return False


def peak_rss() -> int | None:
    """Peak resident set size of this process in bytes (Linux VmHWM; Windows PeakWorkingSetSize)."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None
    if sys.platform == "win32":
        try:
            import ctypes
            from ctypes import wintypes

            class Counters(ctypes.Structure):
                _fields_ = [("cb", wintypes.DWORD), ("PageFaultCount", wintypes.DWORD),
                            ("PeakWorkingSetSize", ctypes.c_size_t), ("WorkingSetSize", ctypes.c_size_t),
                            ("QuotaPeakPagedPoolUsage", ctypes.c_size_t), ("QuotaPagedPoolUsage", ctypes.c_size_t),
                            ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t),
                            ("QuotaNonPagedPoolUsage", ctypes.c_size_t), ("PagefileUsage", ctypes.c_size_t),
                            ("PeakPagefileUsage", ctypes.c_size_t)]

            counters = Counters()
            counters.cb = ctypes.sizeof(Counters)
            kernel32 = ctypes.WinDLL("kernel32")
            psapi = ctypes.WinDLL("psapi")
            kernel32.GetCurrentProcess.restype = wintypes.HANDLE
            proc = kernel32.GetCurrentProcess()
            if psapi.GetProcessMemoryInfo(proc, ctypes.byref(counters), counters.cb):
                return int(counters.PeakWorkingSetSize)
        except (OSError, AttributeError):
            return None
        return None
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(rss) if sys.platform == "darwin" else int(rss) * 1024
    except (ImportError, OSError):
        return None


def memory_note(resettable: bool) -> str:
    if resettable:
        return "per-run peak RSS (VmHWM reset before each run); the target's peak also covers loading"
    return "peak RSS since the worker started (this OS cannot reset the peak counter), load included"


# --- prompts ----------------------------------------------------------------------------------------------------

def build_prompt(encode: Callable[[str], list], words: list, n_tokens: int, seed: int,
                 run: int = 0) -> tuple[str, int]:
    """A deterministic text of the given words whose encoding has n_tokens tokens (or the closest count below it).

    ``run`` varies the text: each run of a cell gets its own prompt (so no runtime can serve it from a prompt or
    prefix cache filled by an earlier run), and its first word is the ``run``-th of a seeded shuffle of ``words``, so
    prompts differ from their first token on. Every word encodes to at least one token, so a text of n_tokens words
    is long enough; a binary search finds the longest prefix (in words) that does not exceed n_tokens, then one word
    that adds exactly the missing token is appended where one exists.
    """
    if n_tokens < 1:
        raise ValueError("a prompt needs at least one token")
    rng = random.Random(seed * 1000003 + n_tokens + 7919 * run)
    firsts = list(words)
    random.Random(seed).shuffle(firsts)
    seq = [firsts[run % len(firsts)]] + [rng.choice(words) for _ in range(n_tokens - 1)]

    def count(k: int) -> int:
        return len(encode(" ".join(seq[:k])))

    lo, hi = 1, n_tokens  # count(lo) >= 1; find the largest k with count(k) <= n_tokens
    if count(lo) > n_tokens:
        return seq[0], count(1)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(mid) <= n_tokens:
            lo = mid
        else:
            hi = mid - 1
    text, got = " ".join(seq[:lo]), count(lo)
    fillers = list(dict.fromkeys(words))  # in the given order: a set's order changes with each process's hash seed
    rng.shuffle(fillers)
    for w in fillers:
        if got >= n_tokens:
            break
        n = len(encode(f"{text} {w}"))
        if n == n_tokens:
            text, got = f"{text} {w}", n
    return text, got


PROMPTS_NOTE = "a different prompt of the same token count for every run (warm-ups included)"


def distinct_prompts(encode: Callable[[str], list], words: list, n_tokens: int, seed: int,
                     count: int) -> tuple[list, int]:
    """``count`` different prompts of exactly the same token count (the most common count of the first ``count``
    variants, the largest on a tie; at most ``n_tokens``), one per run of a cell; the same texts for every runtime.

    A variant that lands on another count is replaced by the next one (up to 200 more tries).
    """
    made = [build_prompt(encode, words, n_tokens, seed, r) for r in range(count)]
    counts = [n for _, n in made]
    target = max(sorted(set(counts), reverse=True), key=counts.count)
    chosen = list(dict.fromkeys(text for text, n in made if n == target))
    r = count
    while len(chosen) < count and r < count + 200:
        text, n = build_prompt(encode, words, n_tokens, seed, r)
        if n == target and text not in chosen:
            chosen.append(text)
        r += 1
    if len(chosen) < count:
        raise ValueError(f"cannot make {count} different prompts of {target} tokens from the prompt words")
    return chosen, target


# --- timing -----------------------------------------------------------------------------------------------------

def callback_cost_us(callback: Callable[[], object], n: int) -> float:
    """Mean cost in microseconds of one call of the per-token timestamping callback (the harness's own cost)."""
    n = max(5, int(n))
    for _ in range(min(n, 100)):
        callback()
    batch = n // 5
    best = float("inf")
    for _ in range(5):  # the fastest of 5 batches: the callback's own cost, not a scheduler hiccup
        t0 = now()
        for _ in range(batch):
            callback()
        best = min(best, (now() - t0) / batch)
    return best * 1e6


class Clock:
    """The per-token timestamp sink of the streamer callbacks: seconds since ``start()`` (the request start)."""

    def __init__(self) -> None:
        self.t0 = now()
        self.times: list = []

    def start(self) -> None:
        self.t0 = now()
        self.times = []

    def tick(self, count: int = 1) -> None:
        t = now() - self.t0
        self.times.extend([t] * count)


def hf_streamer(clock: Clock, prompt_seen: bool = False):
    """A transformers streamer that ticks ``clock`` once per generated token (``generate`` calls ``put`` with the
    prompt ids first, then once per token). transformers is imported here, inside the worker's venv."""
    from transformers.generation.streamers import BaseStreamer

    class TimingStreamer(BaseStreamer):
        def __init__(self) -> None:
            self.prompt_seen = prompt_seen

        def put(self, value):  # first call: the prompt ids; then one call per generated token
            if not self.prompt_seen:
                self.prompt_seen = True
                return
            clock.tick(1)

        def end(self):
            return None

    return TimingStreamer()


def generate_inputs(enc) -> dict:
    """The tokenizer output a transformers ``generate`` gets: ids and attention mask only (a tokenizer may add
    ``token_type_ids``, which models compiled by the NPU library reject as an unused model kwarg)."""
    return {k: enc[k] for k in ("input_ids", "attention_mask") if k in enc}


def run_grid(req: dict, encode: Callable[[str], list],
             generate: Callable[[str, int], dict]) -> tuple[list, bool]:
    """Run every grid cell: warm-up runs first (marked by position), then the repetitions.

    ``generate(text, n)`` returns {"token_times": [...], "end": s, "reference": {...} | None, "tokens": [...]}
    with times since its own request start. Returns the cells and whether the peak-RSS counter could be reset.
    """
    bench = req["bench"]
    words = list(bench["words"])
    seed = int(bench.get("seed", 42))
    total = int(bench["warmup"]) + int(bench["repetitions"])
    cells = []
    resettable = None
    for prompt_tokens, gen_tokens in bench["grid"]:
        # every run (warm-ups included) has its own prompt of the same length: each run does its own prefill
        texts, actual = distinct_prompts(encode, words, int(prompt_tokens), seed, total)
        runs = []
        for text in texts:
            t_start = now()
            ok = reset_peak_rss()
            resettable = ok if resettable is None else resettable and ok
            rec = generate(text, int(gen_tokens))
            rss = peak_rss()
            run = {
                "token_times": rec["token_times"],
                "end": rec["end"],
                "reference": rec.get("reference"),
                "peak_rss_bytes": rss,
                "n_tokens": len(rec["token_times"]),
            }
            run["outside_s"] = max(0.0, (now() - t_start) - rec["end"])
            runs.append(run)
        # a probe, not a measured run: the last prompt once more; a much shorter TTFT shows a prompt/prefix cache
        again = generate(texts[-1], int(gen_tokens))["token_times"]
        digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:16]  # the same texts on every runtime
        cells.append({"prompt_tokens": int(prompt_tokens), "gen_tokens": int(gen_tokens),
                      "prompt_tokens_actual": actual, "prompts": "distinct", "prompts_sha256": digest, "runs": runs,
                      "repeat_ttft_s": again[0] if again else None})
    return cells, bool(resettable)


def golden_check(tokens: list, req: dict) -> tuple[bool, dict]:
    """fp32: the ids must equal the golden reference (a fast but wrong run fails instead of scoring)."""
    golden = req.get("golden")
    if golden is None:
        why = "no golden reference for this model" if req.get("precision") == "fp32" else \
            f"{req.get('precision')}: ids are not compared with the fp32 reference (count checked only)"
        want = int(req.get("max_new_tokens") or 0)
        ok = not want or len(tokens) == want
        return ok, {"checked": False, "match": None, "note": why, "tokens": tokens}
    golden = [int(t) for t in golden]
    if tokens == golden:
        return True, {"checked": True, "match": True, "note": f"{len(golden)} ids equal the golden reference"}
    pairs = enumerate(zip(tokens, golden, strict=False))
    first = next((i for i, (a, b) in pairs if a != b), min(len(tokens), len(golden)))
    return False, {"checked": True, "match": False, "note": f"ids differ from the golden reference at token {first}",
                   "tokens": tokens, "golden": golden}


def versions(*dists: str) -> dict:
    from importlib import metadata

    out = {}
    for d in dists:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[d] = metadata.version(d)
    return out


def main(api: str, run: Callable[[dict], dict], probe: Callable[[dict], dict]) -> int:
    """Worker entry point: ``--request REQ.json --result RES.json``; RES.json is always written."""

    def dispatch(req: dict) -> dict:
        res = {"api": req.get("api") or api}
        if req.get("noop"):  # harness overhead: process start + JSON exchange, nothing imported or generated
            return {**res, "status": "pass", "reason": "no-op"}
        return {**res, **(probe(req) if req.get("probe") else run(req))}

    return serve(api, dispatch)
