"""aipc's tiny Phi-3: made by the real generator in the genai venv (slow; venv cached in the shared test cache)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aipc.venvs import ensure_venv
from aipc.verify.model import load_golden, model_problems
from aipc.verify.paths import venv_spec
from aipc.verify.tinymodel import ensure_tiny_model, is_intact, make_tiny_into
from conftest import shared_cache

BYTE_IDENTICAL = ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "golden.json", "chat_template.jinja")


@pytest.mark.slow
def test_tiny_model_is_deterministic_and_follows_the_recipe(tmp_path: Path) -> None:
    cache = shared_cache()
    cached = ensure_tiny_model(cache)
    assert is_intact(cached) and model_problems(cached) == []
    # a second, fresh run of the generator gives the same bytes
    python = ensure_venv(venv_spec("genai", tmp_path / "no-wheels", cache=cache), cache / "venvs")
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
