"""aipc's tiny Phi-3: made by the real generator in the genai venv (slow; venv cached in the shared test cache)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from aipc.errors import AipcError
from aipc.runtimes import genai, tinymodel
from aipc.runtimes.model import load_golden, model_problems
from aipc.runtimes.tinymodel import ensure_tiny_model, is_intact, make_tiny_into
from aipc.venvs import VenvSpec, ensure_venv, venvs_root
from conftest import shared_cache

BYTE_IDENTICAL = ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "golden.json", "chat_template.jinja")


@pytest.mark.slow
def test_tiny_model_is_deterministic_and_follows_the_recipe(tmp_path: Path) -> None:
    cache = shared_cache()
    cached = ensure_tiny_model(cache)
    assert is_intact(cached) and model_problems(cached) == []
    # a second, fresh run of the generator gives the same bytes
    python = ensure_venv(genai.RUNTIME.venv_spec(tmp_path / "no-wheels", cache), venvs_root(cache))
    fresh = tmp_path / "fresh"
    make_tiny_into(python, fresh)
    for name in BYTE_IDENTICAL:
        assert (fresh / name).read_bytes() == (cached / name).read_bytes(), name

    config = json.loads((cached / "config.json").read_text())
    assert config["architectures"] == ["Phi3ForCausalLM"]
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (128, 2, 517)
    tc = json.loads((cached / "tokenizer_config.json").read_text())
    assert tc["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "<|assistant|>" in tc["chat_template"]
    tok = json.loads((cached / "tokenizer.json").read_text())
    assert tok["model"]["byte_fallback"] is True
    added = {t["content"]: t["id"] for t in tok["added_tokens"]}
    assert [added[t] for t in ("<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>")] == list(
        range(512, 517))
    assert tok["model"]["vocab"]["<0x00>"] == 3 and tok["model"]["vocab"]["<0xFF>"] == 258
    golden = load_golden(cached)
    assert golden is not None
    assert len(golden["golden"]) == golden["max_new_tokens"] == 16
    assert golden["prompt"].endswith("<|assistant|>\n") and golden["prompt_ids"][0] == 514  # no BOS, <|system|>
    assert not set(golden["golden"]) & set(golden["eos_token_ids"])


@pytest.mark.skipif(sys.platform.startswith("win"), reason="a shell script stands in for the interpreter")
def test_a_failed_generator_names_its_last_line_and_leaves_a_log(tmp_path: Path) -> None:
    fake = tmp_path / "fake_python.py"
    fake.write_text("import sys\nprint('loading', file=sys.stderr)\n"
                    "print('ImportError: no torch', file=sys.stderr)\nsys.exit(3)\n")
    # the "interpreter" is python itself running the fake script, which ignores make_tiny.py's arguments
    wrapper = tmp_path / "py"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {fake} \"$@\"\n")
    wrapper.chmod(0o755)
    with pytest.raises(AipcError, match="generator failed: ImportError: no torch") as info:
        make_tiny_into(wrapper, tmp_path / "models" / "out", cache=tmp_path / "cache")
    log = tmp_path / "cache" / "logs" / "tiny-model.log"
    assert str(log) in info.value.message
    text = log.read_text()
    assert "make_tiny.py --out" in text and "ImportError: no torch" in text and "# exit 3" in text


def test_ensure_tiny_model_uses_the_callers_wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path] = []

    def fake_spec(wheels: Path, cache: Path) -> VenvSpec:
        seen.append(wheels)
        return VenvSpec("fake", ())

    def fake_make(python: Path, out: Path, **kw: Any) -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(genai.RUNTIME, "venv_spec", fake_spec)
    monkeypatch.setattr(tinymodel, "ensure_venv", lambda spec, root, echo=None: Path(sys.executable))
    monkeypatch.setattr(tinymodel, "make_tiny_into", fake_make)
    monkeypatch.setenv("AIPC_WHEELS", str(tmp_path / "default-wheels"))
    made = ensure_tiny_model(tmp_path / "c1", wheels=tmp_path / "bench-wheels")
    assert seen == [tmp_path / "bench-wheels"] and is_intact(made)
    ensure_tiny_model(tmp_path / "c2")
    assert seen[-1] == tmp_path / "default-wheels"
