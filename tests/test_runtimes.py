"""The runtime layer: the registry, the --paths names, every runtime's worker files, and a fourth runtime added in
one place (this module) that verify and bench both run without knowing it."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aipc.bench import run as bench_run
from aipc.bench.schema import validate
from aipc.bench.targets import Settings, bench_paths, check_settings, targets
from aipc.errors import UsageError
from aipc.runtimes import RUNTIMES, by_name, export_kinds, for_path, paths
from aipc.runtimes.base import BenchTarget, Case, Choice, ExportRecipe, Probe
from aipc.runtimes.services import Services
from aipc.venvs import VenvSpec
from aipc.verify import run as verify_run
from conftest import fake_worker

SMOKE = """
    golden = req["golden"] or [7, 8]
    done({"status": "pass", "api": "fake-api", "device": req["device"].upper(), "precision": req["precision"],
          "tokens": golden, "reason": "fake ran " + req["model"]})
"""
BENCH = """
    if req.get("noop") or req.get("probe"):
        done({"status": "pass", "reason": "no-op"})
        sys.exit(0)
    b = req["bench"]
    cells = []
    for p, g in b["grid"]:
        times = [0.001 * p + i * 0.002 for i in range(g)]
        run = {"token_times": times, "end": times[-1], "outside_s": 0.0001, "peak_rss_bytes": 1 << 20, "n_tokens": g}
        cells.append({"prompt_tokens": p, "gen_tokens": g, "prompt_tokens_actual": p,
                      "runs": [run] * (b["warmup"] + b["repetitions"])})
    done({"status": "pass", "api": req["api"], "device": "CPU", "precision": req["precision"], "tokens": [],
          "n_tokens": 0, "seconds": 0.1, "reason": "ok",
          "details": {"load_s": 0.01, "versions": {"fake": "1"}, "cells": cells, "callback_us": 0.1,
                      "memory": {"peak_rss_bytes": 1 << 20, "device_memory_bytes": None, "note": ""},
                      "golden": {"checked": False, "match": None, "note": "fake"}, "device_name": "Fake CPU"}})
