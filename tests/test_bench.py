"""Tests of the bench area: statistics, metrics, schema, renderings, compare, charts, overhead, plan and CLI.

No timed assertions: timings here are synthetic numbers with hand-computed expectations.
"""

from __future__ import annotations

import copy
import csv
import importlib.util
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from aipc.bench import run as bench_run
from aipc.bench.compare import compare_docs, compare_files
from aipc.bench.metrics import cell_result, overhead, run_metrics
from aipc.bench.report import markdown, runs_csv, summary_csv
from aipc.bench.schema import SchemaError, load, validate
from aipc.bench.stats import measured, percentile, summarize
from aipc.bench.targets import (
    Settings,
    check_settings,
    parse_grid,
    parse_list,
    request,
    targets,
)
from aipc.cli import main
from aipc.errors import AipcError, UsageError
from aipc.runtimes.genai import API as API_GENAI
from aipc.runtimes.openvino import BENCH_API_PIPELINE as API_OV_GENAI
from aipc.runtimes.services import Services
from aipc.venvs import VenvSpec
from conftest import shared_cache

WORKERS = Path(__file__).resolve().parents[1] / "src" / "aipc" / "workers"


# --- statistics ---------------------------------------------------------------------------------------------------

def test_summary_matches_hand_computed_values() -> None:
    s = summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert s.n == 8
    assert s.mean == 5.0
    assert s.median == 4.5
    # sample stdev: sum of squared deviations 32, / (n - 1) = 32 / 7
    assert s.stdev == pytest.approx(math.sqrt(32 / 7))
    # p90 by linear interpolation: rank 0.9 * 7 = 6.3 -> 7 + 0.3 * (9 - 7) = 7.6
    assert s.p90 == pytest.approx(7.6)
    assert (s.min, s.max) == (2.0, 9.0)


def test_percentile_edges_and_single_value() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 90) == pytest.approx(4.6)
    assert percentile([3.0], 90) == 3.0
    s = summarize([3.0])
    assert (s.stdev, s.p90, s.median) == (0.0, 3.0, 3.0)
    with pytest.raises(AipcError):
        summarize([])
    with pytest.raises(AipcError):
        percentile([1.0], 101)
    # between ranks, as numpy's "linear": rank (n - 1) * q / 100
    assert percentile([10.0, 0.0, 20.0, 30.0], 12.5) == pytest.approx(3.75)
    assert percentile([1.0, 2.0], 99.9) == pytest.approx(1.999)
    assert (percentile([5.0, 1.0, 3.0], 0), percentile([5.0, 1.0, 3.0], 100)) == (1.0, 5.0)


def test_warmup_runs_are_excluded() -> None:
    runs = [100.0, 1.0, 2.0, 3.0]
    assert measured(runs, 1) == [1.0, 2.0, 3.0]
    assert summarize(measured(runs, 1)).mean == 2.0
    with pytest.raises(AipcError, match="nothing left"):
        measured(runs, 4)


# --- per-run metrics --------------------------------------------------------------------------------------------

def raw_run(ttft: float, gap: float, n: int, end_extra: float = 0.0, ref_tps: float | None = None,
            outside: float = 0.0001, rss: int = 300 << 20) -> dict[str, Any]:
    times = [ttft + i * gap for i in range(n)]
    run: dict[str, Any] = {"token_times": times, "end": times[-1] + end_extra, "outside_s": outside,
                           "peak_rss_bytes": rss, "n_tokens": n}
    if ref_tps is not None:
        run["reference"] = {"name": "openvino_genai.PerfMetrics", "decode_tps": ref_tps}
    return run


def test_run_metrics_definitions() -> None:
    m = run_metrics(raw_run(0.010, 0.002, 5, end_extra=0.0))
    assert m.ttft_ms == pytest.approx(10.0)
    assert m.tpot_ms == pytest.approx(2.0)  # mean gap after the first token
    assert m.decode_tps == pytest.approx(500.0)
    assert m.e2e_tps == pytest.approx(5 / 0.018)
    assert m.peak_rss_mib == pytest.approx(300.0)


def test_run_metrics_refuses_bad_timestamps() -> None:
    with pytest.raises(AipcError, match="at least 2"):
        run_metrics({"token_times": [0.1], "end": 0.2})
    with pytest.raises(AipcError, match="non-decreasing"):
        run_metrics({"token_times": [0.1, 0.05, 0.2], "end": 0.3})


