"""Collectors: gather raw facts about this machine (no verdicts; those are in :mod:`aipc.doctor.checks`).

Collectors run in a thread pool, every subprocess has a timeout, and a collector that raises is recorded under
``errors`` instead of stopping the doctor. OpenVINO and ONNX Runtime are never imported in this process: the
device query can crash the process (docs/upstream.md#npu §6.10), so it runs in a subprocess.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import struct
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from .. import __version__
from ..installer import DEFAULT_INDEX as DEFAULT_INDEX
from ..installer import pip_config_files, pip_settings
from ..platforms import host_platform_name
from ..proc import describe_returncode, run
from ..settings import TRUE as ENV_TRUE
from ..settings import env as aipc_env
from ..venvs import venv_python, venvs_root
from .facts import SCHEMA, Facts

# Distributions whose presence or version a check looks at (normalized names).
PACKAGES = (
    "onnxruntime", "onnxruntime-directml", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-qnn",
    "onnxruntime-genai", "onnxruntime-genai-directml", "onnxruntime-genai-cuda",
    "openvino", "openvino-genai", "openvino-tokenizers", "optimum-intel", "nncf",
    "intel-npu-acceleration-library", "torch", "transformers", "numpy",
)
OPENVINO_TIMEOUT = 30.0
TOOL_TIMEOUT = 10.0
_VERSION_RE = re.compile(r"(\d+\.\d+(?:\.\d+){0,2})")


# --- host and python ------------------------------------------------------------------------------------------------

def collect_host(workdir: Path, plat: str) -> dict[str, Any]:
    try:
        usage = shutil.disk_usage(workdir)
        disk_free: int | None = usage.free
        disk_total: int | None = usage.total
    except OSError:
        disk_free = disk_total = None
    return {
        "platform": plat,
        "system": platform.system(),
        "release": platform.release(),
        "version": platform.version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "workdir": str(workdir),
        "disk_free_bytes": disk_free,
        "disk_total_bytes": disk_total,
    }


def is_store_python_path(path: str | None) -> bool:
    """A Microsoft Store Python or the App Execution Alias stub lives below ...\\WindowsApps\\."""
    if not path:
        return False
    low = path.replace("/", "\\").lower()
    return "\\windowsapps\\" in low or "pythonsoftwarefoundation.python" in low


def collect_python() -> dict[str, Any]:
    on_path = shutil.which("python")
    return {
        "version": platform.python_version(),
        "version_info": list(sys.version_info[:3]),
        "implementation": platform.python_implementation(),
        "bits": struct.calcsize("P") * 8,
        "executable": sys.executable,
        "prefix": sys.prefix,
        "in_venv": sys.prefix != sys.base_prefix,
        "store": is_store_python_path(sys.executable),
        "path_python": on_path,
        "path_python_is_store_stub": is_store_python_path(on_path),
    }


# --- tools ------------------------------------------------------------------------------------------------------

def parse_tool_version(text: str) -> str | None:
    """First dotted version in a tool's ``--version`` output (git, cmake, ninja, nuget)."""
    for line in text.splitlines():
        match = _VERSION_RE.search(line)
        if match:
            return match.group(1)
    return None


TOOL_COMMANDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (executable names to look for, arguments that print the version)
    "git": (("git",), ("--version",)),
    "cmake": (("cmake",), ("--version",)),
    "ninja": (("ninja",), ("--version",)),
    "nuget": (("nuget", "nuget.exe"), ("help",)),
}


def collect_tool(name: str) -> dict[str, Any]:
    exes, args = TOOL_COMMANDS[name]
    path = next((p for p in (shutil.which(e) for e in exes) if p), None)
    if path is None:
        return {"path": None, "version": None}
    out = run([path, *args], timeout=TOOL_TIMEOUT)
    version = parse_tool_version(out.stdout + "\n" + out.stderr) if out.returncode is not None else None
    info: dict[str, Any] = {"path": path, "version": version}
    if version is None:
        info["error"] = out.reason()
    return info


# --- the C compiler CMake would pick (Linux; on Windows MSVC comes from vswhere) ----------------------------------

