"""Check that a built library uses no instructions beyond x86-64-v3 (no AVX-512, AMX, AVX-VNNI...).

The sdist's own CMakeLists compiles with ``-march=native`` (host-specific); aipc builds with ``-march=x86-64-v3``
(AVX2 + F16C + FMA, what every Core Ultra has; docs/upstream.md#npu §2) and proves it on the disassembly.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..errors import AipcError
from ..proc import run

# AVX-512 registers (zmm, opmask k0-k7, the upper 16 xmm/ymm) and instruction families newer than x86-64-v3
_BEYOND_V3 = [
    (re.compile(r"%zmm\d+"), "AVX-512 zmm register"),
    (re.compile(r"\{%k[0-7]\}|%k[0-7]\b"), "AVX-512 opmask register"),
    (re.compile(r"%[xy]mm(1[6-9]|2\d|3[01])\b"), "AVX-512 register xmm/ymm16-31"),
    (re.compile(r"\{1to\d+\}"), "AVX-512 embedded broadcast"),
    (re.compile(r"\s(vpternlog[dq]|vpermt2\w+|vpermi2\w+|vpcompress\w|vpexpand\w|vcompressp\w|vexpandp\w|"
                r"vrndscale\w+|vgetexp\w+|vscalef\w+|vfixupimm\w+|vrange\w+|vreduce\w+|vpmov[a-z0-9]*2m|"
                r"vpmovm2\w|vpconflict\w|vplzcnt\w|vpopcnt\w|vp2intersect\w|vcvtne2ps2bf16|vdpbf16ps|"
                r"vcvtneps2bf16|vpdpbusds?|vpdpwssds?|vpshld\w+|vpshrd\w+|vpmadd52\w+|vpmultishiftqb)\b"),
     "instruction beyond x86-64-v3"),
    (re.compile(r"\s(ldtilecfg|sttilecfg|tileloadd\w*|tilestored|tdp\w+|tilezero|tilerelease)\b"), "AMX"),
    (re.compile(r"\s(k(and|or|xor|not|mov|shift|test|ortest|add|unpck)\w*)\s"), "AVX-512 mask instruction"),
]


def beyond_x86_64_v3(disassembly: str, *, limit: int = 10) -> list[str]:
    """Lines of ``objdump -d`` output using something beyond x86-64-v3, as ``"<what>: <line>"``."""
    found = []
    for line in disassembly.splitlines():
        if "\t" not in line:  # only instruction lines (address:\tbytes\tmnemonic)
            continue
        for pattern, what in _BEYOND_V3:
            if pattern.search(line):
                found.append(f"{what}: {line.strip()}")
                break
        if len(found) >= limit:
            break
    return found


def disassemble(library: Path) -> str:
    objdump = shutil.which("objdump")
    if objdump is None:
        raise AipcError("objdump not found: cannot check the instruction set", hint="install binutils")
    proc = run([objdump, "-d", "--no-show-raw-insn", str(library)], timeout=None)
    if not proc.ok:
        raise AipcError(f"objdump -d {library} failed: {proc.reason()[:200]}")
    return proc.stdout


def check_library_isa(library: Path) -> list[str]:
    """Instructions beyond x86-64-v3 in ``library`` (empty when it is portable)."""
    return beyond_x86_64_v3(disassemble(library))
