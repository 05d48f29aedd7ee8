"""Make a built wheel fit to publish: the licenses of what it bundles (PEP 639) and, on Linux, the manylinux tag
it qualifies for (PEP 600). Used by ``aipc build-npu`` (the NPU wheel) and the build's wheels step (ORT and genai).

- Licenses (https://peps.python.org/pep-0639/): files given by the producer (copied at build time from the package
  that provides the bundled libraries, never kept in aipc) are written to ``<name>.dist-info/licenses/<path>`` and
  listed as ``License-File: <path>`` in ``METADATA``, whose ``Metadata-Version`` becomes 2.4 (the version that
  defines ``License-File``). No ``License-Expression`` is declared: one SPDX expression for OpenVINO's many
  third-party programs would be a guess.
- Tags (https://peps.python.org/pep-0600/): a wheel tagged ``linux_*`` is checked with ``auditwheel show --json``
  (auditwheel, a dependency of aipc on Linux, run with this Python: offline). When auditwheel says it is consistent
  with a ``manylinux_X_Y`` policy, the wheel gets that tag (and its PEP 600 legacy alias, as ``auditwheel repair``
  does); otherwise it keeps ``linux_*`` and the reason (auditwheel's own findings: external libraries no policy
  allows, unsupported ISA) is recorded. Wheels tagged ``manylinux``/``win`` by their producer are left as they are.

The rewriting is done by the ``wheel`` tool (``wheel unpack``/``wheel pack`` regenerate RECORD; ``wheel tags``
rewrites WHEEL and RECORD), in a temporary folder given by the caller: the input wheel is never changed, and the
caller copies the result atomically into ``wheels/`` (:func:`aipc.wheelhouse.add_wheels`).
"""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import AipcError
from .fsutil import sha256_file
from .proc import run
from .wheelhouse import WheelInfo

# what fitting does (a step's input: a change makes the steps that collect wheels run again)
FIT = "pep639-licenses+auditwheel-show-1"
PEP600 = "https://peps.python.org/pep-0600/"
PEP639 = "https://peps.python.org/pep-0639/"
LICENSE_METADATA_VERSION = "2.4"
# PEP 600's legacy aliases: auditwheel repair tags a wheel with both names
LEGACY_ALIASES = {"manylinux_2_5": "manylinux1", "manylinux_2_12": "manylinux2010", "manylinux_2_17": "manylinux2014"}
AUDITWHEEL_HINT = "install auditwheel into aipc's environment (pip install 'auditwheel>=6.8,<7'; aipc depends on it)"


@dataclass(frozen=True)
class LicenseFile:
    """A license or notice file to bundle: ``source`` (a file of the package that provides the bundled code) goes
    to ``<dist-info>/licenses/<dest>``."""

    source: Path
    dest: str  # POSIX path relative to licenses/


@dataclass(frozen=True)
class Audit:
    """What ``auditwheel show --json`` says about a wheel."""

    overall_tag: str  # the platform tag the wheel is consistent with (linux_x86_64 when none of the policies)
    sym_tag: str  # the policy the versioned symbols alone allow
    external_libs: dict[str, str | None]  # libraries the wheel needs that no policy allows (None: not found here)
    unsupported_isa: bool
    versioned_symbols: dict[str, list[str]]
    tool: str  # "auditwheel 6.8.2"
    error: str = ""  # auditwheel's reason for judging nothing (e.g. "This does not look like a platform wheel...")

    @property
    def qualifies(self) -> bool:
        return self.overall_tag.startswith("manylinux")

    def reason(self) -> str:
        """Why the wheel is not manylinux ("" when it is)."""
        if self.qualifies:
            return ""
        if self.error:
            return f"{self.tool}: {self.error}"
        why = []
        if self.external_libs:
            why.append("it needs " + ", ".join(sorted(self.external_libs))
                       + ", which no manylinux policy allows (a wheel may rely only on the policy's system libraries)")
        if self.unsupported_isa:
            why.append("it uses instructions beyond the policy's baseline ISA")
        if not why:
            why.append(f"auditwheel finds it consistent with {self.overall_tag} only")
        return f"{self.tool}: " + "; ".join(why) + f" (symbol versions alone would allow {self.sym_tag})"

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "overall_tag": self.overall_tag, "sym_tag": self.sym_tag,
                "external_libs": dict(self.external_libs), "unsupported_isa": self.unsupported_isa,
                "versioned_symbols": self.versioned_symbols, **({"error": self.error} if self.error else {})}


def auditwheel_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("auditwheel")
    except PackageNotFoundError:
        return None


