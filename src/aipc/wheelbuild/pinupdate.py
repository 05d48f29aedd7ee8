"""``aipc pins update``: bring the pins file up to the newest stable onnxruntime-genai release, read from upstream.

What it does (docs/development.md, "Updating the pins"):

1. Lists the tags of the genai and ORT repositories (``git ls-remote --tags``; the pinned ``repo`` URLs or local
   repositories). Annotated tags are peeled (``TAG^{}``), so every SHA recorded is the commit's.
2. Reports a moved tag: the pinned tag name now naming another commit (or gone) is an error, never taken.
3. Walks the stable genai releases (``vX.Y.Z``; pre-releases and other tag names are skipped) newer than or equal to
   the pinned one, newest first. For each it fetches the tag shallowly into a temporary repository and reads, from
   genai's own files: the ORT version its DirectML build downloads (``cmake/ortlib.cmake`` evaluated by
   :mod:`aipc.wheelbuild.cmakescan` with ``USE_DML=ON``: that branch overrides the default), the NuGet versions
   its CMake and ``packages.config`` name, whether ``build.py`` has ``--no_telemetry``, and the ``==`` pins of
   ``requirements-dev.txt``. A release is refused, with the reason, when
   that ORT version has no release tag upstream or no DirectML release (PyPI ``onnxruntime-directml`` or the NuGet
   package ``Microsoft.ML.OnnxRuntime.DirectML``). The first release not refused is proposed.
4. The proposal is a new text of the pins file (targeted line edits: comments and layout stay) plus the files that
   follow from it (``constraints/genai-build.txt`` next to the pins file), shown as unified diffs and written (each
   to a temporary file, validated, then renamed) only with ``--write``. What it cannot update is listed with why.

``--check`` exits :attr:`ExitCode.UPDATES` when ``--write`` would change a file, 0 when the pins are current.
Release lookups go to pypi.org and nuget.org, or to a JSON file (``--releases FILE``) for offline use and tests.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from packaging.version import InvalidVersion, Version

from ..errors import AipcError, ExitCode, PinsError, UsageError, os_reason, writing
from ..fsutil import atomic_write_text
from ..pins import Pins, check_compat, load_pins
from ..platforms import PLATFORM_NAMES, get_platform
from . import cmakescan
from .fetch import GitRunner, run_git
from .ort import unpinned_requirements

NETWORK_PREFIXES = ("http://", "https://", "ssh://", "git://", "git@", "file://")
_PLAIN_RELEASE = re.compile(r"v?\d+\.\d+\.\d+")
# where genai names what its DirectML build downloads; the ORT tree names its own DirectML redistributable
GENAI_FILES = ("cmake/ortlib.cmake", "packages.config", "build.py", "requirements-dev.txt", "VERSION_INFO")
# + each platform's ORT build requirements file (Platform.ort_build_requirements)
ORT_FILES = ("packages.config", "VERSION_NUMBER")
ORT_DML_PACKAGE = "Microsoft.ML.OnnxRuntime.DirectML"
PYPI_DML_PROJECT = "onnxruntime-directml"
# [nuget] key -> (which tree, the package id that tree names): the ORT build's own DirectML redistributable is the
# same NuGet package genai downloads, at ORT's version of it
NUGET_FROM_ORT = {"Microsoft.AI.DirectML.ort": "Microsoft.AI.DirectML"}
DERIVED_CONSTRAINTS = "constraints/genai-build.txt"
ORT_CONSTRAINTS = "constraints/ort-build.txt"

Echo = Callable[[str], None]


# --- tags ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteTag:
    name: str
    commit: str  # the commit the tag names (peeled for an annotated tag)
    annotated: bool

    @property
    def kind(self) -> str:
        return "annotated tag" if self.annotated else "lightweight tag"


def is_url(repo: str) -> bool:
    return repo.startswith(NETWORK_PREFIXES)


def check_repo(repo: str, option: str) -> str:
    """A URL as it is, a local repository as an absolute path; a missing local path is bad input."""
    if not repo.strip():
        raise UsageError(f"{option} is empty", hint=f"pass a local git repository or a git URL, or leave {option} out")
    if is_url(repo):
        return repo
    path = Path(repo).expanduser()
    if not path.exists():
        raise UsageError(f"{option} {repo} does not exist",
                         hint=f"pass a local git repository or a git URL with {option}")
    if not path.is_dir():
        raise UsageError(f"{option} {repo} is not a folder", hint=f"pass a local git repository or a git URL with "
                         f"{option}")
    return str(path.resolve())


def parse_ls_remote(text: str) -> dict[str, RemoteTag]:
    """``git ls-remote --tags`` output as name -> :class:`RemoteTag` (``^{}`` lines: annotated tags' commits)."""
    objects: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in text.splitlines():
        sha, _, ref = line.strip().partition("\t")
        if not ref.startswith("refs/tags/") or not re.fullmatch(r"[0-9a-f]{40}", sha):
            continue
        name = ref[len("refs/tags/"):]
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        else:
            objects[name] = sha
    return {name: RemoteTag(name, peeled.get(name, sha), name in peeled) for name, sha in objects.items()}


def list_tags(repo: str, label: str, git: GitRunner = run_git) -> dict[str, RemoteTag]:
    result = git(["-c", "protocol.file.allow=always", "ls-remote", "--tags", repo], None)
    if not result.ok:
        raise AipcError(f"cannot list the tags of the {label} repository {repo} ({result.last_line()})",
                        hint="check the URL and the network, or pass a local clone with "
                             f"--{'genai' if 'genai' in label else 'ort'}-repo")
    return parse_ls_remote(result.stdout)


def release_version(tag: str) -> Version | None:
    """The version of a plain release tag (``v0.15.2``, ``1.24.4``); None for pre-releases and other names."""
    if not _PLAIN_RELEASE.fullmatch(tag):
        return None
    try:
        return Version(tag)
    except InvalidVersion:  # pragma: no cover - the pattern admits only valid versions
        return None


@dataclass(frozen=True)
class TagFiles:
    commit: str
    files: dict[str, str | None]  # path -> text (None: not in that tree)


def read_at_tag(repo: str, tag: str, paths: Iterable[str], git: GitRunner = run_git) -> TagFiles:
    """Fetch ``tag`` of ``repo`` shallowly (depth 1, blobs on demand where the server allows) into a temporary
    repository and read ``paths`` from its tree; the temporary repository is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="aipc-pins-") as tmp:
        work = Path(tmp)
        for args in (["init", "-q"], ["remote", "add", "origin", repo]):
            result = git(args, work)
            if not result.ok:
                raise AipcError(f"git {args[0]} in {work} failed ({result.last_line()})",
                                hint="check that git works (git --version)")
        ref = f"refs/tags/{tag}"
        result = git(["-c", "protocol.file.allow=always", "fetch", "-q", "--depth", "1", "--filter=blob:none",
                      "--no-tags", "origin", f"+{ref}:{ref}"], work)
        if not result.ok:
            raise AipcError(f"cannot fetch tag {tag} of {repo} ({result.last_line()})",
                            hint="check the URL and the network, or pass a local clone")
        resolved = git(["rev-parse", f"{ref}^{{commit}}"], work)
        if not resolved.ok:
            raise AipcError(f"tag {tag} of {repo} names no commit ({resolved.last_line()})",
                            hint="check the tag upstream")
        commit = resolved.stdout.strip()
        files: dict[str, str | None] = {}
        for path in paths:
            listed = git(["ls-tree", "--name-only", ref, "--", path], work)
            if not listed.ok or not listed.stdout.strip():
                files[path] = None
                continue
            blob = git(["cat-file", "blob", f"{ref}:{path}"], work)
            if not blob.ok:
                raise AipcError(f"cannot read {path} at tag {tag} of {repo} ({blob.last_line()})",
                                hint="check the network and rerun")
            files[path] = blob.stdout
        return TagFiles(commit, files)


# --- what genai's files say ----------------------------------------------------------------------------------------

# the configuration whose downloads aipc pins: genai's DirectML build on Windows x64 without ORT_HOME (genai then
# downloads the ORT package its CMake names); cmakescan evaluates cmake/ortlib.cmake under it
DML_BUILD = {"USE_DML": "ON", "WIN32": "1", "MSVC": "1", "CMAKE_SYSTEM_NAME": "Windows",
             "CMAKE_SYSTEM_PROCESSOR": "AMD64", "CMAKE_GENERATOR_PLATFORM": "x64"}


@dataclass(frozen=True)
class OrtlibFacts:
    ort_version: str  # the ORT the DirectML build downloads
    default_version: str | None  # the ORT of a build without USE_DML (shown for context)
    nuget: dict[str, str]  # NuGet package -> version, from set(X_PACKAGE_NAME ...) / set(X_VERSION ...)


def _scan(text: str, variables: dict[str, str]) -> dict[str, cmakescan.Value]:
    scanner = cmakescan.Scanner(dict(variables))
    scanner.run_calls(cmakescan.parse(text), Path("cmake/ortlib.cmake"), True)
    return scanner.variables


def read_ortlib(text: str, where: str) -> OrtlibFacts:
    """What genai's ``cmake/ortlib.cmake`` downloads for a DirectML build: the ORT version (the ``USE_DML`` branch
    overrides the default) and every NuGet package it names with its version."""
    dml = _scan(text, DML_BUILD)
    ort = dml.get("ORT_VERSION")
    if not isinstance(ort, str) or not ort:
        raise PinsError(f"{where} does not decide the ORT version of a DirectML build (ORT_VERSION is "
                        f"{'unset' if ort is None else 'not a plain value'} with USE_DML=ON)",
                        hint="read the file and pin ORT by hand")
    nuget = {}
    for var, name in dml.items():
        if var.endswith("_PACKAGE_NAME") and isinstance(name, str) and name:
            version = dml.get(var[: -len("_PACKAGE_NAME")] + "_VERSION")
            if isinstance(version, str) and version:
                nuget[name] = version
    default = _scan(text, {"USE_DML": "OFF"}).get("ORT_VERSION")
    return OrtlibFacts(ort, default if isinstance(default, str) else None, nuget)


_PACKAGE_ELEMENT = re.compile(r"<package\b([^>]*)/?>")
_ATTRIBUTE = re.compile(r"""(\w+)\s*=\s*"([^"]*)\"""")


def packages_config_versions(text: str) -> dict[str, str]:
    """NuGet package id -> version from a ``packages.config``."""
    out: dict[str, str] = {}
    for element in _PACKAGE_ELEMENT.finditer(text):
        attrs = dict(_ATTRIBUTE.findall(element.group(1)))
        if "id" in attrs and "version" in attrs:
            out[attrs["id"]] = attrs["version"]
    return out


def pinned_requirements(text: str) -> dict[str, str]:
    """``name==version`` lines of a requirements file as normalized name -> version."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)\s*(?:#.*)?$", line)
        if match:
            out[normalize(match.group(1))] = match.group(2)
    return out


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- releases ------------------------------------------------------------------------------------------------------


