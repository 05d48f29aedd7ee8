"""Subcommands of this area (registered by aipc.cli): ``aipc doctor``."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this area's subcommands to the ``aipc`` parser."""
    p = sub.add_parser(
        "doctor",
        help="check this machine (system, build tools, devices, runtime hazards), with the fix for every problem",
        description="Check this machine for what aipc's build, verify and NPU paths need. Exit 1 if any check "
                    "fails, 2 for bad input.",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the verdicts as JSON to FILE")
    p.add_argument("--save-facts", type=Path, metavar="FILE", help="write the raw facts gathered to FILE")
    p.add_argument("--facts", type=Path, metavar="FILE",
                   help="evaluate recorded facts (from --save-facts, any machine) instead of this machine")
    p.add_argument("--workdir", type=Path, default=None,
                   help="directory you build in (free disk, path length); default: the current directory")
    p.add_argument("--pins", type=Path, default=None, help="pins file (default: the one shipped with aipc)")
    p.set_defaults(func=_cmd_doctor)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from ..fsutil import atomic_write_json
    from ..pins import load_pins
    from .checks import exit_code, run_checks
    from .collect import collect_facts
    from .facts import load_facts, save_facts
    from .report import format_table, json_report, summary_line

    t0 = time.monotonic()
    pins = load_pins(args.pins)
    if args.facts is not None:
        if args.workdir is not None:
            raise UsageError("--workdir cannot be combined with --facts", hint="the facts file records its workdir")
        facts = load_facts(args.facts)
        source = str(args.facts)
    else:
        workdir = args.workdir or Path.cwd()
        if not workdir.is_dir():
            raise UsageError(f"--workdir {workdir} is not a directory", hint="pass an existing directory")
        facts = collect_facts(workdir)
        source = "this machine"
    if args.save_facts is not None:
        save_facts(args.save_facts, facts)
    results = run_checks(facts, pins)
    seconds = time.monotonic() - t0
    width = shutil.get_terminal_size((120, 24)).columns
    print(format_table(results, width=max(100, width)))
    errors = facts.get("errors")
    for name, err in sorted(errors.items() if isinstance(errors, dict) else []):
        print(f"note: collector {name} failed: {err}", file=sys.stderr)
    print(summary_line(results, seconds, source, facts.get("collect_seconds")))
    if args.save_facts is not None:
        print(f"facts written to {args.save_facts} (evaluate anywhere with `aipc doctor --facts {args.save_facts}`)")
    if args.json is not None:
        atomic_write_json(args.json, json_report(results, facts, seconds, source))
    return exit_code(results)
