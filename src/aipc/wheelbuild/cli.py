"""Subcommands of the build area: plan, fetch, build-ort, stage, build-genai, wheels, build, check-upstream, index."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from ..argtypes import check_outputs, output_dir
from ..errors import ExitCode, UsageError
from ..platforms import host_platform_name
from ..runner import format_plan, plan_json
from ..settings import INSTALLER, Option, add_options
from . import deps, genai, stage, upstream
from . import settings as settings_mod
from .pipeline import STEP_NAMES, Pipeline

# the options of this area's commands (aipc.settings drives argparse, AIPC_* variables and docs/options.md)
# per-invocation options of the build commands (the build settings are settings_mod.OPTIONS)
_FLAGS = (Option("steps", "--steps", None, "only these steps (build: of the pipeline, in order; default: all)",
                  kind="many", choices=STEP_NAMES, metavar="STEP", commands=("plan", "build")),
           Option("json", "--json", None, "print JSON (plan: a list of steps, each with name, argv, cwd and env)",
                  kind="switch", commands=("plan", "deps")),
           Option("check", "--check", None, "only check a wheels folder (default: --wheels): every wheel against "
                  "SHA256SUMS and manifest.json; exit 1 on any problem", kind="optvalue", metavar="DIR",
                  commands=("wheels",)),
           Option("out", "--out", None, "fill this folder (created; what aipc deps fetched before is reused)",
                  parse=output_dir, metavar="DIR", commands=("deps",)))
_INDEX = (Option("out", "--out", None, "the site folder to write: new, empty, or one `aipc index` wrote (replaced "
                  "as a whole)", parse=output_dir, metavar="SITE", commands=("index",), required=True),
          Option("include", "--include", None, "also publish this file in SITE/files/ (the release's SBOM, "
                 "attestation bundle...)", parse=Path, kind="list", metavar="FILE", commands=("index",)))
# what makes the build venv (the step that runs first in these commands): aipc.installer
_INSTALL = (INSTALLER.but(commands=("plan", "build-venv", "build-ort", "build-genai", "build")),)
OPTIONS = (*settings_mod.OPTIONS, *stage.OPTIONS, *upstream.OPTIONS, *_FLAGS, *_INSTALL, *_INDEX)

_STEPS: dict[str, tuple[str, list[str] | None]] = {
    "fetch": ("clone ONNX Runtime and onnxruntime-genai at the pinned tags and verify the commits", ["fetch"]),
    "build-venv": ("create the build venv: pinned CMake and Ninja, ONNX Runtime's Python build requirements",
                   ["build-venv"]),
    "build-ort": ("build ONNX Runtime (DirectML on Windows) as a shared library and a wheel (after build-venv)",
                  ["build-venv", "build-ort"]),
    "build-genai": ("build the onnxruntime-genai (DirectML) wheel against the staged ORT_HOME (after build-venv)",
                    ["build-venv", "build-genai"]),
    "ort-release": ("download (or inspect) the official ORT release named by --ort-release, verify it and record "
                    "it (file, sha256, version) for stage and wheels", ["ort-release"]),
    "wheels": ("collect the ORT and genai wheels into wheels/ with SHA256SUMS and manifest.json", ["wheels"]),
    "build": ("run the whole build: fetch, build-venv, build-ort, stage, build-genai, wheels, or with --ort-release: "
              "fetch, build-venv, ort-release, stage, build-genai, wheels (up-to-date steps are skipped)", None),
}


def _pipeline(args: argparse.Namespace) -> Pipeline:
    return Pipeline(settings_mod.from_args(args))


def _cmd_plan(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    steps = pipeline.plan(args.steps or None)
    if args.json:
        print(json.dumps(plan_json(steps), indent=2))
    else:
        print(format_plan(steps, pipeline.s.platform.name))
    return ExitCode.OK


def _cmd_check_wheels(args: argparse.Namespace) -> int:
    from ..errors import AipcError
    from ..wheelhouse import check_folder, read_sums

    folder = Path(args.check) if args.check else Path(settings_mod.from_args(args).wheels)
    problems = check_folder(folder)
    for problem in problems:
        print(f"  {problem}")
    if problems:
        raise AipcError(f"wheels folder {folder}: {len(problems)} problem(s), first: {problems[0]}",
                        hint="rebuild the wheels named above (aipc build --force), or remove them and their lines")
    print(f"ok: {len(read_sums(folder) or {})} wheel(s) in {folder} match SHA256SUMS and manifest.json")
    return ExitCode.OK


def _cmd_run(args: argparse.Namespace) -> int:
    if getattr(args, "check", None) is not None:
        return _cmd_check_wheels(args)
    pipe = _pipeline(args)
    step_names = list(getattr(args, "steps", None) or args.step_names or pipe.route)
    s = pipe.s
    if s.is_host:  # before any work: the folders the build writes can be made (not a file, not read-only)
        legacy = Path(s.legacy_ort_dir) if s.legacy_ort_dir is not None else None
        check_outputs({"--workdir": Path(s.workdir), "--wheels": Path(s.wheels), "--legacy-ort-dir": legacy},
                      folders=["--workdir", "--wheels", "--legacy-ort-dir"])
    results = pipe.run(step_names)
    ran = [r.name for r in results if r.status == "ran"]
    skipped = [r.name for r in results if r.status == "skipped"]
    summary = f"[aipc] done: ran {', '.join(ran) or 'nothing'}"
    if skipped:
        summary += f"; up to date: {', '.join(skipped)}"
    pipe.echo(summary)
    if "wheels" in step_names:
        pipe.echo(f"[aipc] wheels in {pipe.s.wheels}")
    return ExitCode.OK


def _cmd_index(args: argparse.Namespace) -> int:
    from .index import build_index

    build_index(args.wheels_dir, args.out, include=args.include or ())
    return ExitCode.OK


def _cmd_deps(args: argparse.Namespace) -> int:
    target = settings_mod.from_args(args)  # the platform whose dependencies are wanted (Windows: + wil, DirectX)
    # the folders are on this host even when the dependencies are for another platform
    s = settings_mod.from_args(argparse.Namespace(**{**vars(args), "platform": host_platform_name()})) \
        if not target.is_host else target
    s = dataclasses.replace(s, platform=target.platform)
    pipe = Pipeline(s)
    genai_dir = Path(s.genai_dir)
    if not (genai_dir / deps.DEPS_TXT).is_file():
        raise UsageError(f"{genai_dir / deps.DEPS_TXT} does not exist: no onnxruntime-genai source to read the "
                         "dependencies from", hint="run `aipc fetch` first, or pass the checkout with --genai-source")
    defines = genai.genai_option_defines(s, pipe.pins)
    if args.out is not None:
        out = Path(args.out).absolute()
        data = deps.fetch_all(genai_dir, s.platform, defines, out, offline=s.offline, retries=s.fetch_retries,
                              backoff=s.fetch_backoff, echo=pipe.echo)
        needed = [d for d in data["dependencies"] if d["needed"] is not False]
        print(f"{out}: {len(needed)} dependencies for {s.platform.name} ({len(data['deps'])} fetched by aipc deps); "
              f"record: {out / deps.MANIFEST}")
        print(f"build offline with: --deps-dir {out} --offline")
        return ExitCode.OK
    res = deps.resolve(genai_dir, s.platform, defines, Path(s.deps_dir) if s.deps_dir else None)
    if args.json:
        print(json.dumps(res.to_json(), indent=2))
        return ExitCode.OK
    for d in res.deps:
        folder = res.folders.get(d.name)
        need = {True: "needed", None: "maybe needed", False: "not needed"}[d.needed]
        served = f"-> {folder}" if folder else f"(folder: {' / '.join(d.folder_names)})"
        print(f"{d.name:<24} {need:<12} {d.kind:<7} {d.url} @ {d.pin[:12]}  {served}")
    if not res.complete:
        print("(onnxruntime_extensions' own dependencies are listed once its folder is in --deps-dir)")
    return ExitCode.OK


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this area's subcommands to the ``aipc`` parser."""
    p = sub.add_parser("plan", help="print every build command (argv, cwd, env) without running anything",
                       description="Print the commands of fetch, build-ort (or ort-release with --ort-release), "
                                   "stage, build-genai and wheels with their working directory and environment. Runs "
                                   "nothing; works for any --platform.")
    add_options(p, (*_FLAGS, *_INSTALL), "plan")
    settings_mod.add_arguments(p, "plan")
    p.set_defaults(func=_cmd_plan)
    for name, (help_text, names) in _STEPS.items():
        q = sub.add_parser(name, help=help_text, description=help_text)
        add_options(q, (*_FLAGS, *_INSTALL), name)
        settings_mod.add_arguments(q, name)
        q.set_defaults(func=_cmd_run, step_names=names)
    d = sub.add_parser(
        "deps", help="list genai's CMake dependencies, or fill a --deps-dir folder with them (--out DIR)",
        description="Read onnxruntime-genai's CMake dependencies from its source (cmake/deps.txt, "
                    "cmake/external/*.cmake, then onnxruntime-extensions' cmake/externals/*.cmake) for --platform. "
                    "Without --out: list them and the --deps-dir folder serving each. With --out DIR: download "
                    "every needed one into DIR/<name> (archives checked against their SHA1, git entries checked out "
                    "at their commit, nested ones included) and record them in DIR/aipc-deps.json; a later "
                    "`aipc build --deps-dir DIR --offline` uses them and records what it used.")
    add_options(d, _FLAGS, "deps")
    settings_mod.add_arguments(d, "deps")
    d.set_defaults(func=_cmd_deps)
    stage.register_cli(sub)
    upstream.register_cli(sub)
    i = sub.add_parser(
        "index", help="write a PEP 503 package index (with PEP 658 metadata) of a checked wheels folder",
        description="Check WHEELS_DIR as `aipc wheels --check` does (SHA256SUMS and manifest.json; a folder without "
                    "them is refused), then write a static site to SITE: simple/ (PEP 503 pages with #sha256= links, "
                    "data-requires-python and the PEP 658/714 metadata attributes), files/ (the wheels, their "
                    ".metadata files, SHA256SUMS, manifest.json, --include files) and index.html. Serve it from any "
                    "web server (GitHub Pages: the release workflow) and install with `pip install NAME==VERSION "
                    "--extra-index-url URL/simple`.")
    # both checked by the command before any work (index.check_inputs), so a workflow's paths parse anywhere
    i.add_argument("wheels_dir", metavar="WHEELS_DIR", type=Path,
                   help="the wheels folder (./wheels, or merged CI artifacts): SHA256SUMS, manifest.json, *.whl")
    add_options(i, _INDEX, "index")
    i.set_defaults(func=_cmd_index)