class Releases(Protocol):
    """Where DirectML releases of ORT are looked up: ``versions("pypi"|"nuget", name)`` (None: unknown there)."""

    def versions(self, registry: str, package: str) -> set[Version] | None: ...

    def describe(self) -> str: ...


def _versions(values: Iterable[Any]) -> set[Version]:
    out = set()
    for value in values:
        try:
            out.add(Version(str(value)))
        except InvalidVersion:
            continue
    return out


@dataclass
class FileReleases:
    """``--releases FILE``: ``{"pypi": {"onnxruntime-directml": ["1.24.4", ...]}, "nuget": {"Microsoft.ML.OnnxRuntime
    .DirectML": [...]}}``; a registry or package missing from the file is unknown."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> FileReleases:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"releases file {path} does not exist", hint="pass an existing JSON file with "
                             "--releases, or leave it out to ask pypi.org and nuget.org") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = os_reason(exc) if isinstance(exc, OSError) else "not UTF-8"
            raise UsageError(f"cannot read releases file {path} ({reason})", hint="pass a readable JSON file") \
                from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"releases file {path} is not JSON ({exc.msg} at line {exc.lineno})",
                             hint='write {"pypi": {"onnxruntime-directml": ["1.24.4"]}, "nuget": {...}}') from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise UsageError(f"releases file {path} is not a mapping of registry -> package -> versions",
                             hint='write {"pypi": {"onnxruntime-directml": ["1.24.4"]}, "nuget": {...}}')
        return cls(Path(path), data)

    def versions(self, registry: str, package: str) -> set[Version] | None:
        table = self.data.get(registry, {})
        for name, values in table.items():
            if normalize(name) == normalize(package) and isinstance(values, list):
                return _versions(values)
        return None

    def describe(self) -> str:
        return f"releases file {self.path}"


Fetch = Callable[[str], Any]


def _get_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "aipc-pins-update"})
    with urllib.request.urlopen(request, timeout=30) as response:  # fixed https URLs only
        return json.loads(response.read().decode("utf-8"))


@dataclass
class OnlineReleases:
    """pypi.org's JSON API and nuget.org's flat container index; a package neither knows has no versions. Each
    package is asked once per run."""

    get_json: Fetch = _get_json
    seen: dict[tuple[str, str], set[Version] | None] = field(default_factory=dict)

    def versions(self, registry: str, package: str) -> set[Version] | None:
        key = (registry, package)
        if key not in self.seen:
            self.seen[key] = self._ask(registry, package)
        return self.seen[key]

    def _ask(self, registry: str, package: str) -> set[Version] | None:
        if registry == "pypi":
            url = f"https://pypi.org/pypi/{normalize(package)}/json"
        elif registry == "nuget":
            url = f"https://api.nuget.org/v3-flatcontainer/{package.lower()}/index.json"
        else:
            return None
        try:
            data = self.get_json(url)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return set()
            raise AipcError(f"{url} answered HTTP {exc.code}", hint="retry later, or pass --releases FILE") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise AipcError(f"cannot look up {package} releases at {url} ({reason})",
                            hint="check the network, or pass --releases FILE (JSON: registry -> package -> "
                                 "versions)") from None
        if registry == "pypi":
            releases = data.get("releases", {}) if isinstance(data, dict) else {}
            return _versions(v for v, files in releases.items()
                             if files and not all(f.get("yanked") for f in files if isinstance(f, dict)))
        return _versions(data.get("versions", []) if isinstance(data, dict) else [])

    def describe(self) -> str:
        return "pypi.org and nuget.org"


def dml_release_problem(version: str, releases: Releases) -> tuple[str | None, list[str]]:
    """(None, where it was found) when ORT ``version`` has a DirectML release; else (the reason, []). One registry
    that cannot be reached is enough when the other has the release; otherwise its error is raised."""
    wanted = Version(version)
    found, unknown = [], []
    errors: list[AipcError] = []
    for registry, package in (("pypi", PYPI_DML_PROJECT), ("nuget", ORT_DML_PACKAGE)):
        try:
            have = releases.versions(registry, package)
        except AipcError as exc:
            errors.append(exc)
            continue
        if have is None:
            unknown.append(f"{package} ({registry})")
        elif wanted in have:
            found.append(f"{package} {version} ({registry})")
    if found:
        return None, found
    if errors:
        raise errors[0]
    checked = f"neither PyPI {PYPI_DML_PROJECT} nor NuGet {ORT_DML_PACKAGE} has {version}"
    if unknown:
        checked += f" (not listed in {releases.describe()}: {', '.join(unknown)})"
    return f"ONNX Runtime {version} has no DirectML release: {checked}", []


# --- the proposal --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    tag: RemoteTag
    version: Version


@dataclass
class Proposal:
    genai: RemoteTag
    genai_version: str
    ort: RemoteTag
    ort_version: str
    ort_source: str  # where the ORT version was read
    nuget: dict[str, tuple[str, str]]  # [nuget] key -> (version, source)
    has_no_telemetry: bool | None
    requirements: dict[str, str]  # genai's requirements-dev.txt == pins
    dml_releases: list[str]
    ort_requirements: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # platform -> (path, text)


@dataclass
class Report:
    pins: Pins
    genai_repo: str
    ort_repo: str
    problems: list[str] = field(default_factory=list)  # moved or vanished pinned tags
    refused: list[tuple[str, str]] = field(default_factory=list)  # (tag, reason)
    proposal: Proposal | None = None
    changes: dict[Path, tuple[str, str]] = field(default_factory=dict)  # path -> (old text, new text)
    notes: list[str] = field(default_factory=list)  # what the proposal changes, with the source
    kept: list[str] = field(default_factory=list)  # what already agrees with upstream, and why
    not_updated: list[str] = field(default_factory=list)  # what the maintainer must do by hand, with why


def check_pinned_tags(pins: Pins, genai_tags: dict[str, RemoteTag], ort_tags: dict[str, RemoteTag],
                      genai_repo: str, ort_repo: str) -> list[str]:
    """A pinned tag that now names another commit (or is gone) upstream: one problem line each."""
    problems = []
    for pin, tags, repo in ((pins.onnxruntime_genai, genai_tags, genai_repo), (pins.onnxruntime, ort_tags, ort_repo)):
        tag = tags.get(pin.tag)
        if tag is None:
            problems.append(f"pinned tag {pin.tag} ({pin.name}) no longer exists in {repo}")
        elif tag.commit != pin.commit:
            problems.append(f"moved tag: {pin.name} {pin.tag} now names commit {tag.commit} in {repo}, but the pins "
                            f"record {pin.commit}")
    return problems


def candidates(pins: Pins, genai_tags: dict[str, RemoteTag]) -> list[Candidate]:
    """Stable genai releases at or above the pinned version, newest first."""
    pinned = Version(pins.onnxruntime_genai.version)
    found = []
    for tag in genai_tags.values():
        version = release_version(tag.name)
        if version is not None and version >= pinned:
            found.append(Candidate(tag, version))
    return sorted(found, key=lambda c: c.version, reverse=True)


def evaluate(candidate: Candidate, pins: Pins, genai_repo: str, ort_repo: str, ort_tags: dict[str, RemoteTag],
             releases: Releases, git: GitRunner) -> Proposal:
    """What genai ``candidate`` needs, read from its tree; :class:`PinsError` with the reason when it is refused."""
    tag = candidate.tag
    got = read_at_tag(genai_repo, tag.name, GENAI_FILES, git)
    if got.commit != tag.commit:
        raise PinsError(f"tag {tag.name} moved while it was read ({tag.commit[:12]} listed, {got.commit[:12]} "
                        "fetched)", hint="rerun")
    version_info = got.files["VERSION_INFO"]
    if version_info is not None:
        stated = version_info.strip()
        try:
            same = Version(stated) == candidate.version
        except InvalidVersion:
            same = False
        if not same:
            raise PinsError(f"VERSION_INFO at {tag.name} says {stated[:40]!r}, not {candidate.version}: the tag does "
                            "not name that release's sources")
    ortlib = got.files["cmake/ortlib.cmake"]
    where = f"cmake/ortlib.cmake at {tag.name}"
    if ortlib is None:
        raise PinsError(f"{tag.name} has no cmake/ortlib.cmake, so the ORT its DirectML build uses is unknown")
    facts = read_ortlib(ortlib, where)
    ort_version = facts.ort_version
    ort_source = f"{where} with USE_DML=ON" + (f"; without it: {facts.default_version}"
                                                if facts.default_version and facts.default_version != ort_version
                                                else "")
    ort_tag_name = f"v{ort_version}"
    if not re.fullmatch(r"\d+\.\d+\.\d+", ort_version) or ort_tag_name not in ort_tags:
        raise PinsError(f"its DirectML build uses ONNX Runtime {ort_version} ({ort_source}), and ORT tag "
                        f"{ort_tag_name} does not exist in {ort_repo}")
    problem, found = dml_release_problem(ort_version, releases)
    if problem:
        raise PinsError(f"its DirectML build uses ONNX Runtime {ort_version} ({ort_source}); {problem}")
    ort_tag = ort_tags[ort_tag_name]
    req_paths = {name: get_platform(name).ort_build_requirements for name in PLATFORM_NAMES}
    ort_files = read_at_tag(ort_repo, ort_tag_name, (*ORT_FILES, *req_paths.values()), git)
    if ort_files.commit != ort_tag.commit:
        raise PinsError(f"ORT tag {ort_tag_name} moved while it was read", hint="rerun")
    version_number = (ort_files.files["VERSION_NUMBER"] or "").strip()
    if version_number and version_number != ort_version:
        raise PinsError(f"ORT tag {ort_tag_name} holds VERSION_NUMBER {version_number[:40]!r}, not {ort_version}")
    named = {package: (version, where) for package, version in facts.nuget.items()}
    named.setdefault(ORT_DML_PACKAGE, (ort_version, ort_source))
    if got.files["packages.config"] is not None:
        for package, version in packages_config_versions(got.files["packages.config"]).items():
            named.setdefault(package, (version, f"packages.config at {tag.name}"))
    if ort_files.files["packages.config"] is not None:
        ort_named = packages_config_versions(ort_files.files["packages.config"])
        for key, package in NUGET_FROM_ORT.items():
            if package in ort_named:
                named[key] = (ort_named[package], f"packages.config at ORT {ort_tag_name}")
    nuget = {key: named[key] for key in pins.nuget if key in named}
    build_py = got.files["build.py"]
    requirements = got.files["requirements-dev.txt"]
    return Proposal(
        genai=tag, genai_version=str(candidate.version), ort=ort_tag, ort_version=ort_version, ort_source=ort_source,
        nuget=nuget, has_no_telemetry=None if build_py is None else "--no_telemetry" in build_py,
        requirements=pinned_requirements(requirements) if requirements is not None else {}, dml_releases=found,
        ort_requirements={name: (path, ort_files.files[path]) for name, path in req_paths.items()},
    )


# --- editing the pins text -----------------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


def _table_span(lines: list[str], table: str) -> tuple[int, int]:
    start = next((i for i, ln in enumerate(lines) if (m := _HEADER.match(ln)) and m.group(1) == table
                  and not ln.lstrip().startswith("[[")), None)
    if start is None:
        raise PinsError(f"the pins file has no [{table}] table", hint=f"add [{table}]")
    end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    return start, end


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a TOML basic string is JSON's string syntax for this text


def set_value(text: str, table: str, key: str, literal: str) -> str:
    """``text`` with ``key = <literal>`` in ``[table]`` (the old value replaced on its line, comments kept)."""
    lines = text.splitlines(keepends=True)
    start, end = _table_span(lines, table)
    pattern = re.compile(r'^(\s*(?:' + re.escape(key) + r'|"' + re.escape(key) + r'")\s*=\s*)'
                         r'("(?:[^"\\]|\\.)*"|true|false|[0-9][0-9.]*)(.*)$', re.DOTALL)
    for i in range(start + 1, end):
        match = pattern.match(lines[i])
        if match:
            lines[i] = match.group(1) + literal + match.group(3)
            return "".join(lines)
    raise PinsError(f"the pins file has no {key} in [{table}]", hint=f"add {key} to [{table}]")


def set_comment_above(text: str, table: str, key: str, comment: str) -> str:
    """Replace the comment lines right above ``key`` in ``[table]`` with ``comment`` (one line)."""
    lines = text.splitlines(keepends=True)
    start, end = _table_span(lines, table)
    at = next(i for i in range(start + 1, end) if re.match(r"^\s*" + re.escape(key) + r"\s*=", lines[i]))
    first = at
    while first - 1 > start and lines[first - 1].lstrip().startswith("#"):
        first -= 1
    lines[first:at] = [f"# {comment}\n"]
    return "".join(lines)


def compat_block(p: Proposal, genai_repo_label: str) -> str:
    source = (f"{p.ort_source}; ORT tag v{p.ort_version} ({p.ort.commit[:12]}); DirectML release: "
              f"{', '.join(p.dml_releases)}")
    row = (f"| {p.genai.name} | ORT DirectML pinned by CMake: {p.ort_version} | written by aipc pins update from "
           f"{genai_repo_label} |")
    return (f'[[compat]]\ngenai = "=={p.genai_version}"\nort_min = {_toml_string(p.ort_version)}\n'
            f"row = {_toml_string(row)}\nsource = {_toml_string(source)}\n")


def insert_compat(text: str, pins: Pins, block: str, genai_version: str) -> str:
    """Insert ``block`` before the first ``[[compat]]`` row that matches ``genai_version`` (so it wins), else after
    the last row."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, ln in enumerate(lines) if ln.strip() == "[[compat]]"]
    if len(starts) != len(pins.compat):
        raise PinsError("the pins file's [[compat]] headers could not be matched to its rows",
                        hint="write each row as a plain [[compat]] header line")
    for row, at in zip(pins.compat, starts, strict=True):
        if row.matches_genai(genai_version):
            lines[at:at] = [block, "\n"]
            return "".join(lines)
    body = "".join(lines)
    if not body.endswith("\n"):
        body += "\n"
    return body + "\n" + block