def test_cell_excludes_warmup_and_computes_agreement() -> None:
    cell = {"prompt_tokens": 16, "gen_tokens": 5, "prompt_tokens_actual": 16,
            "runs": [raw_run(1.0, 1.0, 5, ref_tps=1.0),  # warm-up: very slow, must not count
                     raw_run(0.01, 0.002, 5, ref_tps=520.0), raw_run(0.01, 0.0025, 5, ref_tps=410.0)]}
    c = cell_result(cell, warmup=1)
    assert len(c.runs) == 2
    assert c.summary["ttft_ms"].mean == pytest.approx(10.0)
    assert c.summary["decode_tps"].mean == pytest.approx((500.0 + 400.0) / 2)
    assert c.agreement is not None
    assert c.agreement.reference_decode_tps == pytest.approx(465.0)
    assert c.agreement.ratio == pytest.approx(450.0 / 465.0)
    assert c.agreement.within  # 3.2 % off
    far = copy.deepcopy(cell)
    for r in far["runs"]:
        r["reference"]["decode_tps"] = 600.0
    assert not cell_result(far, warmup=1).agreement.within  # type: ignore[union-attr]


def test_cell_refuses_wrong_token_count() -> None:
    cell = {"prompt_tokens": 16, "gen_tokens": 8, "runs": [raw_run(0.01, 0.002, 5)] * 3}
    with pytest.raises(AipcError, match="instead of the requested 8"):
        cell_result(cell, warmup=1)


def test_overhead_computation() -> None:
    cell = {"prompt_tokens": 16, "gen_tokens": 5,
            "runs": [raw_run(0.01, 0.002, 5, outside=x) for x in (0.5, 0.001, 0.002, 0.003)]}
    c = cell_result(cell, warmup=1)
    o = overhead([c], callback_us=1.0)
    assert o.outside_ms is not None
    assert o.outside_ms.median == pytest.approx(2.0)  # warm-up's 500 ms excluded
    assert o.tpot_ms == pytest.approx(2.0)
    assert o.callback_share == pytest.approx(1.0 / 2000.0)  # 1 us of a 2 ms TPOT
    assert overhead([c], callback_us=None).callback_share is None


# --- a synthetic bench document through the real orchestration (fake venvs and workers) --------------------------

def fake_result(req: dict[str, Any], *, gap: float = 0.002, ref_factor: float = 1.01) -> dict[str, Any]:
    bench = req["bench"]
    cells = []
    for p, g in bench["grid"]:
        runs = [raw_run(0.001 * p, gap, g, ref_tps=(1 / gap) * ref_factor if req["api"] != "OVModelForCausalLM"
                        else None) for _ in range(bench["warmup"] + bench["repetitions"])]
        cells.append({"prompt_tokens": p, "gen_tokens": g, "prompt_tokens_actual": p, "runs": runs})
    return {"status": "pass", "api": req["api"], "device": req["device"].upper(), "precision": req["precision"],
            "tokens": [], "n_tokens": 0, "seconds": 0.5, "reason": "ok",
            "details": {"load_s": 0.1, "versions": {"pkg": "1.0"}, "cells": cells, "callback_us": 0.5,
                        "memory": {"peak_rss_bytes": 200 << 20, "device_memory_bytes": None, "note": "test"},
                        "golden": {"checked": True, "match": True, "note": "equal"}, "device_name": "Test CPU"}}


def make_doc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gap: float = 0.002,
             devices: tuple[str, ...] = ("cpu", "gpu", "dml"), status: dict[str, str] | None = None) -> dict[str, Any]:
    status = status or {}

    def run_worker(python: Path, worker: Path, req: dict[str, Any], timeout: float, **_: Any) -> dict[str, Any]:
        if req.get("noop"):
            return {"status": "pass"}
        if req["device"] in status:
            return {"status": status[req["device"]], "reason": f"{req['device']} not present"}
        if req.get("probe"):
            return {"status": "pass"}
        return fake_result(req, gap=gap)

    tiny = tmp_path / "tiny"
    tiny.mkdir(exist_ok=True)
    (tiny / "golden.json").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}], "golden": [1, 2]}))
    s = check_settings(Settings())
    opts = bench_run.BenchOptions(settings=s, targets=targets(("genai", "openvino"), devices, s), cache=tmp_path,
                                  services=fake_services(tmp_path, run_worker, tiny=tiny))
    return bench_run.run_bench(opts, echo=lambda line: None)


