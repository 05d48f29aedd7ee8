"""Fixture upstreams for the build pipeline's end-to-end tests: tiny git repositories written by the tests.

Nothing here is upstream code. The repositories mirror only the *interfaces* aipc drives
(docs/upstream.md#build §1, 2 and 6):

- **onnxruntime**: ``VERSION_NUMBER``, the header layout of ``include/onnxruntime/core`` (minimal headers from
  ``ort_fixtures.write_ort_source``), ``build.sh`` -> ``tools/ci_build/build.py --build_dir <repo>/build/Linux``,
  which accepts ORT's flags, refuses ``--use_dml`` off Windows, puts outputs in ``build/Linux/<config>/`` (one more
  ``<config>`` for multi-config generators) and compiles a real shared library with gcc that exports
  ``OrtGetApiBase`` (``GetApi(v)`` non-null for ``v <= ORT_API_VERSION``, ``GetVersionString()`` = the version), as
  ``libonnxruntime.so.<ver>`` with the ``.so.<major>`` and ``.so`` symlinks, and with ``--build_wheel`` an
  ``onnxruntime-<ver>-py3-none-linux_x86_64.whl`` in ``<artifacts>/dist/`` whose ``onnxruntime`` package loads its
  bundled library with ctypes (``__version__`` and ``get_version_string()``, both of which the real package has).
- **onnxruntime-genai**: ``VERSION_INFO``, ``requirements-dev.txt``, the CMake dependency files of
  ``fixture_deps`` and ``build.py`` with genai's flags (``--no_telemetry`` only when the fixture version has it).
  Like the real one it imports ``requests`` at start-up (so it needs the build venv), resolves ``--cmake_path``
  on PATH (and records ``cmake --version``), puts its tree in ``<--build_dir>/<config>`` (default
  ``build/<System>``), refuses a tree configured with another generator (CMake's "Does not match the generator
  used previously"), takes ``--cmake_extra_defines`` as ``-D`` values, needs every FetchContent dependency
  (``FETCHCONTENT_SOURCE_DIR_<NAME>``, or it would download: refused here), records how many compile jobs
  ``cmake --build`` would run (``--parallel``: the native default, unbounded for make; else
  ``CMAKE_BUILD_PARALLEL_LEVEL``) and whether tests are compiled (``ENABLE_TESTS``), validates ``--ort_home`` like
  genai's CMake (``include/onnxruntime_c_api.h`` and ``lib/libonnxruntime.so``), compiles a library against
  ORT_HOME's header that dlopens ORT at run time and calls ``GetApi(ORT_API_VERSION)`` (with a build RUNPATH to
  ORT_HOME/lib unless ``CMAKE_SKIP_BUILD_RPATH=ON``, as CMake gives genai's library), and writes
  ``onnxruntime_genai-<ver>-py3-none-linux_x86_64.whl`` into ``<tree>/wheel/`` with
  ``Requires-Dist: onnxruntime>=$ONNXRUNTIME_VERSION`` (default 1.20.1, as genai's setup.py). Importing
  ``onnxruntime_genai`` finds ``capi/libonnxruntime.so*`` of the installed ``onnxruntime`` package, sets
  ``ORT_LIB_PATH`` and loads it, as genai's ``_dll_directory.py`` does; it has ``__version__`` and ``__id__``.

``AIPC_FIXTURE_ORT_FAIL_ONCE`` / ``AIPC_FIXTURE_GENAI_FAIL_ONCE`` name a marker file: when it does not exist yet,
the build script creates it, leaves a half-written output behind and kills itself (SIGKILL), like an interrupted
build; the next run succeeds.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aipc.pins import DEFAULT_PINS
from fixture_deps import DepSources, fill_deps_dir, make_dep_sources, make_wheelhouse, pip_env, write_genai_cmake
from ort_fixtures import write_ort_source

GIT_ENV = {
    "GIT_AUTHOR_NAME": "aipc fixture",
    "GIT_AUTHOR_EMAIL": "fixture@aipc.invalid",
    "GIT_COMMITTER_NAME": "aipc fixture",
    "GIT_COMMITTER_EMAIL": "fixture@aipc.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


@dataclass(frozen=True)
class FixtureRepo:
    path: Path
    tag: str
    commit: str  # what the tag points to
    version: str
    head: str  # the branch head (differs from commit when extra commits were made after the tag)


def _git(repo: Path, *args: str) -> str:
    env = dict(os.environ, **GIT_ENV)
    proc = subprocess.run(["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args], cwd=repo,
                          env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def _commit_and_tag(repo: Path, tag: str, version: str, annotated: bool, extra_commit: bool) -> FixtureRepo:
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"fixture {version}")
    if annotated:
        _git(repo, "tag", "-a", tag, "-m", f"release {version}")
    else:
        _git(repo, "tag", tag)
    commit = _git(repo, "rev-parse", "HEAD")
    if extra_commit:
        (repo / "AFTER_TAG").write_text("a commit after the tag\n", encoding="utf-8")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "after the tag")
    return FixtureRepo(repo, tag, commit, version, _git(repo, "rev-parse", "HEAD"))


def _write(path: Path, text: str, executable: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if executable:
        path.chmod(0o755)


# --- shared helpers embedded in both fixture build scripts -------------------------------------------------------

WHEEL_WRITER = r'''
def write_wheel(path, dist, version, tag, files, requires=()):
    """A wheel built by hand with zipfile: files is {archive name: bytes}; deterministic timestamps."""
    import base64, hashlib, zipfile
    distinfo = "%s-%s.dist-info" % (dist, version)
    meta = "Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: aipc test fixture\n" % (dist, version)
    meta += "".join("Requires-Dist: %s\n" % r for r in requires)
    files = dict(files)
    files[distinfo + "/METADATA"] = meta.encode()
    files[distinfo + "/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: aipc-fixture\nRoot-Is-Purelib: false\n"
                                  "Tag: %s\n" % tag).encode()
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
    record.append(distinfo + "/RECORD,,")
    files[distinfo + "/RECORD"] = ("\n".join(record) + "\n").encode()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name.endswith(".so") or ".so." in name else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    os.replace(tmp, path)


def fail_once(env_name, partial_path):
    """Simulate an interrupted build once: leave a half-written file behind and die (SIGKILL)."""
    import signal
    marker = os.environ.get(env_name)
    if not marker or os.path.exists(marker):
        return
    with open(marker, "w") as fh:
        fh.write("interrupted once\n")
    os.makedirs(os.path.dirname(partial_path), exist_ok=True)
    with open(partial_path, "wb") as fh:
        fh.write(b"PK\x03\x04 half-written")
    sys.stdout.write("fixture: killed half way\n")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def die(message):
    sys.stderr.write(message + "\n")
    sys.exit(1)
'''

ORT_C_SOURCE = r'''/* aipc test fixture: a stand-in ONNX Runtime library exporting OrtGetApiBase (not ORT code). */
#include <stddef.h>
#include "onnxruntime_c_api.h"

struct OrtApi { unsigned int fixture_api_version; };

static const struct OrtApi fixture_api = { ORT_API_VERSION };

static const OrtApi* fixture_get_api(uint32_t version) {
  return (version >= 1 && version <= ORT_API_VERSION) ? &fixture_api : NULL;
}

static const char* fixture_version_string(void) { return ORT_FIXTURE_VERSION; }

static const OrtApiBase fixture_api_base = { fixture_get_api, fixture_version_string };

const OrtApiBase* OrtGetApiBase(void) { return &fixture_api_base; }
'''

ORT_BUILD_SH = r'''#!/usr/bin/env bash
# aipc test fixture: ONNX Runtime's build.sh interface (build.py with --build_dir <repo>/build/Linux)
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python3}" "$DIR/tools/ci_build/build.py" --build_dir "$DIR/build/Linux" "$@"
'''

ORT_BUILD_BAT = r'''@echo off
rem aipc test fixture: ONNX Runtime's build.bat interface
python "%~dp0\tools\ci_build\build.py" --build_dir "%~dp0\build\Windows" %*
'''

ORT_PACKAGE_INIT = r'''"""aipc test fixture: the fixture wheel's onnxruntime package (loads its library with ctypes)."""
import ctypes
import os

