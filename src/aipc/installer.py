"""The installer behind every venv aipc makes: ``uv`` when it is there, ``pip`` otherwise, with the same results.

``--installer``/``AIPC_INSTALLER`` (:data:`aipc.settings.INSTALLER`): ``auto`` (default) takes uv when it is found
(the ``uv`` wheel aipc depends on, :func:`uv.find_uv_bin`, else ``uv`` on ``PATH``) and pip otherwise; ``uv`` or
``pip`` ask for one (``uv`` missing is an error, never a silent switch).

Both install the same thing from the same sources (docs/development.md#installers):

- pip reads its own configuration (``pip.conf`` files, ``PIP_*`` variables); uv reads none of it. aipc reads pip's
  effective configuration (:func:`pip_settings`, the files in pip's order, then ``PIP_*``) and passes its index,
  extra indexes, find-links, ``no-index`` and constraint files to uv as flags; the certificate file and timeout go
  to uv's ``SSL_CERT_FILE`` and ``UV_HTTP_TIMEOUT`` unless set.
- uv's own configuration is left out: ``--no-config`` (no ``uv.toml``/``pyproject.toml`` settings), and ``UV_*``
  variables other than cache, network and link-mode ones (:data:`UV_KEPT`) are removed from its environment.
- pip takes the best version among *all* its sources (the local CPU torch in a find-links folder beats the CUDA one
  on the index: ``2.13.0+cpu`` sorts above ``2.13.0``); uv, by default, stops at the first index that has the
  project. ``--index-strategy unsafe-best-match`` is uv's documented pip-compatible choice, so both pick the same
  files.
- ``python -m venv`` seeds a venv with the pip (and, before Python 3.12, setuptools) wheels bundled in the
  interpreter's ``ensurepip``; ``uv venv`` seeds nothing. The uv backend installs those same bundled wheels (no
  index involved), so ``pip``/``pkg_resources`` are in both kinds of venv.
- pip compiles every installed module to ``.pyc`` at install time (about 80 CPU-s per runtime venv, measured); uv,
  by default here, does not (``compile_bytecode=True`` passes ``--compile-bytecode``, about 50 CPU-s per venv): the
  modules a worker or converter imports are compiled on first use, and aipc runs those with
  ``PYTHONDONTWRITEBYTECODE`` cleared (:data:`aipc.runtimes.worker.BYTECODE_ENV`), so their ``.pyc`` files are
  written into aipc's venvs once, even where the user's environment says not to write bytecode.

uv keeps its package cache in its default place (``~/.cache/uv`` on Linux, ``%LOCALAPPDATA%\\uv\\cache`` on Windows;
``UV_CACHE_DIR`` moves it), beside pip's own cache; aipc's cache (``AIPC_CACHE``) holds the venvs.
"""

from __future__ import annotations

import configparser
import os
import shutil
import sys
import sysconfig
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePath
from typing import Any

from .errors import AipcError
from .proc import display, run
from .settings import INSTALLER, env_value

INSTALLERS = ("auto", "uv", "pip")
DEFAULT_INDEX = "https://pypi.org/simple"
# pip's options carried over to uv (file key; variable PIP_<KEY>); doctor reports some of them too
PIP_KEYS = ("index-url", "extra-index-url", "find-links", "no-index", "constraint", "cert", "timeout")
# uv variables that change where or how fast uv works, never what it installs: kept; every other UV_* is removed
UV_KEPT = frozenset({
    "UV_CACHE_DIR", "UV_NO_CACHE", "UV_HTTP_TIMEOUT", "UV_HTTP_RETRIES", "UV_CONCURRENT_DOWNLOADS",
    "UV_CONCURRENT_BUILDS", "UV_CONCURRENT_INSTALLS", "UV_NATIVE_TLS", "UV_LINK_MODE", "UV_OFFLINE",
    "UV_INSECURE_HOST",
})
SEED_PROBE = ("import ensurepip, os; d = os.path.join(os.path.dirname(ensurepip.__file__), '_bundled'); "
              "print('\\n'.join(os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith('.whl')))")
