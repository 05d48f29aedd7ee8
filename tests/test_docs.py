"""The project's docs are the project's: citations of docs/upstream.md resolve, nothing cites notes outside the
repository, relative links in the Markdown files resolve, and the README stays a short entry point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = ROOT / "docs" / "upstream.md"
README_MAX_LINES = 200

# what the repository holds as text (build outputs, venvs and caches are not the project's)
SCANNED_DIRS = ("src", "tests", "docs", "scripts", ".github", ".ci")
SKIPPED_PARTS = {".venv", "__pycache__", ".nox", ".mypy_cache", ".ruff_cache", ".pytest_cache", "node_modules"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".yml", ".yaml", ".cfg", ".sh", ".ps1", ".cmake", ".cpp", ".json",
                 ".in", ""}

CITATION = re.compile(r"docs/upstream\.md#([a-z]+)(?: §([0-9][0-9.]*(?:-[0-9][0-9.]*)?))?")
LABEL = re.compile(r"^(?:#+ |\s*- \*\*)§([0-9][0-9.]*[0-9]|[0-9])\b", re.M)
PART = re.compile(r'^<a id="([a-z]+)"></a>$', re.M)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def project_files() -> list[Path]:
    files = [p for p in ROOT.iterdir() if p.is_file() and p.suffix in TEXT_SUFFIXES]
    for name in SCANNED_DIRS:
        for path in sorted((ROOT / name).rglob("*")):
            rel = path.relative_to(ROOT)
            if path.is_file() and path.suffix in TEXT_SUFFIXES and not SKIPPED_PARTS & set(rel.parts) \
                    and not any(part.endswith(".egg-info") for part in rel.parts):
                files.append(path)
    return files


def read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def upstream_labels(text: str) -> dict[str, set[str]]:
    """Part -> the § labels defined in it (a heading ``### §N`` or an item ``- **§N.M**``)."""
    marks = list(PART.finditer(text))
    parts: dict[str, set[str]] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        parts[mark.group(1)] = set(LABEL.findall(text, mark.end(), end))
    return parts


def citations() -> list[tuple[str, str, str | None]]:
    found = []
    for path in project_files():
        text = read(path)
        if text is None:
            continue
        for m in CITATION.finditer(text):
            found.append((str(path.relative_to(ROOT)), m.group(1), m.group(2)))
    return found


def test_upstream_labels_are_parsed() -> None:
    parts = upstream_labels(UPSTREAM.read_text(encoding="utf-8"))
    assert set(parts) == {"build", "paths", "npu", "cookbook", "anchors"}
    assert {"1", "1.4", "7", "7.3"} <= parts["build"]
    assert {"6", "6.10"} <= parts["npu"]
    assert upstream_labels('<a id="x"></a>\n## x\n### §2 two\n- **§2.1** one\n- §2.2 not a label\n') == {
        "x": {"2", "2.1"}}


def test_every_citation_of_upstream_md_resolves() -> None:
    parts = upstream_labels(UPSTREAM.read_text(encoding="utf-8"))
    cited = citations()
    assert len(cited) > 40  # the code cites it throughout; an empty scan would prove nothing
    missing = []
    for where, part, section in cited:
        if part not in parts:
            missing.append(f"{where}: #{part}")
            continue
        for label in (section.split("-") if section else ()):
            if label.rstrip(".") not in parts[part]:
                missing.append(f"{where}: #{part} §{label}")
    assert not missing, "citations with no target in docs/upstream.md:\n" + "\n".join(sorted(set(missing)))


def test_nothing_cites_notes_outside_the_project() -> None:
    needle = "shared" + "/docs"  # spelled apart so that this file does not find itself
    offenders = [str(p.relative_to(ROOT)) for p in project_files() if needle in (read(p) or "")]
    assert not offenders, f"{needle} is not part of the project; cite docs/upstream.md instead: {offenders}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    found = {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}
    return found | set(re.findall(r'<a id="([^"]+)"', text))


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target}: no {file_part}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
            broken.append(f"{target}: no anchor #{anchor}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def test_readme_is_a_short_entry_point() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = readme.count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move detail to docs/"
    assert "<!-- section:" not in readme  # the old section markers were read by nothing
    for section in ("## Quickstart", "## Sessions", "## Design", "## Exit codes"):
        assert section in readme, section


AREA_PAGES = ("build", "verify", "npu", "doctor", "bench", "ci", "windows-build", "development", "safety",
              "upstream", "options")


@pytest.mark.parametrize("page", AREA_PAGES)
def test_each_area_page_exists_and_the_readme_links_it(page: str) -> None:
    assert (ROOT / "docs" / f"{page}.md").is_file()
    assert f"](docs/{page}.md" in (ROOT / "README.md").read_text(encoding="utf-8"), page


SOURCE_PATH = re.compile(r"\bsrc/aipc/[\w./-]*[\w/]")
MODULE_NAME = re.compile(r"`(aipc(?:\.\w+)+)`")


@pytest.mark.parametrize("doc", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_source_files_and_modules_named_in_the_docs_exist(doc: Path) -> None:
    """The docs name code that exists: a file moved or renamed must take its mentions along."""
    import importlib

    text = doc.read_text(encoding="utf-8")
    missing = sorted({m for m in SOURCE_PATH.findall(text) if not (ROOT / m.rstrip("/")).exists()
                      and not list(ROOT.glob(m.rstrip("/") + "*"))})
    for name in sorted(set(MODULE_NAME.findall(text))):
        module, _, attr = name.rpartition(".")
        try:
            importlib.import_module(name)
            continue
        except ImportError:
            pass
        try:
            if not hasattr(importlib.import_module(module), attr):
                missing.append(name)
        except ImportError:
            missing.append(name)
    assert not missing, f"{doc.relative_to(ROOT)} names what does not exist: {missing}"


def test_every_variable_the_docs_name_is_in_the_generated_options_page() -> None:
    """docs/options.md is generated from the settings model (tests/test_settings.py keeps it current), so a variable
    the README or another page names that is not there was renamed or dropped in the code."""
    variable = re.compile(r"\bAIPC_[A-Z0-9_]*[A-Z0-9]\b")
    known = set(variable.findall((ROOT / "docs" / "options.md").read_text(encoding="utf-8")))
    assert {"AIPC_CACHE", "AIPC_WORKDIR"} <= known
    stale = {}
    for doc in markdown_files():
        if doc.name != "options.md":
            names = {n for n in variable.findall(doc.read_text(encoding="utf-8")) if not n.startswith("AIPC_TEST_")}
            if names - known:
                stale[str(doc.relative_to(ROOT))] = sorted(names - known)
    assert not stale, f"AIPC_* variables the settings model does not know: {stale}"