__version__ = "@VERSION@"
_CAPI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "capi")


def _library_path():
    return os.path.join(_CAPI, "@LIBNAME@")


class _OrtApiBase(ctypes.Structure):
    _fields_ = [("GetApi", ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint32)),
                ("GetVersionString", ctypes.CFUNCTYPE(ctypes.c_char_p))]


_lib = ctypes.CDLL(_library_path())
_lib.OrtGetApiBase.restype = ctypes.POINTER(_OrtApiBase)
_lib.OrtGetApiBase.argtypes = []
_base = _lib.OrtGetApiBase().contents


def get_version_string():
    return _base.GetVersionString().decode()
'''

ORT_BUILD_PY = r'''"""aipc test fixture: the interface of ONNX Runtime's tools/ci_build/build.py (not ORT code)."""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MULTI_CONFIG = ("Visual Studio 17 2022", "Visual Studio 18 2026", "Ninja Multi-Config")
@WHEEL_WRITER@

p = argparse.ArgumentParser()
p.add_argument("--build_dir", required=True)
p.add_argument("--config", nargs="+", default=["Debug"], choices=["Debug", "MinSizeRel", "Release", "RelWithDebInfo"])
p.add_argument("--build_shared_lib", action="store_true")
p.add_argument("--parallel", nargs="?", const=0, type=int, default=1)
p.add_argument("--skip_tests", action="store_true")
p.add_argument("--build_wheel", action="store_true")
p.add_argument("--use_dml", action="store_true")
p.add_argument("--use_cache", action="store_true")
p.add_argument("--skip_submodule_sync", action="store_true")
p.add_argument("--cmake_generator", choices=["Ninja", "Unix Makefiles", "Ninja Multi-Config", "Visual Studio 17 2022",
                                             "Visual Studio 18 2026", "NMake Makefiles"])
