"""Unit tests of aipc.verify: worker runner, report outputs, exit rule, device choice, export recipes, venv specs,
model checks, golden comparison, orchestration with fake workers, CLI bad input. No venvs, no network."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from aipc.cli import main
from aipc.errors import UsageError
from aipc.proc import describe_returncode, kill_tree
from aipc.runtimes import RUNTIMES, base, devices, export, for_path, genai, openvino
from aipc.runtimes import npu as npu_runtime
from aipc.runtimes import paths as runtime_paths
from aipc.runtimes import worker as smoke
from aipc.runtimes.base import GpuAdapter, RuntimeSkipped
from aipc.runtimes.devices import HostProbe, parse_video_controllers
from aipc.runtimes.genai import choose_genai_device
from aipc.runtimes.model import load_golden, model_problems
from aipc.runtimes.openvino import choose_openvino_device
from aipc.runtimes.services import Services
from aipc.venvs import VenvSpec
from aipc.verify import report, run
from aipc.verify.progress import Progress
from aipc.verify.report import Row
from conftest import fake_worker

WORKERS = Path(base.WORKERS_DIR)


REQ: dict[str, Any] = {"model": "m", "device": "cpu", "precision": "fp32", "max_new_tokens": 4,
                       "messages": [{"role": "user", "content": "hi"}], "golden": [1, 2, 3, 4]}


# ------------------------------------------------------------------------------------------------ run_worker --
def test_worker_pass_result_is_returned_normalized(tmp_path: Path) -> None:
    w = fake_worker(tmp_path, """
        done({"status": "pass", "api": "fake", "device": "CPU", "precision": req["precision"],
              "tokens": [1, 2, 3, 4], "seconds": 0.1, "reason": "ok", "details": {"cwd": os.getcwd()}})
    """)
    res = smoke.run_worker(Path(sys.executable), w, REQ, timeout=30)
    assert res["status"] == "pass"
    assert res["n_tokens"] == 4 and res["tokens"] == [1, 2, 3, 4]
    assert res["device"] == "CPU" and res["api"] == "fake"
    assert res["details"]["wall_seconds"] > 0
    # the worker ran in a private temporary directory, not in ours
    assert Path(res["details"]["cwd"]).name == "cwd"


def test_worker_crash_without_result_is_a_fail_with_exit_code_and_last_line(tmp_path: Path) -> None:
    w = fake_worker(tmp_path, """
        print("loading the model", file=sys.stderr)
        print("RuntimeError: driver exploded", file=sys.stderr)
        sys.exit(3)
    """)
    res = smoke.run_worker(Path(sys.executable), w, REQ, timeout=30)
    assert res["status"] == "fail"
    assert "exited with code 3" in res["reason"]
    assert "driver exploded" in res["reason"]


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX signals")
def test_worker_killed_by_signal_is_a_fail_naming_the_signal(tmp_path: Path) -> None:
    w = fake_worker(tmp_path, "os.abort()\n")
    res = smoke.run_worker(Path(sys.executable), w, REQ, timeout=30)
    assert res["status"] == "fail"
    assert "SIGABRT" in res["reason"]


def test_worker_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child-alive"
    w = fake_worker(tmp_path, f"""
        import subprocess
        # a grandchild that would write the marker after 3 s unless it is killed with the worker
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3); open({str(marker)!r}, 'w').write('x')"])
        print("still compiling", file=sys.stderr, flush=True)
        time.sleep(60)
    """)
    t0 = time.monotonic()
    res = smoke.run_worker(Path(sys.executable), w, REQ, timeout=1.0)
    assert time.monotonic() - t0 < 15
    assert res["status"] == "fail"
    assert "timed out after 1 s" in res["reason"]
    assert "still compiling" in res["reason"]
    if not sys.platform.startswith("win"):
        time.sleep(3.5)
        assert not marker.exists()


def test_worker_garbled_result_is_a_fail(tmp_path: Path) -> None:
    w = fake_worker(tmp_path, "open(a.result, 'w').write('{not json')\n")
    res = smoke.run_worker(Path(sys.executable), w, REQ, timeout=30)
    assert res["status"] == "fail" and "unreadable result" in res["reason"]


def test_worker_result_breaking_the_protocol_is_a_fail(tmp_path: Path) -> None:
    w = fake_worker(tmp_path, 'done({"status": "maybe", "tokens": ["a", 2]})\n')
    res = smoke.run_worker(Path(sys.executable), w, REQ, timeout=30)
    assert res["status"] == "fail"
    assert "breaks the protocol" in res["reason"] and "status 'maybe'" in res["reason"]
    assert "tokens is not a list of integers" in res["reason"]


def test_worker_pass_with_nonzero_exit_is_a_fail(tmp_path: Path) -> None:
    w = fake_worker(tmp_path, 'done({"status": "pass", "tokens": [1]}); sys.exit(5)\n')
    res = smoke.run_worker(Path(sys.executable), w, REQ, timeout=30)
    assert res["status"] == "fail" and "exited with code 5" in res["reason"]


def test_worker_skip_is_kept(tmp_path: Path) -> None:
    w = fake_worker(tmp_path, 'done({"status": "skip", "reason": "no NPU device"})\n')
    res = smoke.run_worker(Path(sys.executable), w, REQ, timeout=30)
    assert res["status"] == "skip" and res["reason"] == "no NPU device"


def test_worker_missing_interpreter_is_a_fail(tmp_path: Path) -> None:
    w = fake_worker(tmp_path, "done({'status': 'pass'})\n")
    res = smoke.run_worker(tmp_path / "no-such-python", w, REQ, timeout=30)
    assert res["status"] == "fail" and "cannot start worker" in res["reason"]


def test_worker_gets_offline_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # a user's (or CI image's) setting: not for aipc's venvs
    w = fake_worker(tmp_path, 'done({"status": "pass", "details": {"env": os.environ.get("HF_HUB_OFFLINE"), '
                              '"bytecode": sys.dont_write_bytecode}})\n')
    res = smoke.run_worker(Path(sys.executable), w, REQ, timeout=30)
    assert res["details"]["env"] == "1"
    assert res["details"]["bytecode"] is False  # .pyc files are written into the venv once, not compiled each run


# ------------------------------------------------------------------------------------------ golden checks --
def load_worker(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"aipc_test_{name}", WORKERS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["smoke_genai", "smoke_openvino"])
def test_golden_comparison(name: str) -> None:
    compare = load_worker(name).compare
    fp32 = dict(REQ, precision="fp32")
    assert compare([1, 2, 3, 4], fp32, 10)[0] == "pass"
    status, reason = compare([1, 2, 9, 4], fp32, 10)
    assert status == "fail" and "at token 2" in reason
    status, reason = compare([1, 2, 3], fp32, 10)
    assert status == "fail" and "generated 3 tokens, expected 4" in reason
    # quantized: other ids are fine, count and vocabulary range are checked
    int4 = dict(REQ, precision="int4")
    assert compare([7, 7, 7, 7], int4, 10)[0] == "pass"
    status, reason = compare([7, 7, 7, 12], int4, 10)
    assert status == "fail" and "outside the vocabulary" in reason
    # a user's model has no golden reference: count only
    assert compare([5, 6, 7, 8], dict(fp32, golden=None), None)[0] == "pass"


def test_openvino_worker_device_resolution() -> None:
    resolve = load_worker("smoke_openvino").resolve_device
    device, why = resolve("auto", ["CPU", "GPU.0", "NPU"])  # the host decides auto (runtimes.openvino)
    assert device is None and "the host picks the device" in why
    assert resolve("NPU", ["CPU", "GPU.0", "NPU"]) == ("NPU", "")
    assert resolve("GPU", ["CPU", "GPU.0", "GPU.1"]) == ("GPU.0", "")
    device, why = resolve("NPU", ["CPU"])
    assert device is None and "no NPU device" in why


# ------------------------------------------------------------------------------------------------ reports --
def rows_fixture() -> list[Row]:
    return [
        Row("genai", "onnxruntime-genai", "fp32", "pass", "CPU", 16, list(range(16)), 0.4, "equal to golden"),
        Row("openvino", "LLMPipeline", "int4", "fail", "CPU", 3, [1, 2, 3], 1.2, "generated 3 tokens, expected 16"),
        Row("openvino-npu", "LLMPipeline", "int4", "skip", "", 0, [], 0.0, "no NPU device (OpenVINO sees: CPU)"),
    ]


def test_exit_code_rule() -> None:
    rows = rows_fixture()
    assert report.exit_code(rows) == 1
    assert report.exit_code([rows[0], rows[2]]) == 0  # a skip is not a failure
    assert report.exit_code([rows[2]]) == 0
    assert report.exit_code([]) == 0


def test_table_has_every_column_and_row() -> None:
    text = report.format_table(rows_fixture())
    header = text.splitlines()[0].split()
    assert header == ["path", "api", "device", "precision", "status", "tokens", "seconds", "reason"]
    assert "openvino-npu" in text and "no NPU device" in text
    assert text.splitlines()[-1] == "1 passed, 1 failed, 1 skipped"


def test_json_and_junit_outputs(tmp_path: Path) -> None:
    rows = rows_fixture()
    report.write_json(tmp_path / "verify.json", rows, {"model": "m"})
    data = json.loads((tmp_path / "verify.json").read_text())
    assert data["summary"] == {"pass": 1, "fail": 1, "skip": 1}
    assert data["exit_code"] == 1
    assert [r["status"] for r in data["results"]] == ["pass", "fail", "skip"]
    assert data["results"][0]["tokens"] == list(range(16))
    report.write_junit(tmp_path / "verify.xml", rows, 2.0)
    root = ET.parse(tmp_path / "verify.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = suite.findall("testcase")
    assert cases[1].find("failure") is not None
    assert cases[1].find("failure").get("message") == "generated 3 tokens, expected 16"  # type: ignore[union-attr]
    assert cases[2].find("skipped") is not None
    assert cases[0].find("failure") is None and cases[0].find("skipped") is None


def test_progress_plain_and_live() -> None:
    rows = rows_fixture()
    out = io.StringIO()
    p = Progress(out, live=False)
    p.begin(rows)
    for r in reversed(rows):  # rows finish in any order: [n/N] is the row's place in the plan
        with p.task(f"smoke {r.path}") as echo:
            echo("[aipc] loading")
        p.done(r)
    p.end()
    lines = out.getvalue().splitlines()
    assert lines[0] == "[aipc] verify: 3 checks"
    assert "[aipc]   smoke openvino ..." in lines and "[aipc]   [smoke openvino] loading" in lines
    assert any(ln.startswith("[aipc] [2/3] FAIL openvino LLMPipeline int4") for ln in lines)
    assert any(ln.startswith("[aipc] [3/3] SKIP openvino-npu") for ln in lines)
    assert "\r" not in out.getvalue()

    live = io.StringIO()
    p = Progress(live, live=True, interval=0.01)
    p.begin(rows)
    with p.task("export genai fp32") as echo, p.task("venv path-openvino"):
        echo("converting")
        time.sleep(0.1)
        assert p.status().startswith("[aipc] 0/3 checks done; running: export genai fp32 0 s (converting), venv")
    p.done(rows[0])
    p.end()
    assert "\r\x1b[2K[aipc] 0/3 checks done; running: export genai fp32" in live.getvalue()
    assert "[aipc] [1/3] PASS genai" in live.getvalue() and "[aipc]   [export" not in live.getvalue()


def test_progress_lines_from_many_threads_never_mix() -> None:
    import threading

    out = io.StringIO()
    p = Progress(out, live=False)
    p.begin(rows_fixture())

    def talk(n: int) -> None:
        with p.task(f"t{n}") as echo:
            for i in range(200):
                echo(f"line {n}.{i}")

    threads = [threading.Thread(target=talk, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert sum(1 for ln in lines if ln.startswith("[aipc]   [t")) == 800
    assert all(ln.startswith("[aipc]") for ln in lines)


# ------------------------------------------------------------------------------------------ device choice --
WIN_ONE_GPU = '{"Name":"Intel(R) Arc(TM) Graphics","AdapterCompatibility":"Intel Corporation",' \
              '"DriverVersion":"32.0.101.6129","PNPDeviceID":"PCI\\\\VEN_8086&DEV_7D55","Status":"OK"}'
WIN_TWO = ('[{"Name":"Microsoft Basic Display Adapter","Status":"OK"},'
           '{"Name":"NVIDIA GeForce RTX 4060 Laptop GPU","AdapterCompatibility":"NVIDIA",'
           '"DriverVersion":"32.0.15.6094","Status":"OK"},'
           '{"Name":"Intel(R) Graphics","Status":"Error"}]')


def test_parse_video_controllers_fixtures() -> None:
    assert parse_video_controllers(WIN_ONE_GPU) == [
        GpuAdapter("Intel(R) Arc(TM) Graphics", "Intel Corporation", "32.0.101.6129")]
    assert [g.name for g in parse_video_controllers(WIN_TWO)] == ["NVIDIA GeForce RTX 4060 Laptop GPU"]
    assert parse_video_controllers('{"Name":"Microsoft Basic Display Adapter"}') == []
    assert parse_video_controllers("") == [] and parse_video_controllers("garbage") == []


def test_no_dx12_gpu_off_windows() -> None:
    gpus, why = devices.detect_dx12_gpus("linux")
    assert gpus == [] and "Windows only" in why


def test_detect_dx12_gpus_uses_the_doctor_rule_and_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    from aipc.proc import Output

    calls: list[tuple[list[str], float]] = []

    def fake_run(argv: list[str], timeout: float) -> Output:
        calls.append((argv, timeout))
        return Output(0, WIN_TWO[:-1] + ',{"Name":"Old GPU","DriverVersion":"10.0.1.2","Status":"OK"}]', "")

    monkeypatch.setattr(devices, "run", fake_run)
    gpus, why = devices.detect_dx12_gpus("windows", timeout=5)
    assert [g.name for g in gpus] == ["NVIDIA GeForce RTX 4060 Laptop GPU"] and why == ""  # WDDM 1.x is not DX12
    assert calls[0][0][0] == "powershell.exe" and "-EncodedCommand" in calls[0][0] and calls[0][1] == 5
    monkeypatch.setattr(devices, "run", lambda argv, timeout: Output(None, "", "", "timeout after 5 s"))
    assert devices.detect_dx12_gpus("windows") == ([], "could not list display adapters (timeout after 5 s)")


def test_genai_device_choice() -> None:
    gpu = parse_video_controllers(WIN_ONE_GPU)
    # DML only with both the DML wheel and a DX12 GPU
    assert choose_genai_device("auto", dml_wheel=True, gpus=gpu).device == "dml"
    c = choose_genai_device("auto", dml_wheel=False, gpus=gpu)
    assert c.device == "cpu" and "no DirectML build" in c.reason and c.export == "cpu"
    c = choose_genai_device("auto", dml_wheel=True, gpus=[], gpu_reason="DirectX 12 / DirectML exists on Windows only")
    assert c.device == "cpu" and "Windows only" in c.reason
    assert choose_genai_device("cpu", dml_wheel=True, gpus=gpu).device == "cpu"
    for req in ("gpu", "dml"):
        assert choose_genai_device(req, dml_wheel=True, gpus=gpu).export == "dml"
        skip = choose_genai_device(req, dml_wheel=False, gpus=gpu)
        assert skip.device is None and "DirectML not available" in skip.reason
    assert choose_genai_device("npu", dml_wheel=True, gpus=gpu).device is None
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        choose_genai_device("tpu", dml_wheel=True, gpus=gpu)


def test_openvino_device_choice() -> None:
    all3 = ["CPU", "GPU.0", "NPU"]
    c = choose_openvino_device("auto", all3, "genai")
    assert (c.device, c.export) == ("NPU", "openvino-npu")  # the NPU gets the NPU export
    assert choose_openvino_device("auto", all3, "optimum").device == "GPU.0"  # dynamic shapes: not NPU
    assert choose_openvino_device("auto", ["CPU"], "genai") == base.Choice("CPU", "best device OpenVINO sees (CPU)",
                                                                              "openvino")
    c = choose_openvino_device("npu", ["CPU"], "genai")
    assert c.device is None and c.reason == "no NPU device (OpenVINO sees: CPU)"
    assert choose_openvino_device("npu", all3, "optimum").device is None
    assert choose_openvino_device("gpu", all3, "optimum").device == "GPU.0"
    assert choose_openvino_device("dml", all3, "genai").device is None


# ------------------------------------------------------------------------------------------ export recipes --
def test_group_size_fallback() -> None:
    assert openvino.pick_group_size(128, [128, 256]) == (128, "")
    g, why = openvino.pick_group_size(128, [64, 128])
    assert g == 64 and "does not divide" in why
    assert openvino.pick_group_size(128, [48, 96])[0] == 16
    assert openvino.pick_group_size(128, [10, 20])[0] == -1
    assert openvino.pick_group_size(-1, [10]) == (-1, "")
    # the NPU accepts 128 or channel-wise only
    g, why = openvino.pick_group_size(128, [64, 128], npu=True)
    assert g == -1 and "channel-wise" in why
    assert openvino.channel_sizes({"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
                                 "head_dim": 16}) == [64, 128, 64]


def test_export_commands() -> None:
    py = Path("/venv/bin/python")
    cfg = {"hidden_size": 128, "intermediate_size": 256}
    g = export.plan_export("genai", Path("M"), Path("O"), "int4", "dml", py, cfg, Path("W")).command.argv
    assert g[:3] == (str(py), "-m", "onnxruntime_genai.models.builder")
    assert g[3:11] == ("-i", "M", "-o", "O", "-p", "int4", "-e", "dml")
    o = export.plan_export("openvino", Path("M"), Path("O"), "int4", "cpu", py, cfg, Path("W")).command.argv
    assert o[0].endswith("optimum-cli") and o[1:3] == ("export", "openvino")
    text = " ".join(o)
    assert "--task text-generation-with-past --weight-format int4 --group-size 128 --ratio 0.6 --sym" in text
    assert o[-1] == "O"
    n = export.plan_export("openvino-npu", Path("M"), Path("O"), "int4", "cpu", py, cfg, Path("W"))
    assert "--weight-format int4 --group-size 128 --ratio 1 --sym" in " ".join(n.command.argv)
    small = export.plan_export("openvino", Path("M"), Path("O"), "int4", "cpu", py, {"hidden_size": 64,
                               "intermediate_size": 128}, Path("W"))
    assert "--group-size 64" in " ".join(small.command.argv) and "group_size_fallback" in small.notes
    f16 = export.plan_export("openvino", Path("M"), Path("O"), "fp16", "cpu", py, cfg, Path("W")).command.argv
    assert "--group-size" not in f16 and "fp16" in f16
    plan = export.plan_export("genai", Path("M"), Path("O"), "fp32", "cpu", py, cfg)
    assert plan.command.env["HF_HUB_OFFLINE"] == "1"


@pytest.mark.parametrize(("kind", "precision", "device", "msg"), [
    ("onnx", "int4", "cpu", "unknown export kind"),
    ("openvino-npu", "fp16", "cpu", "not available for openvino-npu"),
    ("genai", "int3", "cpu", "precision 'int3'"),
    ("genai", "int4", "cuda", "export device 'cuda'"),
])
def test_export_bad_input(kind: str, precision: str, device: str, msg: str) -> None:
    with pytest.raises(UsageError, match=msg):
        export.check_kind(kind, precision, device)


def test_export_failure_names_the_converters_last_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aipc.errors import AipcError
    from aipc.runner import Command

    model = write_model(tmp_path / "m")
    monkeypatch.setattr(export, "ensure_venv", lambda spec, root, echo=None: Path(sys.executable))

    def failing_plan(kind: str, model: Path, out: Path, precision: str, device: str, python: Path,
                     config: Any = None, work: Path | None = None) -> base.ExportPlan:
        code = "import sys; print('loading'); print('ValueError: bad weights'); sys.exit(1)"
        return base.ExportPlan(command=Command.make([sys.executable, "-c", code], work or tmp_path),
                                 notes={"recipe": "fake converter"})

    monkeypatch.setattr(export, "plan_export", failing_plan)
    with pytest.raises(AipcError) as info:
        export.ensure_export("genai", model, "fp32", cache=tmp_path / "cache", spec=VenvSpec("fake", ()))
    msg = info.value.message
    assert "fake converter (fp32) of" in msg and "failed: ValueError: bad weights (log: " in msg
    assert not (tmp_path / "cache" / "exports" / "genai-fp32-cpu").exists()


# ------------------------------------------------------------------------------------------------- models --
def write_model(folder: Path, *, golden: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "phi3", "hidden_size": 128,
                                                    "intermediate_size": 256, "vocab_size": 10}))
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    (folder / "tokenizer.json").write_text("{}")
    if golden:
        (folder / "golden.json").write_text(json.dumps({
            "messages": [{"role": "user", "content": "hi"}], "golden": [1, 2, 3, 4], "prompt_ids": [5, 6],
            "max_new_tokens": 4}))
    return folder


def test_model_problems(tmp_path: Path) -> None:
    assert model_problems(tmp_path / "nope") == [f"model folder {tmp_path / 'nope'} does not exist"]
    m = write_model(tmp_path / "m")
    assert model_problems(m) == []
    (m / "model.safetensors").unlink()
    (m / "tokenizer.json").unlink()
    (m / "config.json").write_text("{broken")
    problems = " | ".join(model_problems(m))
    assert "config.json is not valid JSON" in problems
    assert "has no weights" in problems and "has no tokenizer" in problems


def test_load_golden(tmp_path: Path) -> None:
    m = write_model(tmp_path / "m")
    golden = load_golden(m)
    assert golden is not None and golden["golden"] == [1, 2, 3, 4]
    assert load_golden(write_model(tmp_path / "u", golden=False)) is None


# --------------------------------------------------------------------------------------------- venv specs --
def test_venv_specs_use_pinned_releases_and_constraints(tmp_path: Path) -> None:
    g = genai.RUNTIME.venv_spec(tmp_path / "wheels", tmp_path)
    assert g.torch == "2.13.0" and g.local_wheels == ()
    assert "onnxruntime-genai==0.18.0" in g.steps[0] and "onnx-ir" in g.steps[0]
    assert g.constraints == base.CONSTRAINTS_DIR / "genai.txt"
    o = openvino.RUNTIME.venv_spec(tmp_path / "wheels", tmp_path)
    assert o.uninstall == ("torchvision",) and "torchvision" in o.steps[0]
    assert "torchvision==0.28.0" in (base.CONSTRAINTS_DIR / "openvino.txt").read_text()
    assert for_path("openvino-npu").venv_spec(tmp_path, tmp_path) == o  # same venv
    with pytest.raises(UsageError, match="unknown path 'cuda'"):
        for_path("cuda")


def test_constraints_agree_with_pinned_releases() -> None:
    from aipc.pins import load_pins

    releases = load_pins().releases
    for name in ("genai", "openvino"):
        for line in (base.CONSTRAINTS_DIR / f"{name}.txt").read_text().splitlines():
            req = line.split("#")[0].strip()
            if req:
                dist, _, version = req.partition("==")
                if dist in releases:
                    assert releases[dist] == version, (name, dist)


def fake_wheel(folder: Path, filename: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_bytes(b"not really a zip, the spec only hashes it")
    return path


def test_own_wheels_replace_releases_when_installable_here(tmp_path: Path) -> None:
    from packaging.tags import sys_tags

    tag = next(iter(sys_tags()))
    wheels = tmp_path / "wheels"
    mine = fake_wheel(wheels, f"onnxruntime_genai-0.15.2-{tag.interpreter}-{tag.abi}-{tag.platform}.whl")
    fake_wheel(wheels, "onnxruntime_genai_directml-0.15.2-cp311-cp311-not_this_platform.whl")
    spec = genai.RUNTIME.venv_spec(wheels, tmp_path)
    assert spec.local_wheels == (mine,)
    assert str(mine) in spec.steps[0]
    assert not any(s.startswith("onnxruntime-genai==") for s in spec.steps[0])
    assert spec.constraints is not None and "onnxruntime-genai==" not in spec.constraints.read_text()
    local = genai.genai_local_wheels(wheels)
    assert not local.dml and any("not installable" in i for i in local.ignored)


def test_npu_runtime_without_a_wheel_is_a_skip(tmp_path: Path) -> None:
    if npu_runtime.pypi_wheel_exists():
        pytest.skip("PyPI has a binary wheel of the NPU library for this host")
    with pytest.raises(RuntimeSkipped, match="no intel-npu-acceleration-library wheel for"):
        for_path("npu").venv_spec(tmp_path, tmp_path)


def test_parse_paths_and_cases() -> None:
    assert run.parse_paths(None) == list(runtime_paths()) == ["genai", "openvino", "npu", "openvino-npu"]
    for empty in ("", ",,,", " "):
        with pytest.raises(UsageError, match="--paths is empty"):
            run.parse_paths(empty)
    assert run.parse_paths("openvino,genai,openvino") == ["openvino", "genai"]
    with pytest.raises(UsageError, match="unknown path 'gpu'"):
        run.parse_paths("genai,gpu")
    cases = run.plan_cases(["genai", "openvino"])
    assert [(c.path, c.api, c.precision) for c in cases] == [
        ("genai", "onnxruntime-genai", "fp32"), ("genai", "onnxruntime-genai", "int4"),
        ("openvino", "OVModelForCausalLM", "int4"), ("openvino", "LLMPipeline", "int4"),
        ("openvino", "LLMPipeline", "fp32")]
    fp16 = run.plan_cases(["openvino", "openvino-npu"], "fp16")
    assert [(c.api, c.precision) for c in fp16] == [("OVModelForCausalLM", "fp16"), ("LLMPipeline", "fp16"),
                                                    ("LLMPipeline", "int4")]


# ------------------------------------------------------------------------- orchestration with fake workers --
FAKE_PATH_WORKER = """
    if req.get("action") == "probe":
        done({"status": "pass", "details": {"devices": [{"device": "CPU", "name": "fake"}]}})
    elif req["model"].endswith("hang"):
        time.sleep(60)
    else:
        golden = req["golden"]
        tokens = golden if req["precision"] == "fp32" else [0] * len(golden)
        done({"status": "pass", "api": req.get("api") or "fake", "device": req["device"].upper(),
              "precision": req["precision"], "tokens": tokens, "reason": "fake " + req["model"]})