def fake_services(tmp_path: Path, run_worker: Any, *, tiny: Path | None = None, **kw: Any) -> Services:
    """Venvs, exports and the tiny model that cost nothing; ``run_worker`` answers for every worker."""
    py = tmp_path / "venvs" / "path-x" / "bin" / "python"
    fakes: dict[str, Any] = {"ensure_venv": lambda spec, root, echo=None: py,
                             "ensure_export": lambda kind, model, precision, **_: tmp_path,
                             "ensure_tiny_model": lambda cache=None, **_: tiny}
    return Services(run_worker=run_worker, **{**fakes, **kw})


def test_generated_document_is_valid_and_complete(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    doc = make_doc(monkeypatch, tmp_path, status={"dml": "skip", "gpu": "skip"})
    validate(doc)
    by = {(t["api"], t["device"]): t for t in doc["targets"]}
    assert by[(API_GENAI, "dml")]["status"] == "skip"  # the genai runtime's decision (no DirectML wheel): verify's
    assert by[(API_GENAI, "dml")]["reason"].startswith("DirectML not available: no DirectML build")
    assert by[(API_GENAI, "dml")]["cells"] == []
    assert (by[(API_OV_GENAI, "gpu")]["status"], by[(API_OV_GENAI, "gpu")]["reason"]) == ("skip", "gpu not present")
    t = by[(API_OV_GENAI, "cpu")]
    assert t["status"] == "pass"
    assert [(c["prompt_tokens"], c["gen_tokens"]) for c in t["cells"]] == [(16, 16), (32, 16)]
    assert all(len(c["runs"]) == 5 for c in t["cells"])  # 1 warm-up excluded
    assert t["cells"][0]["agreement"]["ratio"] == pytest.approx(1 / 1.01)
    assert t["overhead"]["callback_us_per_token"] == 0.5
    assert "path-x" in doc["harness"]["spawn_ms"]


def test_worker_fail_and_malformed_timings_never_score(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    doc = make_doc(monkeypatch, tmp_path, status={"gpu": "fail"})
    assert all(t["cells"] == [] for t in doc["targets"] if t["device"] == "gpu")
    t = targets(("genai",), ("cpu",), Settings())[0]
    res = fake_result(request(t, "m", Settings(), None))
    res["details"]["cells"][0]["runs"][3]["token_times"] = [0.3, 0.1]
    entry = bench_run.target_entry(t, res, warmup=1)
    assert entry["status"] == "fail"
    assert entry["cells"] == []


def test_exports_are_made_with_the_targets_own_venv_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The export's converter venv is the venv the bench built from --wheels (not a second spec from the default
    wheels folder, which would rebuild the same-named venv back and forth)."""
    specs: dict[str, object] = {}
    exported: list[tuple[str, object]] = []

    def ensure_venv(spec: VenvSpec, root: Path, echo: Any = None) -> Path:
        specs[spec.name] = spec
        return tmp_path / "venvs" / "v" / "bin" / "py"

    def ensure_export(kind: str, model: Path, precision: str, **kw: Any) -> Path:
        exported.append((kind, kw.get("spec")))
        return tmp_path

    def run_worker(python: Path, worker: Path, req: dict[str, Any], timeout: float, **_: Any) -> dict[str, Any]:
        return {"status": "pass"} if req.get("noop") or req.get("probe") else fake_result(req)

    s = check_settings(Settings(tiny=False))
    opts = bench_run.BenchOptions(settings=s, targets=targets(("genai", "openvino"), ("cpu",), s), model=tmp_path,
                                  wheels=tmp_path / "my-wheels", cache=tmp_path,
                                  services=fake_services(tmp_path, run_worker, ensure_venv=ensure_venv,
                                                         ensure_export=ensure_export))
    doc = bench_run.run_bench(opts, echo=lambda line: None)
    assert {t["status"] for t in doc["targets"]} == {"pass"}
    assert {k for k, _ in exported} == {"genai", "openvino"}
    assert all(spec is specs["path-genai" if kind == "genai" else "path-openvino"] for kind, spec in exported)


def test_venvs_are_made_once_per_path_and_a_failed_export_is_not_retried(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    calls: dict[str, list[str]] = {"venv": [], "export": []}

    def ensure_venv(spec: VenvSpec, root: Path, echo: Any = None) -> Path:
        assert root == tmp_path / "venvs"
        calls["venv"].append(spec.name)
        return tmp_path / "venvs" / spec.name / "bin" / "python"

    def ensure_export(kind: str, model: Path, precision: str, **kw: Any) -> Path:
        calls["export"].append(kind)
        raise AipcError(f"{kind} conversion broke")

    def run_worker(python: Path, worker: Path, req: dict[str, Any], timeout: float, **_: Any) -> dict[str, Any]:
        return {"status": "pass"} if req.get("noop") or req.get("probe") else fake_result(req)

    s = check_settings(Settings(tiny=False))
    opts = bench_run.BenchOptions(settings=s, targets=targets(("openvino",), ("cpu", "gpu"), s), model=tmp_path,
                                  cache=tmp_path, services=fake_services(tmp_path, run_worker, ensure_venv=ensure_venv,
                                                                         ensure_export=ensure_export))
    doc = bench_run.run_bench(opts, echo=lambda line: None)
    assert len(doc["targets"]) == 4
    assert {t["status"] for t in doc["targets"]} == {"fail"}
    assert all("openvino conversion broke" in t["reason"] for t in doc["targets"])
    assert calls == {"venv": ["path-openvino"], "export": ["openvino"]}


def test_optimum_on_the_npu_is_a_skip_with_verifys_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """OVModelForCausalLM compiles dynamic shapes, which the NPU refuses (verify skips that row): no worker runs."""
    asked: list[str] = []

    def run_worker(python: Path, worker: Path, req: dict[str, Any], timeout: float, **_: Any) -> dict[str, Any]:
        asked.append(str(req.get("api")))
        return {"status": "pass"} if req.get("noop") or req.get("probe") else fake_result(req)

    s = check_settings(Settings(tiny=False))
    opts = bench_run.BenchOptions(settings=s, targets=targets(("openvino",), ("npu",), s), model=tmp_path,
                                  cache=tmp_path, services=fake_services(tmp_path, run_worker))
    by = {t["api"]: t for t in bench_run.run_bench(opts, echo=lambda line: None)["targets"]}
    assert by["OVModelForCausalLM"]["status"] == "skip"
    assert "dynamic shapes" in by["OVModelForCausalLM"]["reason"]
    assert by[API_OV_GENAI]["status"] == "pass"
    assert "OVModelForCausalLM" not in asked


def test_an_unreadable_power_supply_is_unknown_power_not_a_lost_run(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    from aipc.bench import machine

    supply = tmp_path / "AC"
    supply.mkdir()
    (supply / "type").write_text("Mains\n", encoding="utf-8")
    (supply / "online").mkdir()  # reading it raises IsADirectoryError (an OSError), like a sysfs read error
    real_path = machine.Path
    monkeypatch.setattr(machine.sys, "platform", "linux")
    monkeypatch.setattr(machine, "Path", lambda p: tmp_path if p == "/sys/class/power_supply" else real_path(p))
    assert machine._power() is None
    (supply / "online").rmdir()
    (supply / "online").write_text("1\n", encoding="utf-8")
    assert machine._power() == "AC"


def test_the_tiny_model_is_made_in_the_benchs_own_genai_venv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """ensure_tiny_model gets the bench's --wheels, so its genai venv and the bench's are one spec (not rebuilt)."""
    seen: dict[str, Any] = {}
    model = tmp_path / "tiny"
    model.mkdir()
    (model / "golden.json").write_text(json.dumps({"golden": [5, 6], "messages": [{"role": "user", "content": "hi"}],
                                                   "prompt_ids": [1]}), encoding="utf-8")

    def ensure_tiny_model(cache: Path | None = None, **kw: Any) -> Path:
        seen.update(kw, cache=cache)
        return model

    opts = bench_run.BenchOptions(settings=Settings(), targets=[], wheels=tmp_path / "my-wheels", cache=tmp_path,
                                  services=Services(ensure_tiny_model=ensure_tiny_model))
    info = bench_run.resolve_model(opts, echo=lambda line: None)
    assert seen["wheels"] == tmp_path / "my-wheels" and seen["cache"] == tmp_path
    assert (info.kind, info.golden) == ("tiny", {"messages": [{"role": "user", "content": "hi"}], "prompt_ids": [1],
                                                 "ids": [5, 6]})


# --- schema -------------------------------------------------------------------------------------------------------

def test_schema_rejects_invalid_documents(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    doc = make_doc(monkeypatch, tmp_path)
    bad_cases = [
        ({"schema_version": 99}, "schema_version 99"),
        ({"schema": "other"}, "not an aipc bench document"),
    ]
    for patch, message in bad_cases:
        with pytest.raises(SchemaError, match=message):
            validate({**doc, **patch})
    broken = copy.deepcopy(doc)
    broken["targets"][0]["status"] = "great"
    with pytest.raises(SchemaError, match="status"):
        validate(broken)
    broken = copy.deepcopy(doc)
    del broken["targets"][0]["cells"][0]["summary"]["ttft_ms"]
    with pytest.raises(SchemaError, match="missing metric 'ttft_ms'"):
        validate(broken)
    broken = copy.deepcopy(doc)
    broken["targets"][0]["cells"][0]["summary"]["tpot_ms"]["n"] = 3
    with pytest.raises(SchemaError, match="measured runs"):
        validate(broken)
    broken = copy.deepcopy(doc)
    broken["targets"][0]["status"] = "skip"  # a skip must not carry scored cells
    with pytest.raises(SchemaError, match="must not carry"):
        validate(broken)
    broken = copy.deepcopy(doc)
    broken["targets"][0]["load_s"] = "fast"
    with pytest.raises(SchemaError, match="load_s"):
        validate(broken)


def test_schema_load_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SchemaError, match="not valid JSON"):
        load(tmp_path / "x.json")
    with pytest.raises(SchemaError, match="no such file"):
        load(tmp_path / "missing.json")


# --- renderings ---------------------------------------------------------------------------------------------------

def test_csv_and_markdown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    doc = make_doc(monkeypatch, tmp_path, status={"dml": "skip", "gpu": "skip"})
    rows = list(csv.DictReader(io.StringIO(summary_csv(doc))))
    passing = [r for r in rows if r["status"] == "pass"]
    assert len(passing) == 3 * 2  # genai cpu, optimum cpu, ov genai cpu x 2 cells
    r = next(r for r in passing if r["api"] == API_OV_GENAI and r["prompt_tokens"] == "16")
    assert float(r["tpot_ms_mean"]) == pytest.approx(2.0)
    assert float(r["decode_tps_median"]) == pytest.approx(500.0)
    assert float(r["agreement_ratio"]) == pytest.approx(1 / 1.01, rel=1e-4)
    skipped = [r for r in rows if r["status"] == "skip"]
    assert skipped and all(r["reason"] for r in skipped) and all(r["ttft_ms_mean"] == "" for r in skipped)
    runs = list(csv.DictReader(io.StringIO(runs_csv(doc))))
    assert len(runs) == 3 * 2 * 5
    md = markdown(doc, ["charts/tpot_ms-cpu.png"], "")
    assert "| genai | onnxruntime-genai | CPU | fp32 | pass | 16x16 |" in md
    assert "ratio 0.990 (OK" in md
    assert "![charts/tpot_ms-cpu.png](charts/tpot_ms-cpu.png)" in md
    assert "gpu not present" in md


def test_write_outputs_and_charts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra)")
    doc = make_doc(monkeypatch, tmp_path, status={"dml": "skip", "gpu": "skip"})
    files, note = bench_run.write_outputs(doc, tmp_path / "out")
    assert note == ""
    pngs = sorted(p.name for p in files if p.suffix == ".png")
    assert pngs == ["decode_tps-cpu.png", "e2e_tps-cpu.png", "tpot_ms-cpu.png", "ttft_ms-cpu.png"]
    for p in files:
        assert p.is_file() and p.stat().st_size > 0
    assert (tmp_path / "out" / "charts" / "tpot_ms-cpu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load(tmp_path / "out" / "bench.json")["schema_version"] == 2


def test_charts_skipped_with_a_note_without_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    doc = make_doc(monkeypatch, tmp_path, devices=("cpu",))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    files, note = bench_run.write_outputs(doc, tmp_path / "out")
    assert "matplotlib is not installed" in note
    assert not any(p.suffix == ".png" for p in files)
    assert "matplotlib is not installed" in (tmp_path / "out" / "bench.md").read_text(encoding="utf-8")


# --- compare ------------------------------------------------------------------------------------------------------

def test_compare_ratios(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    a = make_doc(monkeypatch, tmp_path, gap=0.002, devices=("cpu",))
    b = make_doc(monkeypatch, tmp_path, gap=0.001, devices=("cpu",))
    cmp = compare_docs(a, b, threshold=0.25)
    row = dict(cmp.rows)[("openvino", API_OV_GENAI, "cpu", "fp32", 16, 16)]
    assert row["tpot_ms"].ratio == pytest.approx(0.5)
    assert row["decode_tps"].ratio == pytest.approx(2.0)
    assert row["ttft_ms"].ratio == pytest.approx(1.0)
    assert (row["tpot_ms"].verdict, row["decode_tps"].verdict, row["ttft_ms"].verdict) == ("better", "better", "same")
    # at the default threshold (calibrated on this noisy machine) twice as fast is still within A/A noise
    assert dict(compare_docs(a, b).rows)[("openvino", API_OV_GENAI, "cpu", "fp32", 16, 16)]["tpot_ms"].verdict == "same"
    assert cmp.only_a == [] and cmp.only_b == []


def test_compare_cli_and_mismatches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    a = make_doc(monkeypatch, tmp_path, gap=0.002, devices=("cpu",))
    b = make_doc(monkeypatch, tmp_path, gap=0.001, devices=("cpu",))
    b["targets"] = [t for t in b["targets"] if t["api"] != API_GENAI]
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a), encoding="utf-8")
    pb.write_text(json.dumps(b), encoding="utf-8")
    assert main(["bench", "compare", str(pa), str(pb), "--threshold", "25"]) == 0
    out = capsys.readouterr().out
    assert "decode_tps (tok/s)" in out and "2.000" in out and "B better (+100 %)" in out
    assert "only in A (not compared): genai/onnxruntime-genai/cpu/fp32 16x16" in out
    # mismatched schema version: one line, exit 2 (a file given that aipc cannot compare is bad input)
    pb.write_text(json.dumps({**b, "schema_version": 3}), encoding="utf-8")
    assert main(["bench", "compare", str(pa), str(pb)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aipc: error:") and "schema_version 3" in err[0]
    # no path in common
    c = copy.deepcopy(a)
    c["targets"] = [t for t in c["targets"] if t["api"] == API_GENAI]
    d = copy.deepcopy(a)
    d["targets"] = [t for t in d["targets"] if t["api"] != API_GENAI]
    pa.write_text(json.dumps(c), encoding="utf-8")
    pb.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(AipcError, match="no passing target"):
        compare_files(pa, pb)
    assert main(["bench", "compare", str(pa)]) == 2
    assert "exactly two" in capsys.readouterr().err


# --- plan and CLI input -------------------------------------------------------------------------------------------

def test_plan_parsing_and_targets() -> None:
    assert parse_grid("16x16, 32x16,16x16") == ((16, 16), (32, 16))
    with pytest.raises(UsageError, match="bad grid cell"):
        parse_grid("16by16")
    with pytest.raises(UsageError, match="unknown device tpu"):
        parse_list("cpu,tpu", ("cpu", "gpu"), "device")
    ts = targets(("openvino", "npu"), ("npu",), Settings())
    assert {(t.path, t.api) for t in ts} == {("openvino", "OVModelForCausalLM"), ("openvino", API_OV_GENAI),
                                             ("npu", "intel-npu-acceleration-library")}
    assert all(t.precision == "int4" for t in ts)  # the NPU recipes
    assert {t.runtime for t in ts} == {"openvino", "npu"}
    assert {t.export for t in ts} == {"openvino-npu", None}  # the NPU export; the library compiles itself
    with pytest.raises(UsageError, match="no target"):
        targets(("genai",), ("gpu",), Settings())
    t = targets(("genai",), ("cpu",), Settings())[0]
    req = request(t, "M", Settings(), {"messages": [{"role": "user", "content": "hi"}], "ids": [5, 6, 7],
                                       "prompt_ids": [1, 2]})
    assert req["golden"] == [5, 6, 7] and req["max_new_tokens"] == 3
    q = Settings(precision="int4")
    assert request(targets(("genai",), ("cpu",), q)[0], "M", q, {"messages": [], "ids": [5]})["golden"] is None


@pytest.mark.parametrize(("argv", "message"), [
    (["bench", "--warmup", "0"], "at least 1 warm-up"),
    (["bench", "--repetitions", "3"], "at least 5 measured runs"),
    (["bench", "--grid", "16x1"], "generation >= 2"),
    (["bench", "--paths", "cuda"], "unknown path cuda"),
    (["bench", "--devices", "tpu"], "unknown device tpu"),
    (["bench", "run", "extra.json"], "unexpected arguments"),
])
def test_bad_cli_input_is_one_line(argv: list[str], message: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    try:
        rc = main([*argv, "--out", str(tmp_path / "o")])
    except SystemExit as exc:  # refused by the option's type, at parse time
        rc = int(exc.code or 0)
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aipc: error:") and message in err[0]


def test_missing_model_folder_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a folder" in capsys.readouterr().err


# --- worker helpers (stdlib-only module shared by the bench workers) ---------------------------------------------

def load_worker_common() -> Any:
    spec = importlib.util.spec_from_file_location("bench_common_under_test", WORKERS / "bench_common.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_prompt_builder_is_deterministic_and_sized() -> None:
    common = load_worker_common()

    def encode(text: str) -> list[int]:  # a toy tokenizer: words of up to 4 letters are 1 token, longer ones 2
        return [1 if len(w) <= 4 else 2 for w in text.split() for _ in range(1 if len(w) <= 4 else 2)]

    words = ["a", "hello", "npu", "computer", "ten"]
    t1, n1 = common.build_prompt(encode, words, 16, 42)
    t2, n2 = common.build_prompt(encode, words, 16, 42)
    assert (t1, n1) == (t2, n2)
    assert n1 == len(encode(t1)) and 15 <= n1 <= 16
    t3, _ = common.build_prompt(encode, words, 16, 7)
    assert t3 != t1


def test_worker_golden_check() -> None:
    common = load_worker_common()
    ok, info = common.golden_check([1, 2, 3], {"golden": [1, 2, 3], "precision": "fp32"})
    assert ok and info["match"]
    ok, info = common.golden_check([1, 9, 3], {"golden": [1, 2, 3], "precision": "fp32"})
    assert not ok and "token 1" in info["note"]
    ok, info = common.golden_check([1, 9], {"golden": None, "precision": "int4", "max_new_tokens": 2})
    assert ok and info["checked"] is False


def test_worker_memory_reading() -> None:
    common = load_worker_common()
    rss = common.peak_rss()
    if sys.platform.startswith("linux"):
        assert isinstance(rss, int) and rss > 1 << 20


def test_openvino_bench_worker_computes_fp32_in_f32() -> None:
    """fp32 runs are checked against the golden ids: GPU (f16) and bf16/AMX CPU defaults must be overridden."""
    spec = importlib.util.spec_from_file_location("bench_openvino_under_test", WORKERS / "bench_openvino.py")
    assert spec and spec.loader
    ov = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ov)
    bench = {"grid": [[16, 16], [512, 128]]}
    fp32, int4 = {"precision": "fp32", "bench": bench}, {"precision": "int4", "bench": bench}
    for device in ("CPU", "GPU.0"):
        assert ov.genai_props(fp32, device) == {"INFERENCE_PRECISION_HINT": "f32"}
        assert ov.genai_props(int4, device) == {}
    assert ov.optimum_ov_config(fp32)["INFERENCE_PRECISION_HINT"] == "f32"
    assert ov.optimum_ov_config(fp32)["PERFORMANCE_HINT"] == "LATENCY"  # the cookbook's config stays
    assert "INFERENCE_PRECISION_HINT" not in ov.optimum_ov_config(int4)
    assert ov.genai_props(int4, "NPU") == {"MAX_PROMPT_LEN": 576, "MIN_RESPONSE_LEN": 128}  # sized for the grid


def test_generate_gets_only_ids_and_mask() -> None:
    """A tokenizer that also returns token_type_ids must not reach generate (the NPU-compiled model rejects it)."""
    common = load_worker_common()
    enc = {"input_ids": [[1, 2]], "attention_mask": [[1, 1]], "token_type_ids": [[0, 0]]}
    assert common.generate_inputs(enc) == {"input_ids": [[1, 2]], "attention_mask": [[1, 1]]}
    assert common.generate_inputs({"input_ids": [[1]]}) == {"input_ids": [[1]]}


# --- one real bench: the genai path on the tiny model (venv, tiny model and export shared with verify's tests) ----

@pytest.mark.slow
def test_real_bench_genai_on_the_tiny_model(tmp_path: Path) -> None:
    s = check_settings(Settings())
    opts = bench_run.BenchOptions(settings=s, targets=targets(("genai",), ("cpu", "dml"), s), cache=shared_cache(),
                                  wheels=tmp_path / "no-wheels")
    out = tmp_path / "out"
    doc = bench_run.run_bench(opts, echo=lambda line: None)
    bench_run.write_outputs(doc, out)
    by = {t["device"]: t for t in doc["targets"]}
    cpu = by["cpu"]
    assert cpu["status"] == "pass", cpu["reason"]
    assert cpu["golden"]["checked"] and cpu["golden"]["match"]  # fp32 reproduces the golden ids
    assert cpu["device_used"] == "CPU"
    assert cpu["versions"]["onnxruntime-genai"]
    assert [(c["prompt_tokens"], c["gen_tokens"]) for c in cpu["cells"]] == [(16, 16), (32, 16)]
    for c in cpu["cells"]:
        assert len(c["runs"]) == s.repetitions and c["warmup_runs"] == 1
        assert all(r["n_tokens"] == 16 for r in c["runs"])
        assert 1 <= c["prompt_tokens_actual"] <= c["prompt_tokens"]
        a = c["agreement"]
        assert a["reference"] == "onnxruntime-genai benchmark_e2e" and a["ratio"] > 0  # printed, not asserted
    assert cpu["overhead"]["callback_us_per_token"] is not None
    assert by["dml"]["status"] == "skip" and by["dml"]["reason"]
    assert doc["harness"]["spawn_ms"]["path-genai"]["n"] == 3
    assert load(out / "bench.json")["targets"][0]["status"] == "pass"
    assert (out / "bench.md").is_file() and (out / "bench.csv").is_file()


def test_existing_export_is_labelled_as_exported() -> None:
    s = Settings(tiny=False)
    ts = {t.path: t for t in targets(("genai", "openvino"), ("cpu",), s)}
    assert bench_run.as_exported(ts["genai"], True, s).precision == "as-exported"
    assert bench_run.as_exported(ts["openvino"], False, s).precision == "int4"  # exported by aipc at int4
    given = Settings(tiny=False, precision="fp16")  # --precision given: the target keeps its own
    assert bench_run.as_exported(ts["genai"], True, given).precision == "int4"


@pytest.mark.parametrize("worker", ["bench_genai.py", "bench_openvino.py", "bench_npu.py"])
def test_workers_follow_the_protocol_without_their_runtime(worker: str) -> None:
    """No-op requests pass with the stdlib alone; a real request without the runtime is a fail with its reason."""
    from aipc.runtimes.worker import run_worker

    py = Path(sys.executable)
    noop = run_worker(py, WORKERS / worker, {"noop": True, "model": "", "device": "cpu", "precision": "fp32"}, 60.0)
    assert noop["status"] == "pass" and noop["reason"] == "no-op"
    res = run_worker(py, WORKERS / worker, {"probe": True, "model": "", "device": "cpu", "precision": "fp32",
                                            "api": "x"}, 60.0)
    assert res["status"] in ("fail", "skip")  # the dev venv has no onnxruntime_genai / openvino / NPU library
    assert res["reason"]


def test_charts_show_the_tables_statistic_and_say_where_and_when() -> None:
    """Bars are the medians the table shows, error bars the interquartile range; the caption names machine and date."""
    from aipc.bench.charts import bar, caption

    s = summarize([1.0, 2.0, 3.0, 4.0, 10.0])
    assert bar(s.to_json()) == (3.0, 1.0, 1.0)  # median 3, q1 2, q3 4 (a mean ± stdev bar would be 4 ± 3.5)
    assert bar(None) == (0.0, 0.0, 0.0)
    doc = {"created": "2026-11-29T19:40:15Z", "aipc_version": "0.1.0",
           "machine": {"os": "Linux", "os_release": "6.18", "cpu": "Intel(R) Xeon(R) Processor", "cpu_count": 2}}
    assert caption(doc) == "2026-11-29T19:40:15Z - Linux 6.18, Intel(R) Xeon(R) Processor (2 logical), aipc 0.1.0"