def audit(wheel: Path, python: str = sys.executable) -> Audit:
    """Run ``auditwheel show --json`` on ``wheel``; when auditwheel judges nothing (no ELF file, an unreadable
    wheel) the audit holds its reason (``error``), and the wheel keeps its tag."""
    have = auditwheel_version()
    if have is None:  # a dependency of aipc on Linux: only an environment installed without it lacks it
        return Audit(overall_tag="", sym_tag="", external_libs={}, unsupported_isa=False, versioned_symbols={},
                     tool="auditwheel", error=f"not installed, so the tag was not checked ({AUDITWHEEL_HINT})")
    tool = f"auditwheel {have}"
    out = run([python, "-m", "auditwheel", "show", "--json", str(wheel)], timeout=600)
    try:
        data = json.loads(out.stdout)
    except ValueError:  # auditwheel could not read the wheel (e.g. no RECORD): no verdict, the tag stays
        data = {"error": f"could not judge it ({out.last_line()[:300]})"}
    if isinstance(data, dict) and isinstance(data.get("error"), str):  # e.g. no ELF file: not a platform wheel
        return Audit(overall_tag="", sym_tag="", external_libs={}, unsupported_isa=False, versioned_symbols={},
                     tool=tool, error=data["error"])
    if not isinstance(data, dict) or "overall_tag" not in data:
        raise AipcError(f"{tool} show {wheel.name} gave JSON without overall_tag ({out.reason()[:300]})",
                        hint=AUDITWHEEL_HINT)
    return Audit(overall_tag=str(data["overall_tag"]), sym_tag=str(data.get("sym_tag", "")),
                 external_libs={str(k): v for k, v in (data.get("external_libs") or {}).items()},
                 unsupported_isa=bool(data.get("unsupported_isa")),
                 versioned_symbols={str(k): list(v) for k, v in (data.get("versioned_symbols") or {}).items()},
                 tool=tool)


def policy_tags(overall_tag: str) -> list[str]:
    """``manylinux_2_17_x86_64`` -> ``["manylinux2014_x86_64", "manylinux_2_17_x86_64"]`` (PEP 600 aliases)."""
    for new, old in LEGACY_ALIASES.items():
        if overall_tag.startswith(new + "_"):
            return [old + overall_tag[len(new):], overall_tag]
    return [overall_tag]


def tag_fits(plat_tag: str, want: str) -> bool:
    """A wheel's platform tag serves the platform whose plain tag is ``want`` (``linux_x86_64`` is also served by
    any ``manylinux*_x86_64`` tag, the tag this module may give it)."""
    if plat_tag == want:
        return True
    os_name, _, arch = want.partition("_")
    return os_name == "linux" and plat_tag.startswith("manylinux") and plat_tag.endswith("_" + arch)


def platform_tags(wheel: Path) -> set[str]:
    return {t.split("-")[2] for t in WheelInfo.from_path(wheel).tags}


def needs_audit(wheel: Path) -> bool:
    """A wheel tagged ``linux_*`` only (what a build on Linux gives it before any manylinux check)."""
    plats = platform_tags(wheel)
    return bool(plats) and all(p.startswith("linux_") for p in plats)


@dataclass
class Fitted:
    """A wheel made fit to publish, and what was done (the manifest's ``fit`` record)."""

    wheel: Path
    source: Path
    record: dict[str, Any] = field(default_factory=dict)


def _wheel_cli(args: Sequence[str], python: str, env: dict[str, str] | None = None) -> str:
    out = run([python, "-m", "wheel", *args], timeout=600, env=env)
    if not out.ok:
        raise AipcError(f"wheel {args[0]} failed: {out.last_line()[:300]}",
                        hint="pip install 'wheel>=0.45' into aipc's environment (aipc depends on it)")
    return out.stdout


def _dist_info(root: Path) -> Path:
    found = [p for p in root.iterdir() if p.name.endswith(".dist-info") and p.is_dir()]
    if len(found) != 1:
        raise AipcError(f"the unpacked wheel {root.name} has {len(found)} .dist-info folders, not one",
                        hint="rebuild the wheel")
    return found[0]


def add_license_metadata(metadata: str, dests: Sequence[str]) -> str:
    """``METADATA`` with ``License-File:`` lines for ``dests`` (those not listed yet) and ``Metadata-Version`` at
    least 2.4; the description (the body after the first blank line) is kept byte for byte."""
    head, sep, body = metadata.partition("\n\n")
    lines = head.split("\n")
    listed = {ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("license-file:")}
    out = []
    for ln in lines:
        if ln.lower().startswith("metadata-version:"):
            have = ln.split(":", 1)[1].strip()
            if tuple(int(x) for x in have.split(".")) < (2, 4):
                ln = f"Metadata-Version: {LICENSE_METADATA_VERSION}"
        out.append(ln)
    out += [f"License-File: {d}" for d in dests if d not in listed]
    return "\n".join(out) + (sep or "\n") + body


def _zip_epoch(wheel: Path) -> str:
    """The wheel's own member timestamp (its METADATA's), as SOURCE_DATE_EPOCH for ``wheel pack``: a repacked wheel
    is as reproducible as the one it came from."""
    with zipfile.ZipFile(wheel) as zf:
        info = next((i for i in zf.infolist() if i.filename.endswith(".dist-info/METADATA")), zf.infolist()[0])
    stamp = datetime(*info.date_time, tzinfo=timezone.utc)
    return str(max(int(stamp.timestamp()), 315532800))  # zip cannot hold dates before 1980