"""


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_cache: Path) -> Path:
    """verify with fake venvs, exports and workers: exercises the orchestration without installing anything."""
    model = write_model(tmp_path / "tiny")
    worker = fake_worker(tmp_path, FAKE_PATH_WORKER, "fake_path_worker.py")
    def fake_export(kind: str, model: Path, precision: str, **kw: Any) -> Path:
        out = tmp_path / "exports" / f"{kind}-{precision}-{kw.get('device')}"
        out.mkdir(parents=True, exist_ok=True)
        return out

    def run_fake_worker(python: Path, script: Path, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        return smoke.run_worker(python, worker, req, timeout)  # every runtime's worker is the fake one

    def run_fake_batch(python: Path, script: Path, reqs: list[dict[str, Any]], timeout: float) -> smoke.Batch:
        return smoke.run_batch(python, worker, reqs, timeout)

    monkeypatch.setattr(run, "SERVICES", Services(
        ensure_tiny_model=lambda cache, echo=None, wheels=None: model,
        ensure_venv=lambda spec, root, echo=None: Path(sys.executable),
        run_worker=run_fake_worker, run_batch=run_fake_batch, ensure_export=fake_export,
        start_session=lambda python, script: smoke.WorkerSession(python, worker)))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_verify_orchestration_with_fake_workers(fake_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["verify", "--paths", "genai,openvino,openvino-npu", "--json", "v.json", "--junit", "v.xml"])
    out = capsys.readouterr().out
    assert rc == 0, out
    data = json.loads((fake_env / "v.json").read_text())
    got = [(r["path"], r["api"], r["precision"], r["status"], r["device"]) for r in data["results"]]
    assert got == [
        ("genai", "fake", "fp32", "pass", "CPU"),
        ("genai", "fake", "int4", "pass", "CPU"),
        ("openvino", "optimum", "int4", "pass", "CPU"),
        ("openvino", "genai", "int4", "pass", "CPU"),
        ("openvino", "genai", "fp32", "pass", "CPU"),
        ("openvino-npu", "LLMPipeline", "int4", "skip", ""),
    ]
    assert data["results"][-1]["reason"] == "no NPU device (OpenVINO sees: CPU)"
    assert data["results"][0]["details"]["export"].endswith("genai-fp32-cpu")  # CPU export on Linux (no DML)
    assert data["model_kind"] == "tiny" and data["exit_code"] == 0
    assert ET.parse(fake_env / "v.xml").getroot().find("testsuite").get("skipped") == "1"  # type: ignore[union-attr]
    assert "5 passed, 0 failed, 1 skipped" in out


def test_verify_timeout_is_a_failed_row_and_exit_1(fake_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    hang = fake_env / "exports" / "hang"

    def export_hang(kind: str, model: Path, precision: str, **kw: Any) -> Path:
        hang.mkdir(parents=True, exist_ok=True)
        return hang

    monkeypatch.setattr(run, "SERVICES", replace(run.SERVICES, ensure_export=export_hang))
    rc = main(["verify", "--paths", "genai", "--precision", "int4", "--timeout", "1"])
    assert rc == 1
    data = json.loads((fake_env / "verify.json").read_text())
    assert [r["status"] for r in data["results"]] == ["fail"]
    assert "timed out after 1 s" in data["results"][0]["reason"]


def test_verify_model_missing_files_fails_every_row(fake_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_model(fake_env / "bad", golden=False)
    (bad / "model.safetensors").unlink()
    rc = main(["verify", "--paths", "genai,openvino", "--model", str(bad)])
    assert rc == 1
    data = json.loads((fake_env / "verify.json").read_text())
    assert {r["status"] for r in data["results"]} == {"fail"}
    assert all("has no weights" in r["reason"] for r in data["results"])
    assert data["model_kind"] == "user"


def test_smoke_accepts_an_export_folder(fake_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = fake_env / "my-genai-export"
    exp.mkdir()
    for f in ("genai_config.json", "model.onnx", "golden.json"):
        (exp / f).write_text(json.dumps({"messages": [{"role": "user", "content": "x"}], "golden": [1, 2],
                                         "prompt_ids": [3]}))
    rc = main(["smoke", "genai", "--model", str(exp), "--precision", "fp32", "--json", "s.json"])
    assert rc == 0
    res = json.loads((fake_env / "s.json").read_text())["results"][0]
    assert res["status"] == "pass" and res["reason"] == f"fake {exp}"


@pytest.mark.parametrize(("argv", "msg"), [
    (["verify", "--paths", "genai,tpu"], "unknown path tpu"),
    (["verify", "--device", "tpu"], "invalid choice: 'tpu'"),
    (["verify", "--model", "/no/such/folder"], "model folder /no/such/folder does not exist"),
    (["verify", "--timeout", "0"], "--timeout: 0 is not a number of seconds"),
    (["smoke", "cuda"], "invalid choice: 'cuda'"),
    (["export", "openvino-npu", ".", "out", "--precision", "fp16"], "not available for openvino-npu"),
    (["export", "genai", "/no/such/model", "out"], "model folder /no/such/model does not exist"),
])
def test_cli_bad_input_is_one_line_exit_2(argv: list[str], msg: str, capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           isolated_cache: Path) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse usage errors
        rc = int(exc.code or 0)
    err = capsys.readouterr().err
    assert rc == 2
    assert msg in err
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("aipc: error:")]


def test_tiny_model_stamp_detects_damage(tmp_path: Path) -> None:
    from aipc.fsutil import atomic_write_json
    from aipc.runtimes import tinymodel

    m = write_model(tmp_path / "m")
    atomic_write_json(m / tinymodel.STAMP, {"files": tinymodel._file_hashes(m)})
    assert tinymodel.is_intact(m)
    (m / "model.safetensors").write_bytes(b"\1" * 64)
    assert not tinymodel.is_intact(m)
    assert not tinymodel.is_intact(tmp_path / "missing")
    assert tinymodel.tiny_fingerprint() == tinymodel.tiny_fingerprint()
    assert tinymodel.tiny_model_dir(tmp_path).parent == tmp_path / "models"


def test_npu_path_device_and_precision_rules(fake_env: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(npu_runtime, "npu_venv_spec", lambda wheels: (VenvSpec("npu-fake", ()), ""))
    assert main(["verify", "--paths", "npu", "--precision", "fp32"]) == 0
    row = json.loads((fake_env / "verify.json").read_text())["results"][0]
    assert row["status"] == "skip" and "not fp32" in row["reason"]
    assert main(["verify", "--paths", "npu", "--device", "gpu"]) == 0
    row = json.loads((fake_env / "verify.json").read_text())["results"][0]
    assert row["status"] == "skip" and "gpu requested" in row["reason"]
    # int4 on auto: the worker gets the Hugging Face folder itself (the library compiles it), no export
    assert main(["verify", "--paths", "npu"]) == 0
    row = json.loads((fake_env / "verify.json").read_text())["results"][0]
    assert row["status"] == "pass" and row["reason"] == f"fake {fake_env / 'tiny'}"


def test_windows_timeout_kills_the_process_tree_with_taskkill() -> None:
    """On Windows proc.kill() ends the worker only; taskkill /T ends its children too (compiler, driver helper)."""
    calls: list[list[str]] = []
    killed: list[int] = []

    class FakeProc:
        pid = 4242

        def kill(self) -> None:
            killed.append(self.pid)

    def fake_run(argv: list[str], **kw: Any) -> Any:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0)

    kill_tree(FakeProc(), platform="win32", run=fake_run)  # type: ignore[arg-type]
    assert calls == [["taskkill", "/T", "/F", "/PID", "4242"]] and killed == []

    def failing_run(argv: list[str], **kw: Any) -> Any:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 128)  # e.g. taskkill not found / access denied

    kill_tree(FakeProc(), platform="win32", run=failing_run)  # type: ignore[arg-type]
    assert killed == [4242]  # falls back to killing the worker itself


def test_windows_crash_codes_are_shown_in_hex() -> None:
    assert describe_returncode(3221225477) == "3221225477 (0xC0000005)"
    assert describe_returncode(3) == "3"


# ------------------------------------------------------------------------------------ --build-npu (issue 3/4) --
def _npu_rows(fake_env: Path) -> list[dict[str, Any]]:
    data = json.loads((fake_env / "v.json").read_text())
    return [r for r in data["results"] if r["path"] == "npu"]


def test_build_npu_failure_is_a_skip_with_the_build_reason(fake_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import aipc.npu.build as npu_build

    calls: list[Path] = []

    def fake_ensure(wheels: Path, *, echo: Any = None, build_dir: Path | None = None) -> Path | None:
        calls.append(wheels)
        echo("[aipc] npu wheel: cannot build it here: no C++ compiler found")
        return None

    monkeypatch.setattr(npu_build, "ensure_wheel", fake_ensure)
    monkeypatch.setattr(npu_runtime, "npu_venv_spec", lambda wheels: (None, "no wheel for linux"))
    rc = main(["verify", "--paths", "npu", "--build-npu", "--json", "v.json", "--junit", "v.xml"])
    assert rc == 0, capsys.readouterr().out  # a skip is not a failure
    (row,) = _npu_rows(fake_env)
    assert row["status"] == "skip"
    assert "no wheel for linux" in row["reason"] and "building it failed: no C++ compiler found" in row["reason"]
    assert len(calls) == 1


def test_build_npu_not_attempted_without_flag_or_when_a_wheel_exists(
        fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aipc.npu.build as npu_build

    def boom(*a: Any, **k: Any) -> str:
        raise AssertionError("the npu wheel must not be built")

    monkeypatch.setattr(npu_build, "ensure_wheel", boom)
    monkeypatch.setattr(npu_runtime, "npu_venv_spec", lambda wheels: (None, "no wheel for linux"))
    assert main(["verify", "--paths", "npu", "--json", "v.json", "--junit", "v.xml"]) == 0
    (row,) = _npu_rows(fake_env)
    assert row["status"] == "skip" and "building it failed" not in row["reason"]

    (row,) = run.Verifier(run.Options(paths=["npu"], prepare={"npu": boom}),  # a wheel can be had
                          runtimes=with_npu_spec(VenvSpec(name="npu-test", steps=()))).run()
    assert row.status == "pass"


class NpuWithSpec(npu_runtime.NpuRuntime):
    """The npu runtime as if its library's wheel could be had here."""

    def __init__(self, spec: VenvSpec) -> None:
        self.spec = spec

    def venv_spec(self, wheels: Path, cache: Path) -> VenvSpec:
        return self.spec


