"""Local Phi-3 checkpoint folders: what must be there, a content fingerprint, the golden reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import AipcError
from ..fsutil import sha256_file, sha256_text

WEIGHT_GLOBS = ("*.safetensors", "pytorch_model*.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
GOLDEN = "golden.json"
# files bigger than this enter the fingerprint by size and mtime instead of their hash (a real Phi-3 is GBs)
HASH_LIMIT = 64 << 20


def model_problems(model: Path) -> list[str]:
    """What is wrong with a Hugging Face checkpoint folder (empty list when it looks usable)."""
    if not model.is_dir():
        return [f"model folder {model} does not exist"]
    problems = []
    config = model / "config.json"
    if not config.is_file():
        problems.append(f"{model} has no config.json")
    else:
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or "model_type" not in data:
                problems.append(f"{config} has no model_type")
        except ValueError as exc:
            problems.append(f"{config} is not valid JSON ({exc})")
    if not any(any(model.glob(g)) for g in WEIGHT_GLOBS):
        problems.append(f"{model} has no weights (*.safetensors or pytorch_model*.bin)")
    if not any((model / f).is_file() for f in TOKENIZER_FILES):
        problems.append(f"{model} has no tokenizer (tokenizer.json or tokenizer.model)")
    return problems


def check_model(model: Path) -> Path:
    problems = model_problems(model)
    if problems:
        raise AipcError(
            "; ".join(problems),
            hint="pass a Hugging Face Phi-3 checkpoint folder (config.json, *.safetensors, tokenizer.json) "
            "with --model, or omit --model to use aipc's tiny Phi-3",
        )
    return model


def model_fingerprint(model: Path) -> str:
    """A fingerprint of a folder's files: names and sha256 (size + mtime for very large files)."""
    items = []
    for path in sorted(p for p in model.rglob("*") if p.is_file()):
        rel = path.relative_to(model).as_posix()
        st = path.stat()
        if st.st_size > HASH_LIMIT:
            items.append([rel, st.st_size, st.st_mtime_ns])
        else:
            items.append([rel, sha256_file(path)])
    return sha256_text(json.dumps(items))


def read_config(model: Path) -> dict[str, Any]:
    try:
        data = json.loads((model / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_golden(model: Path) -> dict[str, Any] | None:
    """The golden reference stored with aipc's tiny model (None for a user's model)."""
    path = model / GOLDEN
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise AipcError(f"{path} is not valid JSON ({exc})", hint=f"delete {model} so aipc makes it again") from None
    if not isinstance(data, dict) or not isinstance(data.get("golden"), list) or not data.get("messages"):
        raise AipcError(f"{path} lacks golden ids or messages", hint=f"delete {model} so aipc makes it again")
    return data
