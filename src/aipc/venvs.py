"""Per-path virtual environments with pinned constraints, reused while their spec is unchanged.

Rules (docs/upstream.md#paths §2):
- torch is installed first, alone, at the pinned version, so nothing later pulls a multi-GB CUDA build;
- each path gets its own venv (the NPU library shadows ``openvino``; see docs/upstream.md#npu §3);
- a venv is "ready" only when its marker file ``aipc-venv.json`` holds the spec's fingerprint; the marker is
  written last (atomically), so an interrupted install is rebuilt from scratch on the next run;
- a venv is created under its lock (:func:`aipc.locks.hold`): a second run waits, then finds it ready;
- aipc's own wheels are checked against their folder's ``SHA256SUMS`` before pip sees them;
- uv or pip makes the venv and installs (:mod:`aipc.installer`, ``--installer``), with the same sources and
  constraints and the same result; the marker records which one, outside the fingerprint.

Venvs live in ``<cache>/venvs/<name>`` where ``<cache>`` is ``$AIPC_CACHE`` or the user cache folder
(:func:`aipc.settings.cache_dir`).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import Any, TextIO, TypeVar

from .errors import AipcError
from .fsutil import sha256_file
from .heartbeat import Heartbeat
from .installer import Installer, select
from .locks import hold, use_cache
from .log import LOG
from .platforms import Platform, get_platform
from .proc import describe_returncode, display, stream
from .settings import cache_dir as cache_dir  # the one definition (AIPC_CACHE, else the user cache folder)
from .stamps import Stamp, legacy_fingerprint

MARKER = "aipc-venv.json"
P = TypeVar("P", bound=PurePath)


@dataclass(frozen=True)
class VenvSpec:
    """What a path's venv holds. ``steps`` are pip install argument lists run in order, after torch."""

    name: str
    steps: tuple[tuple[str, ...], ...]
    torch: str | None = None  # e.g. "2.13.0"; installed first and alone
    constraints: Path | None = None
    uninstall: tuple[str, ...] = ()  # removed after installing (e.g. torchvision, docs/upstream.md#paths §2)
    local_wheels: tuple[Path, ...] = ()  # aipc's own wheels; their sha256 enters the fingerprint
    python: str = field(default_factory=lambda: base_python())

    def _material(self, *, by_name: bool) -> dict[str, Any]:
        data = asdict(self)
        data["constraints"] = sha256_file(self.constraints) if self.constraints else None
        data["local_wheels"] = [sha256_file(w) for w in self.local_wheels]
        if by_name:  # where the wheels folder is does not matter: their names and sha256 do
            names = {str(w): w.name for w in self.local_wheels}
            data["steps"] = [[names.get(arg, arg) for arg in step] for step in self.steps]
        return data

    def fingerprint(self) -> str:
        """What the venv's marker holds: the spec with aipc's own wheels by name and sha256 (not by path), the
        constraints file by sha256. Without local wheels it equals :meth:`legacy_fingerprint`."""
        return legacy_fingerprint(self._material(by_name=True))

    def legacy_fingerprint(self) -> str:
        """The fingerprint of markers without a ``version`` (wheels by path); only to migrate them."""
        return legacy_fingerprint(self._material(by_name=False))


def base_python() -> str:
    """The interpreter venvs are created from: the base one (not a venv's), so nox sessions and the dev venv share
    the same path venvs."""
    return str(getattr(sys, "_base_executable", None) or sys.executable)


def venv_python(venv: P, platform: Platform | None = None) -> P:
    """The interpreter of a venv, laid out as on ``platform`` (default: this host): ``bin/python``,
    ``Scripts\\python.exe``. ``venv`` may be a pure path, so a Windows venv is planned on Linux."""
    plat = platform or get_platform()
    return venv / plat.venv_bin_dir / f"python{plat.exe_suffix}"


def venvs_root(cache: Path | None = None) -> Path:
    """Where path venvs live: ``<cache>/venvs`` (default cache: :func:`cache_dir`)."""
    return (cache or cache_dir()) / "venvs"


def venv_dir(spec: VenvSpec, root: Path | None = None) -> Path:
    return (root or venvs_root()) / spec.name


def install_log(venv: Path) -> Path:
    """The log of the venv's last install (next to it: ``<cache>/venvs/<name>.install.log``)."""
    return venv.parent / f"{venv.name}.install.log"


def is_ready(spec: VenvSpec, root: Path | None = None) -> bool:
    """The venv's marker holds the spec's fingerprint and its interpreter exists. A marker from before version 2
    whose (path-based) fingerprint matches is migrated in place (:mod:`aipc.stamps`), not rebuilt."""
    venv = venv_dir(spec, root)
    if not venv_python(venv).exists():
        return False
    marker = Stamp(venv / MARKER)
    state = marker.matches(spec.fingerprint(), legacy=spec.legacy_fingerprint())
    if state == "legacy":
        _write_marker(spec, venv)
    return state is not None