"""


def script(folder: Path, name: str, body: str) -> Path:
    return fake_worker(folder, body, name)


@dataclass
class FakeRuntime:
    """A fourth runtime, complete in this one class: no export, its own workers, a venv that is this interpreter."""

    smoke_worker: Path
    bench_worker: Path
    name: str = "fake"
    paths: tuple[str, ...] = ("fake",)
    exports: tuple[ExportRecipe, ...] = ()

    def venv_spec(self, wheels: Path, cache: Path) -> VenvSpec:
        return VenvSpec("fake", ())

    def cases(self, path: str, precision: str | None) -> list[Case]:
        return [Case("fake", "fake-api", precision or "fp32")]

    def bench_targets(self) -> list[BenchTarget]:
        return [BenchTarget("fake", "fake-api", "cpu", None)]

    def choose_device(self, case: Case, requested: str, spec: VenvSpec, python: Path | None,
                      probe: Probe) -> Choice | None:
        if requested not in ("auto", "cpu"):
            return Choice(None, f"the fake runs on the CPU only ({requested} requested)")
        return Choice("cpu", "the fake runs on the CPU")

    def export_for(self, case: Case, choice: Choice) -> tuple[ExportRecipe, str] | None:
        return None


@pytest.fixture
def fake(tmp_path: Path) -> FakeRuntime:
    return FakeRuntime(script(tmp_path, "smoke_fake.py", SMOKE), script(tmp_path, "bench_fake.py", BENCH))


def services(tmp_path: Path, model: Path) -> Services:
    """Real workers (run_worker), no venv install, no export, a given model."""
    def no_export(*a: Any, **k: Any) -> Path:
        raise AssertionError("the fake runtime has no export")

    return Services(ensure_venv=lambda *a, **k: Path(sys.executable), ensure_export=no_export,
                    ensure_tiny_model=lambda *a, **k: model)


def tiny(folder: Path) -> Path:
    folder.mkdir()
    (folder / "golden.json").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}],
                                                    "golden": [1, 2, 3], "prompt_ids": [4]}), encoding="utf-8")
    return folder


def test_a_fourth_runtime_appears_in_verify(fake: FakeRuntime, tmp_path: Path) -> None:
    runtimes = (*RUNTIMES, fake)
    assert verify_run.parse_paths(None, runtimes) == ["genai", "openvino", "npu", "fake", "openvino-npu"]
    opts = verify_run.Options(paths=["fake"], cache=tmp_path / "cache", wheels=tmp_path / "wheels")
    rows = verify_run.Verifier(opts, runtimes=runtimes, services=services(tmp_path, tiny(tmp_path / "m"))).run()
    assert [(r.path, r.api, r.precision, r.status, r.device) for r in rows] == [
        ("fake", "fake-api", "fp32", "pass", "CPU")]
    assert rows[0].tokens == [1, 2, 3] and rows[0].details["device_choice"] == "the fake runs on the CPU"
    # its own device rule, before any venv
    (row,) = verify_run.Verifier(verify_run.Options(paths=["fake"], device="gpu", cache=tmp_path / "cache"),
                                 runtimes=runtimes, services=services(tmp_path, tmp_path / "m")).run()
    assert (row.status, row.reason) == ("skip", "the fake runs on the CPU only (gpu requested)")
    with pytest.raises(UsageError, match="unknown path 'fake'"):
        verify_run.parse_paths("fake")  # not registered: the registry is the one place


def test_a_fourth_runtime_appears_in_bench(fake: FakeRuntime, tmp_path: Path) -> None:
    runtimes = (*RUNTIMES, fake)
    assert bench_paths(runtimes) == ("genai", "openvino", "npu", "fake")
    s = check_settings(Settings())
    ts = targets(("fake",), ("cpu",), s, runtimes)
    assert [(t.path, t.api, t.device, t.runtime) for t in ts] == [("fake", "fake-api", "cpu", "fake")]
    opts = bench_run.BenchOptions(settings=s, targets=ts, cache=tmp_path, runtimes=runtimes,
                                  services=services(tmp_path, tiny(tmp_path / "m")))
    doc = validate(bench_run.run_bench(opts, echo=lambda line: None))
    (entry,) = doc["targets"]
    assert (entry["path"], entry["api"], entry["status"], entry["device_used"]) == ("fake", "fake-api", "pass", "CPU")
    assert [(c["prompt_tokens"], c["gen_tokens"]) for c in entry["cells"]] == [(16, 16), (32, 16)]


def test_registry_paths_and_the_openvino_npu_alias() -> None:
    assert paths() == ("genai", "openvino", "npu", "openvino-npu")
    assert [rt.name for rt in RUNTIMES] == ["genai", "openvino", "npu"]
    assert for_path("openvino-npu") is by_name("openvino")
    assert verify_run.parse_paths("openvino-npu") == ["openvino-npu"]
    (case,) = verify_run.plan_cases(["openvino-npu"], "fp16")  # int4 only, on the NPU
    assert (case.path, case.api, case.precision, case.device) == ("openvino-npu", "LLMPipeline", "int4", "npu")
    assert export_kinds() == ("genai", "openvino", "openvino-npu")  # `aipc export` kinds unchanged
    assert bench_paths() == ("genai", "openvino", "npu")


def test_every_runtime_has_its_worker_files() -> None:
    for rt in RUNTIMES:
        assert rt.smoke_worker.is_file(), rt.name
        assert rt.bench_worker.is_file(), rt.name
        for t in rt.bench_targets():
            assert t.path in rt.paths and (t.export is None or t.export in export_kinds())


class PresentDevices:
    def __init__(self, devices: list[str]) -> None:
        self.devices = devices

    def gpus(self) -> tuple[list[Any], str]:
        return [], "no GPU here"

    def openvino_devices(self, python: Path | None) -> list[str] | str | None:
        return self.devices


def test_one_openvino_device_rule_for_verify_and_bench() -> None:
    """verify's rows and bench's targets ask the same method: optimum never gets the NPU; int4 LLMPipeline does."""
    ov = by_name("openvino")
    spec = VenvSpec("x", ())
    all3 = PresentDevices(["CPU", "GPU.0", "NPU"])
    optimum, pipeline, fp32 = ov.cases("openvino", None)
    assert ov.choose_device(optimum, "auto", spec, Path("py"), all3) == Choice(
        "GPU.0", "best device OpenVINO sees (CPU, GPU.0, NPU)", "openvino")
    choice = ov.choose_device(pipeline, "auto", spec, Path("py"), all3)
    assert choice is not None and (choice.device, choice.export) == ("NPU", "openvino-npu")
    recipe = ov.export_for(pipeline, choice)
    assert recipe is not None and (recipe[0].kind, recipe[1]) == ("openvino-npu", "cpu")
    fp32_choice = ov.choose_device(fp32, "auto", spec, Path("py"), all3)
    assert fp32_choice is not None and fp32_choice.device == "GPU.0"  # the NPU runs int4 only
    refused = ov.choose_device(Case("openvino", "OVModelForCausalLM", "int4"), "npu", spec, None, all3)
    assert refused is not None and refused.device is None and "dynamic shapes" in refused.reason
    (npu_case,) = ov.cases("openvino-npu", None)
    skip = ov.choose_device(npu_case, "gpu", spec, None, all3)
    assert skip == Choice(None, "openvino-npu runs on the NPU only (gpu requested)")
    from aipc.runtimes.devices import HostProbe

    assert ov.choose_device(optimum, "auto", spec, None, HostProbe()) is None  # ask again once the venv exists


def test_constraints_drop_pins_by_requirement_name(tmp_path: Path) -> None:
    from aipc.runtimes.base import constraints_file

    out = constraints_file("genai", {"onnxruntime-genai", "onnxruntime"}, tmp_path)
    text = out.read_text()
    assert "onnxruntime-genai==" not in text and "\nonnxruntime==" not in "\n" + text
    assert "transformers==" in text  # other pins stay


def test_export_stamps_version_2_and_version_1_still_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cached exports made before stamps v2 stay valid (same folder name, same fingerprint); the converter runs only
    when no stamp vouches for the material."""
    from aipc import stamps
    from aipc.runtimes import export

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "phi3", "hidden_size": 64}))
    (model / "model.safetensors").write_bytes(b"\0" * 16)
    (model / "tokenizer.json").write_text("{}")
    made: list[Path] = []

    def fake_export(kind: str, model: Path, precision: str, device: str, dest: Path, fingerprint: str,
                    *a: Any, **k: Any) -> Path:
        made.append(dest)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / export.STAMP).write_text(json.dumps({"fingerprint": fingerprint, "notes": {"recipe": "v1"}}))
        return dest  # a version-1 stamp, as aipc wrote them before

    monkeypatch.setattr(export, "_export", fake_export)
    spec = VenvSpec("fake", ())
    dest = export.ensure_export("genai", model, "int4", cache=tmp_path / "c", spec=spec)
    assert made == [dest] and dest.name.startswith("genai-int4-cpu-")
    assert export.ensure_export("genai", model, "int4", cache=tmp_path / "c", spec=spec) == dest
    assert made == [dest] and export.export_notes(dest) == {"recipe": "v1"}  # version 1 accepted, not rerun
    fp = json.loads((dest / export.STAMP).read_text())["fingerprint"]
    stamps.Stamp(dest / export.STAMP).write(fp, notes={})
    assert export.ensure_export("genai", model, "int4", cache=tmp_path / "c", spec=spec) == dest and len(made) == 1
    stamps.Stamp(dest / export.STAMP).write("0" * 64)  # another material's stamp: made again
    export.ensure_export("genai", model, "int4", cache=tmp_path / "c", spec=spec)
    assert len(made) == 2
