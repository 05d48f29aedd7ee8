"""aipc's embedded tiny Phi-3: made offline by ``workers/make_tiny.py`` in the genai venv, cached by fingerprint.

The folder is ``<aipc cache>/models/tiny-phi3-<fingerprint>``; the fingerprint covers the generator script, its
parameters and the genai constraints (the versions of torch / transformers / tokenizers that made it). A stamp file
records every file's sha256, so a damaged cached copy is detected and made again.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import AipcError
from ..fsutil import atomic_path, atomic_write_json, sha256_file, sha256_text
from ..venvs import cache_dir, ensure_venv
from ..wheelhouse import wheels_dir
from .paths import CONSTRAINTS_DIR, WORKERS_DIR, venv_spec
from .smoke import WORKER_ENV

MAKE_TINY = WORKERS_DIR / "make_tiny.py"
STAMP = "aipc-tiny.json"
HIDDEN = 128
LAYERS = 2
MAX_NEW_TOKENS = 16
TIMEOUT = 600.0


def tiny_fingerprint(hidden: int = HIDDEN, layers: int = LAYERS, max_new_tokens: int = MAX_NEW_TOKENS) -> str:
    material = {
        "script": sha256_file(MAKE_TINY),
        "constraints": sha256_file(CONSTRAINTS_DIR / "genai.txt"),
        "hidden": hidden,
        "layers": layers,
        "max_new_tokens": max_new_tokens,
    }
    return sha256_text(json.dumps(material, sort_keys=True))[:16]


def tiny_model_dir(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "models" / f"tiny-phi3-{tiny_fingerprint()}"


def _file_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != STAMP
    }


def is_intact(folder: Path) -> bool:
    """True when ``folder`` holds a complete tiny model whose files still match its stamp."""
    try:
        stamp = json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("files") == _file_hashes(folder)


def ensure_tiny_model(cache: Path | None = None, *, echo: Callable[[str], None] | None = None) -> Path:
    """The deterministic tiny Phi-3 folder (with ``golden.json``), made on first use and cached."""
    cache = (cache or cache_dir()).resolve()
    dest = tiny_model_dir(cache)
    if is_intact(dest):
        return dest
    say = echo or (lambda s: None)
    spec = venv_spec("genai", wheels_dir(), cache=cache)
    python = ensure_venv(spec, cache / "venvs", echo=echo)
    t0 = time.monotonic()
    say(f"[aipc] tiny-model: making {dest.name}")
    with atomic_path(dest) as tmp:
        make_tiny_into(python, tmp)
        atomic_write_json(tmp / STAMP, {"fingerprint": tiny_fingerprint(), "files": _file_hashes(tmp)})
    say(f"[aipc] tiny-model: ready in {time.monotonic() - t0:.1f} s ({dest})")
    return dest


def make_tiny_into(python: Path, out: Path, *, hidden: int = HIDDEN, layers: int = LAYERS,
                   max_new_tokens: int = MAX_NEW_TOKENS, timeout: float = TIMEOUT) -> None:
    """Run the generator in ``python``'s venv, writing the model to ``out``."""
    env = {**os.environ, **WORKER_ENV}
    env.pop("PYTHONPATH", None)
    argv = [str(python), str(MAKE_TINY), "--out", str(out), "--hidden", str(hidden), "--layers", str(layers),
            "--max-new-tokens", str(max_new_tokens)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise AipcError(f"tiny-model: generator timed out after {timeout:g} s") from None
    if proc.returncode != 0:
        last = next((ln.strip() for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "")
        raise AipcError(
            f"tiny-model: generator exited with code {proc.returncode}: {last[:300]}",
            hint="check the genai venv (delete <aipc cache>/venvs/path-genai to rebuild it)",
        )