p.add_argument("--cmake_extra_defines", nargs="+", action="append", default=[])
args = p.parse_args()

if args.use_dml and platform.system() != "Windows":
    die("CMake Error at cmake/external/dml.cmake: FATAL_ERROR DirectML is Windows-only (fixture)")
if not args.build_shared_lib:
    die("fixture: only --build_shared_lib builds are supported")
if not args.skip_tests:
    die("fixture: would run the unit tests (needs test data this fixture does not have); pass --skip_tests")
defines = [d for group in args.cmake_extra_defines for d in group]
version = open(os.path.join(REPO, "VERSION_NUMBER")).read().strip()
config = args.config[0]
dirs = [config, config] if args.cmake_generator in MULTI_CONFIG else [config]
art = os.path.join(args.build_dir, *dirs)
os.makedirs(art, exist_ok=True)
with open(os.path.join(args.build_dir, config, "aipc_fixture_args.json"), "w") as fh:
    json.dump({"argv": sys.argv[1:], "defines": defines, "python": sys.executable}, fh)

versioned = "libonnxruntime.so." + version
fail_once("AIPC_FIXTURE_ORT_FAIL_ONCE", os.path.join(art, versioned))
session = os.path.join(REPO, "include", "onnxruntime", "core", "session")
cc = (["ccache"] if args.use_cache else []) + [os.environ.get("CC", "gcc")]
out = os.path.join(art, versioned)
subprocess.check_call(cc + ["-shared", "-fPIC", "-O1", "-I", session, '-DORT_FIXTURE_VERSION="%s"' % version,
                            "-Wl,-soname,libonnxruntime.so." + version.split(".")[0], "-o", out + ".tmp",
                            os.path.join(REPO, "onnxruntime", "core", "session", "fixture_ort_api.c")])
os.replace(out + ".tmp", out)
for link, target in (("libonnxruntime.so." + version.split(".")[0], versioned),
                     ("libonnxruntime.so", "libonnxruntime.so." + version.split(".")[0])):
    path = os.path.join(art, link)
    if os.path.lexists(path):
        os.remove(path)
    os.symlink(target, path)