def _write_marker(spec: VenvSpec, venv: Path, inst: Installer | None = None) -> None:
    spec_json = json.loads(json.dumps(asdict(spec), default=str))  # Paths (constraints, wheels) as strings
    made_by = {"installer": inst.name} if inst else {}  # not in the fingerprint: both install the same
    Stamp(venv / MARKER).write(spec.fingerprint(), spec=spec_json, **made_by)


def ensure_venv(
    spec: VenvSpec, root: Path | None = None, *, log: Path | None = None, echo: Callable[[str], None] | None = None,
    installer: Installer | None = None,
) -> Path:
    """Create (or reuse) the venv for ``spec``; returns its Python executable. ``installer``: default this run's
    (:func:`aipc.installer.select`: ``--installer``/``AIPC_INSTALLER``, uv when found)."""
    venv = venv_dir(spec, root)
    say = echo or LOG
    use_cache(venv.parent.parent)  # aipc cache --clean leaves a cache in use alone
    if is_ready(spec, root):
        return venv_python(venv)
    with hold("venv", venv, f"the venv {venv}", cache=venv.parent.parent, echo=say):
        if is_ready(spec, root):  # made by the run we waited for
            return venv_python(venv)
        return _create(spec, venv, log, say, installer or select())


def _create(spec: VenvSpec, venv: Path, log: Path | None, say: Callable[[str], None], inst: Installer) -> Path:
    from .wheelhouse import checked_wheel

    for wheel in spec.local_wheels:
        checked_wheel(wheel)
    t0 = time.monotonic()
    say(f"[aipc] venv {spec.name}: creating {venv} ({inst.name})")
    if venv.exists():  # an old venv of thousands of files: minutes on a busy disk, so it reports too
        with Heartbeat(f"venv {spec.name}: removing the old venv", say):
            shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    log = log or install_log(venv)
    py = venv_python(venv)
    with log.open("w", encoding="utf-8") as fh:
        what = f"venv {spec.name}"
        for argv in inst.create_venv(venv, spec.python, py):
            _run(argv, fh, spec.name, f"{what}: creating ({inst.name})", say, inst)
        if spec.torch:
            _run(inst.install(py, [f"torch=={spec.torch}"]), fh, spec.name,
                 f"{what}: installing torch {spec.torch}", say, inst)
        cons = [spec.constraints] if spec.constraints else []
        for step in spec.steps:
            _run(inst.install(py, step, cons), fh, spec.name, f"{what}: installing {install_label(step)}", say, inst)
        if spec.uninstall:
            _run(inst.uninstall(py, spec.uninstall), fh, spec.name, f"{what}: removing {', '.join(spec.uninstall)}",
                 say, inst)
    _write_marker(spec, venv, inst)
    say(f"[aipc] venv {spec.name}: ready in {time.monotonic() - t0:.1f} s with {inst.name} (log: {log})")
    return py


def install_label(args: Sequence[str], shown: int = 2) -> str:
    """What a pip install step installs, for progress: its requirements (not options, not paths to wheels but their
    file names), the first ``shown`` by name: ``optimum-intel, nncf and 3 more``."""
    names: list[str] = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        if arg in _VALUE_OPTIONS:
            skip_next = True
            continue
        if arg.startswith("-"):
            continue
        names.append(PurePath(arg).name if arg.endswith(".whl") else arg)
    if not names:
        return "packages"
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


# pip install options followed by a value (their value is not a requirement)
_VALUE_OPTIONS = frozenset({"-c", "--constraint", "-r", "--requirement", "-f", "--find-links", "-i", "--index-url",
                            "--extra-index-url", "--target", "--prefix", "--root", "--platform", "--python-version",
                            "--only-binary", "--no-binary", "-e", "--editable", "--config-settings", "-C"})


def _run(argv: list[str], log: TextIO, name: str, label: str, echo: Callable[[str], None], inst: Installer) -> None:
    log.write(f"$ {display(argv)}\n")
    log.flush()
    try:  # unbuffered: pip's lines reach the log and the heartbeat as it prints them, not in bursts
        done = stream(argv, cwd=None, env={"PYTHONUNBUFFERED": "1", **inst.env()}, log=log,
                      heartbeat=Heartbeat(label, echo))
    except OSError as exc:
        raise AipcError(f"venv {name}: cannot start {argv[0]} ({exc.strerror or exc})",
                        hint="check the Python interpreter aipc creates venvs from (--python) and the installer "
                             "(--installer)") from None
    if done.returncode != 0:
        raise AipcError(
            f"venv {name}: `{inst.label(argv)}` failed with exit code {describe_returncode(done.returncode)} "
            f"(log: {log.name})" + (f"; last line: {done.last_line()[:200]}" if done.last_line() else ""),
            hint="check network access to PyPI and the pins in src/aipc/pins.toml"
                 + ("; or try --installer pip (AIPC_INSTALLER=pip)" if inst.name == "uv" else ""),
        )