PROBE_TIMEOUT = 60.0

# --installer of this run (aipc.cli sets it after parsing); None: AIPC_INSTALLER, else auto
_chosen: str | None = None


# --- pip's configuration ----------------------------------------------------------------------------------------


def pip_config_files(environ: Mapping[str, str], windows: bool, prefix: str | None) -> list[Path]:
    """pip's configuration files in the order pip reads them (later wins): global, user, site (``prefix``'s; None:
    none, as for a new venv); PIP_CONFIG_FILE (pip's "Configuration" documentation). ``PIP_CONFIG_FILE=os.devnull``
    means no file at all, as in pip."""
    if environ.get("PIP_CONFIG_FILE") == os.devnull:
        return []
    files: list[Path] = []
    home = Path(environ.get("HOME") or environ.get("USERPROFILE") or Path.home())
    if windows:
        files.append(Path(environ.get("ProgramData", "C:\\ProgramData")) / "pip" / "pip.ini")
        appdata = environ.get("APPDATA")
        if appdata:
            files.append(Path(appdata) / "pip" / "pip.ini")
        files.append(home / "pip" / "pip.ini")
        if prefix:
            files.append(Path(prefix) / "pip.ini")
    else:
        for xdg in (environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep):
            if xdg:
                files.append(Path(xdg) / "pip" / "pip.conf")
        files.append(Path("/etc/pip.conf"))
        files.append(home / ".pip" / "pip.conf")
        files.append(Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf")
        if prefix:
            files.append(Path(prefix) / "pip.conf")
    if environ.get("PIP_CONFIG_FILE"):
        files.append(Path(environ["PIP_CONFIG_FILE"]))
    return files


def pip_settings(environ: Mapping[str, str], files: Sequence[Path]) -> dict[str, Any]:
    """pip's sources and constraints as ``pip install`` sees them: the files' ``[global]`` then ``[install]``
    sections, then ``PIP_*`` variables (highest). Lists (extra indexes, find-links, constraints) are
    whitespace-separated, as pip reads them."""
    found: dict[str, str] = {}
    read: list[str] = []
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            if not parser.read(path, encoding="utf-8"):
                continue
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        read.append(str(path))
        for section in ("global", "install"):
            if parser.has_section(section):
                for key in PIP_KEYS:
                    if parser.has_option(section, key):
                        found[key] = parser.get(section, key)
    for key in PIP_KEYS:
        value = environ.get("PIP_" + key.upper().replace("-", "_"))
        if value is not None:
            found[key] = value
    no_index = found.get("no-index", "").strip().lower() in ("1", "true", "yes", "on")
    return {
        "files": read,
        "index_url": found.get("index-url", "").strip() or DEFAULT_INDEX,
        "index_url_set": bool(found.get("index-url", "").strip()),
        "extra_index_urls": found.get("extra-index-url", "").split(),
        "find_links": found.get("find-links", "").split(),
        "no_index": no_index,
        "constraints": found.get("constraint", "").split(),
        "cert": found.get("cert", "").strip() or None,
        "timeout": found.get("timeout", "").strip() or None,
    }


@dataclass(frozen=True)
class PipSources:
    """What of pip's configuration uv must be told: indexes, find-links, constraints, certificate, timeout."""

    index_url: str | None = None  # None: pip's default (PyPI), also uv's
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    constraints: tuple[str, ...] = ()
    cert: str | None = None
    timeout: str | None = None
    files: tuple[str, ...] = ()

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None, windows: bool | None = None,
             prefix: str | None = None) -> PipSources:
        """pip's configuration as the pip of a new venv sees it (``environ`` default: this process's): the site
        file is the venv's own (``prefix``; None: a new venv has none), not aipc's interpreter's."""
        env = os.environ if environ is None else environ
        win = sys.platform.startswith("win") if windows is None else windows
        s = pip_settings(env, pip_config_files(env, win, prefix))
        return cls(index_url=s["index_url"] if s["index_url_set"] else None,
                   extra_index_urls=tuple(s["extra_index_urls"]), find_links=tuple(s["find_links"]),
                   no_index=s["no_index"], constraints=tuple(s["constraints"]), cert=s["cert"], timeout=s["timeout"],
                   files=tuple(s["files"]))

    def uv_args(self) -> list[str]:
        """The same sources and constraints as uv flags."""
        args: list[str] = []
        if self.no_index:
            args.append("--no-index")
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for links in self.find_links:
            args += ["--find-links", links]
        for path in self.constraints:
            args += ["-c", path]
        return args

    def uv_env(self, environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
        """The overlay of uv's environment: ``UV_*`` outside :data:`UV_KEPT` removed (None), pip's certificate and
        timeout given where uv looks for them (unless already set)."""
        env = os.environ if environ is None else environ
        overlay: dict[str, str | None] = {k: None for k in env if k.startswith("UV_") and k not in UV_KEPT}
        if self.cert and not env.get("SSL_CERT_FILE"):
            overlay["SSL_CERT_FILE"] = self.cert
        if self.timeout and not env.get("UV_HTTP_TIMEOUT"):
            overlay["UV_HTTP_TIMEOUT"] = self.timeout
        return overlay


# --- the installers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Installer:
    """Makes venvs and installs into them: commands (argv lists) for the caller to run, with :meth:`env`."""

    name: str = "pip"
    # modules compiled to .pyc at install (pip's default; uv's is off, see UvInstaller); False also where no module
    # is imported before a test compares what was installed (tests/test_installer.py)
    compile_bytecode: bool = True

    def create_venv(self, venv: PurePath, python: str, venv_python: PurePath,
                    seeds: Sequence[str] | None = None) -> list[list[str]]:
        """The commands that make ``venv`` from the interpreter ``python`` (``venv_python`` is its interpreter)
        with pip in it, as ``python -m venv`` does."""
        return [[python, "-m", "venv", str(venv)]]

    def install(self, venv_python: PurePath, args: Sequence[str], constraints: Sequence[PurePath | str] = ()
                ) -> list[str]:
        """``pip install ARGS`` into the venv of ``venv_python``, under ``constraints`` (``-c`` files)."""
        cons = [a for c in constraints for a in ("-c", str(c))]
        no_compile = [] if self.compile_bytecode else ["--no-compile"]
        return [str(venv_python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", *no_compile,
                *cons, *args]

    def uninstall(self, venv_python: PurePath, names: Sequence[str]) -> list[str]:
        return [str(venv_python), "-m", "pip", "uninstall", "-y", *names]

    def env(self) -> dict[str, str | None]:
        """The overlay of the environment the commands run in (pip: none; it reads its own configuration)."""
        return {}

    def label(self, argv: Sequence[str]) -> str:
        """A command as an error message names it: ``pip install ...``, ``uv pip install ...``."""
        return display(argv[2:] if argv[1:2] == ["-m"] else argv[1:])


@dataclass(frozen=True)
class UvInstaller(Installer):
    """uv, told pip's configuration (:class:`PipSources`) and nothing of its own."""

    name: str = "uv"
    uv: str = "uv"
    sources: PipSources = field(default_factory=PipSources)
    # not at install (about 50 CPU-s per runtime venv, most of it for modules nothing imports): aipc's venv
    # processes write the .pyc files of what they import on first use (aipc.runtimes.worker.BYTECODE_ENV);
    # True gives uv --compile-bytecode, as pip does by default
    compile_bytecode: bool = False

    def create_venv(self, venv: PurePath, python: str, venv_python: PurePath,
                    seeds: Sequence[str] | None = None) -> list[list[str]]:
        """``uv venv``, then the interpreter's bundled ``ensurepip`` wheels (``seeds``; None: asked from
        ``python``); an interpreter without them gets uv's own ``--seed`` (pip from the index)."""
        wheels = list(ensurepip_wheels(python) if seeds is None else seeds)
        # --allow-existing: an existing venv is kept and updated, as ``python -m venv`` does (the build venv)
        create = [self.uv, "venv", "--no-config", "--quiet", "--allow-existing", "--python", python, str(venv)]
        if not wheels:
            return [[*create[:-1], "--seed", str(venv)]]
        return [create, [self.uv, "pip", "install", "--no-config", "--python", str(venv_python), "--no-deps",
                         "--no-index", *wheels]]

    def install(self, venv_python: PurePath, args: Sequence[str], constraints: Sequence[PurePath | str] = ()
                ) -> list[str]:
        cons = [a for c in constraints for a in ("-c", str(c))]
        compile_pyc = ["--compile-bytecode"] if self.compile_bytecode else []
        return [self.uv, "pip", "install", "--no-config", "--python", str(venv_python), *compile_pyc,
                "--index-strategy", "unsafe-best-match", *self.sources.uv_args(), *cons, *args]

    def uninstall(self, venv_python: PurePath, names: Sequence[str]) -> list[str]:
        return [self.uv, "pip", "uninstall", "--no-config", "--python", str(venv_python), *names]

    def env(self) -> dict[str, str | None]:
        return self.sources.uv_env()

    def label(self, argv: Sequence[str]) -> str:
        return "uv " + display(argv[1:])


@cache
def ensurepip_wheels(python: str) -> tuple[str, ...]:
    """The wheels ``python -m venv`` seeds a venv with (``ensurepip/_bundled``), or () when ``python`` has none
    (e.g. a distribution's Python that keeps them elsewhere)."""
    out = run([python, "-c", SEED_PROBE], timeout=PROBE_TIMEOUT)
    if not out.ok:
        return ()
    return tuple(line.strip() for line in out.stdout.splitlines() if line.strip().endswith(".whl"))


# verify's tasks are threads that each select an installer: one looks for uv at a time, since uv.find_uv_bin reads
# sysconfig, whose first use is not thread-safe before Python 3.12 (a cold verify died with a TypeError from it)
_FIND_UV_LOCK = threading.Lock()


def find_uv() -> str | None:
    """The uv executable: the ``uv`` package's (a dependency of aipc), else ``uv`` on ``PATH``; None when neither."""
    with _FIND_UV_LOCK:
        sysconfig.get_config_vars()  # fill sysconfig's cache while no other thread of ours reads it
        try:
            import uv

            found = str(uv.find_uv_bin())
            if Path(found).is_file():
                return found
        except (ImportError, FileNotFoundError, OSError):
            pass
        return shutil.which("uv")


def use(choice: str | None) -> None:
    """Set this run's ``--installer`` (None: ``AIPC_INSTALLER``, else ``auto``); :mod:`aipc.cli` calls it."""
    global _chosen
    _chosen = choice


def choice(environ: Mapping[str, str] | None = None) -> str:
    """This run's installer choice: ``--installer`` > ``AIPC_INSTALLER`` > ``auto``."""
    return _chosen or env_value(INSTALLER, environ) or str(INSTALLER.default)


def select(wanted: str | None = None, environ: Mapping[str, str] | None = None) -> Installer:
    """The installer for ``wanted`` (default: :func:`choice`): ``auto`` is uv when found, else pip."""
    wanted = wanted or choice(environ)
    if wanted == "pip":
        return Installer()
    uv = find_uv()
    if uv is None:
        if wanted == "uv":
            raise AipcError("--installer uv: uv is not installed (neither the uv package nor uv on PATH)",
                            hint="pip install uv, or pass --installer pip (AIPC_INSTALLER=pip)")
        return Installer()
    return UvInstaller(uv=uv, sources=PipSources.read(environ))