def add_licenses(wheel: Path, licenses: Sequence[LicenseFile], work: Path, python: str = sys.executable) -> Path:
    """A copy of ``wheel`` in ``work`` with ``licenses`` in its ``.dist-info/licenses/`` and METADATA (PEP 639)."""
    for lic in licenses:
        if not lic.source.is_file():
            raise AipcError(f"license file {lic.source} is missing", hint="reinstall the package that provides it")
        parts = Path(lic.dest).parts
        if not parts or lic.dest.startswith("/") or ".." in parts or "\\" in lic.dest:
            raise AipcError(f"license path {lic.dest!r} is not a relative POSIX path",
                            hint="report this: a bug in aipc's license table")
    unpacked, packed = work / "unpacked", work / "packed"
    shutil.rmtree(unpacked, ignore_errors=True)
    shutil.rmtree(packed, ignore_errors=True)
    _wheel_cli(["unpack", "-d", str(unpacked), str(wheel)], python)
    roots = [p for p in unpacked.iterdir() if p.is_dir()]
    if len(roots) != 1:
        raise AipcError(f"wheel unpack of {wheel.name} gave {len(roots)} folders", hint="rebuild the wheel")
    dist_info = _dist_info(roots[0])
    for lic in licenses:
        dest = dist_info / "licenses" / lic.dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lic.source, dest)
    meta = dist_info / "METADATA"
    text = meta.read_text(encoding="utf-8")
    meta.write_text(add_license_metadata(text, [lic.dest for lic in licenses]), encoding="utf-8", newline="")
    packed.mkdir(parents=True)
    _wheel_cli(["pack", "-d", str(packed), str(roots[0])], python, env={"SOURCE_DATE_EPOCH": _zip_epoch(wheel)})
    result = [p for p in packed.glob("*.whl")]
    if len(result) != 1:
        raise AipcError(f"wheel pack of {wheel.name} gave {len(result)} wheels", hint="rebuild the wheel")
    shutil.rmtree(unpacked, ignore_errors=True)
    return result[0]


def retag(wheel: Path, tags: Sequence[str], work: Path, python: str = sys.executable) -> Path:
    """A copy of ``wheel`` in ``work`` whose platform tags are ``tags`` (file name, WHEEL and RECORD: ``wheel
    tags``)."""
    tagged = work / "tagged"
    shutil.rmtree(tagged, ignore_errors=True)
    tagged.mkdir(parents=True)
    copy = tagged / wheel.name
    shutil.copyfile(wheel, copy)
    out = _wheel_cli(["tags", "--remove", "--platform-tag", ".".join(tags), str(copy)], python)
    name = out.strip().splitlines()[-1].strip() if out.strip() else ""
    result = tagged / name
    if not name or not result.is_file():
        raise AipcError(f"wheel tags gave no wheel for {wheel.name} (said {out.strip()[:200]!r})",
                        hint="pip install 'wheel>=0.45' into aipc's environment")
    return result


def fit_wheel(wheel: Path, work: Path, *, licenses: Sequence[LicenseFile] = (), linux: bool | None = None,
              python: str = sys.executable) -> Fitted:
    """``wheel`` made fit to publish in ``work`` (a folder of the caller's; the input is never changed):
    ``licenses`` added, and on Linux a ``linux_*`` wheel retagged to the manylinux policy auditwheel reports (or
    kept, with the reason). ``linux``: whether the tag check applies (default: the wheel is tagged ``linux_*``)."""
    work.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"from": wheel.name, "from_sha256": sha256_file(wheel)}
    current = wheel
    if licenses:
        current = add_licenses(current, licenses, work, python)
        record["licenses"] = {lic.dest: f"{lic.source.parent.name}/{lic.source.name}" for lic in licenses}
        record["license_spec"] = PEP639
    check = needs_audit(wheel) if linux is None else linux and needs_audit(wheel)
    if check:
        verdict = audit(current, python)
        record["auditwheel"] = verdict.to_json()
        record["tag_spec"] = PEP600
        if verdict.qualifies:
            tags = policy_tags(verdict.overall_tag)
            current = retag(current, tags, work, python)
            record["platform_tag"] = ".".join(tags)
            record["tag_reason"] = f"{verdict.tool}: consistent with {verdict.overall_tag}"
        else:
            record["platform_tag"] = ".".join(sorted(platform_tags(wheel)))
            record["tag_reason"] = verdict.reason()
    else:
        record["platform_tag"] = ".".join(sorted(platform_tags(wheel)))
        record["tag_reason"] = "tagged by its producer (not linux_*): left as it is"
    return Fitted(current, wheel, record)
