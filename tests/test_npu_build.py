"""End to end: build aipc's intel-npu-acceleration-library wheel from the real PyPI sdist, install it, run it.

Cached in ``tests.conftest.shared_cache() / "npu"`` (the sdist, the build venv, the CMake build directory, the
wheel, the test venv); the runner skips every step whose inputs are unchanged, so a warm rerun builds nothing.
Needs PyPI (sdist, build requirements, the venv's packages), a C++ compiler and objdump.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.metadata import Metadata

from aipc.npu import isa
from aipc.npu.build import NpuBuild, make_config, run_build
from aipc.npu.wheel import inspect_wheel
from aipc.runtimes import npu as path
from aipc.venvs import ensure_venv
from aipc.wheelhouse import read_manifest, verify_sums
from conftest import shared_cache

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CI build runs on Linux"),
    pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="needs a C++ compiler"),
]

ROOT = shared_cache() / "npu"
CHECKS = r"""
import importlib.util, json, os, sys, tempfile
os.chdir(tempfile.mkdtemp())
import numpy as np, torch
import intel_npu_acceleration_library as npu
from intel_npu_acceleration_library import backend
from intel_npu_acceleration_library.compiler import CompilerConfig
out = {"npu_available": bool(backend.npu_available()), "file": npu.__file__}
rng = np.random.default_rng(0)
mm = backend.MatMul(64, 32, 16)  # inC, outC, batch: X (16, 64) @ W (32, 64)^T
x = rng.uniform(-1, 1, (16, 64)).astype(np.float16)
w = rng.uniform(-1, 1, (32, 64)).astype(np.float16)
r = np.asarray(mm.run(x, w), dtype=np.float32)
ref = x.astype(np.float32) @ w.astype(np.float32).T
out["matmul_shape"] = list(r.shape)
out["matmul_err"] = float(np.abs(r - ref).max())
out["matmul_ref_max"] = float(np.abs(ref).max())
backend.clear_cache()
torch.manual_seed(0)
mlp = torch.nn.Sequential(torch.nn.Linear(32, 128), torch.nn.ReLU(), torch.nn.Linear(128, 32)).eval()
xx = torch.rand(4, 32)
with torch.no_grad():
    want = mlp(xx)
    cm = npu.compile(mlp, CompilerConfig(dtype=npu.int4))
    got = cm(xx)
out["mlp_shape"] = list(got.shape)
out["mlp_err"] = float((got - want).abs().max())
out["mlp_ref_max"] = float(want.abs().max())
out["mlp_modules"] = sorted({type(m).__module__ for m in cm.modules()})
backend.clear_cache()
with open("/proc/self/maps") as fh:
    maps = fh.read().splitlines()
out["libs"] = sorted({ln.split()[-1] for ln in maps if "libopenvino" in ln or "intel_npu" in ln})
out["openvino_python"] = importlib.util.find_spec("openvino") is not None
print("AIPC_JSON " + json.dumps(out))
"""
TINY = r"""
import sys, torch
from transformers import Phi3Config, Phi3ForCausalLM
torch.manual_seed(0)
cfg = Phi3Config(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4, max_position_embeddings=128, pad_token_id=0, bos_token_id=1,
                 eos_token_id=2)
Phi3ForCausalLM(cfg).eval().save_pretrained(sys.argv[1])
# a word-level tokenizer of our own with a Phi-3-style chat template (the worker's messages -> ids route)
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast
vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<|user|>": 3, "<|assistant|>": 4, "<|end|>": 5}
vocab.update({w: 6 + i for i, w in enumerate("hello tiny model please say one word".split())})
tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
fast.chat_template = ("{% for m in messages %}{{ '<|' + m['role'] + '|> ' + m['content'] + ' <|end|> ' }}"
                      "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}")