if args.build_wheel:
    dist = "onnxruntime_directml" if args.use_dml else "onnxruntime"
    init = open(os.path.join(REPO, "onnxruntime", "python", "__init__.py.in")).read()
    init = init.replace("@VERSION@", version).replace("@LIBNAME@", versioned)
    files = {"onnxruntime/__init__.py": init.encode(), "onnxruntime/capi/__init__.py": b"",
             "onnxruntime/capi/" + versioned: open(out, "rb").read()}
    tag = "py3-none-linux_x86_64"
    write_wheel(os.path.join(art, "dist", "%s-%s-%s.whl" % (dist, version, tag)), dist, version, tag, files)
print("fixture ORT %s built in %s" % (version, art))
'''

GENAI_C_SOURCE = r'''/* aipc test fixture: a stand-in onnxruntime-genai library (not genai code). Like genai on Linux it
   does not link ORT: it dlopens the library at run time and asks it for the API version it was compiled
   against (ORT_API_VERSION from ORT_HOME/include/onnxruntime_c_api.h). */
#include <dlfcn.h>
#include <string.h>
#include "onnxruntime_c_api.h"

int OgaFixtureApiVersion(void) { return ORT_API_VERSION; }

int OgaFixtureInitOrt(const char* ort_library, char* version, int size) {
  void* handle = dlopen(ort_library, RTLD_NOW | RTLD_LOCAL);
  if (!handle) return 1;
  const OrtApiBase* (*get_base)(void) = (const OrtApiBase* (*)(void))dlsym(handle, "OrtGetApiBase");
  if (!get_base) return 2;
  const OrtApiBase* base = get_base();
  if (!base) return 3;
  const char* text = base->GetVersionString();
  strncpy(version, text ? text : "", (size_t)size - 1);
  version[size - 1] = 0;
  if (!base->GetApi(ORT_API_VERSION)) return 4;
  return 0;
}
'''

GENAI_PACKAGE_INIT = r'''"""aipc test fixture: onnxruntime_genai package. Like genai's _dll_directory.py on Linux,
it finds the library of the installed onnxruntime package, exports its path as ORT_LIB_PATH and loads it; then
genai's library asks it for GetApi(ORT_API_VERSION)."""
import ctypes
import glob
import importlib.util
import os

__version__ = "@VERSION@"
__id__ = "@TARGET_NAME@"

_spec = importlib.util.find_spec("onnxruntime")
if not _spec:
    raise ImportError("Could not find the onnxruntime package.")
_found = glob.glob(os.path.join(_spec.submodule_search_locations[0], "capi", "libonnxruntime.so*"))
if not _found:
    raise ImportError("Could not find the onnxruntime shared library.")
os.environ["ORT_LIB_PATH"] = _found[0]
ctypes.CDLL(_found[0])
_lib = ctypes.CDLL(os.path.join(os.path.dirname(os.path.abspath(__file__)), "libonnxruntime-genai.so"))
_buf = ctypes.create_string_buffer(64)
_rc = _lib.OgaFixtureInitOrt(os.environ["ORT_LIB_PATH"].encode(), _buf, 64)
if _rc == 4:
    raise ImportError("Onnxruntime is installed but is too old: %s lacks API %d"
                      % (_buf.value.decode(), _lib.OgaFixtureApiVersion()))
if _rc:
    raise ImportError("cannot use ONNX Runtime at %s (code %d)" % (os.environ["ORT_LIB_PATH"], _rc))
'''

GENAI_BUILD_PY = r'''"""aipc test fixture: the interface of onnxruntime-genai's build.py (not genai code)."""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys

import requests  # genai's build.py imports it at start-up (tools/python/util/dependency_resolver.py)

REPO = os.path.dirname(os.path.abspath(__file__))
HAS_NO_TELEMETRY = @HAS_NO_TELEMETRY@
REQUIRES_NAME = "@REQUIRES_NAME@"
# the FetchContent names the fixture's CMake makes available (fixture_deps.py); MICROSOFT_WIL only with USE_DML
NEEDED = ["PYBIND11_PROJECT", "GOOGLETEST", "ONNXRUNTIME_EXTENSIONS", "GSL"]
@WHEEL_WRITER@

