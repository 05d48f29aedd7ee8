"""``aipc build-npu``: rebuild intel-npu-acceleration-library 1.4.0 offline into a portable wheel in ``wheels/``.

Steps (planned as data, executed by :class:`aipc.runner.Runner`, each skipped when its inputs are unchanged):

1. ``npu-sdist``: the PyPI sdist (``pip download --no-deps --no-binary :all:``, or ``--sdist PATH``), sha256-checked
   against ``[npu] sdist_sha256``;
2. ``npu-unpack``: verified again, unpacked (members checked) into ``<build>/src``;
3. ``npu-build-venv``: a venv with the pinned scikit-build-core, cmake, ninja and ``openvino==2024.4.0``
   (``--find-links DIR`` makes it offline); its OpenVINO version is checked (< 2025.1);
4. ``npu-wheel``: ``pip wheel --no-build-isolation --no-deps aipc/native/npu`` with ``NPU_SDIST_DIR`` (and
   ``OpenVINO_DIR`` with ``--openvino-dir``) as CMake defines; the CMake build directory persists, so a rebuild is
   incremental;
5. ``npu-collect``: the wheel is checked (tag ``py3-none-*``, layout, no ``external/openvino``, on Linux no
   instruction beyond x86-64-v3), made fit to publish (:mod:`aipc.wheelfit`: the licenses of every bundled file in
   ``.dist-info/licenses/``, from the openvino distribution they come from (:mod:`aipc.npu.licenses`); on Linux
   the manylinux tag ``auditwheel`` finds, or ``linux_x86_64`` and the reason) and added to ``wheels/`` with its
   sha256 and manifest entry (provenance: sdist sha256, OpenVINO version, flags, the ``fit`` record).

OpenVINO >= 2025.1 is refused before anything is built: its ``ov::element::Type_t`` enum shifted, and the
library's Python side maps raw enum integers, so every op would fail with "Unsupported dtype" (docs/upstream.md#npu §2).
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any

from packaging.version import InvalidVersion, Version

from .. import wheelfit, wheelhouse
from ..errors import AipcError, UsageError
from ..fsutil import claim_output_dir, sha256_text
from ..installer import UvInstaller, select
from ..locks import build_workdir
from ..log import LOG
from ..pins import Pins, load_pins
from ..platforms import Platform, get_platform, host_platform_name
from ..proc import run
from ..runner import Command, Runner, Step, StepResult
from ..runtimes.npu import own_wheel
from ..venvs import VenvSpec, base_python, cache_dir, ensure_venv, venv_dir
from ..venvs import venv_python as venv_interpreter
from ..wheelhouse import add_wheels, wheels_dir
from . import isa, licenses, sdist
from .wheel import check_wheel, extract_member, lib_dir, wheel_name

PROJECT_FILES = ("pyproject.toml", "CMakeLists.txt", "openvino_preload.cpp")
# 2024-11-22, the date of the v1.4.0 tag: fixed zip timestamps (scikit-build-core honours SOURCE_DATE_EPOCH)
SOURCE_DATE_EPOCH = "1732233600"
# --force reruns these; the sdist, its unpacked sources and the build venv stay
REBUILT_BY_FORCE = ("npu-wheel", "npu-collect")
Echo = Callable[[str], None]


def default_project_dir() -> Path:
    """``aipc/native/npu`` inside the installed aipc package (package data: a checkout and a wheel alike)."""
    return Path(__file__).resolve().parents[1] / "native" / "npu"


def default_build_dir() -> Path:
    return cache_dir() / "npu-build"


# --- OpenVINO version rule -------------------------------------------------------------------------------------


def _version(text: str, what: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise UsageError(f"{what} {text!r} is not a version", hint="use e.g. 2024.4.0") from None


def check_openvino_version(version: str, max_exclusive: str, where: str = "") -> None:
    """Refuse an OpenVINO the library cannot work with (>= ``max_exclusive``, i.e. 2025.1)."""
    if _version(version, "OpenVINO version") >= _version(max_exclusive, "[npu] openvino_max_exclusive"):
        raise AipcError(
            f"OpenVINO {version}{f' ({where})' if where else ''} is too new for intel-npu-acceleration-library: "
            f"from {max_exclusive} the ov::element::Type_t enum shifted, so every op would fail at run time with "
            f"'Unsupported dtype'",
            hint="build against openvino==2024.4.0 (the pin; any version < "
                 f"{max_exclusive} works), e.g. drop --openvino / --openvino-dir",
        )


_CMAKE_VERSION_RE = re.compile(r"set\(PACKAGE_VERSION_(MAJOR|MINOR|PATCH)\s+(\d+)\)")


def openvino_dir_version(path: Path) -> tuple[str, Path]:
    """(version, cmake dir) of an OpenVINO package: ``.../openvino`` or its ``cmake`` directory.

    The version is read from ``OpenVINOConfig-version.cmake``, the file ``find_package(OpenVINO)`` itself reads.
    """
    cmake_dir = path / "cmake" if (path / "cmake").is_dir() else path
    cfg = cmake_dir / "OpenVINOConfig-version.cmake"
    if not cfg.is_file():
        raise UsageError(
            f"--openvino-dir {path} holds no OpenVINOConfig-version.cmake",
            hint="pass the `openvino` package directory of an installed openvino wheel, or its cmake/ directory "
                 "(python -c 'import openvino.utils as u; print(u.get_cmake_path())')",
        )
    parts = dict(_CMAKE_VERSION_RE.findall(cfg.read_text(encoding="utf-8", errors="replace")))
    if set(parts) != {"MAJOR", "MINOR", "PATCH"}:
        raise AipcError(f"{cfg}: cannot read PACKAGE_VERSION_MAJOR/MINOR/PATCH", hint="pass a genuine OpenVINO")
    return f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}", cmake_dir


_PROBE = "import importlib.metadata as m; import openvino.utils; print(m.version('openvino'))"


def probe_openvino(python: Path) -> str:
    """The version of the openvino wheel installed in a venv (imported, so a broken install is an error)."""
    out = run([python, "-c", _PROBE], timeout=300)
    if not out.ok or not out.stdout.strip():
        raise AipcError(f"cannot query openvino in {python}: {out.reason()[:200]}",
                        hint="delete the build venv and rerun")
    return out.stdout.strip().splitlines()[-1]


# --- configuration and plan ------------------------------------------------------------------------------------


@dataclass
class NpuBuild:
    platform: Platform
    build_dir: Path
    wheels: Path
    project: Path
    pins: Pins
    sdist_given: Path | None = None  # --sdist: a file or a directory holding it
    openvino: str | None = None  # --openvino VERSION (pip), default the pin
    openvino_dir: Path | None = None  # --openvino-dir: a pre-installed openvino package
    find_links: Path | None = None  # --find-links: offline wheelhouse for the build venv and the sdist
    python: str = field(default_factory=base_python)
    npu: sdist.NpuPin = field(init=False)  # the [npu] pins, read once
    pin: sdist.SdistPin = field(init=False)
    openvino_version: str = field(init=False)
    openvino_cmake_dir: Path | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.npu = sdist.NpuPin.from_pins(self.pins)
        self.pin = self.npu.sdist
        max_excl = self.npu.openvino_max_exclusive
        if self.openvino_dir is not None:
            version, cmake_dir = openvino_dir_version(self.openvino_dir)
            check_openvino_version(version, max_excl, f"from {self.openvino_dir}")
            self.openvino_version, self.openvino_cmake_dir = version, cmake_dir
        else:
            version = self.openvino or self.npu.openvino
            check_openvino_version(version, max_excl, "--openvino" if self.openvino else "[npu] openvino")
            self.openvino_version = version
        if self.openvino_dir is None:
            self.check_build_python()
        if not (self.project / "CMakeLists.txt").is_file():
            raise UsageError(
                f"the scikit-build-core project {self.project} is missing",
                hint="pass --project DIR (a copy of aipc/native/npu/ holding CMakeLists.txt), or reinstall aipc: its "
                     "package ships that project",
            )

    def python_version(self) -> tuple[int, int]:
        if self.python in (sys.executable, getattr(sys, "_base_executable", None)):
            return sys.version_info.major, sys.version_info.minor
        out = run([self.python, "-c", "import sys; print(*sys.version_info[:2])"], timeout=60)
        try:
            major, minor = (int(x) for x in out.stdout.split())
        except ValueError:
            raise UsageError(f"--python {self.python} is not a working Python interpreter",
                             hint="pass the path of a CPython 3.10-3.12 executable") from None
        return major, minor

    def check_build_python(self) -> None:
        """The build venv installs the openvino wheel: its interpreter must be one PyPI has that wheel for
        (known for the pinned openvino: ``[npu] python_min``-``python_max``; another ``--openvino`` is not checked)."""
        if self.openvino_version != self.npu.openvino:
            return
        have = self.python_version()
        if not self.npu.python_fits(have):
            span = self.npu.python_span
            raise AipcError(
                f"openvino {self.openvino_version} has wheels for CPython {span} only, but the build venv would "
                f"use CPython {have[0]}.{have[1]} ({self.python})",
                hint=f"pass --python with a CPython {span} interpreter (the wheel built there serves every "
                     f"CPython >= 3.10), or --openvino-dir with an installed openvino "
                     f"< {self.npu.openvino_max_exclusive}",
            )

    # paths -------------------------------------------------------------------------------------------------------
    @property
    def is_windows(self) -> bool:
        return self.platform.name == "windows"

    @property
    def is_foreign(self) -> bool:
        """A plan for another platform than this host (shown, never run)."""
        return self.platform.name != host_platform_name()

    def _pure(self, path: PurePath) -> PurePath:
        """A path as the target platform spells it (a Windows plan made on Linux keeps Windows separators)."""
        if not self.is_foreign:
            return path
        return PureWindowsPath(path) if self.is_windows else PurePosixPath(path.as_posix())

    def _interpreter(self) -> str:
        """The Python the plan's commands start with: ``--python`` on this host, ``python`` on a foreign one."""
        return "python" if self.is_foreign else self.python

    def _cmd(self, argv: Sequence[str | PurePath], cwd: PurePath, env: dict[str, str] | None = None) -> Command:
        """A command of the plan, every path argument and the cwd spelt for the target platform."""
        return Command.make([str(self._pure(a)) if isinstance(a, PurePath) else a for a in argv],
                            cwd=self._pure(cwd), env=env)

    @property
    def sdist_file(self) -> Path:
        return self.build_dir / "sdist" / self.pin.file

    @property
    def src_root(self) -> Path:
        return self.build_dir / "src"

    @property
    def src_dir(self) -> Path:
        return self.src_root / self.pin.top_dir

    @property
    def out_dir(self) -> Path:
        return self.build_dir / "out" / self.platform.name

    @property
    def cmake_build_dir(self) -> Path:
        return self.build_dir / "cmake" / self.platform.name

    @property
    def wheel_file(self) -> str:
        return wheel_name(self.pin.version, self.platform)

    def venv_spec(self) -> VenvSpec:
        reqs = list(self.npu.build_requires)
        if self.openvino_dir is None:
            reqs.append(f"openvino=={self.openvino_version}")
        index = ("--no-index", "--find-links", str(self.find_links)) if self.find_links else ()
        return VenvSpec(name=f"npu-build-{self.platform.name}", steps=((*index, *reqs),), python=self.python)

    @property
    def build_venv(self) -> Path:
        return venv_dir(self.venv_spec(), self.build_dir / "venvs")

    def venv_python(self) -> PurePath:
        return venv_interpreter(self._pure(self.build_venv), self.platform)

    def project_digest(self) -> str:
        return sha256_text(json.dumps({n: (self.project / n).read_text(encoding="utf-8") for n in PROJECT_FILES}))

    def provenance(self) -> dict[str, Any]:
        return {
            "producer": "aipc build-npu",
            "source": f"PyPI sdist {self.pin.file}",
            "sdist_sha256": self.pin.sha256,
            "openvino": self.openvino_version,
            "platform": self.platform.name,
            "flags": " ".join(self.platform.npu_compile_flags),
            "build_requires": list(self.npu.build_requires),
            "project_sha256": self.project_digest(),
        }

    def wheel_command(self) -> Command:
        py = self.venv_python()
        argv: list[str] = [
            str(py), "-m", "pip", "wheel", "--disable-pip-version-check", "--no-build-isolation", "--no-deps",
            "-w", str(self._pure(self.out_dir)), str(self._pure(self.project)),
            "-C", f"cmake.define.NPU_SDIST_DIR={self._pure(self.src_dir)}",
            "-C", f"cmake.define.NPU_OPENVINO_MAX_EXCLUSIVE={self.npu.openvino_max_exclusive}",
            "-C", f"build-dir={self._pure(self.cmake_build_dir)}",
        ]
        if self.openvino_cmake_dir is not None:
            argv += ["-C", f"cmake.define.OpenVINO_DIR={self._pure(self.openvino_cmake_dir)}"]
        env = {"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "CMAKE_GENERATOR": self.platform.default_generator}
        if self.is_windows:
            env["CMAKE_GENERATOR_PLATFORM"] = "x64"
        return self._cmd(argv, self.build_dir, env)

    def steps(self, *, echo: Echo | None = None) -> list[Step]:
        say = echo or LOG
        if self.sdist_given is None and self.find_links is not None and (self.find_links / self.pin.file).is_file():
            self.sdist_given = self.find_links  # offline: take it from the wheelhouse, no pip metadata step
        download = None if self.sdist_given else self._cmd(
            sdist.download_argv(self.pin, sdist.incoming_dir(self.sdist_file.parent), self._interpreter(),
                                self.find_links),
            self.build_dir)
        sdist_cmd = download or self._cmd(
            [self._interpreter(), "-c", sdist.COPY_VERIFIED, self._given_file(), self.sdist_file, self.pin.sha256],
            self.build_dir)
        pin_inputs = {"file": self.pin.file, "sha256": self.pin.sha256}
        spec = self.venv_spec()
        venvs_root = self.build_dir / "venvs"
        wheel_cmd = self.wheel_command()
        wheel_inputs = {
            **pin_inputs, "openvino": self.openvino_version, "project": self.project_digest(),
            "venv": spec.fingerprint(), "platform": self.platform.name,
        }
        wheel_out = self.out_dir / self.wheel_file
        steps = [
            Step("npu-sdist", f"fetch and verify the PyPI sdist {self.pin.file} (sha256 pinned)", [sdist_cmd],
                 inputs={**pin_inputs, "given": str(self.sdist_given or "")}, outputs=[self.sdist_file],
                 action=lambda: self._obtain(download)),
            Step("npu-unpack", f"verify and unpack {self.pin.file} into {self._pure(self.src_root)}",
                 [self._cmd(["tar", "xzf", self.sdist_file, "-C", self.src_root], self.build_dir)],
                 inputs=pin_inputs, outputs=[self.src_dir / "src" / "bindings.cpp"],
                 action=lambda: self._unpack()),
            Step("npu-build-venv", "build venv: scikit-build-core, cmake, ninja"
                 + ("" if self.openvino_dir else f", openvino=={self.openvino_version}"),
                 self._venv_commands(spec, venvs_root),
                 inputs={"spec": spec.fingerprint()}, outputs=[venv_interpreter(self.build_venv, self.platform)],
                 action=lambda: self._venv(say)),
            Step("npu-wheel", "compile the native backend (own CMakeLists) and build the py3-none wheel",
                 [wheel_cmd], inputs=wheel_inputs, outputs=[wheel_out]),
            # in-process only (no command line does it): check_wheel, the ISA check, wheelhouse.add_wheels
            Step("npu-collect", f"in-process: check {self.wheel_file} (tag, layout, ISA on Linux), add the "
                                "bundled libraries' licenses (PEP 639), tag it manylinux when auditwheel says it "
                                f"qualifies (Linux), and add it with its sha256 and provenance to "
                                f"{self._pure(self.wheels)}", [],
                 inputs={"wheel": sha256_text(json.dumps(wheel_inputs, sort_keys=True)), "wheels": str(self.wheels),
                         "fit": wheelfit.FIT},
                 outputs=[self.collected_wheel(wheel_out)], action=lambda: self._collect(wheel_out, say),
                 find_outputs=lambda: [self.collected_wheel(wheel_out)]),
        ]
        return steps

    def collected_wheel(self, built: Path | None = None) -> Path:
        """The wheel in ``wheels/`` made from the one pip built (its name may carry a manylinux tag)."""
        built = built or self.out_dir / self.wheel_file
        return self.wheels / wheelhouse.collected_name(self.wheels, built)

    def openvino_site(self) -> tuple[Path, Path]:
        """(site-packages holding the openvino distribution, its ``openvino/libs``): where the bundled OpenVINO
        files and their licenses come from."""
        if self.openvino_cmake_dir is not None:
            package = self.openvino_cmake_dir.parent
        else:
            venv = self.build_venv
            found = sorted(venv.glob("lib/python3*/site-packages/openvino")) + \
                sorted(venv.glob("Lib/site-packages/openvino"))
            if not found:
                raise AipcError(f"no openvino package in the build venv {venv}",
                                hint=f"delete {venv} and rerun aipc build-npu")
            package = found[-1]
        return package.parent, package / "libs"

    def _venv_commands(self, spec: VenvSpec, cwd: Path) -> list[Command]:
        """What ensure_venv runs for the build venv, with this run's installer (uv or pip, --installer)."""
        inst = select()
        if self.is_foreign and isinstance(inst, UvInstaller):
            inst = replace(inst, uv="uv")  # the target's uv, not this host's path
        python = self._interpreter()
        seeds = (f"<the ensurepip wheels of {python}>",)  # found when the step runs (aipc.installer)
        env = {k: v for k, v in inst.env().items() if v is not None}
        argvs = [*inst.create_venv(self._pure(self.build_venv), python, self.venv_python(), seeds),
                 inst.install(self.venv_python(), spec.steps[0])]
        return [self._cmd(argv, cwd, env or None) for argv in argvs]

    def _given_file(self) -> Path:
        """``--sdist``: the file itself, or the pinned file name in the given directory."""
        given = self.sdist_given or self.sdist_file
        return given / self.pin.file if given.is_dir() else given

    # actions -----------------------------------------------------------------------------------------------------
    def _obtain(self, download: Command | None) -> None:
        sdist.obtain_sdist(self.sdist_file, self.pin, given=self.sdist_given, download=download)

    def _unpack(self) -> None:
        sdist.unpack_sdist(self.sdist_file, self.pin, self.src_root)

    def _venv(self, say: Echo) -> None:
        python = ensure_venv(self.venv_spec(), self.build_dir / "venvs", echo=say)
        if self.openvino_dir is None:
            self.check_venv_openvino(python)

    def check_venv_openvino(self, python: Path) -> None:
        """The openvino really installed in the build venv must obey the version rule (and be the planned one)."""
        version = probe_openvino(python)
        check_openvino_version(version, self.npu.openvino_max_exclusive, f"installed in {python}")
        if version != self.openvino_version:
            raise AipcError(f"build venv has openvino {version}, planned {self.openvino_version}",
                            hint=f"delete {self.build_dir / 'venvs'} and rerun")

    def _collect(self, wheel: Path, say: Echo) -> None:
        if not wheel.is_file():
            raise AipcError(f"pip wheel produced no {wheel.name} in {wheel.parent}",
                            hint="see the npu-wheel log; rerun with --force")
        check_wheel(wheel, self.platform)
        if self.platform.binary_format == "elf":  # run_build runs on the target platform only
            # what aipc compiled: the native library and the libopenvino.so preload library
            for name in (self.platform.npu_native_lib, self.platform.npu_openvino_lib):
                with tempfile.TemporaryDirectory() as tmp:
                    lib = extract_member(wheel, f"{lib_dir(self.platform)}/{name}", Path(tmp) / name)
                    beyond = isa.check_library_isa(lib)
                if beyond:
                    raise AipcError(f"{name} uses instructions beyond x86-64-v3: {beyond[0]}",
                                    hint="check the -march flags in aipc/native/npu/CMakeLists.txt")
        site, libs = self.openvino_site()
        files, covers = licenses.collect(
            wheel, self.platform, dist_info=licenses.openvino_dist_info(site, self.openvino_version), libs_dir=libs,
            own_license=self.src_dir / "LICENSE")
        with tempfile.TemporaryDirectory(prefix="fit-", dir=self.build_dir) as tmp:
            fitted = wheelfit.fit_wheel(wheel, Path(tmp), licenses=files,
                                        linux=self.platform.binary_format == "elf")
            fitted.record["bundled"] = covers
            retire = [wheel.name] if fitted.wheel.name != wheel.name else []
            entry = add_wheels(self.wheels, [fitted.wheel], {**self.provenance(), "fit": fitted.record},
                               retire=retire)[0]
        say(f"[aipc] npu wheel: {self.wheels / entry['file']} ({entry['size'] / 1e6:.1f} MB, sha256 {entry['sha256']})")
        say(f"[aipc] npu wheel: {len(files)} license files for {len(covers)} bundled files; tag "
            f"{fitted.record['platform_tag']} ({fitted.record['tag_reason']})")


def run_build(cfg: NpuBuild, *, force: bool = False, echo: Echo | None = None) -> tuple[Path, list[StepResult]]:
    """Run the steps; ``force`` rebuilds the wheel (the CMake build directory stays, so it is incremental)."""
    if host_platform_name() != cfg.platform.name:
        raise UsageError(
            f"cannot build for {cfg.platform.name} on {host_platform_name()}",
            hint="build on the target platform; use --plan to see the Windows commands here",
        )
    # the wheels folder must be one aipc may write into, before anything is built (the wheel goes there last)
    claim_output_dir(cfg.wheels, wheelhouse.KIND, replace=False, recognise=wheelhouse.is_wheels_dir)
    state, logs = cfg.build_dir / "state", cfg.build_dir / "logs"
    # the venv's openvino was checked when the venv was made, and its fingerprint holds openvino==X
    keep = Runner(state, logs, echo=echo)
    rebuild = Runner(state, logs, echo=echo, force=force)
    with build_workdir(cfg.build_dir, "npu-build-workdir", echo=echo):
        results = [(rebuild if step.name in REBUILT_BY_FORCE else keep).run(step) for step in cfg.steps(echo=echo)]
    return cfg.collected_wheel(), results


def make_config(
    *, platform: str | None = None, build_dir: Path | None = None, wheels: Path | None = None,
    project: Path | None = None, sdist_path: Path | None = None, openvino: str | None = None,
    openvino_dir: Path | None = None, find_links: Path | None = None, pins: Pins | None = None,
    python: str | None = None,
) -> NpuBuild:
    extra = {"python": python} if python else {}
    return NpuBuild(
        platform=get_platform(platform),
        build_dir=(build_dir or default_build_dir()).absolute(),
        wheels=wheels_dir(wheels).absolute(),
        project=(project or default_project_dir()).absolute(),
        pins=pins or load_pins(),
        sdist_given=sdist_path.absolute() if sdist_path else None,
        openvino=openvino,
        openvino_dir=openvino_dir.absolute() if openvino_dir else None,
        find_links=find_links.absolute() if find_links else None,
        **extra,
    )


def ensure_wheel(wheels: Path, *, echo: Echo | None = None) -> Path | None:
    """aipc's wheel in ``wheels``; built with ``aipc build-npu`` when missing. None (and the reason echoed) when
    it cannot be built here (no compiler, no network and no --sdist...)."""
    say = echo or LOG
    wheel = own_wheel(wheels)
    if wheel is not None:
        return wheel
    try:
        cfg = make_config(wheels=wheels)
        built, _ = run_build(cfg, echo=say)
    except AipcError as exc:
        say(f"[aipc] npu wheel: cannot build it here: {exc.one_line()}")
        return None
    return built if built.is_file() else None


def prepare_for_verify(wheels: Path, echo: Echo) -> str:
    """``verify --build-npu``: build aipc's wheel into ``wheels`` (the npu runtime had none); why that failed, or ""."""
    lines: list[str] = []
    wheel = ensure_wheel(wheels, echo=lines.append)
    if wheel is not None:
        echo(f"built {wheel.name} into {wheels}")
        return ""
    marker = "cannot build it here: "
    reasons = [ln.split(marker, 1)[1] for ln in lines if marker in ln]
    return reasons[-1] if reasons else (lines[-1] if lines else "unknown error")
