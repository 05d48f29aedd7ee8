"""Logs a user can find (issue 15): export logs are named by what they hold and never overwritten by the next
model; verify.json and bench.json rows point at their logs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from aipc.runner import Command
from aipc.runtimes import base, export
from aipc.venvs import VenvSpec, install_log, venv_dir


def write_model(folder: Path, hidden: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "phi3", "hidden_size": hidden,
                                                    "intermediate_size": 2 * hidden, "vocab_size": 10}))
    (folder / "model.safetensors").write_bytes(b"\0" * hidden)
    (folder / "tokenizer.json").write_text("{}")
    return folder


@pytest.fixture
def fake_converter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The genai export runs a real child that prints which model it converts and writes the recipe's files."""
    monkeypatch.setattr(export, "ensure_venv", lambda spec, root, echo=None: Path(sys.executable))
    files = export.RECIPES["genai"].files

    def plan(kind: str, model: Path, out: Path, precision: str, device: str, python: Path,
             config: Any = None, work: Path | None = None) -> base.ExportPlan:
        code = (f"import pathlib, sys; print('converting', {str(model)!r}); "
                f"[pathlib.Path({str(out)!r}, f).write_text('x') for f in {list(files)!r}]")
        return base.ExportPlan(command=Command.make([sys.executable, "-c", code], work or out.parent),
                               notes={"recipe": "fake"})

    monkeypatch.setattr(export, "plan_export", plan)


def test_export_logs_are_named_by_what_they_hold_and_kept_per_model(tmp_path: Path, fake_converter: None) -> None:
    cache = tmp_path / "cache"
    spec = VenvSpec("fake", ())
    a = export.ensure_export("genai", write_model(tmp_path / "a", 64), "fp32", cache=cache, spec=spec)
    b = export.ensure_export("genai", write_model(tmp_path / "b", 32), "fp32", cache=cache, spec=spec)
    log_a, log_b = export.export_log(a), export.export_log(b)
    assert log_a is not None and log_b is not None and log_a != log_b
    for folder, log, model in ((a, log_a, tmp_path / "a"), (b, log_b, tmp_path / "b")):
        # named like the export folder: kind, precision, device and the fingerprint of model + recipe + venv
        assert log == cache / "logs" / f"export-{folder.name}.log"
        assert folder.name.startswith("genai-fp32-cpu-") and len(folder.name) == len("genai-fp32-cpu-") + 16
        text = log.read_text()
        assert f"converting {model}" in text and "# step export-genai-fp32-cpu-" in text
        assert "export genai fp32 of " + model.name in text  # the step's label, as progress shows it
    assert sorted(p.name for p in (cache / "logs").iterdir()) == sorted([log_a.name, log_b.name])
    log_a.unlink()
    assert export.export_log(a) is None  # a log cleaned away is not reported
    # the export registered this process as a user of the cache (aipc cache --clean leaves it alone)
    assert (cache / "locks" / "users" / f"pid-{os.getpid()}.lock").is_file()


