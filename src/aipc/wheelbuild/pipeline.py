"""The build pipeline: fetch -> build-ort -> stage -> build-genai -> wheels, as :class:`aipc.runner.Step` s.

``plan()`` returns every step without touching the file system (``aipc plan``); ``run()`` creates each step just
before running it, so a step's inputs include what the previous step really produced (e.g. ``ONNXRUNTIME_VERSION``
is the version of the ORT wheel just built), and the :class:`~aipc.runner.Runner` skips a step whose inputs are
unchanged and whose outputs exist. A build interrupted half-way therefore resumes on the next run: the finished
steps are skipped (their stamps were written), the interrupted one runs again.

The genai <-> ORT compatibility table is checked before anything runs (pinned versions), and again with the
versions the fetched sources declare (``VERSION_NUMBER``, ``VERSION_INFO``) before anything is built.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from packaging.version import Version

from .. import wheelfit, wheelhouse
from ..errors import AipcError, UsageError
from ..fsutil import atomic_write_json, claim_output_dir, sha256_file
from ..locks import build_workdir
from ..log import LOG
from ..pins import Pins, check_compat, load_pins
from ..platforms import vswhere
from ..platforms.windows import GENAI_NUGET_ON_PATH, SPECTRE_COMPONENT
from ..proc import run
from ..runner import Command, Echo, Runner, Step, StepResult
from ..wheelhouse import WheelInfo
from . import buildvenv, deps, fetch, genai, ort, release, stage, wheelset
from .settings import WINDOWS_WORKDIR_WARN, BuildSettings

STEP_NAMES = ("fetch", "build-venv", "build-ort", "ort-release", "stage", "build-genai", "wheels")
# ORT built from source, or an official ORT release (--ort-release) in its place
SOURCE_ROUTE = ("fetch", "build-venv", "build-ort", "stage", "build-genai", "wheels")
RELEASE_ROUTE = ("fetch", "build-venv", "ort-release", "stage", "build-genai", "wheels")
SOURCES_JSON = "sources.json"
MSVC_ENV_JSON = "msvc-env.json"
# what the plan shows for the environment the msvc-env step captures at run time
MSVC_ENV_PLACEHOLDER = {name: "<captured from vcvars64.bat by step msvc-env>" for name in ("INCLUDE", "LIB", "PATH")}

def _sig(path: Path) -> list[Any] | None:
    """A cheap signature of a file (size, mtime) that changes when it is rebuilt; None when absent."""
    try:
        st = path.resolve().stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _python_version(exe: str) -> str:
    """``X.Y`` of a Python executable ("" when it cannot be run)."""
    out = run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], timeout=60)
    return out.stdout.strip() if out.ok else ""


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


class Pipeline:
    def __init__(self, settings: BuildSettings, pins: Pins | None = None, *, echo: Echo | None = None,
                 git: fetch.GitRunner = fetch.run_git, sleep: Callable[[float], None] = time.sleep,
                 msvc_runner: vswhere.ProcRunner | None = None) -> None:
        self.s = settings
        self.pins = pins or load_pins(settings.pins)
        self.echo = echo or LOG
        self.git = git
        self.sleep = sleep
        self.msvc_runner = msvc_runner

    # --- helpers ---------------------------------------------------------------------------------------------
    @property
    def state(self) -> Path:
        return Path(self.s.state_dir)

    @property
    def uses_release(self) -> bool:
        """True when an official ORT release (--ort-release) takes the place of the ORT build."""
        return self.s.ort_release is not None

    @property
    def route(self) -> tuple[str, ...]:
        return RELEASE_ROUTE if self.uses_release else SOURCE_ROUTE

    def source_specs(self) -> list[fetch.SourceSpec]:
        """What step fetch provides: both sources, or only genai when a release is the ORT side (``--ort-source``
        then only supplies headers, of whatever version: it is not checked against the ORT pin)."""
        s, p = self.s, self.pins
        genai_spec = fetch.SourceSpec("onnxruntime-genai", "--genai-source", p.onnxruntime_genai,
                                      s.genai_repo or p.onnxruntime_genai.repo, Path(s.genai_dir),
                                      Path(s.genai_source) if s.genai_source else None)
        if self.uses_release:
            return [genai_spec]
        return [
            fetch.SourceSpec("ONNX Runtime", "--ort-source", p.onnxruntime, s.ort_repo or p.onnxruntime.repo,
                             Path(s.ort_dir), Path(s.ort_source) if s.ort_source else None),
            genai_spec,
        ]

    def source_versions(self) -> tuple[str | None, str | None]:
        """(ORT ``VERSION_NUMBER``, genai ``VERSION_INFO``) of the sources on disk, None where absent. With a
        release the ORT version is the release's (the header tree's VERSION_NUMBER does not count)."""
        genai_v = _read_text(Path(self.s.genai_dir) / "VERSION_INFO")
        if self.uses_release:
            return self.release_version(), genai_v
        return _read_text(Path(self.s.ort_dir) / "VERSION_NUMBER"), genai_v

    def release_version(self) -> str:
        """The release's version: as recorded by step ort-release, else as named (pins, file name)."""
        record = release.read_record(self.s)
        if record is not None and record.get("spec") == self.s.ort_release and record.get("version"):
            return str(record["version"])
        return release.planned_version(self.s, self.pins)

    def check_sources(self) -> None:
        """The versions the sources declare must be compatible too (an unverified local checkout may differ)."""
        ort_v, genai_v = self.source_versions()
        check_compat(self.pins, genai_version=genai_v, ort_version=ort_v)

    def ort_version(self) -> str:
        """The ORT version to build genai against: the release's; else the ORT wheel's, else VERSION_NUMBER, else
        the pinned one."""
        if self.uses_release:
            return self.release_version()
        ort_v = self.source_versions()[0] or self.pins.onnxruntime.version
        try:
            art = ort.discover_ort(self.s, ort_v)
        except AipcError:
            return ort_v
        return WheelInfo.from_path(art.wheel).version

    def genai_version(self) -> str:
        return self.source_versions()[1] or self.pins.onnxruntime_genai.version

    def _require(self, path: Path, what: str, step: str) -> None:
        if not (path.exists() or path.is_symlink()):
            raise AipcError(f"{what} {path} is missing", hint=f"run `aipc {step}` first (or `aipc build`)")

    def head(self, path: Path) -> str | None:
        if not fetch.is_git_checkout(path):
            return None
        result = self.git(["rev-parse", "HEAD"], path)
        return result.stdout.strip() if result.returncode == 0 else None

    # --- steps -----------------------------------------------------------------------------------------------
    def fetch_step(self, live: bool = False) -> Step:
        s = self.s
        commands: list[Command] = []
        inputs: dict[str, Any] = {"offline": s.offline}
        # commands use the target platform's paths (a Windows plan made on Linux keeps C:\b\...)
        pures = {"ONNX Runtime": s.ort_dir, "onnxruntime-genai": s.genai_dir}
        for spec in self.source_specs():
            pure = pures[spec.label]
            if spec.local is None:
                commands.append(Command.make(fetch.clone_argv(spec.repo, spec.pin.tag, pure), s.workdir))
            commands.append(Command.make(fetch.rev_parse_argv(pure), pure))
            path = spec.local or spec.dest
            inputs[spec.pin.name] = {"repo": spec.repo, "tag": spec.pin.tag, "commit": spec.pin.commit,
                                     "local": str(spec.local) if spec.local else None,
                                     # a local checkout can move under us: its commit is an input
                                     "head": self.head(path) if live and spec.local else None}
        sources = self.state / SOURCES_JSON

        def action() -> None:
            results = {}
            for spec in self.source_specs():
                res = fetch.fetch_source(spec, offline=s.offline, retries=s.fetch_retries, backoff=s.fetch_backoff,
                                         git=self.git, sleep=self.sleep, echo=self.echo)
                results[res.name] = res.to_json()
            atomic_write_json(sources, results)

        what = "onnxruntime-genai at the pinned tag and verify the commit" if self.uses_release else \
            "ONNX Runtime and onnxruntime-genai at the pinned tags and verify the commits"
        return Step("fetch", f"clone {what}",
                    commands, inputs=inputs, outputs=[Path(s.ort_dir), Path(s.genai_dir), sources], action=action)

    def venv_step(self, live: bool = False) -> Step:
        """The build venv (:mod:`aipc.wheelbuild.buildvenv`): pinned CMake and Ninja, then ORT's own Python build
        requirements under ``constraints/ort-build.txt``, before ORT's build script runs."""
        s = self.s
        env = buildvenv.install_env(s)
        commands = [*(Command.make(argv, s.workdir, env) for argv in buildvenv.create_argvs(s, live)),
                    Command.make(buildvenv.tools_argv(s, self.pins), s.workdir, env)]
        inputs: dict[str, Any] = {"constraints": sha256_file(ort.CONSTRAINTS)}
        # genai's build.py imports what its requirements-dev.txt lists (requests, at start-up); installed before
        # ORT's requirements, so ORT's build (which uses the venv's `wheel`) gets constraints/ort-build.txt's pins
        commands.append(Command.make(buildvenv.genai_requirements_argv(s), s.workdir, env))
        ort_reqs = not self.uses_release  # ORT's own requirements only when ORT is built here
        if ort_reqs:
            commands.append(Command.make(ort.requirements_argv(s, buildvenv.pip_install(s)), s.workdir, env))
        inputs["genai_constraints"] = sha256_file(buildvenv.GENAI_CONSTRAINTS)
        if live:
            self._require(Path(buildvenv.genai_requirements_file(s)), "onnxruntime-genai requirements-dev.txt",
                          "fetch")
            inputs["genai_requirements"] = sha256_file(Path(buildvenv.genai_requirements_file(s)))
            inputs["requirements"] = sha256_file(Path(ort.requirements_file(s))) if ort_reqs else None
            inputs["find_links"] = sorted(p.name for p in Path(s.find_links).iterdir()) if s.find_links else None
        where = (f"from --find-links {s.find_links}" + (" only" if s.offline else "")) if s.find_links else \
            "through pip as configured" + (" (--offline: an air-gapped machine needs --find-links DIR, a wheelhouse "
                                           "of these pins)" if s.offline else "")
        what = (", ONNX Runtime's Python build requirements" if ort_reqs else "") + \
            ", onnxruntime-genai's requirements-dev.txt"
        return Step("build-venv", f"build venv: CMake {self.pins.build_tools['cmake']}, Ninja "
                    f"{self.pins.build_tools['ninja']}{what}, pinned, {where}",
                    commands, inputs=inputs, outputs=[buildvenv.expected_python(s)] if live else [])

    def build_env(self, base: dict[str, str], live: bool) -> dict[str, str]:
        """The environment of a build command: ``base`` with the build venv first on PATH."""
        return buildvenv.path_env(self.s, base, live)

    def msvc_step(self) -> Step:
        exe = vswhere.vswhere_exe(os.environ if self.s.is_host else {})
        vs_major = self.pins.toolchain["visual_studio"]
        commands = [
            Command.make(vswhere.msvc_install_argv(exe, vs_major), self.s.workdir),
            Command.make(vswhere.vcvars_argv(vswhere.vcvars_path(vswhere.INSTALL_PLACEHOLDER)), self.s.workdir),
        ]
        out = self.state / MSVC_ENV_JSON

        def action() -> None:
            runner = self.msvc_runner or vswhere._run
            atomic_write_json(out, vswhere.capture_msvc_env(dict(os.environ), runner, vs_major=vs_major))

        return Step("msvc-env", "find Visual Studio with vswhere and capture the vcvars64.bat environment for Ninja",
                    commands, inputs={"vswhere": exe}, outputs=[out], action=action)

    @property
    def msvc_owner(self) -> str:
        """The step that the msvc-env step runs before: the first one that compiles (build-genai with a release)."""
        return "build-genai" if self.uses_release else "build-ort"

    def msvc_env(self, live: bool) -> dict[str, str]:
        if not self.s.needs_msvc_env:
            return {}
        path = self.state / MSVC_ENV_JSON
        if live:
            self._require(path, "MSVC environment", self.msvc_owner)
            data = json.loads(path.read_text(encoding="utf-8"))
            return {str(k): str(v) for k, v in data.items()}
        return dict(MSVC_ENV_PLACEHOLDER)

    def ort_step(self, live: bool = False) -> Step:
        s = self.s
        cmd = ort.ort_build_command(s, self.build_env(self.msvc_env(live), live))
        inputs: dict[str, Any] = {"commit": self.pins.onnxruntime.commit}
        expected = self.pins.onnxruntime.version
        if live:
            self._require(Path(s.ort_dir) / s.platform.ort_build_script, "ONNX Runtime build script", "fetch")
            inputs["head"] = self.head(Path(s.ort_dir))
            expected = self.source_versions()[0] or expected
        outputs = ort.expected_outputs(s, expected) if live else []
        return Step("build-ort", f"build ONNX Runtime ({'DirectML, ' if s.platform.name == 'windows' else ''}"
                    f"{s.config}, shared library + wheel)", [cmd], inputs=inputs, outputs=outputs,
                    find_outputs=lambda: ort.expected_outputs(s, expected))

    def release_step(self, live: bool = False) -> Step:
        """Step ort-release: download (or inspect) the official release and record it in release.json."""
        s = self.s
        spec = s.ort_release
        assert spec is not None
        out = release.release_dir(s)
        record = out / release.RECORD
        version = self.release_version()
        if spec == "pypi":
            requirement = release.pypi_requirement(s.platform, version)
            argv = release.pip_download_argv(s.python, requirement, out / "<temporary folder>",
                                             None if s.is_host else s.platform,
                                             index_args=buildvenv.pip_index_args(s))
            what = f"download {requirement} with pip"
        elif spec == "nuget":
            argv = self.release_argv()
            what = f"download {release.nuget_url(s.platform.ort_nuget_package, version)}"
        else:
            argv = self.release_argv()
            what = f"inspect the local release {spec}"
        inputs: dict[str, Any] = {"spec": spec, "version": version, "python": s.python}
        def recorded_outputs() -> list[Path]:
            outputs = [Path(record)]
            recorded = release.read_record(s)
            if recorded is not None and recorded.get("spec") == spec and recorded.get("file"):
                outputs.append(Path(recorded["file"]))  # a deleted download is fetched again
            return outputs

        outputs = [Path(record)]
        if live:
            if release.is_local(spec):
                inputs["local"] = _sig(Path(spec))
            outputs = recorded_outputs()

        def action() -> None:
            release.acquire(s, self.pins, self.echo)

        return Step("ort-release", f"{what}, verify it and record file, sha256 and version in {record}",
                    [Command.make(argv, s.workdir)], inputs=inputs, outputs=outputs, action=action,
                    find_outputs=recorded_outputs)

    def release_argv(self) -> list[str]:
        s = self.s
        assert s.ort_release is not None
        return ["aipc", "ort-release", "--platform", s.platform.name, "--workdir", str(s.workdir), "--ort-release",
                s.ort_release]

    def release_stage_step(self, live: bool = False) -> Step:
        s = self.s
        record_path = release.release_dir(s) / release.RECORD
        inputs: dict[str, Any] = {}
        if live:
            self._require(Path(record_path), "ORT release record", "ort-release")
            record = json.loads(Path(record_path).read_text(encoding="utf-8"))
            inputs = {"release": record.get("sha256"), "version": record.get("version")}
            if s.ort_source is not None:
                inputs["header"] = _sig(Path(s.ort_source) / "include" / "onnxruntime" / "core" / "session" /
                                        "onnxruntime_c_api.h")
        # the folders themselves: the runner re-checks every file against the folder's marker (fsutil.MARKER)
        outputs = [Path(s.ort_home)]
        if s.legacy_ort_dir is not None:
            outputs.append(Path(s.legacy_ort_dir))
        argv = stage.stage_argv(s.platform, s.ort_source, None, s.ort_home, legacy_ort_dir=s.legacy_ort_dir,
                                ort_release=record_path)

        def action() -> None:
            record = json.loads(Path(record_path).read_text(encoding="utf-8"))
            path = release.check_recorded_file(record)
            result = stage.stage_release(s.platform, path, Path(s.ort_source) if s.ort_source else None,
                                         Path(s.ort_home), record=record,
                                         legacy_ort_dir=Path(s.legacy_ort_dir) if s.legacy_ort_dir else None,
                                         force=True)  # aipc's own, in the workdir
            check = result.get("load_check", {})
            self.echo(f"[aipc]   ORT_HOME {s.ort_home}: ORT {result.get('ort_version')} from {path.name}, headers "
                      f"API {result.get('api_version')} from {result.get('headers_from')}, load check "
                      f"{check.get('status', '?')}: {check.get('reason', '')}".rstrip(": "))

        return Step("stage", "stage and validate ORT_HOME from the ORT release (flat include/, lib/ with its links, "
                    "manifest.json)", [Command.make(argv, s.workdir)], inputs=inputs, outputs=outputs,
                    action=action)

    def stage_step(self, live: bool = False) -> Step:
        s = self.s
        if self.uses_release:
            return self.release_stage_step(live)
        inputs: dict[str, Any] = {}
        if live:
            # the directory the action itself stages from (not ort.discover_ort's), so the fingerprint follows it
            art = stage.find_artifact_dir(s.platform, Path(s.ort_build_dir), s.config)
            header = Path(s.ort_dir) / "include" / "onnxruntime" / "core" / "session" / "onnxruntime_c_api.h"
            inputs = {"main_lib": _sig(art / s.platform.ort_main_lib), "header": _sig(header),
                      "version": self.source_versions()[0], "artifact_dir": str(art)}
        # the folders themselves: the runner re-checks every file against the folder's marker (fsutil.MARKER)
        outputs = [Path(s.ort_home)]
        if s.legacy_ort_dir is not None:
            outputs.append(Path(s.legacy_ort_dir))
        argv = stage.stage_argv(s.platform, s.ort_dir, s.ort_build_dir, s.ort_home, config=s.config,
                                legacy_ort_dir=s.legacy_ort_dir)

        def action() -> None:
            result = stage.stage_ort_home(s.platform, Path(s.ort_dir), Path(s.ort_build_dir), Path(s.ort_home),
                                          config=s.config,
                                          legacy_ort_dir=Path(s.legacy_ort_dir) if s.legacy_ort_dir else None,
                                          check_load=True, force=True)  # aipc's own, in the workdir
            check = result.get("load_check", {})
            self.echo(f"[aipc]   ORT_HOME {s.ort_home}: ORT {result.get('ort_version')}, "
                      f"load check {check.get('status', '?')}: {check.get('reason', '')}".rstrip(": "))

        return Step("stage", "stage and validate ORT_HOME (flat include/, lib/, manifest.json)",
                    [Command.make(argv, s.workdir)], inputs=inputs, outputs=outputs, action=action)

    def dependencies(self, live: bool = False) -> deps.Resolution | None:
        """genai's CMake dependencies and the --deps-dir folders serving them (None before the source exists).
        Live and offline, a needed dependency without a folder is refused here (one line)."""
        s = self.s
        genai_dir = Path(s.genai_dir)
        if not (s.is_host and (genai_dir / deps.DEPS_TXT).is_file()):
            if live and s.offline:
                self._require(genai_dir / deps.DEPS_TXT, "onnxruntime-genai dependency list", "fetch")
            return None
        res = deps.resolve(genai_dir, s.platform, genai.genai_option_defines(s, self.pins),
                           Path(s.deps_dir) if s.deps_dir else None)
        if live and s.offline:
            deps.check_offline(res)
        return res

    def dep_defines(self, res: deps.Resolution | None) -> list[str]:
        if res is not None:
            return res.defines(self.s.offline)
        if self.s.offline:  # a plan before the source exists: the folders are found once it does
            return ["FETCHCONTENT_SOURCE_DIR_<NAME>=<each dependency's folder in --deps-dir>",
                    "FETCHCONTENT_FULLY_DISCONNECTED=ON"] if self.s.deps_dir else \
                ["FETCHCONTENT_FULLY_DISCONNECTED=ON"]
        return []

    def genai_step(self, live: bool = False) -> Step:
        s = self.s
        ort_version = self.release_version() if self.uses_release else self.pins.onnxruntime.version
        inputs: dict[str, Any] = {"commit": self.pins.onnxruntime_genai.commit}
        outputs: list[Path] = []
        res = self.dependencies(live)
        if live:
            self._require(Path(s.genai_dir) / "build.py", "onnxruntime-genai build.py", "fetch")
            manifest = Path(s.ort_home) / stage.MANIFEST
            self._require(manifest, "ORT_HOME manifest", "stage")
            ort_version = self.ort_version()
            inputs.update(head=self.head(Path(s.genai_dir)), ort_home=sha256_file(manifest))
            if res is not None:
                inputs["deps"] = res.to_json()
            outputs = genai.expected_outputs(s, self.genai_version())
        cmd = genai.genai_build_command(s, self.pins, ort_version, self.build_env(self.msvc_env(live), live),
                                        self.dep_defines(res))
        note = ""
        if s.platform.name == "windows" and s.generator == "vs":
            note = (f"; the Visual Studio generator needs the VS component {SPECTRE_COMPONENT} (genai compiles with "
                    "/Qspectre: MSBuild error MSB8040 without it; --generator ninja does not need it)")
        if s.platform.name == "windows" and s.offline and \
                Version(self.pins.onnxruntime_genai.version) < Version(GENAI_NUGET_ON_PATH):
            # genai <= 0.15.x: ExternalProject nuget.exe (no URL_HASH, no URL override) and `nuget restore` of
            # Microsoft.Direct3D.DXC through its nuget.config (ORT-Nightly only): no local source exists for either
            note += ("; --offline cannot cover two of its downloads: nuget.exe (dist.nuget.org) and the "
                     "Microsoft.Direct3D.DXC restore (ORT-Nightly feed), unless this build tree already has them "
                     "(docs/windows-build.md, 'What an offline Windows build lacks')")
        return Step("build-genai", f"build the {s.platform.genai_wheel_dist} wheel against ORT_HOME "
                    f"(ONNXRUNTIME_VERSION={ort_version}) in the CMake tree {s.genai_build_dir}{note}", [cmd],
                    inputs=inputs, outputs=outputs,
                    find_outputs=lambda: genai.expected_outputs(s, self.genai_version()))

    def build_record(self) -> dict[str, Any]:
        """How the genai wheel was made, for the wheels manifest."""
        s = self.s
        res = self.dependencies()
        return {"generator": s.cmake_generator or "(build.py default)", "config": s.config, "jobs": s.build_jobs,
                "offline": s.offline, "python_version": _python_version(s.python) or None,
                "cmake_defines": genai.genai_defines(s, str(buildvenv.python(s)), self.dep_defines(res)),
                "user_cmake_defines": list(s.cmake_defines), "build_venv": str(buildvenv.venv_dir(s)),
                "build_tools": dict(self.pins.build_tools),
                "dependencies": res.to_json() if res is not None else None}

    def wheels_argv(self) -> list[str]:
        s = self.s
        return ["aipc", "wheels", "--platform", s.platform.name, "--workdir", str(s.workdir), "--wheels",
                str(s.wheels), "--config", s.config]

    def release_wheels_step(self, live: bool = False) -> Step:
        """Step wheels with a release: the matching ORT wheel (the release itself, or the platform's ORT wheel of
        the release's version from pip) beside the genai wheel, after the same Requires-Dist check."""
        s = self.s
        wheels_dir = Path(s.wheels)
        sources = self.state / SOURCES_JSON
        record_path = Path(release.release_dir(s)) / release.RECORD
        inputs: dict[str, Any] = {}
        outputs: list[Path] = []
        collected: list[Path] = []  # the wheels as named in wheels/ once collected (a manylinux tag may rename one)
        commands = [Command.make(self.wheels_argv(), s.workdir)]
        spec = s.ort_release or ""
        if spec != "pypi" and not spec.endswith(".whl"):
            requirement = release.pypi_requirement(s.platform, self.release_version())
            commands.append(Command.make(release.pip_download_argv(
                s.python, requirement, release.release_dir(s) / "wheel", None if s.is_host else s.platform,
                index_args=buildvenv.pip_index_args(s)), s.workdir))
        if live:
            self._require(sources, "source record", "fetch")
            self._require(record_path, "ORT release record", "ort-release")
            genai_wheel = genai.find_genai_wheel(s, self.genai_version())
            inputs = {"release": sha256_file(record_path), "genai": [genai_wheel.name, _sig(genai_wheel)],
                      "sources": sha256_file(sources), "pins": sha256_file(self.pins.path), "fit": wheelfit.FIT}
            outputs = [wheels_dir / wheelhouse.collected_name(wheels_dir, genai_wheel), wheels_dir / wheelhouse.SUMS,
                       wheels_dir / wheelhouse.MANIFEST]
            record = json.loads(record_path.read_text(encoding="utf-8"))
            ort_wheel = Path(record["file"]) if record.get("kind") == "wheel" else \
                release.downloaded_ort_wheel(s, str(record.get("version")))
            # the ORT wheel in wheels/ is an output too (None: not downloaded yet, so the step runs anyway)
            outputs.append(wheels_dir / ort_wheel.name if ort_wheel is not None else wheels_dir / ort.NO_WHEEL)

        def action() -> None:
            src = json.loads(sources.read_text(encoding="utf-8"))
            record = json.loads(record_path.read_text(encoding="utf-8"))
            src["onnxruntime_release"] = record
            ort_wheel = release.ort_wheel_for(s, self.pins, record, self.echo)
            genai_wheel = genai.find_genai_wheel(s, self.genai_version())
            entries = wheelset.collect_wheels(wheels_dir, ort_wheel, genai_wheel, pins=self.pins, sources=src,
                                             platform=s.platform, config=s.config, build=self.build_record(),
                                             ort_is_release=True)
            collected[:] = [wheels_dir / e["file"] for e in entries]
            for e in entries:
                self.echo(f"[aipc]   {wheels_dir / e['file']}  sha256 {e['sha256'][:16]}...")

        return Step("wheels", "copy the release's ORT wheel and the genai wheel into wheels/ with SHA256SUMS and "
                    "manifest.json", commands, inputs=inputs, outputs=outputs, action=action,
                    find_outputs=lambda: [*collected, wheels_dir / wheelhouse.SUMS, wheels_dir / wheelhouse.MANIFEST])

    def wheels_step(self, live: bool = False) -> Step:
        s = self.s
        if self.uses_release:
            return self.release_wheels_step(live)
        wheels_dir = Path(s.wheels)
        sources = self.state / SOURCES_JSON
        inputs: dict[str, Any] = {}
        outputs: list[Path] = []
        collected: list[Path] = []  # the wheels as named in wheels/ once collected (a manylinux tag may rename one)
        if live:
            self._require(sources, "source record", "fetch")
            ort_wheel = ort.discover_ort(s, self.source_versions()[0]).wheel
            genai_wheel = genai.find_genai_wheel(s, self.genai_version())
            inputs = {"ort": [ort_wheel.name, _sig(ort_wheel)], "genai": [genai_wheel.name, _sig(genai_wheel)],
                      "sources": sha256_file(sources), "pins": sha256_file(self.pins.path), "fit": wheelfit.FIT}
            outputs = [wheels_dir / wheelhouse.collected_name(wheels_dir, ort_wheel),
                       wheels_dir / wheelhouse.collected_name(wheels_dir, genai_wheel), wheels_dir / wheelhouse.SUMS,
                       wheels_dir / wheelhouse.MANIFEST]

        def action() -> None:
            src = json.loads(sources.read_text(encoding="utf-8"))
            ort_wheel = ort.discover_ort(s, self.source_versions()[0]).wheel
            genai_wheel = genai.find_genai_wheel(s, self.genai_version())
            entries = wheelset.collect_wheels(wheels_dir, ort_wheel, genai_wheel, pins=self.pins, sources=src,
                                             platform=s.platform, config=s.config, build=self.build_record())
            collected[:] = [wheels_dir / e["file"] for e in entries]
            for e in entries:
                self.echo(f"[aipc]   {wheels_dir / e['file']}  sha256 {e['sha256'][:16]}...")

        return Step("wheels", "copy the ORT and genai wheels into wheels/ (a linux_x86_64 wheel tagged manylinux when "
                    "auditwheel says it qualifies) with SHA256SUMS and manifest.json",
                    [Command.make(self.wheels_argv(), s.workdir)], inputs=inputs, outputs=outputs, action=action,
                    find_outputs=lambda: [*collected, wheels_dir / wheelhouse.SUMS, wheels_dir / wheelhouse.MANIFEST])

    def steps_for(self, name: str, live: bool = False, with_msvc: bool = True) -> list[Step]:
        """The steps of ``name``; the compiling step that comes first gets the msvc-env step before it (Windows +
        Ninja) unless ``with_msvc`` is False (:meth:`run` runs that one itself, before the step reads its output)."""
        if with_msvc and self.s.needs_msvc_env and name == self.msvc_owner and name in self.route:
            return [self.msvc_step(), *self.steps_for(name, live, with_msvc=False)]
        if name not in self.route and name in STEP_NAMES:
            if self.uses_release:
                raise UsageError(f"step {name} builds ONNX Runtime from source, but --ort-release "
                                 f"{self.s.ort_release} uses a release instead",
                                 hint=f"leave out --ort-release to build ORT, or run the steps {', '.join(self.route)}")
            raise UsageError(f"step {name} needs --ort-release (an official ORT release to use instead of "
                             "building ORT)", hint="pass --ort-release pypi|nuget|FILE, or run `aipc build-ort`")
        if name == "ort-release":
            return [self.release_step(live)]
        if name == "fetch":
            return [self.fetch_step(live)]
        if name == "build-venv":
            return [self.venv_step(live)]
        if name == "build-ort":
            return [self.ort_step(live)]
        if name == "stage":
            return [self.stage_step(live)]
        if name == "build-genai":
            return [self.genai_step(live)]
        if name == "wheels":
            return [self.wheels_step(live)]
        raise UsageError(f"unknown build step {name!r}", hint=f"use one of: {', '.join(STEP_NAMES)}")

    # --- plan and run ----------------------------------------------------------------------------------------
    def check_route(self) -> None:
        """The pinned pair must be in the table (with a release: the release's version), before anything is
        fetched or built; a release route that cannot work is refused here too."""
        check_compat(self.pins)
        if self.uses_release:
            release.check_route(self.s, self.pins)
            check_compat(self.pins, ort_version=release.planned_version(self.s, self.pins))

    def plan(self, names: Iterable[str] | None = None) -> list[Step]:
        """Every step of the route (or the ``names`` given), running nothing and reading nothing from disk."""
        self.check_route()
        return [step for name in (names or self.route) for step in self.steps_for(name, live=False)]

    def run(self, names: Iterable[str] | None = None) -> list[StepResult]:
        s = self.s
        if not s.is_host:
            raise UsageError(f"cannot build for {s.platform.name} on this host",
                             hint=f"run the build on {s.platform.name}; here use `aipc plan --platform "
                                  f"{s.platform.name}` to see its commands")
        self.check_route()
        names = list(names or self.route)
        for name in names:
            self.steps_for(name)  # an unknown step or one of the other route: refused before anything runs
        if s.platform.name == "windows" and len(str(s.workdir)) > WINDOWS_WORKDIR_WARN:
            self.echo(f"[aipc] warning: workdir {s.workdir} is long; ONNX Runtime builds can fail on long paths "
                      "(use --workdir C:\\b)")
        names = list(names)
        if "wheels" in names:  # checked before anything is built
            claim_output_dir(Path(s.wheels), wheelhouse.KIND, replace=False, recognise=wheelhouse.is_wheels_dir)
        if "stage" in names and s.legacy_ort_dir is not None:  # genai's ort/ folder: new, empty or aipc's
            claim_output_dir(Path(s.legacy_ort_dir), stage.KIND, force=True, recognise=stage.is_ort_home)
        with build_workdir(Path(s.workdir), echo=self.echo):
            return self._run(names)

    def _run(self, names: Iterable[str]) -> list[StepResult]:
        s = self.s
        runner = Runner(self.state, Path(s.log_dir), force=s.force, echo=self.echo)
        results = []
        checked_deps = False
        for name in names:
            if name != "fetch":
                self.check_sources()
                if not checked_deps and "build-genai" in names:
                    self.dependencies(live=True)  # offline: a missing dependency is refused before any compile
                    checked_deps = True
            if name == "build-venv" and not self.uses_release:  # ORT's requirements: fully pinned before pip
                ort.check_requirements_pinned(s, sorted({*self.pins.wheel_pythons, _python_version(s.python)} - {""}))
            if s.needs_msvc_env and name == self.msvc_owner:
                # the compiling step reads what msvc-env captured: it is made only after that ran
                results.append(runner.run(self.msvc_step()))
            for step in self.steps_for(name, live=True, with_msvc=False):
                if step.name == "build-genai" and not runner.is_current(step):
                    genai.prepare_build_tree(s, self.echo)  # aipc's CMake tree: made, or wiped on a new generator
                results.append(runner.run(step))
            if name == "build-ort":
                ort.discover_ort(s, self.source_versions()[0])  # the build must have produced its outputs
            if name == "build-genai":
                genai.find_genai_wheel(s, self.genai_version())
        return results