def _short(commit: str) -> str:
    return commit[:12]


def new_pins_text(report: Report, p: Proposal) -> str:
    pins = report.pins
    text = pins.path.read_text(encoding="utf-8")
    g, o = pins.onnxruntime_genai, pins.onnxruntime
    for table, pin, tag, version in (("onnxruntime", o, p.ort, p.ort_version),
                                     ("onnxruntime_genai", g, p.genai, p.genai_version)):
        if (pin.tag, pin.commit, pin.version) == (tag.name, tag.commit, version):
            continue
        text = set_value(text, table, "tag", _toml_string(tag.name))
        text = set_value(text, table, "version", _toml_string(version))
        text = set_value(text, table, "commit", _toml_string(tag.commit))
        text = set_comment_above(text, table, "commit", f"{tag.name}: {tag.kind}, commit {_short(tag.commit)} "
                                 "(resolved by `aipc pins update`)")
        report.notes.append(f"[{table}] {pin.tag} ({_short(pin.commit)}) -> {tag.name} ({tag.kind}, {tag.commit})")
    if p.has_no_telemetry is not None and p.has_no_telemetry != pins.genai_has_no_telemetry:
        text = set_value(text, "onnxruntime_genai", "has_no_telemetry", "true" if p.has_no_telemetry else "false")
        report.notes.append(f"[onnxruntime_genai] has_no_telemetry -> {str(p.has_no_telemetry).lower()} (build.py "
                            f"at {p.genai.name} {'has' if p.has_no_telemetry else 'has no'} --no_telemetry)")
    for key, (version, source) in p.nuget.items():
        if pins.nuget.get(key) != version:
            text = set_value(text, "nuget", key, _toml_string(version))
            report.notes.append(f"[nuget] {key}: {pins.nuget.get(key)} -> {version} ({source})")
    for key in pins.nuget:
        if key not in p.nuget:
            report.not_updated.append(f"[nuget] {key}: no file aipc reads at {p.genai.name} or ORT v{p.ort_version} "
                                      "names this package; check it by hand")
    row_for_it = next((r for r in pins.compat if r.matches_genai(p.genai_version)), None)
    if row_for_it is not None and Version(row_for_it.ort_min) == Version(p.ort_version):
        report.kept.append(f"[[compat]] genai {row_for_it.genai} (ORT >= {row_for_it.ort_min}) already covers "
                           f"{p.genai.name}")
    else:
        text = insert_compat(text, pins, compat_block(p, pins.onnxruntime_genai.repo), p.genai_version)
        report.notes.append(f"[[compat]] added: genai =={p.genai_version} needs ORT >= {p.ort_version} "
                            f"({p.ort_source})")
    return text


