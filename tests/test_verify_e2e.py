"""End-to-end ``aipc verify`` on the tiny model with real venvs (slow; everything cached in the shared test cache,
so a warm rerun only runs the smokes)."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conftest import run_aipc, shared_cache


def aipc(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"AIPC_CACHE": str(shared_cache()), "AIPC_WHEELS": str(cwd / "no-wheels")}
    return run_aipc(*args, env=env, cwd=cwd, timeout=1800)


@pytest.mark.slow
def test_verify_end_to_end(tmp_path: Path) -> None:
    proc = aipc(["verify"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    data = json.loads((tmp_path / "verify.json").read_text())
    rows: dict[tuple[str, str, str], dict[str, Any]] = {(r["path"], r["api"], r["precision"]): r
                                                        for r in data["results"]}
    golden = json.loads((Path(data["model"]) / "golden.json").read_text())["golden"]
    for key in [("genai", "onnxruntime-genai", "fp32"), ("genai", "onnxruntime-genai", "int4"),
                ("openvino", "OVModelForCausalLM", "int4"), ("openvino", "LLMPipeline", "int4"),
                ("openvino", "LLMPipeline", "fp32")]:
        row = rows[key]
        assert (row["status"], row["device"], row["n_tokens"]) == ("pass", "CPU", 16), row
    # fp32 equals the transformers reference exactly on both runtimes
    assert rows[("genai", "onnxruntime-genai", "fp32")]["tokens"] == golden
    assert rows[("openvino", "LLMPipeline", "fp32")]["tokens"] == golden
    npu_ov = rows[("openvino-npu", "LLMPipeline", "int4")]
    assert npu_ov["status"] == "skip" and "no NPU device" in npu_ov["reason"]
    npu = [r for r in data["results"] if r["path"] == "npu"]
    # the NPU library: a pass only as cpu-fallback here (no NPU), else a skip with its reason
    assert npu and all((r["status"] == "skip" and r["reason"])
                       or (r["status"] == "pass" and r["device"] == "cpu-fallback") for r in npu), npu
    suite = ET.parse(tmp_path / "verify.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert "passed, 0 failed" in proc.stdout


@pytest.mark.slow
def test_verify_corrupted_weights_is_a_failed_row(tmp_path: Path) -> None:
    first = aipc(["tiny-model", str(tmp_path / "tiny")], tmp_path)
    assert first.returncode == 0, first.stderr
    bad = tmp_path / "tiny"
    (bad / "model.safetensors").write_bytes(b"\x00garbage" * 1000)
    shutil.rmtree(tmp_path / "no-wheels", ignore_errors=True)
    proc = aipc(["verify", "--paths", "genai", "--precision", "fp32", "--model", str(bad)], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout
    row = json.loads((tmp_path / "verify.json").read_text())["results"][0]
    assert row["status"] == "fail" and row["reason"].startswith("export failed"), row


@pytest.mark.slow
def test_dml_requested_without_dml_is_a_skip_not_a_failure(tmp_path: Path) -> None:
    proc = aipc(["smoke", "genai", "--device", "dml", "--json", "s.json"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    rows = json.loads((tmp_path / "s.json").read_text())["results"]
    assert {r["status"] for r in rows} == {"skip"}
    assert all("DirectML not available" in r["reason"] and "no DirectML build" in r["reason"] for r in rows)


@pytest.mark.slow
def test_export_cli_and_group_size_fallback_on_a_real_small_model(tmp_path: Path) -> None:
    from aipc.runtimes import genai, openvino
    from aipc.runtimes.export import ensure_export, export_notes
    from aipc.runtimes.tinymodel import make_tiny_into
    from aipc.venvs import ensure_venv, venvs_root

    # aipc export writes the genai builder's output to OUT
    tiny = tmp_path / "tiny"
    assert aipc(["tiny-model", str(tiny)], tmp_path).returncode == 0
    proc = aipc(["export", "genai", "tiny", "g", "--precision", "fp32"], tmp_path)  # relative to the cwd
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "g" / "genai_config.json").is_file() and (tmp_path / "g" / "model.onnx").is_file()

    # hidden size 64: NNCF refuses group size 128 (docs/upstream.md#paths §2); the recipe falls back to 64
    cache = shared_cache()
    python = ensure_venv(genai.RUNTIME.venv_spec(tmp_path / "no-wheels", cache), venvs_root(cache))
    small = tmp_path / "h64"
    make_tiny_into(python, small, hidden=64)
    spec = openvino.RUNTIME.venv_spec(tmp_path / "no-wheels", cache)
    out = ensure_export("openvino", small, "int4", cache=cache, spec=spec)
    notes = export_notes(out)
    assert notes["group_size"] == 64 and "does not divide" in notes["group_size_fallback"]
    assert (out / "openvino_model.xml").is_file()
    # cached: asking again returns the same folder without converting again
    stamp = (out / "aipc-export.json").stat().st_mtime_ns
    assert ensure_export("openvino", small, "int4", cache=cache, spec=spec) == out
    assert (out / "aipc-export.json").stat().st_mtime_ns == stamp