def with_npu_spec(spec: VenvSpec) -> tuple[Any, ...]:
    return tuple(NpuWithSpec(spec) if rt.name == "npu" else rt for rt in RUNTIMES)


def test_build_npu_success_lets_the_path_run(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aipc.npu.build as npu_build

    built: list[Path] = []
    spec = VenvSpec(name="npu-test", steps=())
    monkeypatch.setattr(npu_runtime, "npu_venv_spec", lambda wheels: (spec, "") if built else (None, "no wheel"))

    def fake_ensure(wheels: Path, *, echo: Any = None, build_dir: Path | None = None) -> Path:
        wheel = wheels / "intel_npu_acceleration_library-1.4.0-py3-none-linux_x86_64.whl"
        built.append(wheel)
        return wheel

    monkeypatch.setattr(npu_build, "ensure_wheel", fake_ensure)
    main(["verify", "--paths", "npu", "--build-npu", "--json", "v.json", "--junit", "v.xml"])
    (row,) = _npu_rows(fake_env)
    assert built and row["status"] != "skip", row


def test_dml_ort_wheel_next_to_a_cpu_genai_wheel_is_not_dml(tmp_path: Path) -> None:
    """Only a DirectML build of genai makes the genai path DirectML; a DML ORT wheel beside a CPU genai wheel
    does not (verify would pick DML and the worker would skip)."""
    from packaging.tags import sys_tags

    tag = next(iter(sys_tags()))
    suffix = f"0.15.2-{tag.interpreter}-{tag.abi}-{tag.platform}.whl"
    wheels = tmp_path / "wheels"
    fake_wheel(wheels, f"onnxruntime_genai-{suffix}")
    fake_wheel(wheels, f"onnxruntime_directml-{suffix}")
    local = genai.genai_local_wheels(wheels)
    assert len(local.wheels) == 2 and not local.dml
    spec = genai.RUNTIME.venv_spec(wheels, tmp_path)  # the DML ORT wheel still replaces the ORT release
    assert not any(s.startswith("onnxruntime==") for s in spec.steps[0])
    fake_wheel(wheels, f"onnxruntime_genai_directml-{suffix}")
    assert genai.genai_local_wheels(wheels).dml


def test_verify_picks_cpu_when_only_ort_is_dml(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a DX12 GPU, a CPU genai wheel and a DML ORT wheel, the genai path runs on the CPU (not DML)."""
    from packaging.tags import sys_tags

    tag = next(iter(sys_tags()))
    suffix = f"0.15.2-{tag.interpreter}-{tag.abi}-{tag.platform}.whl"
    wheels = fake_env / "wheels"
    fake_wheel(wheels, f"onnxruntime_genai-{suffix}")
    fake_wheel(wheels, f"onnxruntime_directml-{suffix}")
    gpus = parse_video_controllers(WIN_ONE_GPU)
    v = run.Verifier(run.Options(paths=["genai"], precision="int4", wheels=wheels),
                     probe=HostProbe(gpu_facts=lambda plat: (gpus, "")))
    (row,) = v.run()
    assert (row.status, row.device) == ("pass", "CPU"), row
    assert "no DirectML build" in row.details["device_choice"]
    assert row.details["export"].endswith("genai-int4-cpu")
    # the DirectML genai wheel makes it DML
    fake_wheel(wheels, f"onnxruntime_genai_directml-{suffix}")
    (row,) = run.Verifier(run.Options(paths=["genai"], precision="int4", wheels=wheels),
                          probe=HostProbe(gpu_facts=lambda plat: (gpus, ""))).run()
    assert row.details["export"].endswith("genai-int4-dml"), row


def test_rows_skipped_by_their_device_choice_install_no_venv(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """genai and npu decide their device before the venv: a row that will be skipped costs no venv install, and
    the GPUs are probed only when DirectML could be used or was asked for."""
    installed: list[str] = []
    probes: list[str] = []

    def fake_ensure(spec: VenvSpec, root: Path, echo: Any = None) -> Path:
        installed.append(spec.name)
        return Path(sys.executable)

    def gpu_facts(plat: str) -> tuple[list[Any], str]:
        probes.append(plat)
        return [], "no GPU here"

    services = replace(run.SERVICES, ensure_venv=fake_ensure)
    rows = run.Verifier(run.Options(paths=["genai"], device="dml"), services=services,
                        probe=HostProbe(gpu_facts=gpu_facts)).run()
    assert [r.status for r in rows] == ["skip", "skip"] and "DirectML not available" in rows[0].reason
    rows = run.Verifier(run.Options(paths=["npu"], precision="fp32"), services=services,
                        runtimes=with_npu_spec(VenvSpec("npu-fake", ())), probe=HostProbe(gpu_facts=gpu_facts)).run()
    assert [r.status for r in rows] == ["skip"] and "not fp32" in rows[0].reason
    assert installed == [] and len(probes) == 1  # --device dml asked for the GPUs
    # auto without a DirectML genai wheel: CPU, no GPU probe; the venv is made once for both rows
    rows = run.Verifier(run.Options(paths=["genai"]), services=services, probe=HostProbe(gpu_facts=gpu_facts)).run()
    assert [r.status for r in rows] == ["pass", "pass"] and installed == ["path-genai"] and len(probes) == 1
    assert rows[0].details["device_choice"].startswith("CPU (DirectML not available: no DirectML build")


# ------------------------------------------------------------------ the task graph: concurrency and honesty --
def test_report_keeps_plan_order_whatever_finishes_first(fake_env: Path) -> None:
    """The genai smoke finishes last, the npu one first: rows are still in plan order, in the table and the JSON."""
    import threading

    after = {"genai": "openvino", "openvino": "npu", "npu": ""}  # each smoke ends after that one
    ended = {name: threading.Event() for name in after}
    finished: list[str] = []

    def batch(python: Path, script: Path, reqs: list[dict[str, Any]], timeout: float) -> smoke.Batch:
        name = next(k for k in after if k in script.name)
        if after[name]:
            assert ended[after[name]].wait(30)
        try:
            return run.SERVICES.run_batch(python, script, reqs, timeout)
        finally:
            finished.append(name)
            ended[name].set()

    rows = run.Verifier(run.Options(paths=["genai", "openvino", "npu"], workers=3),
                        services=replace(run.SERVICES, run_batch=batch, start_session=lambda *a: None),
                        runtimes=with_npu_spec(VenvSpec("npu-fake", ()))).run()
    assert finished == ["npu", "openvino", "genai"]
    assert [(r.path, r.precision) for r in rows] == [
        (c.path, c.precision) for c in run.plan_cases(["genai", "openvino", "npu"])]
    assert [r.api for r in rows[2:5]] == ["optimum", "genai", "genai"]  # the fake echoes the API key it was sent
    assert [r.status for r in rows] == ["pass"] * 6


def test_smokes_run_at_once_within_the_workers_bound(fake_env: Path) -> None:
    import threading

    lock = threading.Lock()
    state = {"now": 0, "most": 0}
    calls: list[int] = []
    meet: list[threading.Barrier | None] = [None]

    def batch(python: Path, script: Path, reqs: list[dict[str, Any]], timeout: float) -> smoke.Batch:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
            calls.append(len(reqs))
        if meet[0] is not None:
            meet[0].wait()  # every smoke inside at once, or BrokenBarrierError after its timeout
        else:
            time.sleep(0.2)
        with lock:
            state["now"] -= 1
        return run.SERVICES.run_batch(python, script, reqs, timeout)

    services = replace(run.SERVICES, run_batch=batch, start_session=lambda *a: None)  # every smoke a batch
    paths = ["genai", "openvino", "npu"]
    for workers, barrier in ((1, None), (3, threading.Barrier(3, timeout=30))):
        state["most"] = 0
        calls.clear()
        meet[0] = barrier
        v = run.Verifier(run.Options(paths=paths, workers=workers), services=services,
                         runtimes=with_npu_spec(VenvSpec("npu-fake", ())))
        assert [r.status for r in v.run()] == ["pass"] * 6
        assert state["most"] == workers and v.dag.max_heavy <= workers
        assert sorted(calls) == [1, 2, 3]  # one worker per venv for all its rows (npu 1, genai 2, openvino 3)


def test_a_failed_venv_fails_its_rows_only_and_a_failed_model_fails_every_row(fake_env: Path) -> None:
    from aipc.errors import AipcError

    def ensure_venv(spec: VenvSpec, root: Path, echo: Any = None) -> Path:
        if spec.name == "path-openvino":
            raise AipcError("pip install failed: no network", hint="check PyPI")
        return Path(sys.executable)

    rows = run.Verifier(run.Options(paths=["genai", "openvino"]),
                        services=replace(run.SERVICES, ensure_venv=ensure_venv)).run()
    assert [r.status for r in rows] == ["pass", "pass", "fail", "fail", "fail"]
    assert rows[2].reason == "venv install failed: pip install failed: no network; fix: check PyPI"

    def no_model(cache: Path, echo: Any = None, wheels: Any = None) -> Path:
        raise AipcError("generator failed")

    rows = run.Verifier(run.Options(paths=["genai", "openvino", "openvino-npu"]),
                        services=replace(run.SERVICES, ensure_tiny_model=no_model)).run()
    assert [r.status for r in rows] == ["fail"] * 5 + ["skip"]  # the NPU row is decided without a model
    assert all(r.reason == "tiny model could not be made: generator failed" for r in rows[:5])


def test_one_failed_export_fails_its_rows_and_the_runtime_still_smokes_the_others(fake_env: Path) -> None:
    from aipc.errors import AipcError

    made: list[tuple[str, str]] = []

    def ensure_export(kind: str, model: Path, precision: str, **kw: Any) -> Path:
        made.append((kind, precision))
        if precision == "fp32":
            raise AipcError("converter crashed")
        out = fake_env / "exports" / f"{kind}-{precision}"
        out.mkdir(parents=True, exist_ok=True)
        return out

    rows = run.Verifier(run.Options(paths=["openvino"]), services=replace(run.SERVICES, ensure_export=ensure_export)
                        ).run()
    assert [(r.api, r.precision, r.status) for r in rows] == [
        ("optimum", "int4", "pass"), ("genai", "int4", "pass"), ("LLMPipeline", "fp32", "fail")]
    assert rows[2].reason == "export failed: converter crashed"
    assert sorted(made) == [("openvino", "fp32"), ("openvino", "int4")]  # int4 made once for both APIs


def test_verify_json_reports_wall_against_the_critical_path_of_own_clocks(
        fake_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["verify", "--paths", "genai,openvino", "--workers", "2", "--json", "v.json", "--junit", "v.xml"])
    out = capsys.readouterr().out
    assert rc == 0, out
    data = json.loads((fake_env / "v.json").read_text())
    tasks = data["tasks"]
    assert data["workers"] == 2
    assert {"model", "venv:genai", "venv:openvino", "devices:openvino", "export:genai:fp32:cpu",
            "export:openvino:int4:cpu", "smoke:genai", "smoke:openvino"} <= set(tasks)
    assert tasks["smoke:openvino"]["deps"][0] == "devices:openvino"
    # a smoke counts by its worker's own clock (inside the process), not aipc's timing around it
    smoke_own = tasks["smoke:openvino"]["own_seconds"]
    assert smoke_own is not None and 0 < smoke_own <= tasks["smoke:openvino"]["seconds"]
    rows = [r for r in data["results"] if r["path"] == "openvino"]
    assert sum(r["seconds"] for r in rows) <= smoke_own
    assert all(r["details"]["batch"]["rows"] == 3 for r in rows)
    if hasattr(os, "wait4"):  # the CPU of the commands each task ran: the worker processes here
        assert tasks["smoke:openvino"]["cpu_seconds"] > 0 and data["cpu_seconds"] >= tasks["smoke:openvino"][
            "cpu_seconds"]
    chain = data["critical_path"]
    assert chain[-1].startswith("smoke:") and data["critical_path_seconds"] > 0
    assert data["tasks_seconds"] >= data["critical_path_seconds"]
    # the ratio is of the unrounded times; the file's times are rounded to 3 decimals, which on a fast run (a
    # critical path of ~0.01 s with fakes) moves their quotient by a few %: check within what that rounding allows
    wall, crit, half = data["seconds"], data["critical_path_seconds"], 0.0005
    low, high = (wall - half) / (crit + half) - half, (wall + half) / max(crit - half, 1e-9) + half
    assert low <= data["wall_over_critical_path"] <= high, (wall, crit, data["wall_over_critical_path"])
    assert data["overhead_seconds"] == pytest.approx(data["seconds"] - data["critical_path_seconds"], abs=0.01)
    assert "x the critical path" in out.splitlines()[-1] and "2 workers" in out.splitlines()[-1]


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_workers_must_be_a_positive_whole_number(value: str, tmp_path: Path) -> None:
    from conftest import assert_one_line_error, run_aipc

    proc = run_aipc("verify", "--workers", value, cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, "--workers", code=2)
    if value == "0":
        proc = run_aipc("verify", cwd=tmp_path, env={"AIPC_VERIFY_WORKERS": value})
        assert_one_line_error(proc.returncode, proc.stderr, "AIPC_VERIFY_WORKERS", code=2)
    if value in ("0", "-1"):  # the same rule for callers of the library
        with pytest.raises(UsageError, match="--workers"):
            run.Verifier(run.Options(workers=int(value)))


# ----------------------------------------------------------------------------------- the batch protocol --
def test_batch_protocol_one_process_for_many_requests(tmp_path: Path) -> None:
    """The real protocol module (workers/protocol.py) in batch form: one process, results in request order, each
    with its own seconds; the process's own clock covers them; the single-request form is unchanged."""
    w = tmp_path / "proto_worker.py"
    w.write_text("import os, sys, time\n"
                 f"sys.path.insert(0, {str(WORKERS)!r})\n"
                 "from protocol import serve\n"
                 "def run(req):\n"
                 "    time.sleep(0.05)\n"
                 "    if req['model'] == 'bad':\n"
                 "        raise ValueError('cannot load bad')\n"
                 "    return {'status': 'pass', 'tokens': [1, 2], 'details': {'pid': os.getpid()}}\n"
                 "sys.exit(serve('proto', run))\n", encoding="utf-8")
    reqs = [dict(REQ, model=m) for m in ("a", "bad", "c")]
    batch = smoke.run_batch(Path(sys.executable), w, reqs, timeout=30)
    assert [r["status"] for r in batch.results] == ["pass", "fail", "pass"]
    assert batch.results[1]["reason"] == "ValueError: cannot load bad"
    assert batch.processes == 1 and len({r["details"]["pid"] for r in batch.results if r["status"] == "pass"}) == 1
    assert all(r["seconds"] >= 0.05 for r in batch.results)
    assert sum(r["seconds"] for r in batch.results) <= batch.seconds <= batch.wall
    single = smoke.run_worker(Path(sys.executable), w, REQ, timeout=30)
    assert single["status"] == "pass" and single["seconds"] >= 0.05


def test_batch_a_crash_costs_one_row_and_the_rest_run_in_a_new_process(tmp_path: Path) -> None:
    w = fake_worker(tmp_path, """
        if req["model"] == "crash":
            print("Segmentation fault in the driver", file=sys.stderr, flush=True)
            os._exit(139)
        if req["model"] == "hang":
            time.sleep(60)
        done({"status": "pass", "tokens": [1], "details": {"pid": os.getpid()}})
    """)
    reqs = [dict(REQ, model=m) for m in ("a", "crash", "b", "hang", "c")]
    t0 = time.monotonic()
    batch = smoke.run_batch(Path(sys.executable), w, reqs, timeout=1.0)
    assert time.monotonic() - t0 < 20
    assert [r["status"] for r in batch.results] == ["pass", "fail", "pass", "fail", "pass"]
    assert "exited with code 139" in batch.results[1]["reason"] and "Segmentation fault" in batch.results[1]["reason"]
    assert "timed out after 3 s" in batch.results[3]["reason"]  # 1 s per request, 3 left in that process
    assert batch.processes == 3
    pids = [r["details"]["pid"] for r in batch.results if r["status"] == "pass"]
    assert len(set(pids)) == 3


def test_batch_worker_that_cannot_start_fails_every_row(tmp_path: Path) -> None:
    w = fake_worker(tmp_path, "done({'status': 'pass'})\n")
    batch = smoke.run_batch(tmp_path / "no-python", w, [REQ, REQ], timeout=5)
    assert [r["status"] for r in batch.results] == ["fail", "fail"]
    assert all("cannot start worker" in r["reason"] for r in batch.results) and batch.processes == 1


# --------------------------------------------------------------------------- the session (one kept process) --
def proto_worker(tmp_path: Path) -> Path:
    """A worker on the real protocol module: pid and a sleep per request, a crash on model 'crash'."""
    w = tmp_path / "proto_session_worker.py"
    w.write_text("import os, sys, time\n"
                 f"sys.path.insert(0, {str(WORKERS)!r})\n"
                 "from protocol import serve\n"
                 "def run(req):\n"
                 "    if req['model'] == 'crash':\n"
                 "        os._exit(7)\n"
                 "    time.sleep(0.02)\n"
                 "    return {'status': 'pass', 'tokens': [1], 'details': {'pid': os.getpid()}}\n"
                 "sys.exit(serve('proto', run))\n", encoding="utf-8")
    return w


def test_session_answers_the_probe_and_the_batch_in_one_process(tmp_path: Path) -> None:
    w = proto_worker(tmp_path)
    with smoke.WorkerSession(Path(sys.executable), w) as session:
        probe = session.run(dict(REQ, model="probe"), timeout=30)
        batch = session.batch([dict(REQ, model=m) for m in ("a", "b")], timeout=30)
    assert probe["status"] == "pass" and probe["details"]["session"] is True
    assert [r["status"] for r in batch.results] == ["pass", "pass"] and batch.processes == 1
    assert {probe["details"]["pid"]} == {r["details"]["pid"] for r in batch.results}
    assert session.requests == 3 and not session.alive
    if hasattr(os, "wait4"):
        assert session.cpu_seconds > 0


def test_session_crash_costs_one_request_and_a_worker_without_serve_costs_nothing(tmp_path: Path) -> None:
    w = proto_worker(tmp_path)
    with smoke.WorkerSession(Path(sys.executable), w) as session:
        assert session.run(dict(REQ, model="probe"), timeout=30)["status"] == "pass"
        batch = session.batch([dict(REQ, model=m) for m in ("a", "crash", "b")], timeout=30)
    assert [r["status"] for r in batch.results] == ["pass", "fail", "pass"]
    assert "exited with code 7" in batch.results[1]["reason"] and batch.processes == 2
    assert batch.results[2]["details"]["pid"] != batch.results[0]["details"]["pid"]
    # a worker that does not know --serve (exits at once): everything still runs, in one-shot processes
    old = tmp_path / "old_worker.py"
    old.write_text("import json, os, sys\nif '--serve' in sys.argv:\n    sys.exit('unknown option --serve')\n"
                   "req = json.load(open(sys.argv[2]))\nres = {'status': 'pass', 'tokens': [1]}\n"
                   "json.dump({'results': [res] * len(req['requests']), 'done': True} if 'requests' in req else res, "
                   "open(sys.argv[4], 'w'))\n", encoding="utf-8")
    with smoke.WorkerSession(Path(sys.executable), old) as session:
        assert session.run(REQ, timeout=30)["status"] == "pass"
        batch = session.batch([REQ, REQ], timeout=30)
    assert [r["status"] for r in batch.results] == ["pass", "pass"] and session.requests == 0


def test_verify_keeps_the_probe_process_for_the_openvino_smokes(fake_env: Path) -> None:
    rows = run.Verifier(run.Options(paths=["genai", "openvino"])).run()
    assert [r.status for r in rows] == ["pass"] * 5
    assert [bool(r.details["worker"].get("session")) for r in rows] == [False, False, True, True, True]
    assert all(r.details["batch"]["processes"] == 1 for r in rows)