def validate_pins_text(text: str, where: Path) -> Pins:
    """Parse and check a proposed pins text (as a file next to ``where``); the proposal must itself be compatible."""
    fd, name = tempfile.mkstemp(prefix=".pins-update-", suffix=".toml", dir=where.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        pins = load_pins(Path(name))
        check_compat(pins)
        return pins
    finally:
        os.unlink(name)


def new_constraints_text(report: Report, p: Proposal) -> tuple[Path, str, str] | None:
    """``constraints/genai-build.txt`` next to the pins file, with genai's ``==`` requirements at the new tag."""
    path = report.pins.path.parent / DERIVED_CONSTRAINTS
    if not path.is_file():
        report.not_updated.append(f"{DERIVED_CONSTRAINTS}: not next to the pins file ({path}), so genai's "
                                  f"requirements-dev.txt pins at {p.genai.name} were not carried over")
        return None
    old = path.read_text(encoding="utf-8")
    lines = old.splitlines(keepends=True)
    present = set()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z0-9][A-Za-z0-9._-]*)(\s*==\s*)([^\s;#]+)(.*)$", line, re.DOTALL)
        if not match:
            continue
        name = normalize(match.group(2))
        present.add(name)
        want = p.requirements.get(name)
        if want is not None and want != match.group(4):
            lines[i] = match.group(1) + match.group(2) + match.group(3) + want + match.group(5)
            report.notes.append(f"{DERIVED_CONSTRAINTS}: {match.group(2)} {match.group(4)} -> {want} "
                                f"(requirements-dev.txt at {p.genai.name})")
    for name, version in sorted(p.requirements.items()):
        if name not in present:
            report.not_updated.append(f"{DERIVED_CONSTRAINTS}: genai {p.genai.name} requires {name}=={version}, "
                                      "which is new: pin it and its own dependencies by hand (pip resolves them "
                                      "per platform)")
    return path, old, "".join(lines)


def check_ort_constraints(report: Report, p: Proposal) -> None:
    """Does ``constraints/ort-build.txt`` (next to the pins file) pin every name ORT's build requirements list at the
    new ORT tag, for each platform and wheel Python? aipc cannot choose those versions (pip resolves them per
    platform), so a gap is listed for the maintainer; ``aipc build-ort`` refuses the same gap before installing."""
    path = report.pins.path.parent / ORT_CONSTRAINTS
    if not path.is_file():
        report.not_updated.append(f"{ORT_CONSTRAINTS}: not next to the pins file ({path}): ORT v{p.ort_version}'s "
                                  "build requirements were not checked")
        return
    constraints = path.read_text(encoding="utf-8")
    for name, (req_path, text) in p.ort_requirements.items():
        where = f"{req_path} at ORT v{p.ort_version}"
        if text is None:
            report.not_updated.append(f"{ORT_CONSTRAINTS}: ORT v{p.ort_version} has no {req_path} ({name}): the "
                                      "ORT build step needs the new upstream file aipc reads there")
            continue
        try:
            problems = unpinned_requirements(text, constraints, get_platform(name), report.pins.wheel_pythons, where)
        except AipcError as exc:
            problems = [exc.one_line()]
        if problems:
            report.not_updated += [f"{ORT_CONSTRAINTS} ({name}): {problem}; pin it by hand" for problem in problems]
        else:
            report.kept.append(f"{ORT_CONSTRAINTS} pins every name of {where} ({name}, Python "
                               f"{', '.join(report.pins.wheel_pythons)})")


def plan_update(pins_path: Path | None, *, genai_repo: str | None = None, ort_repo: str | None = None,
                releases: Releases | None = None, git: GitRunner = run_git, echo: Echo = lambda s: None) -> Report:
    """Everything ``aipc pins update`` decides, without writing: see the module docstring."""
    pins = load_pins(pins_path)
    genai_url = check_repo(genai_repo, "--genai-repo") if genai_repo is not None else pins.onnxruntime_genai.repo
    ort_url = check_repo(ort_repo, "--ort-repo") if ort_repo is not None else pins.onnxruntime.repo
    report = Report(pins, genai_url, ort_url)
    releases = releases or OnlineReleases()
    genai_tags = list_tags(genai_url, "onnxruntime-genai", git)
    ort_tags = list_tags(ort_url, "ONNX Runtime", git)
    echo(f"tags: {len(genai_tags)} in {genai_url}, {len(ort_tags)} in {ort_url}")
    report.problems = check_pinned_tags(pins, genai_tags, ort_tags, genai_url, ort_url)
    for candidate in candidates(pins, genai_tags):
        try:
            report.proposal = evaluate(candidate, pins, genai_url, ort_url, ort_tags, releases, git)
            break
        except PinsError as exc:
            report.refused.append((candidate.tag.name, exc.one_line()))
    p = report.proposal
    if p is None:
        return report
    text = new_pins_text(report, p)
    validate_pins_text(text, pins.path)
    old = pins.path.read_text(encoding="utf-8")
    if text != old:
        report.changes[pins.path] = (old, text)
    derived = new_constraints_text(report, p)
    if derived is not None and derived[1] != derived[2]:
        report.changes[derived[0]] = (derived[1], derived[2])
    if (p.genai.name, p.ort.name) != (pins.onnxruntime_genai.tag, pins.onnxruntime.tag):
        check_ort_constraints(report, p)
        report.not_updated += [
            "docs/upstream.md#build §5: add the facts of the new pair (genai's tested onnxruntime-directml, "
            "test/python/directml/ort/requirements.txt) by hand",
            "README.md, first section: the pip install command names the genai and ORT versions of the release "
            "that publishes them; set the new ones when that release is tagged (tests/test_index.py checks them)",
        ]
    return report


# --- output --------------------------------------------------------------------------------------------------------


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def diff(path: Path, old: str, new: str) -> str:
    name = _shown(path)
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=f"a/{name}", tofile=f"b/{name}"))


