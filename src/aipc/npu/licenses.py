"""The licenses the NPU wheel must carry for what it bundles (PEP 639, ``.dist-info/licenses/``).

The wheel holds, in ``<pkg>/lib`` (``lib/Release`` on Windows), two libraries aipc compiles (the native backend and,
on Linux, the ``libopenvino.so`` preload library: the library's own Apache-2.0 ``LICENSE`` from the sdist covers
them) and OpenVINO runtime files copied from the ``openvino`` wheel the build links against (its ``openvino/libs``).
Each of those must be a file of that package, and is covered by license files of that same distribution, copied at
build time from its ``.dist-info`` (nothing of them is kept in aipc):

- ``LICENSE`` (Apache-2.0) and ``readme.txt`` (the legal notice naming the files below) for all;
- ``runtime-third-party-programs.txt`` for the runtime and its plugins; ``onednn_third-party-programs.txt`` for the
  CPU plugin (oneDNN is compiled into it); ``onetbb_third-party-programs.txt`` for oneTBB and hwloc: hwloc's BSD-3
  notice is an entry of that file (``mention`` checks it is really there).

A bundled file with no rule, a rule's license file missing, or a bundled file that is not in the openvino package is
an error: the wheel is not published without the licenses of what it carries.
"""

from __future__ import annotations

import fnmatch
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import AipcError
from ..platforms import Platform
from ..wheelfit import LicenseFile
from .wheel import lib_dir

PROVIDER = "openvino"
BASE = ("LICENSE", "readme.txt")
RUNTIME = (*BASE, "runtime-third-party-programs.txt")


@dataclass(frozen=True)
class Rule:
    patterns: tuple[str, ...]  # file names in the wheel's lib folder (fnmatch, Linux and Windows names)
    files: tuple[str, ...]  # license files of the openvino distribution's .dist-info
    mention: str = ""  # text the last file must contain (the component's own notice)


RULES: tuple[Rule, ...] = (
    Rule(("libopenvino.so.*", "openvino.dll", "libopenvino_ir_frontend.so.*", "openvino_ir_frontend.dll",
          "libopenvino_*_plugin.so", "openvino_*_plugin.dll", "plugins.xml"), RUNTIME),
    Rule(("libtbb*.so.*", "tbb*.dll"), (*BASE, "onetbb_third-party-programs.txt")),
    Rule(("libhwloc.so.*",), (*BASE, "onetbb_third-party-programs.txt"), mention="Portable Hardware Locality (hwloc)"),
)
# the CPU plugin carries oneDNN: its notices too
EXTRA = {("libopenvino_intel_cpu_plugin.so", "openvino_intel_cpu_plugin.dll"): ("onednn_third-party-programs.txt",)}


def own_libraries(platform: Platform) -> tuple[str, ...]:
    """What aipc compiles from the sdist (covered by the library's own LICENSE)."""
    preload = platform.npu_openvino_lib if platform.binary_format == "elf" else ""  # openvino.dll is OpenVINO's
    return tuple(n for n in (platform.npu_native_lib, preload) if n)


def bundled_files(wheel: Path, platform: Platform) -> list[str]:
    """The file names directly in the wheel's lib folder (what CMakeLists.txt installs there)."""
    prefix = lib_dir(platform) + "/"
    with zipfile.ZipFile(wheel) as zf:
        names = [n[len(prefix):] for n in zf.namelist() if n.startswith(prefix)]
    return sorted(n for n in names if n and "/" not in n)


def openvino_dist_info(site_packages: Path, version: str) -> Path:
    """The ``openvino-<version>.dist-info`` beside the ``openvino`` package the libraries come from."""
    found = sorted(site_packages.glob(f"{PROVIDER}-{version}*.dist-info"))
    if not found:
        raise AipcError(
            f"no {PROVIDER}-{version}.dist-info in {site_packages}: the licenses of the OpenVINO libraries the NPU "
            "wheel bundles come from there",
            hint="build against the openvino wheel (drop --openvino-dir, or pass the `openvino` folder of an "
                 "installed openvino wheel)",
        )
    return found[-1]


def _rule_files(name: str) -> tuple[Rule, tuple[str, ...]] | None:
    for rule in RULES:
        if any(fnmatch.fnmatchcase(name, p) for p in rule.patterns):
            extra = next((files for names, files in EXTRA.items() if name in names), ())
            return rule, (*rule.files, *extra)
    return None


def collect(wheel: Path, platform: Platform, *, dist_info: Path, libs_dir: Path,
            own_license: Path) -> tuple[list[LicenseFile], dict[str, list[str]]]:
    """The license files to add, and for each bundled file the ``licenses/`` paths that cover it."""
    own = own_libraries(platform)
    if not own_license.is_file():
        raise AipcError(f"the library's own LICENSE {own_license} is missing",
                        hint="rerun aipc build-npu: the npu-unpack step restores the sdist")
    files: dict[str, LicenseFile] = {"LICENSE": LicenseFile(own_license, "LICENSE")}
    covers: dict[str, list[str]] = {}
    for name in bundled_files(wheel, platform):
        if name in own:
            covers[name] = ["LICENSE"]
            continue
        found = _rule_files(name)
        if found is None:
            raise AipcError(f"{wheel.name} bundles {lib_dir(platform)}/{name}, but no license file is known for it",
                            hint="add its license rule to aipc/npu/licenses.py (from the package that provides "
                                 "it), or stop bundling it in aipc/native/npu/CMakeLists.txt")
        rule, names = found
        if not (libs_dir / name).is_file():
            raise AipcError(f"{wheel.name} bundles {name}, which is not in {libs_dir}: its license cannot be taken "
                            f"from the {PROVIDER} package",
                            hint="bundle OpenVINO's files from the openvino wheel the build links against")
        dests = []
        for lic in names:
            src = dist_info / lic
            if not src.is_file():
                raise AipcError(f"{wheel.name} bundles {name}, but its license file {lic} is not in {dist_info}",
                                hint=f"reinstall {PROVIDER} in the build venv (delete it and rerun aipc build-npu)")
            dest = f"{PROVIDER}/{lic}"
            files[dest] = LicenseFile(src, dest)
            dests.append(dest)
        if rule.mention and rule.mention not in (dist_info / names[-1]).read_text(encoding="utf-8",
                                                                                  errors="replace"):
            raise AipcError(f"{wheel.name} bundles {name}, but {dist_info / names[-1]} does not hold its notice "
                            f"({rule.mention!r})", hint="check the openvino version's license files; "
                                                        "aipc/npu/licenses.py says where each notice is")
        covers[name] = dests
    return list(files.values()), covers
