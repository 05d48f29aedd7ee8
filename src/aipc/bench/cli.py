"""Subcommands of this area (registered by aipc.cli): ``aipc bench [options]``, ``aipc bench compare A B`` and
``aipc bench calibrate F1 F2 ...``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..argtypes import check_outputs, comma_list, existing_dir, output_dir, seconds
from ..errors import AipcError, ExitCode, OutputError, UsageError, writing
from ..log import LOG
from ..settings import INSTALLER, MODEL, WHEELS, Option, add_options, checked
from .compare import THRESHOLDS, parse_thresholds, show_thresholds
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

_B = ("bench",)


def _count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; fix: pass e.g. 5") from None


_count.__name__ = "N"


def _thresholds(text: str) -> dict[str, float]:
    """``--threshold``: one percentage for all metrics and/or METRIC=PCT overrides (aipc.bench.compare)."""
    try:
        return parse_thresholds(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message}; fix: {exc.hint}") from None


_thresholds.__name__ = "PCT"

# the options of `aipc bench`, each with its AIPC_* variable (aipc.settings drives argparse and the docs)
OPTIONS: tuple[Option, ...] = (
    MODEL.but(parse=Path, commands=_B),
    INSTALLER.but(commands=_B),
    Option("paths", "--paths", "AIPC_BENCH_PATHS", f"comma list of {', '.join(PATHS)} (default: all)",
           parse=comma_list(PATHS, "path"), metavar="PATHS", commands=_B),
    Option("devices", "--devices", "AIPC_BENCH_DEVICES",
           f"comma list of {', '.join(DEVICES)} (default: all; absent devices are reported as skip)",
           parse=comma_list(DEVICES, "device"), metavar="DEVICES", commands=_B),
    Option("grid", "--grid", "AIPC_BENCH_GRID", "PROMPTxGEN cells, e.g. 128x128,1024x128 (default 16x16,32x16 for "
           "the tiny model, 128x128 for --model)", parse=checked(parse_grid, "CELLS"), metavar="CELLS", commands=_B),
    Option("warmup", "--warmup", "AIPC_BENCH_WARMUP", f"warm-up runs per cell, excluded (>= {MIN_WARMUP})",
           parse=_count, default=MIN_WARMUP, metavar="N", commands=_B),
    Option("repetitions", "--repetitions", "AIPC_BENCH_REPETITIONS",
           f"measured runs per cell (>= {MIN_REPETITIONS})", parse=_count, default=MIN_REPETITIONS, metavar="N",
           aliases=("-r",), commands=_B),
    Option("precision", "--precision", "AIPC_BENCH_PRECISION",
           "weights precision (default fp32 on the tiny model, int4 on --model; NPU targets: int4)",
           choices=PRECISIONS, commands=_B),
    Option("seed", "--seed", "AIPC_BENCH_SEED", "seed of the synthetic prompts (decoding is greedy; default 42)",
           parse=_count, default=42, metavar="N", commands=_B),
    Option("timeout", "--timeout", "AIPC_BENCH_TIMEOUT", "seconds per target before its worker is killed "
           "(default 900)", parse=seconds, default=900.0, metavar="S", commands=_B),
    Option("allow_fallback", "--allow-fallback", "AIPC_BENCH_ALLOW_FALLBACK",
           "measure the NPU library even without an NPU (labelled cpu-fallback)", kind="switch", commands=_B),
    Option("out", "--out", None, "output folder (default ./bench-results)", parse=output_dir,
           default=Path("bench-results"), metavar="DIR", commands=_B),
    WHEELS.but(parse=existing_dir, env_parse=Path, commands=_B),
    Option("no_charts", "--no-charts", None, "do not draw PNG charts", kind="switch", commands=_B),
    Option("json", "--json", None, "print bench.json instead of the table", kind="switch", commands=_B),
    Option("threshold", "--threshold", "AIPC_BENCH_THRESHOLD",
           "compare: the smallest difference called better/worse, in percent: one number for every metric (e.g. 25) "
           "and/or METRIC=PCT overrides (e.g. ttft_ms=30,peak_rss_mib=5); default per metric, calibrated from A/A "
           f"runs (docs/bench.md): {show_thresholds(THRESHOLDS)}", parse=_thresholds, default=dict(THRESHOLDS),
           metavar="PCT", commands=_B),
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this area's subcommands to the ``aipc`` parser."""
    p = sub.add_parser(
        "bench", help="measure TTFT, TPOT, tokens/s and memory per path and device (bench.json, CSV, PNG, Markdown)",
        description="Benchmark each path (own venv, own subprocess) on the tiny Phi-3 or --model DIR. "
        "`aipc bench compare A.json B.json` compares two runs on their per-run samples (a verdict only when "
        "significant and beyond --threshold); `aipc bench calibrate F1.json F2.json ...` measures the noise "
        "between runs of the same code and suggests a threshold per metric.",
    )
    p.add_argument("action", nargs="?", choices=["run", "compare", "calibrate"], default="run",
                   help="run (default), compare two bench.json files, or calibrate the threshold on runs of the "
                   "same code")
    p.add_argument("files", nargs="*", type=Path, help="compare: A.json B.json; calibrate: two or more bench.json")
    add_options(p, OPTIONS, "bench")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.action in ("compare", "calibrate"):
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
    from .compare import calibrate_files, compare_files

    calibrate = args.action == "calibrate"
    if calibrate and len(args.files) < 2:
        raise UsageError(f"calibrate needs two or more bench.json files of the same code, got {len(args.files)}",
                         hint="aipc bench calibrate run1/bench.json run2/bench.json ...")
    if not calibrate and len(args.files) != 2:
        raise UsageError(f"compare needs exactly two bench.json files, got {len(args.files)}",
                         hint="aipc bench compare A.json B.json")
    try:
        text = calibrate_files(args.files, args.threshold) if calibrate else \
            compare_files(args.files[0], args.files[1], args.threshold)
    except AipcError as exc:  # a missing, unreadable or malformed file given: bad input
        raise UsageError(exc.message, hint=exc.hint) from None
    print(text)
    return ExitCode.OK
