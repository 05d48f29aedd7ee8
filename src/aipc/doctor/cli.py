"""Subcommands of this area (registered by aipc.cli): ``aipc doctor``."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

from ..argtypes import output_file
from ..log import LOG
from ..settings import PINS, Option, add_options, checked

# the goals --for accepts (kept equal to aipc.doctor.checks.GOALS, which this module must not import at parse time:
# a test ties them)
GOAL_NAMES = ("verify", "build-dml", "build-npu", "npu")
_C = ("doctor",)

# the options of `aipc doctor`, each with its AIPC_* variable (aipc.settings drives argparse and the docs)
OPTIONS: tuple[Option, ...] = (
    Option("goals", "--for", "AIPC_DOCTOR_GOALS", f"the goal(s) that decide the exit code: {', '.join(GOAL_NAMES)} "
           "(repeatable or a comma list; default: every goal)", kind="list", parse=checked(lambda t: parse_goals([t]),
                                                                              "GOAL"), metavar="GOAL", commands=_C),
    Option("json", "--json", None, "also write the verdicts as JSON to FILE", parse=output_file, metavar="FILE",
           commands=_C),
    Option("save_facts", "--save-facts", None, "write the raw facts gathered to FILE", parse=output_file,
           metavar="FILE", commands=_C),
    Option("facts", "--facts", None, "evaluate recorded facts (from --save-facts, any machine) instead of this "
           "machine", parse=Path, metavar="FILE", commands=_C),
    Option("workdir", "--workdir", None, "directory you build in (free disk, path length); default: the current "
           "directory (command line only: it cannot be combined with --facts)", parse=Path, metavar="DIR",
           commands=_C),
    PINS.but(parse=Path, commands=_C),
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this area's subcommands to the ``aipc`` parser."""
    p = sub.add_parser(
        "doctor",
        help="check this machine (system, build tools, devices, runtime hazards), with the fix for every problem",
        description="Check this machine for what aipc's build, verify and NPU paths need. It answers per goal "
                    f"({', '.join(GOAL_NAMES)}) first, then lists every check. Exit 0 when every goal chosen with "
                    "--for (default: all) is ready, 1 when one is not, 2 for bad input.",
    )
    add_options(p, OPTIONS, "doctor")
    p.set_defaults(func=_cmd_doctor)


def parse_goals(values: list[str] | None) -> tuple[str, ...]:
    """``--for a --for b,c`` -> ("a", "b", "c") in GOAL_NAMES order; every goal when none is given."""
    from ..errors import UsageError

    if not values:
        return GOAL_NAMES
    asked = [v.strip() for value in values for v in value.split(",")]
    unknown = [v for v in asked if v not in GOAL_NAMES]
    if unknown or not asked:
        shown = ", ".join(repr(v) for v in unknown) or "an empty goal"
        raise UsageError(f"--for {shown} is not a goal", hint=f"use one or more of: {', '.join(GOAL_NAMES)}")
    return tuple(g for g in GOAL_NAMES if g in asked)


def check_outputs(args: argparse.Namespace) -> None:
    """An output is never an input or another output, nor a folder (refused before any work)."""
    from ..argtypes import check_outputs as check

    check({"--json": args.json, "--save-facts": args.save_facts}, {"--facts": args.facts, "--pins": args.pins})


def _cmd_doctor(args: argparse.Namespace) -> int:
    from ..errors import PinsError, UsageError
    from ..pins import load_pins
    from .checks import exit_code, run_checks
    from .facts import load_facts, save_facts, write_json
    from .probes import collect_facts
    from .report import format_goals, format_table, json_report, summary_line

    t0 = time.monotonic()
    goals = parse_goals(args.goals)
    check_outputs(args)
    try:
        pins = load_pins(args.pins)
    except PinsError as exc:  # a bad --pins / AIPC_PINS is bad input (2), not a failed check (1)
        raise UsageError(exc.message, hint=exc.hint) from None
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
    print(format_goals(results, goals))
    print()
    print(format_table(results, width=max(100, width)))
    errors = facts.get("errors")
    for name, err in sorted(errors.items() if isinstance(errors, dict) else []):
        LOG(f"note: collector {name} failed: {err}")
    print(summary_line(results, seconds, source, facts.get("collect_seconds")))
    if args.save_facts is not None:
        print(f"facts written to {args.save_facts} (evaluate anywhere with `aipc doctor --facts {args.save_facts}`)")
    if args.json is not None:
        write_json(args.json, json_report(results, facts, seconds, source, goals), "--json")
    return exit_code(results, goals)