def parse_compiler(text: str) -> tuple[str | None, str | None]:
    """``cc --version`` -> (kind, version): ``gcc (Debian 12.2.0-14) 12.2.0`` -> ("gcc", "12.2.0"),
    ``Ubuntu clang version 14.0.0-1ubuntu1`` -> ("clang", "14.0.0")."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    low = text.lower()
    if "clang" in first.lower():
        match = re.search(r"clang version (\d+(?:\.\d+)*)", first)
        return "clang", match.group(1) if match else None
    if first.lower().startswith(("gcc", "cc ", "c++", "g++")) or "free software foundation" in low:
        found = re.findall(r"(?<![\w.-])(\d+\.\d+(?:\.\d+)?)(?![\w.-])", first)
        return "gcc", found[-1] if found else None
    return None, parse_tool_version(text)


def collect_cc(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The C compiler CMake picks first ($CC, else ``cc``); genai's CMakeLists checks its GCC version."""
    env = dict(os.environ) if environ is None else environ
    command = env.get("CC") or "cc"
    path = shutil.which(command)
    if path is None:
        return {"command": command, "path": None}
    out = run([path, "--version"], timeout=TOOL_TIMEOUT)
    kind, version = parse_compiler(out.stdout)
    info: dict[str, Any] = {"command": command, "path": path, "kind": kind, "version": version}
    if not out.ok:
        info["error"] = out.reason()
    return info


# --- pip: can a venv be made and filled? -----------------------------------------------------------------------------

PIP_PROBE_TIMEOUT = 4.0
# pip's configuration is read by aipc.installer.pip_settings (one reader, shared with the uv installer)


def probe_source(kind: str, url: str, cert: str | None = None, timeout: float = PIP_PROBE_TIMEOUT) -> dict[str, Any]:
    """Does a pip source answer? A local folder (or file:// URL) must exist; an http(s) index is asked for its
    ``pip`` project page (any answer below 500 means it is reachable)."""
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request

    result: dict[str, Any] = {"kind": kind, "url": url}
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("http", "https"):
        target = url.rstrip("/") + ("/pip/" if kind in ("index", "extra-index") else "")
        t0 = time.monotonic()
        try:
            context = ssl.create_default_context(cafile=cert) if cert and parsed.scheme == "https" else None
            with urllib.request.urlopen(urllib.request.Request(target, method="GET"), timeout=timeout,
                                        context=context) as resp:
                result.update(ok=True, status=resp.status)
        except urllib.error.HTTPError as exc:
            # any answer but a server error or a refusal to serve (authentication, proxy) means pip gets through
            result.update(ok=exc.code < 500 and exc.code not in (401, 403, 407), status=exc.code,
                          error=f"HTTP {exc.code}")
        except (urllib.error.URLError, OSError, ValueError, ssl.SSLError) as exc:
            reason = getattr(exc, "reason", exc)
            result.update(ok=False, error=f"{type(exc).__name__}: {reason}"[:200])
        result["seconds"] = round(time.monotonic() - t0, 3)
        return result
    local = Path(urllib.request.url2pathname(parsed.path)) if parsed.scheme == "file" else Path(url)
    exists = local.exists()
    result.update(ok=exists, **({} if exists else {"error": "no such file or folder"}))
    if exists:
        result["build_tools"] = local_distributions(local, kind != "find-links")
    return result


BUILD_TOOL_PROJECTS = ("cmake", "ninja")
_DIST_FILE_RE = r"({name}-\d[^\s\"'<>#/]*?\.(?:whl|tar\.gz|zip))"


def local_distributions(root: Path, simple_index: bool, projects: tuple[str, ...] = BUILD_TOOL_PROJECTS,
                        limit: int = 40) -> dict[str, list[str]]:
    """The files of ``projects`` (the ``[build_tools]`` CMake and Ninja) a local pip source offers: a find-links
    folder's file names, or the file names a local PEP 503 index lists on ``<root>/<project>/index.html``."""
    found: dict[str, list[str]] = {}
    for name in projects:
        pattern = re.compile(_DIST_FILE_RE.format(name=re.escape(name)), re.I)
        names: list[str] = []
        try:
            if simple_index:
                page = root / name / "index.html"
                if page.is_file():
                    names = sorted(set(pattern.findall(page.read_text(encoding="utf-8", errors="replace"))))
            elif root.is_dir():
                names = sorted(p.name for p in root.iterdir() if pattern.fullmatch(p.name))
        except OSError:
            names = []
        found[name] = names[:limit]
    return found


