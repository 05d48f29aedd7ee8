"""Fixture CMake dependencies of the fixture onnxruntime-genai, and a fixture wheelhouse for its build venv.

Nothing here is upstream code. It mirrors the *shape* of what aipc reads and fetches
(onnxruntime-genai's ``cmake/deps.txt``, ``cmake/options.cmake``, ``cmake/external/*.cmake``;
onnxruntime-extensions' ``CMakeLists.txt`` and ``cmake/externals/*.cmake``):

- archives laid out as GitHub serves them (``<host>/<owner>/<repo>/archive/refs/tags/<tag>.zip`` holding one
  ``<repo>-<tag>/`` folder), reached through ``file://`` URLs, with their SHA1 in ``deps.txt`` / ``URL_HASH``;
- ``onnxruntime_extensions`` as a local git repository (URL + commit, as in genai's deps.txt), whose CMake
  declares ``GSL`` (needed) and ``opencv`` (only under an option that is off);
- ``microsoft_wil``: only under ``if(USE_DML)``, i.e. Windows-only.

The fixture genai's ``build.py`` needs ``PYBIND11_PROJECT``, ``GOOGLETEST``, ``ONNXRUNTIME_EXTENSIONS`` and ``GSL``
(plus ``MICROSOFT_WIL`` with ``--use_dml``), as genai's CMake would.

The fixture wheelhouse holds stand-ins for genai's ``requirements-dev.txt`` (``requests``, ``wheel``,
``pybind11``) and for the pinned ``cmake``/``ninja`` (each installs a script that answers ``--version``), so the
build venv is made by pip offline: ``PIP_NO_INDEX=1 PIP_FIND_LINKS=<wheelhouse>``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Archive:
    name: str  # deps.txt / FetchContent name
    url: str
    sha1: str
    folder: str  # the folder name aipc deps writes
    files: dict[str, str]


@dataclass(frozen=True)
class DepSources:
    root: Path
    pybind11: Archive
    googletest: Archive
    wil: Archive
    gsl: Archive
    extensions_url: str
    extensions_commit: str
    extensions_files: dict[str, str]

    def deps_txt(self) -> str:
        lines = ["#Name;Url;SHA1  (aipc test fixture, the format of onnxruntime-genai's cmake/deps.txt)"]
        for a in (self.pybind11, self.googletest, self.wil):
            lines.append(f"{a.name};{a.url};{a.sha1}")
        lines.append(f"onnxruntime_extensions;{self.extensions_url};{self.extensions_commit}")
        lines.append("# telemetry: declared in cmake/telemetry.cmake only (not read by the fixture's CMake)")
        lines.append("cpp_client_telemetry;https://github.com/microsoft/cpp_client_telemetry/archive/v3.zip;"
                     + "0" * 40)
        return "\n".join(lines) + "\n"


def zip_bytes(top: str, files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, text in sorted(files.items()):
            info = zipfile.ZipInfo(f"{top}/{rel}", date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, text)
    return buf.getvalue()


def _archive(root: Path, name: str, owner: str, repo: str, tag: str, files: dict[str, str],
             folder: str) -> Archive:
    path = root / "github.com" / owner / repo / "archive" / "refs" / "tags" / f"{tag}.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = zip_bytes(f"{repo}-{tag.lstrip('v')}", files)
    path.write_bytes(data)
    return Archive(name, f"file://{path}", hashlib.sha1(data).hexdigest(), folder, files)


GENAI_OPTIONS = """# aipc test fixture: the options onnxruntime-genai's CMake reads (the shape of cmake/options.cmake)
option(USE_DML "fixture" OFF)
option(ENABLE_PYTHON "fixture" ON)
option(ENABLE_TESTS "fixture" ON)
option(USE_GUIDANCE "fixture" OFF)
"""

GENAI_EXTERNAL = """# aipc test fixture: the shape of onnxruntime-genai's cmake/external/onnxruntime_external_deps.cmake
include(FetchContent)
if(ENABLE_PYTHON)
  FetchContent_Declare(pybind11_project URL ${DEP_URL_pybind11} URL_HASH SHA1=${DEP_SHA1_pybind11}
                       FIND_PACKAGE_ARGS 2.6 NAMES pybind11)
  onnxruntime_fetchcontent_makeavailable(pybind11_project)