fast.save_pretrained(sys.argv[1])
"""


@dataclass
class Built:
    cfg: NpuBuild
    wheel: Path


@dataclass
class Installed:
    python: Path
    checks: dict[str, Any]


@pytest.fixture(scope="module")
def built() -> Built:
    cfg = make_config(build_dir=ROOT / "build", wheels=ROOT / "wheels")
    wheel, _ = run_build(cfg, echo=lambda _s: None)
    return Built(cfg, wheel)


@pytest.fixture(scope="module")
def installed(built: Built) -> Installed:
    spec, reason = path.npu_venv_spec(built.cfg.wheels)
    assert spec is not None, reason
    assert spec.local_wheels == (built.wheel,)
    python = ensure_venv(spec, ROOT / "venvs", echo=lambda _s: None)
    proc = subprocess.run([str(python), "-c", CHECKS], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("AIPC_JSON "))
    return Installed(python, json.loads(line[len("AIPC_JSON "):]))


def test_wheel_is_portable_py3_none_without_a_second_openvino(built: Built) -> None:
    assert built.wheel.name == "intel_npu_acceleration_library-1.4.0-py3-none-linux_x86_64.whl"
    assert inspect_wheel(built.wheel, built.cfg.platform) == []
    with zipfile.ZipFile(built.wheel) as zf:
        names = zf.namelist()
        wheel_meta = zf.read("intel_npu_acceleration_library-1.4.0.dist-info/WHEEL").decode()
    assert "Tag: py3-none-linux_x86_64" in wheel_meta
    assert "Root-Is-Purelib: false" in wheel_meta
    assert not any("external/openvino" in n or "_pyopenvino" in n for n in names)
    lib = "intel_npu_acceleration_library/lib/"
    for member in ("libintel_npu_acceleration_library.so", "libopenvino.so", "libopenvino.so.2440",
                   "libopenvino_intel_cpu_plugin.so", "libopenvino_intel_npu_plugin.so", "libtbb.so.12"):
        assert lib + member in names
    # the sdist's Python package (all of it), nothing of its build machinery
    assert "intel_npu_acceleration_library/backend/bindings.py" in names
    assert "intel_npu_acceleration_library/modelling.py" in names
    assert not any(n.endswith(("setup.py", "CMakeLists.txt", ".cpp", ".h")) for n in names)


def test_wheel_carries_the_license_of_every_bundled_library(built: Built) -> None:
    """PEP 639: .dist-info/licenses/ holds the library's own LICENSE and the openvino distribution's license files
    (copied from the build venv's openvino-2024.4.0.dist-info), each listed as License-File in METADATA."""
    info = "intel_npu_acceleration_library-1.4.0.dist-info/"
    with zipfile.ZipFile(built.wheel) as zf:
        names = set(zf.namelist())
        meta = Metadata.from_email(zf.read(info + "METADATA").decode(), validate=True)
        bundled = sorted(n.rsplit("/", 1)[1] for n in names
                         if n.startswith("intel_npu_acceleration_library/lib/") and n.count("/") == 2)
        onetbb = zf.read(info + "licenses/openvino/onetbb_third-party-programs.txt").decode("utf-8", "replace")
    assert meta.metadata_version == "2.4"
    assert set(meta.license_files or []) >= {"LICENSE", "openvino/LICENSE", "openvino/runtime-third-party-programs.txt",
                                             "openvino/onednn_third-party-programs.txt",
                                             "openvino/onetbb_third-party-programs.txt"}
    for lic in meta.license_files or []:
        assert info + "licenses/" + lic in names
    assert not any("/lib/licenses/" in n for n in names)  # one copy, in the dist-info
    assert "Portable Hardware Locality (hwloc)" in onetbb  # hwloc's BSD-3 notice travels with libhwloc
    entry = next(e for e in read_manifest(built.cfg.wheels)["wheels"] if e["file"] == built.wheel.name)
    covers = entry["fit"]["bundled"]
    assert sorted(covers) == bundled and "libhwloc.so.15" in bundled and "libtbb.so.12" in bundled
    for name, dests in covers.items():  # every bundled file has at least one license file, present in the wheel
        assert dests and all(info + "licenses/" + d in names for d in dests), name


def test_manylinux_verdict_is_recorded(built: Built) -> None:
    """auditwheel's verdict: the NPU plugin needs libze_loader.so.1 (the Level Zero loader of the NPU driver), which
    no manylinux policy allows, so the wheel keeps linux_x86_64 and the manifest says why."""
    fit = next(e for e in read_manifest(built.cfg.wheels)["wheels"] if e["file"] == built.wheel.name)["fit"]
    audit = fit["auditwheel"]
    assert audit["tool"].startswith("auditwheel 6.")
    if audit["overall_tag"].startswith("manylinux"):
        assert fit["platform_tag"].endswith(audit["overall_tag"]) and audit["overall_tag"] in built.wheel.name
    else:
        assert built.wheel.name.endswith("-py3-none-linux_x86_64.whl")
        assert "libze_loader.so.1" in audit["external_libs"] and "libze_loader.so.1" in fit["tag_reason"]


def test_wheel_is_in_wheels_with_checksum_and_provenance(built: Built) -> None:
    assert verify_sums(built.cfg.wheels) == []
    entry = next(e for e in read_manifest(built.cfg.wheels)["wheels"] if e["file"] == built.wheel.name)
    assert entry["sdist_sha256"] == "85bc37169189a0bfdb536a74de454925a4750adc1000d29a6c87de1f1a3a8d7d"
    assert entry["openvino"] == "2024.4.0"
    assert "-march=x86-64-v3" in entry["flags"]
    assert entry["tags"] == ["py3-none-linux_x86_64"]


def test_rebuild_is_skipped_when_inputs_are_unchanged(built: Built, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aipc", "build-npu", "--build-dir", str(built.cfg.build_dir), "--wheels",
         str(built.cfg.wheels)], capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "npu-wheel: up to date, skipped" in proc.stderr
    assert proc.stdout.strip() == str(built.wheel)


def test_native_library_is_x86_64_v3_at_most(installed: Installed) -> None:
    native = Path(installed.checks["file"]).parent / "lib" / "libintel_npu_acceleration_library.so"
    text = isa.disassemble(native)
    assert isa.beyond_x86_64_v3(text) == []
    assert "%ymm" in text  # AVX2 really used: built for x86-64-v3, not for a generic x86-64


def test_library_runs_on_the_cpu_fallback(installed: Installed) -> None:
    checks = installed.checks
    assert checks["npu_available"] is False  # no NPU on CI
    assert checks["matmul_shape"] == [16, 32]
    assert checks["matmul_err"] < 0.05, checks  # fp16 (docs/upstream.md#npu §3: ~0.02-0.03)
    assert checks["matmul_ref_max"] > 1.0
    assert checks["mlp_shape"] == [4, 32]
    assert checks["mlp_err"] < 0.25 * max(1.0, checks["mlp_ref_max"]), checks  # int4 weights
    assert any(m.startswith("intel_npu_acceleration_library.") for m in checks["mlp_modules"])  # really compiled
    assert checks["openvino_python"] is False  # no bundled openvino Python package to shadow the real one
    site = str(Path(checks["file"]).parent / "lib")
    assert checks["libs"], checks
    assert all(lib.startswith(site) for lib in checks["libs"]), checks["libs"]  # the wheel's own OpenVINO 2024.4


def test_worker_generates_with_a_tiny_phi3(installed: Installed, tmp_path: Path) -> None:
    model = tmp_path / "tiny-phi3"
    subprocess.run([str(installed.python), "-c", TINY, str(model)], check=True, timeout=300, capture_output=True)
    req = {"model": str(model), "device": "auto", "precision": "int4", "max_new_tokens": 6,
           "messages": [{"role": "user", "content": "hello tiny model"}], "golden": None}
    (tmp_path / "req.json").write_text(json.dumps(req))
    proc = subprocess.run([str(installed.python), str(path.WORKER), "--request", str(tmp_path / "req.json"),
                           "--result", str(tmp_path / "res.json")], capture_output=True, text=True, timeout=600,
                          check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "res.json").read_text())
    assert res["status"] == "pass", res
    assert res["device"] == "cpu-fallback"  # never "NPU" without npu_available()
    assert res["n_tokens"] == 6
    assert len(res["tokens"]) == 6
    assert all(0 <= t < 320 for t in res["tokens"])
    assert res["details"]["npu_available"] is False
    assert res["details"]["prompt_tokens"] == 6  # <|user|> hello tiny model <|end|> <|assistant|>
    assert not (tmp_path / "cache").exists() and not (tmp_path / "nc_workspace").exists()  # temp working dir
    # an explicit NPU request without an NPU is not a pass
    (tmp_path / "req.json").write_text(json.dumps({**req, "device": "npu", "prompt_ids": [1, 17, 42, 99]}))
    subprocess.run([str(installed.python), str(path.WORKER), "--request", str(tmp_path / "req.json"),
                    "--result", str(tmp_path / "res.json")], capture_output=True, timeout=600, check=True)
    res = json.loads((tmp_path / "res.json").read_text())
    assert res["status"] == "skip", res
    assert "npu_available() is False" in res["reason"]
