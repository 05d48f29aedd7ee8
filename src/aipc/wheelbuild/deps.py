"""genai's CMake dependencies: read them from the source trees, serve them from a local folder, fetch that folder.

Where they come from (read, not listed by hand):
- ``<genai>/cmake/deps.txt``: ``name;url;sha1`` lines (the SHA1 of the GitHub zip archive; for a git URL the
  third column is the commit), which genai's CMake turns into ``DEP_URL_<name>``/``DEP_SHA1_<name>``;
- ``<genai>/cmake/external/*.cmake``: the ``FetchContent_Declare`` calls and the conditions around them
  (``ENABLE_PYTHON``, ``USE_DML``...), evaluated for the target platform and the options aipc passes;
- once the folder of ``onnxruntime_extensions`` is known, its ``CMakeLists.txt`` with ``cmake/externals/*.cmake``
  and the preset genai selects (``OCOS_BUILD_PRESET``): the nested dependencies.

A folder of ``--deps-dir`` serves a dependency when its name equals, ignoring case, the FetchContent name, the
``deps.txt`` name, or the repository name in its URL (``pybind11`` serves ``pybind11_project``, ``gsl`` serves
``GSL``, ``json`` serves ``nlohmann_json``). Each one found becomes ``-DFETCHCONTENT_SOURCE_DIR_<NAME>=<folder>``;
with ``--offline`` also ``-DFETCHCONTENT_FULLY_DISCONNECTED=ON``, and a needed dependency without a folder is
refused before anything is configured or compiled.

``aipc deps --out DIR`` fills such a folder: archives are checked against their SHA1, git entries are checked out at
their commit, nested dependencies follow, and ``DIR/aipc-deps.json`` records what was fetched.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..archives import safe_extract
from ..errors import AipcError, UsageError
from ..fsutil import atomic_path, atomic_write_json, use_output_dir
from ..platforms import Platform
from . import cmakescan, fetch

DEPS_TXT = Path("cmake", "deps.txt")
EXTERNAL_DIR = Path("cmake", "external")
EXTENSIONS = "onnxruntime_extensions"
MANIFEST = "aipc-deps.json"
SCHEMA = 1
# the CMake version the build venv runs ([build_tools] cmake), for `if(CMAKE_VERSION VERSION_...)`
DEFAULT_CMAKE_VERSION = "3.31.6"


@dataclass(frozen=True)
class Dependency:
    """One FetchContent dependency of the build."""

    name: str  # the FetchContent name, e.g. pybind11_project
    deps_name: str | None  # its deps.txt name, e.g. pybind11
    url: str
    kind: str  # "archive" | "git"
    sha1: str | None  # archive SHA1 (URL_HASH SHA1=...)
    commit: str | None  # git commit or tag (GIT_TAG)
    declared_in: str  # file:line
    needed: bool | None  # True, or None when the condition could not be decided (treated as needed)
    parent: str | None = None  # the dependency whose source declares it (onnxruntime_extensions)

    @property
    def repo_name(self) -> str | None:
        return repo_name(self.url)

    @property
    def folder_names(self) -> tuple[str, ...]:
        names = [self.name, self.deps_name, self.repo_name]
        out: list[str] = []
        for n in names:
            if n and n.lower() not in (o.lower() for o in out):
                out.append(n)
        return tuple(out)

    @property
    def default_folder(self) -> str:
        """The folder name ``aipc deps`` writes: the deps.txt name, else the repository name, lower case."""
        return (self.deps_name or self.repo_name or self.name).lower()

    @property
    def cmake_var(self) -> str:
        return f"FETCHCONTENT_SOURCE_DIR_{self.name.upper()}"

    @property
    def pin(self) -> str:
        return (self.sha1 if self.kind == "archive" else self.commit) or "(no hash)"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "deps_name": self.deps_name, "url": self.url, "kind": self.kind, "sha1": self.sha1,
                "commit": self.commit, "declared_in": self.declared_in, "parent": self.parent,
                "needed": self.needed}


def repo_name(url: str) -> str | None:
    """The repository name in a dependency URL: ``github.com/<owner>/<repo>/archive/...`` -> ``repo``,
    ``codeload.github.com/<owner>/<repo>/zip/...`` -> ``repo``, ``.../<repo>.git`` -> ``repo``."""
    path = urllib.parse.urlparse(url).path if "://" in url else url
    parts = [p for p in path.split("/") if p]
    if "package" in parts[:-1]:  # NuGet: .../api/v2/package/<id>/<version>
        return parts[parts.index("package") + 1]
    for marker in ("archive", "releases", "zip", "tar.gz", "legacy.zip", "-"):
        if marker in parts[1:]:
            return parts[parts.index(marker, 1) - 1]
    if parts:
        last = parts[-1]
        return last[:-4] if last.endswith(".git") else last
    return None


# --- discovery ----------------------------------------------------------------------------------------------------


def read_deps_txt(genai_dir: Path) -> dict[str, tuple[str, str]]:
    """``{name: (url, sha1-or-commit)}`` from genai's ``cmake/deps.txt`` (comments and blank lines skipped)."""
    path = genai_dir / DEPS_TXT
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        raise AipcError(f"cannot read {path}: {genai_dir} is not an onnxruntime-genai source tree",
                        hint="run `aipc fetch` first or pass the checkout with --genai-source") from None
    out: dict[str, tuple[str, str]] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(";")
        if len(parts) >= 3:
            out[parts[0].strip()] = (parts[1].strip(), parts[2].strip())
    return out


