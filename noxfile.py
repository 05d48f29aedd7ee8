"""aipc nox sessions: thin wrappers over the ``aipc`` command line (the logic lives in ``src/aipc``).

Bare ``nox`` runs the main job, ``verify`` (``nox.options.sessions``); every other session is run by name.
Extra arguments after ``--`` go to the ``aipc`` command, e.g. ``nox -s verify -- --paths genai``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["verify"]

ROOT = Path(__file__).parent.resolve()


def _aipc(session: nox.Session, *args: str) -> None:
    """Install aipc into the session venv (once) and run ``aipc ARGS POSARGS``."""
    session.install("-e", str(ROOT))
    session.run("aipc", *args, *session.posargs)


@nox.session
def verify(session: nox.Session) -> None:
    """Main job: smoke-test every Phi-3 path (genai, OpenVINO, NPU) on the embedded tiny Phi-3; pass/fail/skip."""
    _aipc(session, "verify", "--build-npu")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (unit and end-to-end, offline fixtures; pytest args after --)."""
    session.install("-e", f"{ROOT}[test]")
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the package, the noxfile and the tests; mypy (strict) over the package and the noxfile."""
    session.install("-e", f"{ROOT}[test]")
    session.run("ruff", "check", "src", "tests", "noxfile.py")
    session.run("mypy")


@nox.session(venv_backend="none")
def doctor(session: nox.Session) -> None:
    """Check this machine for what the build, verify and NPU paths need, with the fix for every problem."""
    env = {"PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    session.run(sys.executable, "-m", "aipc", "doctor", *session.posargs, env=env, external=True)


@nox.session(venv_backend="none")
def cache(session: nox.Session) -> None:
    """aipc's cache: each part's size and path (default), or remove it: ``nox -s cache -- --clean [--dry-run]``."""
    env = {"PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    session.run(sys.executable, "-m", "aipc", "cache", *session.posargs, env=env, external=True)


@nox.session
def pins(session: nox.Session) -> None:
    """Print the pinned upstream versions and the genai <-> ORT compatibility table."""
    _aipc(session, "pins")


@nox.session
def update_pins(session: nox.Session) -> None:
    """Maintainers: propose the newest stable onnxruntime-genai release and its ORT from upstream's tags and files
    (`aipc pins update`; `-- --write` writes, `-- --check` exits 3 when there is something to write)."""
    _aipc(session, "pins", "update")


@nox.session
def plan(session: nox.Session) -> None:
    """Print every command of the build (fetch ... wheels) with its cwd and environment, running nothing."""
    _aipc(session, "plan")


@nox.session
def fetch(session: nox.Session) -> None:
    """Clone ONNX Runtime and onnxruntime-genai at the pinned tags and verify their commits."""
    _aipc(session, "fetch")


@nox.session
def build_ort(session: nox.Session) -> None:
    """Build ONNX Runtime (DirectML on Windows) as a shared library and a wheel."""
    _aipc(session, "build-ort")


@nox.session
def ort_release(session: nox.Session) -> None:
    """Download (or inspect) the official ORT release named by --ort-release, verify it and record it (no ORT build)."""
    _aipc(session, "ort-release")


@nox.session
def stage(session: nox.Session) -> None:
    """Stage a complete, validated ORT_HOME (flat include/, lib/, manifest.json) from the ORT build."""
    if session.posargs:  # the contract form: --platform P --ort-source SRC --ort-build BUILD --out ORT_HOME
        _aipc(session, "stage")
    else:  # the pipeline's stage step on the default work directory layout
        _aipc(session, "build", "--steps", "stage")


@nox.session
def deps(session: nox.Session) -> None:
    """Fill a folder with genai's CMake dependencies for offline builds: `nox -s deps -- --out DIR` (then build
    with --deps-dir DIR --offline); without --out, list them and the --deps-dir folder serving each."""
    _aipc(session, "deps")


@nox.session
def build_genai(session: nox.Session) -> None:
    """Build the onnxruntime-genai (DirectML) wheel against the staged ORT_HOME."""
    _aipc(session, "build-genai")


@nox.session
def wheels(session: nox.Session) -> None:
    """Collect the ORT and genai wheels into wheels/ with SHA256SUMS and manifest.json."""
    _aipc(session, "wheels")


@nox.session
def build(session: nox.Session) -> None:
    """Run the whole build: fetch, build-ort (or ort-release), stage, build-genai, wheels (up-to-date steps skipped)."""
    _aipc(session, "build")


@nox.session
def index(session: nox.Session) -> None:
    """Write a PEP 503 package index (PEP 658 metadata) of the checked wheels/ to site/ (or: -- DIR --out SITE)."""
    if session.posargs:
        _aipc(session, "index")
    else:
        _aipc(session, "index", str(ROOT / "wheels"), "--out", str(ROOT / "site"))


@nox.session
def upstream(session: nox.Session) -> None:
    """Build the real onnxruntime-genai from ../shared/upstream offline against the official ORT release and verify
    it (jobs bound, clean RUNPATH, source trees unchanged); skipped with a reason when ../shared/upstream is absent."""
    session.install("-e", str(ROOT))
    upstream_dir = os.environ.get("AIPC_UPSTREAM") or str(ROOT.parent / "shared" / "upstream")
    session.run("aipc", "check-upstream", "--upstream", upstream_dir, "--workdir", str(ROOT / ".aipc" / "upstream"),
                *session.posargs)


@nox.session
def build_npu(session: nox.Session) -> None:
    """Rebuild intel-npu-acceleration-library offline (scikit-build-core) into a portable wheel in wheels/."""
    _aipc(session, "build-npu")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark TTFT, tokens/s and memory per path and device; writes bench.json, CSV, PNG charts, Markdown."""
    session.install("-e", f"{ROOT}[plot]")
    session.run("aipc", "bench", *session.posargs)
