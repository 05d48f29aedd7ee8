"""Each measured run does its own prefill: distinct prompts of one token count, the prefix cache off where a runtime
has one, and a prefix-cache suspicion verdict that catches a runtime whose TTFT is a cache hit (fake worker outputs).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from aipc.bench import run as bench_run
from aipc.bench.metrics import cell_result, prefill_suspicion
from aipc.bench.report import prefill_lines
from aipc.bench.schema import upgrade, validate
from aipc.bench.targets import WORDS, Settings, request, targets

WORKERS = Path(__file__).resolve().parents[1] / "src" / "aipc" / "workers"


def load_worker(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", WORKERS / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def toy_encode(text: str) -> list[int]:
    """Words of up to 4 letters are 1 token, longer ones 2 (so a prefix in words can miss the count by one)."""
    return [len(w) for w in text.split() for _ in range(1 if len(w) <= 4 else 2)]


# --- distinct prompts of one length ------------------------------------------------------------------------------

@pytest.mark.parametrize("n_tokens", [16, 32, 128])
def test_every_run_gets_its_own_prompt_of_the_same_token_count(n_tokens: int) -> None:
    common = load_worker("bench_common")
    texts, count = common.distinct_prompts(toy_encode, list(WORDS), n_tokens, 42, 12)
    assert len(texts) == 12 and len(set(texts)) == 12  # a different prompt for every run
    assert {len(toy_encode(t)) for t in texts} == {count}  # all of exactly the same length in tokens
    assert count == n_tokens  # a word adding exactly the missing token is found
    assert len({t.split()[0] for t in texts}) == 12  # they differ from the first token on (no shared prefix)
    assert common.distinct_prompts(toy_encode, list(WORDS), n_tokens, 42, 12) == (texts, count)  # deterministic
    assert common.distinct_prompts(toy_encode, list(WORDS), n_tokens, 7, 12)[0] != texts  # the seed matters


def test_prompts_do_not_depend_on_the_process(tmp_path: Path) -> None:
    """Each runtime's worker is its own process: the texts must not depend on its hash seed (set order)."""
    import subprocess
    import sys

    code = (f"import sys; sys.path.insert(0, {str(WORKERS)!r}); import bench_common as c\n"
            "enc = lambda t: [len(w) for w in t.split() for _ in range(1 if len(w) <= 4 else 2)]\n"
            f"print(c.distinct_prompts(enc, {list(WORDS)!r}, 64, 42, 12))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                           env={"PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(outs) == 1


def test_prompts_of_a_tokenizer_that_cannot_reach_the_count_share_the_closest_one() -> None:
    common = load_worker("bench_common")

    def pairs(text: str) -> list[int]:  # every word is 2 tokens: an odd count cannot be reached
        return [0, 0] * len(text.split())

    texts, count = common.distinct_prompts(pairs, list(WORDS), 15, 42, 6)
    assert count == 14 and len(set(texts)) == 6 and {len(pairs(t)) for t in texts} == {14}


def test_the_grid_runs_each_prompt_once_and_probes_a_repeat() -> None:
    common = load_worker("bench_common")
    sent: list[str] = []

    def generate(text: str, n: int) -> dict[str, Any]:
        sent.append(text)
        return {"token_times": [0.01 * (i + 1) for i in range(n)], "end": 0.01 * n + 0.001}

    req = {"bench": {"words": list(WORDS), "seed": 42, "warmup": 1, "repetitions": 5, "grid": [[16, 4]]}}
    cells, _ = common.run_grid(req, toy_encode, generate)
    assert len(sent) == 7 and len(set(sent[:6])) == 6  # warm-up + 5 runs, all different; then the probe
    assert sent[6] == sent[5]  # the probe repeats the last measured prompt
    cell = cells[0]
    assert cell["prompts"] == "distinct" and cell["repeat_ttft_s"] == pytest.approx(0.01)
    assert len(cell["prompts_sha256"]) == 16
    again, _ = common.run_grid(req, toy_encode, generate)  # another runtime with the same tokenizer
    assert again[0]["prompts_sha256"] == cell["prompts_sha256"]
    assert len(cell["runs"]) == 6  # the probe is not a run


class FakeSchedulerConfig:
    def __init__(self) -> None:
        self.enable_prefix_caching = True
        self.max_num_batched_tokens = 256


@pytest.mark.parametrize("device", ["CPU", "GPU.0"])
def test_llmpipeline_turns_its_prefix_cache_off(device: str) -> None:
    ov = load_worker("bench_openvino")
    props: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    note = ov.no_prefix_cache(props, device, FakeSchedulerConfig)
    assert props["scheduler_config"].enable_prefix_caching is False
    assert props["scheduler_config"].max_num_batched_tokens > 1 << 20  # as the latency-oriented default
    assert "prefix caching disabled" in note and "different prompt" in note


def test_llmpipeline_on_the_npu_keeps_its_stateful_props() -> None:
    ov = load_worker("bench_openvino")
    props = {"MAX_PROMPT_LEN": 576}
    assert "no prefix cache" in ov.no_prefix_cache(props, "NPU", FakeSchedulerConfig)
    assert props == {"MAX_PROMPT_LEN": 576}


# --- the prefix-cache suspicion verdict ----------------------------------------------------------------------------

def raw_cell(ttfts: list[float], gap: float, *, prompt: int = 128, prompts: str | None = "distinct",
             repeat: float | None = None, n: int = 8) -> dict[str, Any]:
    runs = [{"token_times": [t + i * gap for i in range(n)], "end": t + n * gap, "n_tokens": n} for t in ttfts]
    cell: dict[str, Any] = {"prompt_tokens": prompt, "gen_tokens": n, "prompt_tokens_actual": prompt, "runs": runs}
    if prompts is not None:
        cell["prompts"] = prompts
    if repeat is not None:
        cell["repeat_ttft_s"] = repeat
    return cell


def test_a_real_prefill_raises_no_suspicion() -> None:
    # 128-token prompt: 0.36 s to the first token, 11 ms per token after it (the distinct-prompt figures)
    c = cell_result(raw_cell([0.8, 0.36, 0.35, 0.37, 0.36, 0.36], 0.011, repeat=0.355), warmup=1)
    assert c.prefill_check is None
    assert c.to_json()["prefill_check"] is None and c.to_json()["repeat_ttft_ms"] == pytest.approx(355.0)


def test_ttft_equal_to_tpot_is_a_prefix_cache_suspicion() -> None:
    # the LLMPipeline: every run sent the same prompt, TTFT 11.2 ms against TPOT 11.1 ms
    c = cell_result(raw_cell([0.81, 0.0112, 0.0113, 0.0111, 0.0112, 0.0112], 0.0111, prompts=None), warmup=1)
    assert c.prompts == "same"  # a worker that does not say is taken to repeat one prompt
    assert c.prefill_check is not None and c.prefill_check.startswith("prefix-cache suspicion")
    assert "within 1.2x the fastest TPOT" in c.prefill_check


def test_a_loaded_machine_is_not_a_cache_hit() -> None:
    """Other work on the cores: one preempted run (here the first measured one) and TPOT inflated in most runs must not
    read as a cache effect; the fastest runs still show the prefill."""
    c = cell_result(raw_cell([0.8, 0.9, 0.36, 0.35, 0.37, 0.36], 0.011, repeat=0.5), warmup=1)
    assert c.prefill_check is None
    ttft = [0.0074, 0.0071, 0.0069, 0.0072, 0.0070]
    tpot = [0.0103, 0.0101, 0.0012, 0.0104, 0.0100]
    assert prefill_suspicion(32, "distinct", [t * 1000 for t in ttft], [t * 1000 for t in tpot]) is None


def test_a_repeated_prompt_served_from_a_cache() -> None:
    """The repeat probe shows the runtime caches prompts: a suspicion when the measured runs repeated one prompt,
    a note when each run had its own (the measured TTFT is then a real prefill)."""
    same = cell_result(raw_cell([0.8, 0.36, 0.35, 0.37, 0.36, 0.36], 0.011, prompts="same", repeat=0.019), warmup=1)
    assert same.prefill_check is not None and same.prefill_check.startswith("prefix-cache suspicion")
    assert "repeated prompt took 19 ms to its first token, every new one 350 ms or more" in same.prefill_check
    distinct = cell_result(raw_cell([0.8, 0.36, 0.35, 0.37, 0.36, 0.36], 0.011, repeat=0.019), warmup=1)
    assert distinct.prefill_check is not None and distinct.prefill_check.startswith("prompt cache seen")


def test_short_prompts_are_not_judged_by_the_ttft_to_tpot_rule() -> None:
    assert prefill_suspicion(8, "distinct", [1.0] * 5, [1.0] * 5) is None
    assert prefill_suspicion(16, "distinct", [1.0] * 5, [1.0] * 5) is not None
    assert prefill_suspicion(16, "distinct", [], []) is None


def fake_result(req: dict[str, Any], ttft: float, gap: float) -> dict[str, Any]:
    bench = req["bench"]
    cells = [raw_cell([ttft] * (bench["warmup"] + bench["repetitions"]), gap, prompt=p, n=g)
             for p, g in bench["grid"]]
    return {"status": "pass", "device": "CPU", "reason": "ok", "seconds": 0.5,
            "details": {"cells": cells, "prefill": "a different prompt per run; prefix caching disabled",
                        "memory": {"peak_rss_bytes": 1 << 20, "device_memory_bytes": None, "note": "t"}}}


def test_the_verdict_reaches_bench_json_and_the_report() -> None:
    s = Settings(grid=((128, 8),))
    t = targets(("openvino",), ("cpu",), s)[0]
    req = request(t, "m", s, None)
    healthy = bench_run.target_entry(t, fake_result(req, 0.36, 0.011), s.warmup)
    cached = bench_run.target_entry(t, fake_result(req, 0.0112, 0.0111), s.warmup)
    assert healthy["prefill"] == "a different prompt per run; prefix caching disabled"
    assert healthy["cells"][0]["prefill_check"] is None
    assert cached["cells"][0]["prefill_check"].startswith("prefix-cache suspicion")
    doc = {"targets": [cached]}
    lines = prefill_lines(doc)
    assert any("128x8: prefix-cache suspicion" in line for line in lines)


def test_a_version_1_file_is_read_as_repeated_prompts() -> None:
    s = Settings(grid=((128, 8),))
    t = targets(("openvino",), ("cpu",), s)[0]
    entry = bench_run.target_entry(t, fake_result(request(t, "m", s, None), 0.0112, 0.0111), s.warmup)
    for c in entry["cells"]:
        for key in ("prompts", "repeat_ttft_ms", "prefill_check"):
            del c[key]
        for summary in c["summary"].values():
            del summary["q1"], summary["q3"]
    del entry["prefill"]
    old = {"schema": "aipc-bench", "schema_version": 1, "created": "2026-11-29T18:00:00Z", "aipc_version": "0.1.0",
           "machine": {}, "settings": {}, "model": {}, "harness": {}, "targets": [entry]}
    doc = validate(old)
    assert doc["schema_version"] == 2 and doc["upgraded_from"] == 1 and old["schema_version"] == 1
    cell = doc["targets"][0]["cells"][0]
    assert cell["prompts"] == "same" and cell["prefill_check"].startswith("prefix-cache suspicion")
    assert cell["summary"]["ttft_ms"]["q1"] == pytest.approx(11.2)
    assert upgrade(old)["targets"][0]["prefill"] is None


# --- the real LLMPipeline on the tiny model (the openvino venv and export shared with verify's tests) -------------

@pytest.mark.slow
def test_real_llmpipeline_ttft_is_a_prefill_and_a_repeat_is_not_a_cache_hit(tmp_path: Path) -> None:
    """With its default scheduler config, LLMPipeline on CPU served a repeated 256-token prompt from its prefix
    cache (1.1 ms to the first token against 3.5 ms for a new prompt, measured here): the repeat probe must now take
    as long as the distinct prompts, and nothing about the cell may look like a cache hit."""
    from aipc.runtimes.genai import API as GENAI_API
    from aipc.runtimes.openvino import BENCH_API_PIPELINE
    from conftest import shared_cache

    s = check_settings_grid(((256, 8),))
    ts = [t for t in targets(("genai", "openvino"), ("cpu",), s) if t.api in (BENCH_API_PIPELINE, GENAI_API)]
    opts = bench_run.BenchOptions(settings=s, targets=ts, cache=shared_cache(), wheels=tmp_path / "no-wheels")
    doc = bench_run.run_bench(opts, echo=lambda line: None)
    by = {t["api"]: t for t in doc["targets"]}
    assert {t["status"] for t in by.values()} == {"pass"}, [t["reason"] for t in by.values()]
    t = by[BENCH_API_PIPELINE]
    assert "prefix caching disabled" in t["prefill"]
    c = t["cells"][0]
    assert c["prompts"] == "distinct" and c["prompt_tokens_actual"] > 200
    g = by[GENAI_API]["cells"][0]  # the same prompts on both runtimes (one tokenizer, exported twice)
    assert (g["prompts_sha256"], g["prompt_tokens_actual"]) == (c["prompts_sha256"], c["prompt_tokens_actual"])
    ttft, tpot = c["summary"]["ttft_ms"]["median"], c["summary"]["tpot_ms"]["median"]
    print(f"LLMPipeline 256x8: TTFT {ttft:.3f} ms, TPOT {tpot:.3f} ms, repeated prompt {c['repeat_ttft_ms']:.3f} ms; "
          f"genai: TTFT {g['summary']['ttft_ms']['median']:.3f} ms")
    assert c["prefill_check"] is None, c["prefill_check"]
    assert c["repeat_ttft_ms"] * 2 > c["summary"]["ttft_ms"]["min"]  # the same prompt again is not a cache hit
    assert ttft > 2 * tpot  # 256 prompt tokens cost more than two decode steps


def check_settings_grid(grid: tuple[tuple[int, int], ...]) -> Settings:
    from aipc.bench.targets import check_settings

    return check_settings(Settings(grid=grid))


def test_recorded_healthy_runs_raise_no_suspicion() -> None:
    """Real runs on the loaded 2-core VM (tests/data/bench-aa): every run had its own prompt and LLMPipeline's prefix
    cache was off, so no cell may be flagged. Their stored ``prefill_check`` still shows the false alarms of a dropped
    rule ("TTFT fell from 5.38 ms (first measured run)..."): the current rules judge them again here."""
    from aipc.bench.schema import load

    files = sorted((Path(__file__).resolve().parent / "data" / "bench-aa").glob("run*.json"))
    cells = [c for f in files for t in load(f)["targets"] for c in t["cells"]]
    assert len(cells) == 6 * len(files)
    stale = [c["prefill_check"] for c in cells if c["prefill_check"]]
    assert stale and all("first measured run" in s for s in stale)
    for c in cells:
        assert c["prompts"] == "distinct" and c["repeat_ttft_ms"] is not None
        verdict = prefill_suspicion(c["prompt_tokens_actual"], c["prompts"], [r["ttft_ms"] for r in c["runs"]],
                                    [r["tpot_ms"] for r in c["runs"]], c["repeat_ttft_ms"])
        assert verdict is None, verdict