def platform_variables(platform: Platform, cmake_version: str = DEFAULT_CMAKE_VERSION) -> dict[str, cmakescan.Value]:
    windows = platform.name == "windows"
    values: dict[str, cmakescan.Value] = {"CMAKE_VERSION": cmake_version, "CMAKE_SYSTEM_NAME": platform.system,
                                          "CMAKE_HOST_SYSTEM_NAME": platform.system}
    for var, on in (("WIN32", windows), ("MSVC", windows), ("UNIX", not windows), ("LINUX", not windows)):
        if on:
            values[var] = "1"
    return values


def _defines_to_vars(defines: Iterable[str]) -> dict[str, cmakescan.Value]:
    out: dict[str, cmakescan.Value] = {}
    for d in defines:
        name, _, value = d.partition("=")
        out[name.split(":")[0]] = value
    return out


def discover(genai_dir: Path, platform: Platform, defines: Iterable[str],
             extensions_dir: Path | None = None, cmake_version: str = DEFAULT_CMAKE_VERSION) -> list[Dependency]:
    """Every FetchContent dependency of genai (and of onnxruntime-extensions when ``extensions_dir`` is given),
    with whether this configuration needs it. ``defines`` are the ``-D`` values the build passes (``NAME=VALUE``)."""
    genai_dir = Path(genai_dir)
    table = read_deps_txt(genai_dir)
    variables: dict[str, cmakescan.Value] = platform_variables(platform, cmake_version)
    for name, (url, sha) in table.items():
        variables[f"DEP_URL_{name}"] = url
        variables[f"DEP_SHA1_{name}"] = sha
    variables.update(CMAKE_SOURCE_DIR=genai_dir.as_posix(), CMAKE_CURRENT_SOURCE_DIR=genai_dir.as_posix(),
                     PROJECT_SOURCE_DIR=genai_dir.as_posix(), REPO_ROOT=genai_dir.as_posix(),
                     PROJECT_IS_TOP_LEVEL="TRUE")
    variables.update(_defines_to_vars(defines))
    scanner = cmakescan.Scanner(variables, module_path=[genai_dir / "cmake"])
    top = genai_dir / "CMakeLists.txt"
    if top.is_file():  # options, ortlib.cmake (ONNXRUNTIME_INCLUDE_DIR...), then cmake/external/*.cmake
        scanner.run_file(top)
    external = genai_dir / EXTERNAL_DIR
    for f in sorted(external.glob("*.cmake")) if external.is_dir() else []:
        if f not in scanner.files:  # a file the top level does not include is read too (declarations only used)
            scanner.run_file(f)
    by_url = {url: name for name, (url, _) in table.items()}
    deps = [_dependency(d, genai_dir, by_url, None) for d in cmakescan.iter_used(scanner.declared)]
    listed = {d.deps_name for d in deps}
    for name, (url, pin) in table.items():  # listed in deps.txt, not used by this configuration (for the record)
        if name not in listed:
            git = url.endswith(".git")
            deps.append(Dependency(name, name, url, "git" if git else "archive", None if git else pin.lower(),
                                   pin if git else None, DEPS_TXT.as_posix(), False))
    if extensions_dir is not None:
        deps += discover_nested(Path(extensions_dir), scanner, genai_dir, by_url)
    return deps