def collect_pip(environ: dict[str, str] | None = None, windows: bool | None = None,
                probe: Callable[[str, str, str | None], dict[str, Any]] | None = None) -> dict[str, Any]:
    """What a new venv needs to be made and filled: the venv and ensurepip modules, and pip's sources."""
    env = dict(os.environ) if environ is None else environ
    win = sys.platform.startswith("win") if windows is None else windows
    settings = pip_settings(env, pip_config_files(env, win, sys.base_prefix))
    # aipc build --find-links DIR / AIPC_FIND_LINKS adds a wheelhouse; with --offline / AIPC_OFFLINE it is then the
    # only source (pip --no-index), as aipc.wheelbuild.buildvenv.pip_install does. Doctor sees the environment
    # variables.
    aipc_links = (aipc_env("AIPC_FIND_LINKS", env) or "").strip()
    offline = (aipc_env("AIPC_OFFLINE", env) or "").strip().lower() in ENV_TRUE
    no_index = settings["no_index"] or bool(aipc_links and offline)
    sources: list[tuple[str, str]] = []
    if not no_index:
        sources.append(("index", settings["index_url"]))
        sources += [("extra-index", u) for u in settings["extra_index_urls"]]
    sources += [("find-links", u) for u in settings["find_links"]]
    if aipc_links:
        sources.append(("find-links", aipc_links))
    check = probe or probe_source
    return {
        "venv": importlib.util.find_spec("venv") is not None,
        "ensurepip": importlib.util.find_spec("ensurepip") is not None,
        "config_files": settings["files"],
        "no_index": no_index,
        "aipc_find_links": aipc_links or None,
        "sources": [check(kind, url, settings["cert"]) for kind, url in sources[:8]],
    }


# --- aipc's wheels/ folder ------------------------------------------------------------------------------------------

def collect_aipc_wheels(directory: Path | None = None, limit: int = 500) -> dict[str, Any]:
    """The wheel file names in aipc's wheels folder (``--wheels``/``$AIPC_WHEELS``/``./wheels``, as verify uses)."""
    from ..wheelhouse import wheels_dir

    folder = Path(directory) if directory is not None else wheels_dir()
    try:
        names = sorted(p.name for p in folder.glob("*.whl"))
    except OSError:
        names = []
    return {"dir": str(folder.absolute()), "exists": folder.is_dir(), "files": names[:limit]}


# --- packages ---------------------------------------------------------------------------------------------------

def collect_packages() -> dict[str, Any]:
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        try:
            name = canonicalize_name(dist.metadata["Name"] or "")
        except (KeyError, TypeError):
            continue
        if name in PACKAGES and name not in found:
            found[name] = dist.version
    return {"interpreter": sys.executable, "installed": dict(sorted(found.items()))}


# --- OpenVINO devices (subprocess) --------------------------------------------------------------------------------

OPENVINO_PROBE = r"""
import json, sys
out = {"status": "ok"}
try:
    import openvino as ov
    out["version"] = str(ov.get_version())
    core = ov.Core()
    devices = [str(d) for d in core.available_devices]
    out["devices"] = devices
    names = {}
    for d in devices:
        try:
            names[d] = str(core.get_property(d, "FULL_DEVICE_NAME"))
        except Exception as exc:
            names[d] = None
    out["device_names"] = names
    if "NPU" in devices:
        try:
            out["npu_driver_version"] = int(core.get_property("NPU", "NPU_DRIVER_VERSION"))
        except Exception:
            pass
except Exception as exc:
    out = {"status": "error", "error": (type(exc).__name__ + ": " + str(exc)).strip().splitlines()[0]}
sys.stdout.write("\nAIPC-OPENVINO " + json.dumps(out) + "\n")
"""


def venv_site_has(venv: Path, package: str) -> bool:
    patterns = (f"lib/python*/site-packages/{package}/__init__.py", f"Lib/site-packages/{package}/__init__.py")
    return any(next(venv.glob(p), None) is not None for p in patterns)


def openvino_interpreters(venv_root: Path) -> list[str]:
    """Interpreters that can import openvino: this one, then aipc's per-path venvs (``<cache>/venvs/*``)."""
    found: list[str] = []
    if importlib.util.find_spec("openvino") is not None:
        found.append(sys.executable)
    try:
        # the OpenVINO path's own venv first (the NPU library's venv pins an old OpenVINO)
        venvs = sorted((p for p in venv_root.iterdir() if p.is_dir()), key=lambda p: ("openvino" not in p.name, p.name))
    except OSError:
        venvs = []
    for venv in venvs:
        py = venv_python(venv)
        if py.exists() and venv_site_has(venv, "openvino"):
            found.append(str(py))
    return found