p = argparse.ArgumentParser()
p.add_argument("--config", default="RelWithDebInfo", choices=["Debug", "MinSizeRel", "Release", "RelWithDebInfo"])
p.add_argument("--build_dir", default=None)
p.add_argument("--ort_home", default=None)
p.add_argument("--parallel", action="store_true")
p.add_argument("--skip_tests", action="store_true")
p.add_argument("--skip_wheel", action="store_true")
p.add_argument("--skip_examples", action="store_true")
p.add_argument("--use_dml", action="store_true")
p.add_argument("--cmake_path", default="cmake")
p.add_argument("--cmake_generator", choices=["MinGW Makefiles", "Ninja", "NMake Makefiles", "Unix Makefiles",
                                             "Visual Studio 17 2022", "Visual Studio 18 2026", "Xcode"],
               default="Visual Studio 17 2022" if platform.system() == "Windows" else "Unix Makefiles")
p.add_argument("--cmake_extra_defines", nargs="+", action="append", default=[])
if HAS_NO_TELEMETRY:
    p.add_argument("--no_telemetry", action="store_true")
args = p.parse_args()

system = platform.system()
cmake = shutil.which(str(args.cmake_path))
if cmake is None:
    raise ValueError("Failed to resolve executable path for '%s'." % args.cmake_path)
cmake_version = subprocess.run([cmake, "--version"], capture_output=True, text=True, check=True).stdout.strip()
build_dir = os.path.join(os.path.abspath(args.build_dir or os.path.join("build", system)), args.config)
defines = dict(d.partition("=")[::2] for group in args.cmake_extra_defines for d in group)

if args.use_dml and system != "Windows":
    die("CMake Error at cmake/check_dml.cmake: FATAL_ERROR DML is only supported on Windows (fixture)")
if args.ort_home is None:
    die("fixture: without --ort_home genai would download ORT from the ORT-Nightly feed (no network here)")
if not os.path.isdir(args.ort_home):
    raise ValueError("ort_home %s does not exist or is not a directory" % args.ort_home)
ort_home = os.path.abspath(args.ort_home)
header = os.path.join(ort_home, "include", "onnxruntime_c_api.h")
lib = os.path.join(ort_home, "lib", "onnxruntime.dll" if system == "Windows" else "libonnxruntime.so")
for required in (header, lib):
    if not os.path.exists(required):
        die("CMake Error at cmake/ortlib.cmake: FATAL_ERROR %s does not exist (fixture)" % required)
if HAS_NO_TELEMETRY and not args.no_telemetry:
    die("fixture: telemetry is ON: would FetchContent cpp_client_telemetry from github.com (no network here)")
if not args.skip_tests:
    die("fixture: would run the unit tests (needs test models); pass --skip_tests")
if not args.skip_examples:
    examples_header = os.path.join(REPO, "ort", "include", "onnxruntime_c_api.h")
    if not os.path.exists(examples_header):
        die("fixture: build_examples() configures against %s, which does not exist" % examples_header)

# --- configure (CMake) ---
os.makedirs(build_dir, exist_ok=True)
cache = os.path.join(build_dir, "CMakeCache.txt")
if os.path.exists(cache):
    previous = [line.split("=", 1)[1].strip() for line in open(cache) if line.startswith("CMAKE_GENERATOR:")]
    if previous and previous[0] != args.cmake_generator:
        die("CMake Error: Error: generator : %s\nDoes not match the generator used previously: %s\nEither remove "
            "the CMakeCache.txt file and CMakeFiles directory or choose a different binary directory."
            % (args.cmake_generator, previous[0]))
disconnected = defines.get("FETCHCONTENT_FULLY_DISCONNECTED", "OFF").upper() in ("ON", "1", "TRUE", "YES")
for name in NEEDED + (["MICROSOFT_WIL"] if args.use_dml else []):
    source = defines.get("FETCHCONTENT_SOURCE_DIR_" + name)
    if source:
        if not os.path.isdir(source):
            die("CMake Error: FETCHCONTENT_SOURCE_DIR_%s=%s is not a directory (fixture)" % (name, source))
    elif disconnected:
        die("CMake Error at FetchContent.cmake: No content details recorded for %s: FETCHCONTENT_FULLY_DISCONNECTED "
            "is ON and it was never populated (fixture)" % name.lower())
    else:
        die("fixture: would download %s with FetchContent (no network here)" % name.lower())