def discover_nested(ext_dir: Path, parent_scanner: cmakescan.Scanner, genai_dir: Path,
                    by_url: Mapping[str, str]) -> list[Dependency]:
    """onnxruntime-extensions' own dependencies, as it is configured inside genai's build (a child scope)."""
    top = ext_dir / "CMakeLists.txt"
    if not top.is_file():
        raise AipcError(f"{ext_dir} has no CMakeLists.txt: it is not an onnxruntime-extensions source tree",
                        hint=f"put onnxruntime-extensions at the commit in {DEPS_TXT} there (aipc deps --out DIR)")
    variables = dict(parent_scanner.variables)
    variables.update(CMAKE_CURRENT_SOURCE_DIR=ext_dir.as_posix(), PROJECT_SOURCE_DIR=ext_dir.as_posix(),
                     PROJECT_IS_TOP_LEVEL="FALSE")
    scanner = cmakescan.Scanner(variables, module_path=[ext_dir / "cmake" / "externals", ext_dir / "cmake"])
    scanner.run_file(top)
    return [_dependency(d, ext_dir, by_url, EXTENSIONS) for d in cmakescan.iter_used(scanner.declared)]


def _dependency(d: cmakescan.Declared, root: Path, by_url: Mapping[str, str], parent: str | None) -> Dependency:
    git = d.first("GIT_REPOSITORY")
    url = git or d.first("URL") or ""
    sha1 = None
    hash_text = d.first("URL_HASH") or ""
    if hash_text.upper().startswith("SHA1="):
        sha1 = hash_text[5:].lower()
    try:
        where = d.file.relative_to(root).as_posix()
    except ValueError:
        where = d.file.as_posix()
    return Dependency(name=d.name, deps_name=by_url.get(url), url=url, kind="git" if git else "archive", sha1=sha1,
                      commit=d.first("GIT_TAG") if git else None, declared_in=f"{where}:{d.line}",
                      needed=d.used, parent=parent)


# --- serving from a folder ----------------------------------------------------------------------------------------