endif()
FetchContent_Declare(googletest URL ${DEP_URL_googletest} URL_HASH SHA1=${DEP_SHA1_googletest})
onnxruntime_fetchcontent_makeavailable(googletest)
if(USE_DML)
  FetchContent_Declare(microsoft_wil URL ${DEP_URL_microsoft_wil} URL_HASH SHA1=${DEP_SHA1_microsoft_wil})
  onnxruntime_fetchcontent_makeavailable(microsoft_wil)
endif()
if(USE_GUIDANCE)
  FetchContent_Declare(llguidance GIT_REPOSITORY https://github.com/microsoft/llguidance.git GIT_TAG main)
  onnxruntime_fetchcontent_makeavailable(llguidance)
endif()
FetchContent_Declare(onnxruntime_extensions GIT_REPOSITORY ${DEP_URL_onnxruntime_extensions}
                     GIT_TAG ${DEP_SHA1_onnxruntime_extensions})
set(OCOS_BUILD_PRESET ort_genai)
onnxruntime_fetchcontent_makeavailable(onnxruntime_extensions)
"""

GENAI_CMAKELISTS = """# aipc test fixture: the includes of genai's top CMakeLists.txt that matter for dependencies
cmake_minimum_required(VERSION 3.26)
include(cmake/options.cmake)
include(cmake/external/onnxruntime_external_deps.cmake)
"""


def make_dep_sources(root: Path) -> DepSources:
    """The archives and the extensions git repository under ``root`` (file:// URLs)."""
    root.mkdir(parents=True, exist_ok=True)
    pybind11 = _archive(root, "pybind11", "pybind", "pybind11", "v2.13.6",
                        {"CMakeLists.txt": "# fixture pybind11\n", "include/pybind11/pybind11.h": "// fixture\n"},
                        "pybind11")
    googletest = _archive(root, "googletest", "google", "googletest", "v1.15.0",
                          {"CMakeLists.txt": "# fixture googletest\n"}, "googletest")
    wil = _archive(root, "microsoft_wil", "microsoft", "wil", "v1.0.230629.1",
                   {"CMakeLists.txt": "# fixture wil\n"}, "microsoft_wil")
    gsl = _archive(root, "GSL", "microsoft", "GSL", "v4.0.0", {"include/gsl/gsl": "// fixture\n"}, "gsl")
    ext_files = {
        "CMakeLists.txt": (
            "# aipc test fixture: the shape of onnxruntime-extensions' dependency includes\n"
            "list(APPEND CMAKE_MODULE_PATH ${PROJECT_SOURCE_DIR}/cmake/externals)\n"
            "option(OCOS_ENABLE_CV2 \"fixture\" OFF)\n"
            "include(gsl)\n"
            "if(OCOS_ENABLE_CV2)\n  include(opencv)\nendif()\n"),
        "cmake/externals/gsl.cmake": (
            f"FetchContent_Declare(\n  GSL\n  URL {gsl.url}\n  URL_HASH SHA1={gsl.sha1}\n)\n"
            "FetchContent_MakeAvailable(GSL)\n"),
        "cmake/externals/opencv.cmake": (
            "FetchContent_Declare(opencv GIT_REPOSITORY https://github.com/opencv/opencv.git GIT_TAG 4.5.4)\n"
            "FetchContent_MakeAvailable(opencv)\n"),
    }
    from fixture_upstreams import _git

    ext = root / "github.com" / "microsoft" / "onnxruntime-extensions.git"
    for rel, text in ext_files.items():
        (ext / rel).parent.mkdir(parents=True, exist_ok=True)
        (ext / rel).write_text(text, encoding="utf-8")
    _git(ext, "init", "-q", "-b", "main")
    _git(ext, "add", "-A")
    _git(ext, "commit", "-q", "-m", "fixture extensions")
    commit = _git(ext, "rev-parse", "HEAD")
    (ext / "AFTER").write_text("a later commit\n", encoding="utf-8")
    _git(ext, "add", "-A")
    _git(ext, "commit", "-q", "-m", "after the pinned commit")
    return DepSources(root, pybind11, googletest, wil, gsl, f"file://{ext}", commit, ext_files)


def write_genai_cmake(genai: Path, sources: DepSources) -> None:
    """deps.txt, options and the external-deps file into a fixture genai tree."""
    for rel, text in (("cmake/deps.txt", sources.deps_txt()), ("cmake/options.cmake", GENAI_OPTIONS),
                      ("cmake/external/onnxruntime_external_deps.cmake", GENAI_EXTERNAL),
                      ("CMakeLists.txt", GENAI_CMAKELISTS)):
        (genai / rel).parent.mkdir(parents=True, exist_ok=True)
        (genai / rel).write_text(text, encoding="utf-8")


def fill_deps_dir(dest: Path, sources: DepSources, *, windows: bool = False) -> Path:
    """A --deps-dir as a user would lay it out by hand (the names of shared/upstream/deps: gsl, json...)."""
    for a in (sources.pybind11, sources.googletest, sources.gsl, *((sources.wil,) if windows else ())):
        for rel, text in a.files.items():
            (dest / a.folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / a.folder / rel).write_text(text, encoding="utf-8")
    for rel, text in sources.extensions_files.items():
        (dest / "onnxruntime_extensions" / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / "onnxruntime_extensions" / rel).write_text(text, encoding="utf-8")
    return dest


# --- a wheelhouse for the build venv --------------------------------------------------------------------------------


def pure_wheel(path: Path, dist: str, version: str, files: dict[str, bytes], scripts: dict[str, str],
           metadata: str = "") -> None:
    """A pure-Python wheel written with zipfile (``metadata``: more METADATA lines, e.g. ``Requires-Dist: x\\n``)."""
    distinfo = f"{dist}-{version}.dist-info"
    files = dict(files)
    for name, text in scripts.items():
        files[f"{dist}-{version}.data/scripts/{name}"] = text.encode()
    files[f"{distinfo}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n{metadata}".encode()
    files[f"{distinfo}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: aipc-fixture\nRoot-Is-Purelib: true\n"
                                  b"Tag: py3-none-any\n")
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{distinfo}/RECORD,,")
    files[f"{distinfo}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o100755 if "/scripts/" in name else 0o100644) << 16
            zf.writestr(info, data)


TOOL_SCRIPT = """#!python
# aipc test fixture: stands in for the {name} executable of the pinned {name} wheel
import sys
if sys.argv[1:] == ["--version"]:
    print("{name} version {version}" if "{name}" == "cmake" else "{version}")
    sys.exit(0)
sys.stderr.write("fixture {name}: only --version is implemented\\n")
sys.exit(2)
"""


def make_wheelhouse(dest: Path, build_tools: dict[str, str]) -> Path:
    """Stand-in wheels: requests/wheel/pybind11 at genai's requirements-dev.txt versions, the wheel ORT's fixture
    requirements take under constraints/ort-build.txt, cmake/ninja at the pins."""
    dest.mkdir(parents=True, exist_ok=True)
    # genai's requirements-dev.txt pins wheel 0.47.0; ORT's fixture requirements take constraints/ort-build.txt's
    for dist, version in (("requests", "2.33.0"), ("wheel", "0.47.0"), ("wheel", "0.48.0"), ("pybind11", "3.0.4")):
        module = {f"{dist}/__init__.py": f'"""aipc test fixture stand-in"""\n__version__ = "{version}"\n'.encode()}
        pure_wheel(dest / f"{dist}-{version}-py3-none-any.whl", dist, version, module, {})
    for dist, version in build_tools.items():
        pure_wheel(dest / f"{dist}-{version}-py3-none-any.whl", dist, version, {},
               {dist: TOOL_SCRIPT.format(name=dist, version=version)})
    return dest


def pip_env(wheelhouse: Path) -> dict[str, str]:
    """pip as a user on an air-gapped machine configures it: a local wheelhouse, no index."""
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_CONFIG_FILE": os.devnull}