with open(cache, "w") as fh:
    fh.write("CMAKE_GENERATOR:INTERNAL=%s\n" % args.cmake_generator)

# --- build (cmake --build [--parallel]) ---
if args.parallel:
    jobs = "unbounded" if args.cmake_generator == "Unix Makefiles" else "native default"
else:
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "native default")
with open(os.path.join(build_dir, "aipc_fixture_args.json"), "w") as fh:
    json.dump({"argv": sys.argv[1:], "defines": defines, "cmake": cmake, "cmake_version": cmake_version,
               "requests": requests.__version__, "python": sys.executable, "jobs": jobs,
               "tests_compiled": defines.get("ENABLE_TESTS", "ON").upper() not in ("OFF", "0", "FALSE", "NO"),
               "generator": args.cmake_generator}, fh)

version = open(os.path.join(REPO, "VERSION_INFO")).read().strip()
ort_version = os.environ.get("ONNXRUNTIME_VERSION", "1.20.1")
native = os.path.join(build_dir, "libonnxruntime-genai.so")
rpath = [] if defines.get("CMAKE_SKIP_BUILD_RPATH", "OFF").upper() in ("ON", "1", "TRUE") else \
    ["-Wl,-rpath," + os.path.join(ort_home, "lib")]
subprocess.check_call([os.environ.get("CC", "gcc"), "-shared", "-fPIC", "-O1", "-I", os.path.join(ort_home, "include"),
                       "-o", native, os.path.join(REPO, "src", "ort_genai_fixture.c"), "-ldl", *rpath])
if not args.skip_wheel:
    dml = args.use_dml
    dist = "onnxruntime_genai_directml" if dml else "onnxruntime_genai"
    requires = REQUIRES_NAME or ("onnxruntime-directml" if dml else "onnxruntime")
    tag = "py3-none-linux_x86_64"
    wheel = os.path.join(build_dir, "wheel", "%s-%s-%s.whl" % (dist, version, tag))
    fail_once("AIPC_FIXTURE_GENAI_FAIL_ONCE", wheel)
    init = open(os.path.join(REPO, "src", "python", "__init__.py.in")).read()
    init = init.replace("@VERSION@", version).replace("@TARGET_NAME@", dist.replace("_", "-"))
    files = {"onnxruntime_genai/__init__.py": init.encode(),
             "onnxruntime_genai/libonnxruntime-genai.so": open(native, "rb").read()}
    write_wheel(wheel, dist, version, tag, files, requires=["%s>=%s" % (requires, ort_version)])
    print("fixture genai wheel: " + wheel)