def folder_index(deps_dir: Path) -> dict[str, Path]:
    """Lower-case folder name -> folder, for every directory in ``deps_dir``."""
    if not deps_dir.is_dir():
        raise UsageError(f"--deps-dir {deps_dir} is not a directory",
                         hint="pass the folder `aipc deps --out DIR` filled (one folder per dependency)")
    return {p.name.lower(): p for p in sorted(deps_dir.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def find_folder(dep: Dependency, index: Mapping[str, Path]) -> Path | None:
    for name in dep.folder_names:
        if name.lower() in index:
            return index[name.lower()]
    return None


@dataclass(frozen=True)
class Resolution:
    """The dependencies of one build and the folder serving each (None: not in the deps dir)."""

    deps: tuple[Dependency, ...]
    folders: Mapping[str, Path | None]  # FetchContent name -> folder
    deps_dir: Path | None
    complete: bool  # nested dependencies were read too (the extensions folder was known)

    def defines(self, offline: bool) -> list[str]:
        out = [f"{d.cmake_var}={self.folders[d.name]}" for d in self.deps
               if d.needed is not False and self.folders.get(d.name) is not None]
        if offline:
            out.append("FETCHCONTENT_FULLY_DISCONNECTED=ON")
        return out

    def missing(self) -> list[Dependency]:
        return [d for d in self.deps if d.needed is not False and self.folders.get(d.name) is None]

    def to_json(self) -> dict[str, Any]:
        manifest = read_manifest(self.deps_dir) if self.deps_dir is not None else {}
        fetched = manifest.get("deps", {}) if isinstance(manifest.get("deps"), dict) else {}
        entries = []
        for d in self.deps:
            folder = self.folders.get(d.name)
            entry = {"name": d.name, "url": d.url, "pin": d.pin, "needed": d.needed,
                     "folder": str(folder) if folder else None}
            if folder is not None:
                record = fetched.get(folder.name)
                entry["provenance"] = ("fetched by aipc deps" if isinstance(record, dict) and
                                       record.get("pin") == d.pin else "provided (not fetched by aipc deps)")
            entries.append(entry)
        return {"deps_dir": str(self.deps_dir) if self.deps_dir else None, "complete": self.complete,
                "dependencies": entries}


def resolve(genai_dir: Path, platform: Platform, defines: Iterable[str], deps_dir: Path | None) -> Resolution:
    """Discover the dependencies and find their folders (nested ones once the extensions folder is found)."""
    defines = list(defines)
    deps = discover(genai_dir, platform, defines)
    index = folder_index(deps_dir) if deps_dir is not None else {}
    folders = {d.name: find_folder(d, index) for d in deps}
    ext = next((d for d in deps if d.name.lower() == EXTENSIONS), None)
    complete = ext is None
    if ext is not None and folders.get(ext.name) is not None:
        deps = discover(genai_dir, platform, defines, extensions_dir=folders[ext.name])
        folders = {d.name: find_folder(d, index) for d in deps}
        complete = True
    return Resolution(tuple(deps), folders, deps_dir, complete)


def check_offline(res: Resolution) -> None:
    """Refuse a build that would have to download: one line naming the first missing dependency."""
    missing = res.missing()
    if not missing:
        return
    d = missing[0]
    where = f"in --deps-dir {res.deps_dir}" if res.deps_dir else "(no --deps-dir given)"
    folder = d.default_folder
    others = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    also = " or ".join(n for n in d.folder_names if n.lower() != folder)
    raise UsageError(
        f"offline: dependency {d.name} ({d.url} at {d.pin}) has no folder {where}: expected a folder "
        f"named {folder}" + (f" (or {also})" if also else "") + others,
        hint="fill the folder on a connected machine with `aipc deps --out DIR` and pass --deps-dir DIR, "
             "or build without --offline",
    )


# --- fetching (aipc deps) -----------------------------------------------------------------------------------------


def read_manifest(deps_dir: Path) -> dict[str, Any]:
    import json

    path = deps_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


Opener = Callable[[str], Any]


def _download(url: str, dest: Path, retries: int, backoff: float, echo: Callable[[str], None],
              sleep: Callable[[float], None]) -> str:
    """Download ``url`` (http(s) or file) to ``dest``; returns the SHA1 of the bytes."""
    for attempt in range(1, retries + 1):
        digest = hashlib.sha1()
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, dest.open("wb") as out:
                while chunk := resp.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            return digest.hexdigest()
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", None) or exc
            if attempt == retries or isinstance(exc, FileNotFoundError) or (
                    isinstance(exc, urllib.error.HTTPError) and exc.code < 500):
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise AipcError(f"download of {url} failed{tries}: {reason}",
                                hint="check the URL and network access (or fill the folder by hand)") from None
            delay = backoff * (2 ** (attempt - 1))
            echo(f"[aipc]   download error ({reason}); retry {attempt}/{retries - 1} in {delay:.1f} s")
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def extract(archive: Path, dest: Path) -> None:
    """Extract a zip or tar archive into the new directory ``dest`` with :func:`aipc.archives.safe_extract` (every
    member checked first, ``filter="data"``), dropping a single top-level folder (GitHub archives hold
    ``<repo>-<ref>/``) and keeping the executable bits zip members carry."""
    raw = dest.with_name(dest.name + ".raw")
    try:
        safe_extract(archive, raw, what=f"{archive.name}",
                     hint="the archive is unsafe or damaged; check the dependency's URL and SHA1")
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if (info.external_attr >> 16) & 0o111 and not info.is_dir():
                        target = raw / info.filename
                        target.chmod(target.stat().st_mode | 0o111)
        entries = list(raw.iterdir()) if raw.is_dir() else []
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else raw
        if not top.exists():
            top.mkdir(parents=True)
        os.replace(top, dest)
    finally:
        if raw.exists():
            shutil.rmtree(raw, ignore_errors=True)


def fetch_dependency(dep: Dependency, out_dir: Path, *, retries: int = 4, backoff: float = 2.0,
                     git: fetch.GitRunner = fetch.run_git, echo: Callable[[str], None] = lambda s: None,
                     sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Put ``dep`` into ``out_dir/<default folder>`` atomically, verified; returns its manifest record."""
    dest = out_dir / dep.default_folder
    with atomic_path(dest) as tmp:
        if dep.kind == "git":
            if not dep.commit:
                raise AipcError(f"dependency {dep.name} ({dep.url}) names no commit",
                                hint=f"pin a commit for it in {DEPS_TXT}")
            _git_checkout(dep, tmp, retries=retries, backoff=backoff, git=git, echo=echo, sleep=sleep)
            record: dict[str, Any] = {"commit": fetch.head_commit(tmp, git), "verified": True}
        else:
            work = Path(tempfile.mkdtemp(prefix=".dl-", dir=out_dir))
            try:
                archive = work / "archive"
                got = _download(dep.url, archive, retries, backoff, echo, sleep)
                if dep.sha1 is None:  # e.g. genai's NuGet packages (cmake/ortlib.cmake): nothing to check against
                    echo(f"[aipc]   warning: {dep.name}: {dep.declared_in} gives no hash; recorded SHA1 {got}, "
                         "not verified")
                elif got != dep.sha1:
                    raise AipcError(f"download of {dep.name} from {dep.url} has SHA1 {got}, expected {dep.sha1}",
                                    hint="the archive changed or the URL is wrong; check the pinned SHA1")
                extract(archive, tmp)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            record = {"sha1": got, "verified": dep.sha1 is not None}
    echo(f"[aipc]   {dep.name}: {dep.url} -> {dest} (verified {dep.pin[:12]})")
    return {"name": dep.name, "url": dep.url, "kind": dep.kind, "pin": dep.pin, "parent": dep.parent, **record}


def _git_checkout(dep: Dependency, dest: Path, *, retries: int, backoff: float, git: fetch.GitRunner,
                  echo: Callable[[str], None], sleep: Callable[[float], None]) -> None:
    assert dep.commit is not None
    dest.mkdir()
    run = dict(retries=retries, backoff=backoff, git=git, sleep=sleep, echo=echo)
    for args, what in ((["init", "-q"], "git init"),
                       (["remote", "add", "origin", dep.url], "git remote add")):
        fetch._with_retries(args, dest, what=f"{what} for {dep.name}", **run)  # type: ignore[arg-type]
    result = git(["fetch", "-q", "--depth", "1", "origin", dep.commit], dest)
    if result.returncode != 0:  # a server that does not serve commits by id: fetch everything
        fetch._with_retries(["fetch", "-q", "--tags", "origin"], dest, what=f"git fetch {dep.url}",
                            **run)  # type: ignore[arg-type]
        target = dep.commit
    else:
        target = "FETCH_HEAD"
    fetch._with_retries(["-c", "advice.detachedHead=false", "checkout", "-q", target], dest,
                        what=f"git checkout {dep.commit} of {dep.url}", **run)  # type: ignore[arg-type]
    head = fetch.head_commit(dest, git)
    if re.fullmatch(r"[0-9a-f]{40}", dep.commit) and head != dep.commit:
        raise AipcError(f"{dep.url} checked out {head}, not the pinned commit {dep.commit}",
                        hint=f"check the commit of {dep.name} in {dep.declared_in}")


def fetch_all(genai_dir: Path, platform: Platform, defines: Iterable[str], out_dir: Path, *, offline: bool = False,
              retries: int = 4, backoff: float = 2.0, git: fetch.GitRunner = fetch.run_git,
              echo: Callable[[str], None] = lambda s: None,
              sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Fill ``out_dir`` with every needed dependency (nested ones included); folders already holding the pinned
    version (per the manifest) are kept. Writes and returns ``out_dir/aipc-deps.json``."""
    defines = list(defines)
    # a new or empty folder, or one aipc deps filled before: aipc never adds to a folder it did not make
    out_dir = use_output_dir(out_dir, "deps", recognise=lambda d: (d / MANIFEST).is_file(), force_option=None)
    manifest = read_manifest(out_dir)
    records: dict[str, Any] = dict(manifest.get("deps", {})) if isinstance(manifest.get("deps"), dict) else {}
    done: set[str] = set()
    for _round in range(3):  # genai's own, then onnxruntime-extensions' (known once its folder exists)
        res = resolve(genai_dir, platform, defines, out_dir)
        todo = [d for d in res.deps if d.needed is not False and d.name not in done]
        for dep in todo:
            done.add(dep.name)
            folder = dep.default_folder
            old = records.get(folder)
            if (out_dir / folder).is_dir() and isinstance(old, dict) and old.get("pin") == dep.pin \
                    and old.get("url") == dep.url:
                echo(f"[aipc]   {dep.name}: {out_dir / folder} already at {dep.pin[:12]}")
                continue
            existing = res.folders.get(dep.name)
            if existing is not None and not (existing.name == folder and isinstance(old, dict)):
                # a folder aipc did not make: it serves the dependency as it is, and is never replaced
                echo(f"[aipc]   {dep.name}: served by {existing} (not fetched by aipc deps; kept as it is)")
                continue
            if offline and fetch.is_network_url(dep.url):
                raise UsageError(f"offline: refusing to download {dep.name} from {dep.url}",
                                 hint="run `aipc deps` without --offline on a connected machine")
            records[folder] = fetch_dependency(dep, out_dir, retries=retries, backoff=backoff, git=git, echo=echo,
                                               sleep=sleep)
            atomic_write_json(out_dir / MANIFEST, {"schema": SCHEMA, "deps": records})
        if res.complete and not todo:
            break
    final = resolve(genai_dir, platform, defines, out_dir)
    data = {"schema": SCHEMA, "deps": records, "genai": str(genai_dir), "platform": platform.name,
            "dependencies": [d.to_json() for d in final.deps]}
    atomic_write_json(out_dir / MANIFEST, data)
    return data