def probe_openvino(python: str, timeout: float = OPENVINO_TIMEOUT, env: dict[str, str] | None = None,
                   ) -> dict[str, Any]:
    """Ask ``python`` which devices OpenVINO sees. A crash or a timeout is a fact too (status crash/timeout)."""
    t0 = time.monotonic()
    out = run([python, "-c", OPENVINO_PROBE], timeout=timeout, env=env)
    result = parse_openvino_probe(out.stdout)
    if result is None:
        if out.error:
            result = {"status": "timeout" if out.error.startswith("timeout") else "error", "error": out.error}
        else:
            result = {
                "status": "crash",
                "returncode": out.returncode,
                "error": f"the device query died with exit code {describe_returncode(out.returncode)}: "
                         + out.reason().split(": ", 1)[-1],
            }
    result["python"] = python
    result["seconds"] = round(time.monotonic() - t0, 3)
    return result


def parse_openvino_probe(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("AIPC-OPENVINO "):
            try:
                value = json.loads(line[len("AIPC-OPENVINO "):])
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None


def collect_openvino(venv_root: Path | None = None) -> dict[str, Any]:
    """The device query in the first interpreter that has openvino; ``venv_root`` is recorded so that a fix can
    name the venv to recreate."""
    venv_root = venv_root or venvs_root()
    interpreters = openvino_interpreters(venv_root)
    if not interpreters:
        return {"status": "not-installed", "searched": [sys.executable, str(venv_root)], "venv_root": str(venv_root)}
    return {**probe_openvino(interpreters[0]), "venv_root": str(venv_root)}


# --- orchestration ----------------------------------------------------------------------------------------------

Collector = Callable[[], Any]


def _set(facts: Facts, dotted: str, value: Any) -> None:
    node = facts
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def collectors_for(plat: str, workdir: Path, venv_root: Path | None = None) -> dict[str, Collector]:
    """Named collectors; the name is the dotted place of the result in the facts."""
    jobs: dict[str, Collector] = {
        "host": lambda: collect_host(workdir, plat),
        "python": collect_python,
        "packages": collect_packages,
        "devices.openvino": lambda: collect_openvino(venv_root),
    }
    for tool in TOOL_COMMANDS:
        jobs[f"tools.{tool}"] = lambda tool=tool: collect_tool(tool)  # type: ignore[misc]
    jobs["tools.pip"] = collect_pip
    jobs["runtime.aipc_wheels"] = collect_aipc_wheels
    if plat == "linux":
        jobs["tools.cc"] = collect_cc
        from . import linux

        jobs["linux"] = linux.collect_linux
        jobs["runtime.ort_libraries"] = lambda: linux.find_ort_libraries(os.environ.get("LD_LIBRARY_PATH", ""))
    elif plat == "windows":
        from . import windows

        jobs["windows"] = windows.collect_windows
        jobs["windows.visual_studio"] = windows.collect_visual_studio
    return jobs


def collect_facts(workdir: Path | None = None, venv_root: Path | None = None) -> Facts:
    """Gather every fact about this machine, in parallel. Never raises for a failing collector."""
    t0 = time.monotonic()
    workdir = Path(workdir or Path.cwd()).resolve()
    plat = host_platform_name()
    facts: Facts = {
        "schema": SCHEMA,
        "aipc_version": __version__,
        "collected_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {}, "python": {}, "tools": {}, "packages": {}, "runtime": {}, "devices": {},
        "linux": None, "windows": None, "errors": {},
    }
    jobs = collectors_for(plat, workdir, venv_root)
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        results: dict[str, Any] = {}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except Exception as exc:  # a collector bug must not hide the other facts
                facts["errors"][name] = f"{type(exc).__name__}: {exc}"
    # whole sections first, then the dotted entries into them
    for name in sorted(results, key=lambda n: n.count(".")):
        _set(facts, name, results[name])
    if plat == "windows" and isinstance(facts.get("windows"), dict):
        from . import windows

        windows.finish_windows_facts(facts)
    facts["collect_seconds"] = round(time.monotonic() - t0, 3)
    return facts