'''


def make_ort_repo(root: Path, *, version: str = "1.24.4", tag: str | None = None, api_version: int | None = None,
                  extra_commit: bool = False) -> FixtureRepo:
    """A fixture ONNX Runtime repository (annotated tag, like ORT's release tags)."""
    root.mkdir(parents=True, exist_ok=True)
    write_ort_source(root, version, api_version)
    _write(root / "onnxruntime" / "core" / "session" / "fixture_ort_api.c", ORT_C_SOURCE)
    _write(root / "onnxruntime" / "python" / "__init__.py.in", ORT_PACKAGE_INIT)
    _write(root / "build.sh", ORT_BUILD_SH, executable=True)
    _write(root / "build.bat", ORT_BUILD_BAT)
    _write(root / "tools" / "ci_build" / "build.py", ORT_BUILD_PY.replace("@WHEEL_WRITER@", WHEEL_WRITER))
    for system in ("windows", "linux"):  # ORT's Python build requirements (here one small, pinned package)
        _write(root / "tools" / "ci_build" / "github" / system / "python" / "requirements.txt",
               "# aipc test fixture: ORT's build requirements file\nwheel\n")
    _write(root / ".gitignore", "/build/\n")
    return _commit_and_tag(root, tag or f"v{version}", version, annotated=True, extra_commit=extra_commit)


def make_genai_repo(root: Path, *, version: str = "0.15.2", tag: str | None = None, has_no_telemetry: bool = True,
                    requires_name: str = "", extra_commit: bool = False,
                    dep_sources: DepSources | None = None) -> FixtureRepo:
    """A fixture onnxruntime-genai repository (lightweight tag, like genai's). ``requires_name`` forces the wheel's
    ORT requirement name (e.g. ``onnxruntime-directml`` on Linux, to test the wheels check). Its CMake dependency
    files name ``dep_sources`` (default: made in ``<root>/../deps-sources``)."""
    root.mkdir(parents=True, exist_ok=True)
    write_genai_cmake(root, dep_sources or make_dep_sources(root.parent / "deps-sources"))
    _write(root / "requirements-dev.txt", "requests==2.33.0\nwheel==0.47.0\npybind11==3.0.4\n")
    _write(root / "VERSION_INFO", version + "\n")
    _write(root / "src" / "ort_genai_fixture.c", GENAI_C_SOURCE)
    _write(root / "src" / "python" / "__init__.py.in", GENAI_PACKAGE_INIT)
    script = (GENAI_BUILD_PY.replace("@WHEEL_WRITER@", WHEEL_WRITER)
              .replace("@HAS_NO_TELEMETRY@", repr(has_no_telemetry)).replace("@REQUIRES_NAME@", requires_name))
    _write(root / "build.py", script)
    _write(root / ".gitignore", "/build/\n/ort/\n")
    return _commit_and_tag(root, tag or f"v{version}", version, annotated=False, extra_commit=extra_commit)


def write_pins(path: Path, ort: FixtureRepo, genai: FixtureRepo, *, ort_commit: str | None = None,
               genai_commit: str | None = None, has_no_telemetry: bool = True, ort_version: str | None = None,
               genai_version: str | None = None) -> Path:
    """The shipped pins file with the fixture repositories' tags, commits and versions substituted."""
    text = DEFAULT_PINS.read_text(encoding="utf-8")

    def section(text: str, name: str, values: dict[str, str]) -> str:
        head = f"[{name}]\n"
        start = text.index(head) + len(head)
        end = text.find("\n[", start)
        body = text[start:end]
        for key, value in values.items():
            body, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", body, count=1, flags=re.MULTILINE)
            assert n == 1, key
        return text[:start] + body + text[end:]

    text = section(text, "onnxruntime", {
        "repo": f'"{ort.path.as_posix()}"', "tag": f'"{ort.tag}"', "commit": f'"{ort_commit or ort.commit}"',
        "version": f'"{ort_version or ort.version}"'})
    text = section(text, "onnxruntime_genai", {
        "repo": f'"{genai.path.as_posix()}"', "tag": f'"{genai.tag}"', "commit": f'"{genai_commit or genai.commit}"',
        "version": f'"{genai_version or genai.version}"', "has_no_telemetry": "true" if has_no_telemetry else "false"})
    path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class Upstreams:
    ort: FixtureRepo
    genai: FixtureRepo
    pins: Path
    deps: DepSources  # the archives / git repository genai's fixture CMake names
    deps_dir: Path  # a --deps-dir filled by hand (folder names as in shared/upstream/deps)
    wheelhouse: Path  # stand-in wheels for the build venv (pip_env())

    def env(self) -> dict[str, str]:
        """AIPC_PINS and pip pointed at the fixture wheelhouse (no index)."""
        return {"AIPC_PINS": str(self.pins), **pip_env(self.wheelhouse)}


def make_upstreams(root: Path, *, genai_requires_name: str = "", has_no_telemetry: bool = True) -> Upstreams:
    """Both fixture repositories under ``root/upstreams``, a pins file ``root/pins.toml`` that pins them, the
    dependency sources, a filled ``root/deps`` folder and the build venv's wheelhouse ``root/wheelhouse``."""
    from aipc.pins import load_pins

    sources = make_dep_sources(root / "upstreams" / "deps-sources")
    ort = make_ort_repo(root / "upstreams" / "onnxruntime")
    genai = make_genai_repo(root / "upstreams" / "onnxruntime-genai", requires_name=genai_requires_name,
                            has_no_telemetry=has_no_telemetry, dep_sources=sources)
    pins = write_pins(root / "pins.toml", ort, genai, has_no_telemetry=has_no_telemetry)
    return Upstreams(ort, genai, pins, sources, fill_deps_dir(root / "deps", sources),
                     make_wheelhouse(root / "wheelhouse", load_pins(pins).build_tools))