def format_report(report: Report) -> str:
    pins = report.pins
    g, o = pins.onnxruntime_genai, pins.onnxruntime
    lines = [f"pins file: {pins.path}",
             f"pinned: onnxruntime-genai {g.tag} ({_short(g.commit)}), ONNX Runtime {o.tag} ({_short(o.commit)})"]
    lines += [f"PROBLEM: {problem}" for problem in report.problems]
    lines += [f"refused: onnxruntime-genai {tag}: {reason}" for tag, reason in report.refused]
    p = report.proposal
    if p is not None:
        lines.append(f"newest usable: onnxruntime-genai {p.genai.name} ({p.genai.kind}, {p.genai.commit}) + "
                     f"ONNX Runtime v{p.ort_version} ({p.ort.kind}, {p.ort.commit}); ORT read from {p.ort_source}; "
                     f"DirectML release: {', '.join(p.dml_releases)}")
    lines += [f"update: {note}" for note in report.notes]
    lines += [f"kept: {item}" for item in report.kept]
    lines += [f"not updated: {item}" for item in report.not_updated]
    for path, (old, new) in report.changes.items():
        lines.append(diff(path, old, new).rstrip("\n"))
    return "\n".join(lines)


def write_changes(report: Report) -> list[Path]:
    """Write every changed file (temporary file, then rename); the pins text was validated by :func:`plan_update`."""
    written = []
    for path, (_old, new) in report.changes.items():
        with writing(path, "pins update output"):
            atomic_write_text(path, new)
        written.append(path)
    return written