def test_verify_rows_record_their_venv_and_export_logs(tmp_path: Path, fake_converter: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from aipc.runtimes.services import Services
    from aipc.verify import run
    from aipc.verify.run import Options, Verifier

    cache = tmp_path / "cache"
    model = write_model(tmp_path / "m", 64)
    worker = tmp_path / "w.py"
    worker.write_text("import json, sys\nreq = json.load(open(sys.argv[2]))\n"  # one request, or a batch of them
                      "res = {'status': 'pass', 'device': 'CPU', 'tokens': []}\n"
                      "json.dump({'results': [res] * len(req['requests'])} if 'requests' in req else res, "
                      "open(sys.argv[4], 'w'))\n")
    made: list[VenvSpec] = []

    def fake_venv(spec: VenvSpec, root: Path, echo: Any = None) -> Path:
        made.append(spec)
        log = install_log(venv_dir(spec, root))
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("installed\n")
        return Path(sys.executable)

    services = Services(ensure_venv=fake_venv, ensure_export=export.ensure_export,
                        run_worker=lambda py, script, req, timeout: run.SERVICES.run_worker(py, worker, req, timeout),
                        run_batch=lambda py, script, reqs, timeout: run.SERVICES.run_batch(py, worker, reqs, timeout))
    opts = Options(paths=["genai"], model=model, precision="fp32", cache=cache, wheels=tmp_path / "wheels")
    rows = Verifier(opts, services=services).run()
    assert [r.status for r in rows] == ["pass"], [r.reason for r in rows]
    logs = rows[0].details["logs"]
    assert logs["venv"] == str(install_log(venv_dir(made[0], cache / "venvs")))
    assert Path(logs["export"]).name.startswith("export-genai-fp32-cpu-")
    assert Path(logs["export"]).read_text().count(f"converting {model}") == 1


def test_bench_targets_record_their_venv_and_export_logs(tmp_path: Path, fake_converter: None) -> None:
    from aipc.bench import run as bench_run
    from aipc.bench.targets import Settings, check_settings, targets
    from test_bench import fake_result, fake_services

    cache = tmp_path / "cache"
    model = write_model(tmp_path / "m", 64)

    def ensure_venv(spec: VenvSpec, root: Path, echo: Any = None) -> Path:
        log = install_log(venv_dir(spec, root))
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("installed\n")
        return Path(sys.executable)

    def run_worker(python: Path, worker: Path, req: dict[str, Any], timeout: float, **_: Any) -> dict[str, Any]:
        return {"status": "pass"} if req.get("noop") or req.get("probe") else fake_result(req)

    s = check_settings(Settings(tiny=False))
    opts = bench_run.BenchOptions(settings=s, targets=targets(("genai",), ("cpu",), s), model=model, cache=cache,
                                  services=fake_services(tmp_path, run_worker, ensure_venv=ensure_venv,
                                                         ensure_export=export.ensure_export))
    entry, = bench_run.run_bench(opts, echo=lambda line: None)["targets"]
    assert entry["status"] == "pass", entry["reason"]
    assert entry["logs"]["venv"].endswith(".install.log") and Path(entry["logs"]["venv"]).is_file()
    assert Path(entry["logs"]["export"]).name.startswith("export-genai-")
    assert f"converting {model}" in Path(entry["logs"]["export"]).read_text()


class CpuOnly:
    """A host whose OpenVINO sees the CPU only."""

    def gpus(self) -> tuple[list[Any], str]:
        return [], "no GPU"

    def openvino_devices(self, python: Path | None) -> list[str] | str | None:
        return ["CPU"]


def test_an_npu_recipe_run_on_the_cpu_is_labelled(tmp_path: Path) -> None:
    """An openvino-npu export given as --model runs on the CPU for the openvino path: the row says so."""
    from aipc import stamps
    from aipc.runtimes.services import Services
    from aipc.verify import run
    from aipc.verify.run import Options, Verifier

    npu_export = tmp_path / "npu-export"
    npu_export.mkdir()
    for name in export.RECIPES["openvino-npu"].files:
        (npu_export / name).write_text("x")
    stamps.Stamp(npu_export / export.STAMP).write("0" * 64, kind="openvino-npu", precision="int4", device="cpu")
    worker = tmp_path / "w.py"
    worker.write_text("import json, sys\nreq = json.load(open(sys.argv[2]))\n"  # one request, or a batch of them
                      "res = {'status': 'pass', 'device': 'CPU', 'tokens': []}\n"
                      "json.dump({'results': [res] * len(req['requests'])} if 'requests' in req else res, "
                      "open(sys.argv[4], 'w'))\n")
    services = Services(ensure_venv=lambda spec, root, echo=None: Path(sys.executable),
                        run_worker=lambda py, script, req, timeout: run.SERVICES.run_worker(py, worker, req, timeout),
                        run_batch=lambda py, script, reqs, timeout: run.SERVICES.run_batch(py, worker, reqs, timeout))
    opts = Options(paths=["openvino"], model=npu_export, precision="int4", cache=tmp_path / "c",
                   wheels=tmp_path / "wheels")
    rows = Verifier(opts, services=services, probe=CpuOnly()).run()
    assert [r.status for r in rows] == ["pass", "pass"], [r.reason for r in rows]
    assert all(r.details["recipe_note"] == "openvino-npu recipe run on CPU, not on an NPU" for r in rows)
    assert all("openvino-npu recipe run on CPU" in r.reason for r in rows)
    assert export.recipe_note(npu_export, "NPU") == ""  # on the NPU: nothing to say
