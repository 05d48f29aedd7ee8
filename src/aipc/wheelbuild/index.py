"""``aipc index WHEELS_DIR --out SITE``: a static package index of an aipc wheels folder, for any web server.

The site (docs/build.md#package-index) is a PEP 503 "simple" repository with the PEP 658 / PEP 714 metadata files::

    SITE/index.html                      a landing page: the projects and the pip command
    SITE/simple/index.html               one link per project, by normalized name (PEP 503)
    SITE/simple/<project>/index.html     one link per wheel: ../../files/<wheel>#sha256=<hex>, data-requires-python,
                                         data-dist-info-metadata and data-core-metadata ("sha256=<hex>")
    SITE/files/<wheel>                   the wheels, byte for byte
    SITE/files/<wheel>.metadata          the wheel's METADATA (PEP 658), so pip resolves without downloading wheels
    SITE/files/SHA256SUMS, manifest.json the folder's own, plus the files given with --include (SBOM, attestations)

Only a folder that passes ``aipc wheels --check`` (:func:`aipc.wheelhouse.check_folder`: every wheel listed in
``SHA256SUMS`` with its hash, ``manifest.json`` agreeing) is indexed, and each copy is checked again against the
copied ``SHA256SUMS`` (:func:`aipc.wheelhouse.checked_wheel`), so the site serves exactly the bytes that were checked.
A folder without ``SHA256SUMS`` is refused: nothing would tell a changed wheel from a built one. The site is written
into a temporary folder beside SITE and renamed into place (:func:`aipc.fsutil.output_dir`): a failure leaves SITE as
it was, and a folder aipc did not make is never replaced.
"""

from __future__ import annotations

import html
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from packaging.metadata import InvalidMetadata, Metadata
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import AipcError, UsageError
from ..fsutil import claim_output_dir, output_dir, sha256_bytes
from ..locks import hold
from ..wheelhouse import MANIFEST, SUMS, WheelInfo, check_folder, checked_wheel, read_sums, wheel_metadata_bytes

KIND = "package-index"  # the kind of folder (fsutil.MARKER) of a site
FILES = "files"
SIMPLE = "simple"
# PEP 629: the version of the simple API these pages follow (1.0: PEP 503 HTML with the PEP 658/714 attributes)
API_VERSION = "1.0"


@dataclass(frozen=True)
class IndexedWheel:
    file: str
    project: str  # normalized (PEP 503)
    version: str
    sha256: str
    requires_python: str | None
    metadata_sha256: str

    def anchor(self) -> str:
        """The PEP 503 link of this wheel on its project page (SITE/simple/<project>/index.html)."""
        attrs = [f'href="../../{FILES}/{quote(self.file)}#sha256={self.sha256}"']
        if self.requires_python:
            attrs.append(f'data-requires-python="{html.escape(self.requires_python, quote=True)}"')
        meta = f"sha256={self.metadata_sha256}"
        # PEP 714 renamed PEP 658's attribute; both are written, for pip before and after the rename
        attrs += [f'data-dist-info-metadata="{meta}"', f'data-core-metadata="{meta}"']
        return f"<a {' '.join(attrs)}>{html.escape(self.file)}</a>"


def _page(title: str, body: list[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">',
        f"    <title>{html.escape(title)}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>{html.escape(title)}</h1>",
        *(f"    {line}" for line in body),
        "  </body>",
        "</html>",
        "",
    ])


def project_page(project: str, wheels: Sequence[IndexedWheel]) -> str:
    return _page(f"Links for {project}", [f"{w.anchor()}<br>" for w in wheels])


def root_page(projects: Sequence[str]) -> str:
    return _page("Simple index", [f'<a href="{quote(p)}/">{html.escape(p)}</a><br>' for p in projects])


def landing_page(by_project: dict[str, list[IndexedWheel]]) -> str:
    """SITE/index.html: what is here and the command that installs it (pinned with ``==``)."""
    body = ["<p>A PEP 503 package index of wheels built by aipc. Install with pip, pinning the version with "
            "<code>==</code> so that another index's build of the same name is never taken instead:</p>", "<ul>"]
    for project, wheels in by_project.items():
        newest = max((w.version for w in wheels), key=Version)
        command = f"pip install {project}=={newest} --extra-index-url <this page's address>simple/"
        body.append(f"  <li><code>{html.escape(command)}</code></li>")
    body += ["</ul>",
             f'<p><a href="{SIMPLE}/">simple/</a>: the index. <a href="{FILES}/">{FILES}/</a>: the wheels, their '
             f"METADATA files, <code>{SUMS}</code> (check with <code>sha256sum -c {SUMS}</code>), "
             f"<code>{MANIFEST}</code> (how each wheel was built) and the release's SBOM and attestations.</p>"]
    return _page("aipc wheels", body)


