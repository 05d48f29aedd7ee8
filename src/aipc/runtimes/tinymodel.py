"""aipc's embedded tiny Phi-3: made offline by ``workers/make_tiny.py`` in the genai venv, cached by fingerprint.

The folder is ``<aipc cache>/models/tiny-phi3-<fingerprint>``; the fingerprint covers the generator script, its
parameters and the genai constraints (the versions of torch / transformers / tokenizers that made it). A stamp file
records every file's sha256, so a damaged cached copy is detected and made again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from .. import stamps
from ..errors import AipcError, StepFailed
from ..fsutil import MARKER, output_dir, sha256_file, sha256_text
from ..locks import hold, use_cache
from ..runner import Command, Step, run_once
from ..venvs import cache_dir, ensure_venv, venvs_root
from ..wheelhouse import wheels_dir
from . import genai
from .base import CONSTRAINTS_DIR, WORKERS_DIR
from .worker import BYTECODE_ENV, WORKER_ENV

MAKE_TINY = WORKERS_DIR / "make_tiny.py"
STAMP = "aipc-tiny.json"
KIND = "tiny-model"  # the kind of folder (fsutil.MARKER) of the cached model and of `aipc tiny-model OUT`
HIDDEN = 128
LAYERS = 2
MAX_NEW_TOKENS = 16


def tiny_fingerprint() -> str:
    material = {
        "script": sha256_file(MAKE_TINY),
        "constraints": sha256_file(CONSTRAINTS_DIR / "genai.txt"),
        "hidden": HIDDEN,
        "layers": LAYERS,
        "max_new_tokens": MAX_NEW_TOKENS,
    }
    return sha256_text(json.dumps(material, sort_keys=True))[:16]


def tiny_model_dir(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "models" / f"tiny-phi3-{tiny_fingerprint()}"


def _file_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in (STAMP, MARKER)
    }


def is_intact(folder: Path) -> bool:
    """True when ``folder`` holds a complete tiny model whose files still match its stamp."""
    stamp = stamps.Stamp(folder / STAMP).read()  # version 1 or 2: the file hashes decide
    return stamp is not None and stamp.get("files") == _file_hashes(folder)


def ensure_tiny_model(cache: Path | None = None, *, echo: Callable[[str], None] | None = None,
                      wheels: Path | None = None) -> Path:
    """The deterministic tiny Phi-3 folder (with ``golden.json``), made on first use and cached.

    It is made in the genai venv of ``wheels`` (default :func:`aipc.wheelhouse.wheels_dir`): pass the folder the
    caller's own genai venv uses, so both share one spec and one venv."""
    cache = (cache or cache_dir()).resolve()
    use_cache(cache)  # aipc cache --clean leaves a cache in use alone
    dest = tiny_model_dir(cache)
    if is_intact(dest):
        return dest
    with hold("model", dest, f"the tiny model {dest}", cache=cache, echo=echo):
        if is_intact(dest):  # made by the run we waited for
            return dest
        say = echo or (lambda s: None)
        spec = genai.RUNTIME.venv_spec(wheels or wheels_dir(), cache)
        python = ensure_venv(spec, venvs_root(cache), echo=echo)
        t0 = time.monotonic()
        say(f"[aipc] tiny-model: making {dest.name}")
        # the cache is aipc's: a damaged copy (or one made before markers) is replaced; a stranger's file is not
        with output_dir(dest, KIND, force=True, recognise=lambda d: (d / STAMP).is_file()) as tmp:
            make_tiny_into(python, tmp, cache=cache, echo=echo)
            stamps.Stamp(tmp / STAMP).write(tiny_fingerprint(), files=_file_hashes(tmp))
        say(f"[aipc] tiny-model: ready in {time.monotonic() - t0:.1f} s ({dest})")
    return dest


# seconds the generator may take (5-7 s measured, mostly importing torch); a hang is stopped, never waited on
TIMEOUT = 600.0


def make_tiny_into(python: Path, out: Path, *, hidden: int = HIDDEN, layers: int = LAYERS,
                   max_new_tokens: int = MAX_NEW_TOKENS, cache: Path | None = None,
                   echo: Callable[[str], None] | None = None) -> None:
    """Run the generator in ``python``'s venv, writing the model to ``out`` (log: ``<cache>/logs/tiny-model.log``)."""
    argv = [str(python), str(MAKE_TINY), "--out", str(out), "--hidden", str(hidden), "--layers", str(layers),
            "--max-new-tokens", str(max_new_tokens)]
    # the generator runs with the workers' environment; an empty PYTHONPATH keeps aipc's out of the venv
    env = {**WORKER_ENV, **BYTECODE_ENV, "PYTHONPATH": ""}
    out.parent.mkdir(parents=True, exist_ok=True)
    step = Step("tiny-model", f"make aipc's tiny Phi-3 ({hidden} hidden, {layers} layers)",
                [Command.make(argv, out.parent, env, timeout=TIMEOUT)])
    logs = (cache or cache_dir()) / "logs"
    try:
        run_once(step, logs, echo or (lambda s: None))
    except StepFailed as exc:
        raise AipcError(
            f"tiny-model: generator failed: {exc.last_line[:300] or exc} (log: {logs / 'tiny-model.log'})",
            hint="check the genai venv (delete <aipc cache>/venvs/path-genai to rebuild it)",
        ) from None
