"""Subcommands of this area (registered by aipc.cli): ``aipc bench [options]`` and ``aipc bench compare A B``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..argtypes import check_outputs, comma_list, existing_dir, output_dir, seconds
from ..errors import AipcError, ExitCode, OutputError, UsageError, writing
from ..log import LOG
from .targets import (
    DEVICES,
    MIN_REPETITIONS,
    MIN_WARMUP,
    PATHS,
    PRECISIONS,
    Settings,
    check_settings,
    parse_grid,
    parse_list,
    targets,
    with_grid,
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this area's subcommands to the ``aipc`` parser."""
    p = sub.add_parser(
        "bench", help="measure TTFT, TPOT, tokens/s and memory per path and device (bench.json, CSV, PNG, Markdown)",
        description="Benchmark each path (own venv, own subprocess) on the tiny Phi-3 or --model DIR. "
        "`aipc bench compare A.json B.json` prints ratios between two runs.",
    )
    p.add_argument("action", nargs="?", choices=["run", "compare"], default="run",
                   help="run (default) or compare two bench.json files")
    p.add_argument("files", nargs="*", type=Path, help="for compare: A.json B.json")
    p.add_argument("--model", type=Path, default=None,
                   help="a local Phi-3 checkpoint (or an export) instead of aipc's tiny model")
    p.add_argument("--paths", type=comma_list(PATHS, "path"), default=None,
                   help=f"comma list of {', '.join(PATHS)} (default: all)")
    p.add_argument("--devices", type=comma_list(DEVICES, "device"), default=None,
                   help=f"comma list of {', '.join(DEVICES)} (default: all; absent "
                   "devices are reported as skip)")
    p.add_argument("--grid", default=None, help="PROMPTxGEN cells, e.g. 128x128,1024x128 (default 16x16,32x16 for "
                   "the tiny model, 128x128 for --model)")
    p.add_argument("--warmup", type=int, default=MIN_WARMUP, help=f"warm-up runs per cell, excluded (>= {MIN_WARMUP})")
    p.add_argument("--repetitions", "-r", type=int, default=MIN_REPETITIONS,
                   help=f"measured runs per cell (>= {MIN_REPETITIONS})")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="weights precision (default fp32 on the tiny model, int4 on --model; NPU targets: int4)")
    p.add_argument("--seed", type=int, default=42, help="seed of the synthetic prompts (decoding is greedy)")
    p.add_argument("--timeout", type=seconds, default=900.0, help="seconds per target before its worker is killed")
    p.add_argument("--allow-fallback", action="store_true",
                   help="measure the NPU library even without an NPU (labelled cpu-fallback)")
    p.add_argument("--out", type=output_dir, default=Path("bench-results"),
                   help="output folder (default ./bench-results)")
    p.add_argument("--wheels", type=existing_dir, default=None,
                   help="aipc's wheels folder, which must exist (default ./wheels or $AIPC_WHEELS)")
    p.add_argument("--no-charts", action="store_true", help="do not draw PNG charts")
    p.add_argument("--json", action="store_true", help="print bench.json instead of the table")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.action == "compare":
        return _cmd_compare(args)
    if args.files:
        raise UsageError(f"unexpected arguments {[str(f) for f in args.files]}",
                         hint="use `aipc bench compare A.json B.json` to compare runs")
    from ..wheelhouse import refuse_tampered, wheels_dir
    from .run import BenchOptions, claim_results_dir, run_bench, write_outputs

    settings = Settings(warmup=args.warmup, repetitions=args.repetitions, seed=args.seed, tiny=args.model is None,
                        precision=args.precision, timeout=args.timeout, allow_fallback=args.allow_fallback)
    settings = check_settings(with_grid(settings, parse_grid(args.grid) if args.grid is not None else None))
    paths = args.paths if args.paths is not None else parse_list(None, PATHS, "path")
    devices = args.devices if args.devices is not None else parse_list(None, DEVICES, "device")
    if args.model is not None and not args.model.is_dir():
        raise UsageError(f"--model {args.model} is not a folder", hint="pass a local Phi-3 checkpoint or export folder")
    check_outputs({"--out": args.out}, {"--model": args.model}, folders=["--out"])  # before the benchmark
    claim_results_dir(args.out)  # new, empty or aipc's own results folder, before the benchmark
    refuse_tampered(wheels_dir(args.wheels))
    opts = BenchOptions(settings=settings, targets=targets(paths, devices, settings), model=args.model,
                        wheels=wheels_dir(args.wheels))
    doc = run_bench(opts, echo=LOG)
    try:
        with writing(args.out, "the bench results to"):
            files, note = write_outputs(doc, args.out, not args.no_charts)
    except OutputError:
        _print_results(doc, args.json, None, [])  # the measurements are not lost: printed, then the one line
        raise
    _print_results(doc, args.json, note, files)
    return ExitCode.FAILED if any(t["status"] == "fail" for t in doc["targets"]) else ExitCode.OK


def _print_results(doc: dict[str, Any], as_json: bool, note: str | None, files: list[Path]) -> None:
    from .run import console_report

    if as_json:
        import json

        print(json.dumps(doc, indent=2, sort_keys=True))
        return
    print(console_report(doc))
    if note:
        print(note)
    if files:
        print("wrote: " + ", ".join(str(f) for f in files))


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_files

    if len(args.files) != 2:
        raise UsageError(f"compare needs exactly two bench.json files, got {len(args.files)}",
                         hint="aipc bench compare A.json B.json")
    try:
        text = compare_files(args.files[0], args.files[1])
    except AipcError as exc:  # a missing, unreadable or malformed file given: bad input
        raise UsageError(exc.message, hint=exc.hint) from None
    print(text)
    return ExitCode.OK