def _read_wheel(path: Path, digest: str) -> tuple[IndexedWheel, bytes]:
    """The index entry of the wheel copy ``path`` (already checked to have sha256 ``digest``) and its METADATA."""
    info = WheelInfo.from_path(path)
    data = wheel_metadata_bytes(path)
    try:
        meta = Metadata.from_email(data.decode("utf-8"), validate=False)
        name, version, requires_python = meta.name, meta.version, meta.requires_python
    except (UnicodeDecodeError, InvalidMetadata, InvalidVersion, ValueError) as exc:
        raise AipcError(f"{path.name} has invalid METADATA ({exc})", hint="rebuild that wheel") from None
    project = canonicalize_name(info.name)
    if canonicalize_name(name) != project or version != Version(info.version):
        # pip refuses a wheel whose metadata names another project or version than its file name
        raise AipcError(f"{path.name}: its METADATA says {name} {version}, its file name {info.name} {info.version}",
                        hint="rebuild that wheel")
    return IndexedWheel(path.name, project, info.version, digest,
                        str(requires_python) if requires_python is not None else None, sha256_bytes(data)), data


def check_inputs(wheels: Path, include: Sequence[Path]) -> dict[str, str]:
    """Refuse, before any work, a wheels folder aipc cannot vouch for; returns its ``SHA256SUMS``."""
    if not wheels.is_dir():
        what = "is not a folder" if wheels.exists() else "does not exist"
        raise UsageError(f"wheels folder {wheels} {what}", hint="pass the folder aipc built the wheels into (./wheels)")
    if not any(wheels.glob("*.whl")):
        raise UsageError(f"{wheels} holds no wheel (*.whl)", hint="build the wheels first (nox -s build)")
    sums = read_sums(wheels)
    if sums is None:
        raise UsageError(f"{wheels} has no {SUMS}: aipc indexes only wheels it can check against their hashes",
                         hint="pass a wheels folder aipc wrote (aipc build, aipc build-npu, or the CI's merged "
                              "artifacts), which holds SHA256SUMS and manifest.json")
    reserved = {SUMS, MANIFEST, *(p.name for p in wheels.glob("*.whl")), *(f"{p.name}.metadata"
                                                                         for p in wheels.glob("*.whl"))}
    seen: set[str] = set()
    for extra in include:
        if not extra.is_file():
            raise UsageError(f"--include {extra} is not a file", hint="pass an existing file")
        if extra.name in reserved or extra.name in seen:
            raise UsageError(f"--include {extra}: the site already has a file named {extra.name}",
                             hint="rename it, or leave it out")
        seen.add(extra.name)
    return sums


def build_index(wheels: Path, out: Path, *, include: Sequence[Path] = (),
                echo: Callable[[str], None] = print) -> list[IndexedWheel]:
    """Write the site for the wheels folder ``wheels`` to ``out`` (see the module docstring); returns its wheels."""
    check_inputs(wheels, include)
    # the output is checked before any work: never the wheels folder, a parent of it, the cwd or a stranger's folder
    claim_output_dir(out, KIND, inputs=[wheels, *include], force_option=None)
    with hold("wheels", wheels, f"the wheels folder {wheels}"):  # no aipc build writes it meanwhile
        problems = check_folder(wheels)  # the check of `aipc wheels --check`
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise AipcError(f"wheels folder {wheels}: {problems[0]}{more}: refusing to publish it",
                            hint=f"rebuild the wheels named (`aipc wheels --check {wheels}` lists every problem)")
        sums = read_sums(wheels) or {}
        with output_dir(out, KIND, inputs=[wheels, *include], force_option=None, source=str(wheels)) as site:
            files = site / FILES
            files.mkdir()
            shutil.copyfile(wheels / SUMS, files / SUMS)
            shutil.copyfile(wheels / MANIFEST, files / MANIFEST)
            indexed: list[IndexedWheel] = []
            for name in sorted(sums):
                if Path(name).name != name or "\\" in name:  # check_folder holds manifest.json's names to this too
                    raise AipcError(f"{wheels / SUMS} lists {name!r}, not a file name", hint="rebuild the wheels")
                copy = files / name
                shutil.copyfile(wheels / name, copy)
                checked_wheel(copy)  # the published bytes are the ones SHA256SUMS lists
                entry, metadata = _read_wheel(copy, sums[name])
                (files / f"{name}.metadata").write_bytes(metadata)
                indexed.append(entry)
            for extra in include:
                shutil.copyfile(extra, files / extra.name)
            by_project: dict[str, list[IndexedWheel]] = {}
            for entry in sorted(indexed, key=lambda e: (e.project, Version(e.version), e.file)):
                by_project.setdefault(entry.project, []).append(entry)
            (site / SIMPLE).mkdir()
            (site / SIMPLE / "index.html").write_text(root_page(sorted(by_project)), encoding="utf-8")
            for project, entries in by_project.items():
                (site / SIMPLE / project).mkdir()
                (site / SIMPLE / project / "index.html").write_text(project_page(project, entries), encoding="utf-8")
            (site / "index.html").write_text(landing_page(by_project), encoding="utf-8")
    for project, entries in by_project.items():
        versions = ", ".join(dict.fromkeys(e.version for e in entries))
        echo(f"  {project}: {len(entries)} wheel(s), version {versions}")
    echo(f"[aipc] index of {len(indexed)} wheel(s) of {len(by_project)} project(s) written to {out}: "
         f"pip install <project>==<version> --extra-index-url <its URL>/{SIMPLE}")
    return indexed