def run_update(pins_path: Path | None, *, genai_repo: str | None, ort_repo: str | None, releases_file: Path | None,
               check: bool, write: bool, echo: Echo = print, git: GitRunner = run_git) -> int:
    """The command: print the report and the diffs; ``--write`` writes, ``--check`` exits UPDATES on a change."""
    if check and write:
        raise UsageError("--check and --write exclude each other", hint="pass one of them")
    releases = FileReleases.load(releases_file) if releases_file is not None else None
    report = plan_update(pins_path, genai_repo=genai_repo, ort_repo=ort_repo, releases=releases, git=git)
    echo(format_report(report))
    if report.problems:
        raise PinsError(f"{report.problems[0]}" + (f" (and {len(report.problems) - 1} more)"
                                                   if len(report.problems) > 1 else ""),
                        hint="a release tag must never move: find out why upstream moved it; nothing was written")
    if not report.changes:
        if report.proposal is None:
            what = f"{report.refused[0][0]}: {report.refused[0][1]}" if report.refused else "no release tags found"
            raise PinsError(f"no onnxruntime-genai release at or above the pinned one can be pinned ({what})",
                            hint="wait for a DirectML release of that ORT, or pin a pair by hand")
        refused = f" ({len(report.refused)} newer release(s) refused, see above)" if report.refused else ""
        echo(f"pins are current{refused}")
        return ExitCode.OK
    if write:
        for path in write_changes(report):
            echo(f"wrote {_shown(path)}")
        return ExitCode.OK
    if check:
        echo("newer upstream releases exist: run `aipc pins update --write`")
        return ExitCode.UPDATES
    echo("(nothing written: rerun with --write)")
    return ExitCode.OK

