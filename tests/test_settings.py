"""The one settings model (aipc.settings): command line > AIPC_* variable > default for every command, one line for
a bad variable, no variable for per-invocation flags (AIPC_FORCE), unknown variables warned once, the cache folder
(platformdirs, CACHEDIR.TAG), docs/options.md generated from the model, and one reader of AIPC_* in src/."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

from aipc import cli, settings
from aipc.errors import UsageError
from aipc.settings import Option
from aipc.wheelbuild import settings as bs

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "aipc"


@pytest.fixture
def no_aipc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("AIPC_") and not name.startswith(("AIPC_TEST_", "AIPC_FIXTURE_")):
            monkeypatch.delenv(name)


def _parsed(options: tuple[Option, ...], command: str, argv: list[str], environ: dict[str, str]) \
        -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    settings.add_options(parser, options, command)
    return settings.resolve(command, parser.parse_args(argv), options, environ)


# --- the model --------------------------------------------------------------------------------------------------


def test_every_option_is_declared_once_per_command_with_a_parser() -> None:
    options = cli.all_options()
    seen: set[tuple[str, str]] = set()
    for o in options:
        assert o.commands, f"{o.cli} names no command"
        assert o.help and o.cli.startswith("--")
        assert o.env is None or o.env.startswith("AIPC_"), o.env
        for command in o.commands:
            assert (command, o.cli) not in seen, f"{command} {o.cli} declared twice"
            seen.add((command, o.cli))
    # one variable, one meaning: every declaration of a variable uses the same flag
    flags: dict[str, set[str]] = {}
    for o in options:
        if o.env:
            flags.setdefault(o.env, set()).add(o.cli)
    assert {k: v for k, v in flags.items() if len(v) > 1} == {}
    assert "AIPC_FORCE" not in flags  # --force is per invocation


def test_the_model_drives_argparse_for_every_command() -> None:
    """Each command's parser has exactly the flags its declarations name (beyond positionals and --help)."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    declared: dict[str, set[str]] = {}
    for o in cli.all_options():
        for command in o.commands:
            declared.setdefault(command, set()).update((o.cli, *o.aliases))
    nested = {f"{name} {inner}": q for name, p in sub.choices.items() for a in p._actions
              if isinstance(a, argparse._SubParsersAction) for inner, q in a.choices.items()}
    for command, flags in declared.items():
        p = nested[command] if " " in command else sub.choices[command]
        have = {s for a in p._actions for s in a.option_strings if s not in ("-h", "--help")}
        assert flags <= have, f"{command}: {sorted(flags - have)} declared but not on the command line"
    for command, p in {**sub.choices, **nested}.items():  # and nothing on a command line escapes the model
        have = {s for a in p._actions for s in a.option_strings if s not in ("-h", "--help")}
        assert have <= declared.get(command, set()), f"{command}: {sorted(have - declared.get(command, set()))}"


def test_build_settings_fields_are_the_build_options() -> None:
    from dataclasses import fields

    assert [f.name for f in fields(bs.RawSettings)] == [o.name for o in bs.OPTIONS]


def test_cli_over_variable_over_default() -> None:
    options = (Option("timeout", "--timeout", "AIPC_X_TIMEOUT", "seconds", parse=float, default=300.0,
                      commands=("x",)),
               Option("fast", "--fast", "AIPC_X_FAST", "go fast", kind="switch", commands=("x",)))
    assert vars(_parsed(options, "x", [], {})) == {"timeout": 300.0, "fast": False}
    env = {"AIPC_X_TIMEOUT": "12", "AIPC_X_FAST": "yes"}
    assert vars(_parsed(options, "x", [], env)) == {"timeout": 12.0, "fast": True}
    assert vars(_parsed(options, "x", ["--timeout", "5"], env)) == {"timeout": 5.0, "fast": True}


def test_a_bad_variable_is_one_line_naming_it() -> None:
    from aipc.argtypes import seconds

    opt = Option("timeout", "--timeout", "AIPC_X_TIMEOUT", "seconds", parse=seconds, commands=("x",))
    with pytest.raises(UsageError) as exc:
        _parsed((opt,), "x", [], {"AIPC_X_TIMEOUT": "-1"})
    line = exc.value.one_line()
    assert "\n" not in line and "AIPC_X_TIMEOUT" in line and "-1 is not a number of seconds" in line
    assert "; fix: set AIPC_X_TIMEOUT to" in line
    with pytest.raises(UsageError, match=r"AIPC_X_TIMEOUT='soon': 'soon' is not a number of seconds"):
        _parsed((opt,), "x", [], {"AIPC_X_TIMEOUT": "soon"})
    switch = Option("fast", "--fast", "AIPC_X_FAST", "go fast", kind="switch", commands=("x",))
    with pytest.raises(UsageError, match="AIPC_X_FAST='maybe' is not a boolean"):
        _parsed((switch,), "x", [], {"AIPC_X_FAST": "maybe"})


def test_bad_variable_through_the_command_line(no_aipc_env: None, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AIPC_JOBS", "many")
    assert cli.main(["plan", "--platform", "linux"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["aipc: error: AIPC_JOBS='many' is not a number; fix: set AIPC_JOBS to a number, or unset it"]


# --- per-invocation flags and unknown variables -----------------------------------------------------------------


def test_aipc_force_is_warned_about_and_forces_nothing(no_aipc_env: None, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert bs.from_args({"workdir": str(tmp_path)}, {"AIPC_FORCE": "1"}, cwd=tmp_path).force is False
    monkeypatch.setenv("AIPC_FORCE", "1")
    assert cli.main(["plan", "--platform", "linux", "--workdir", str(tmp_path / "w")]) == 0
    err = capsys.readouterr().err
    assert err.count("AIPC_FORCE") >= 1 and len([x for x in err.splitlines() if "AIPC_FORCE" in x]) == 1
    assert "aipc: warning: AIPC_FORCE is ignored: --force is given per run on the command line only" in err


def test_unknown_variables_are_warned_once_each(no_aipc_env: None, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("AIPC_WORKDRI", "typo")
    monkeypatch.setenv("AIPC_NO_SUCH", "1")
    monkeypatch.setenv("AIPC_WORKDIR", str(tmp_path / "w"))  # known: not warned
    monkeypatch.setenv("AIPC_TEST_ANYTHING", "1")  # the test suite's own: not warned
    assert cli.main(["plan", "--platform", "linux"]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if "warning" in x]
    assert len(lines) == 2
    assert lines[0].startswith("aipc: warning: AIPC_NO_SUCH is not an aipc variable and is ignored; fix: ")
    assert lines[1].startswith("aipc: warning: AIPC_WORKDRI is not an aipc variable")
    said: list[str] = []
    assert settings.warn_unknown(cli.all_options(), {"AIPC_CACHE": "x", "AIPC_DEBUG": "1", "PATH": "/"},
                                 said.append) == []
    assert said == []


# --- cache, wheels, pins ----------------------------------------------------------------------------------------


def test_cache_dir_variable_then_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    assert settings.cache_dir({"AIPC_CACHE": str(tmp_path / "c")}) == tmp_path / "c"
    monkeypatch.delenv("AIPC_CACHE", raising=False)
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert settings.cache_dir() == tmp_path / "xdg" / "aipc"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert settings.cache_dir() == Path.home() / ".cache" / "aipc"  # where it always was


def test_cache_dir_on_windows_stays_localappdata_aipc(monkeypatch: pytest.MonkeyPatch) -> None:
    """appauthor=False, opinion=False: %LOCALAPPDATA%\\aipc, not ...\\aipc\\aipc\\Cache (the cache does not move)."""
    import platformdirs
    from platformdirs import windows

    monkeypatch.delenv("AIPC_CACHE", raising=False)
    monkeypatch.setattr(windows, "get_win_folder", lambda csidl: r"C:\Users\me\AppData\Local")
    monkeypatch.setattr(platformdirs, "PlatformDirs", windows.Windows)
    assert str(settings.cache_dir()).replace("/", "\\") == r"C:\Users\me\AppData\Local\aipc"


def test_the_cache_gets_a_cachedir_tag(tmp_path: Path) -> None:
    from aipc.locks import hold

    cache = tmp_path / "cache"
    with hold("test", tmp_path / "thing", "a thing", cache=cache, timeout=5):
        pass
    tag = (cache / "CACHEDIR.TAG").read_text(encoding="utf-8")
    assert tag.startswith("Signature: 8a477f597d28d172789f06886806bc55")
    settings.mark_cache(cache)  # again: unchanged, no error
    assert (cache / "CACHEDIR.TAG").read_text(encoding="utf-8") == tag


def test_wheels_and_pins_are_read_in_one_place(tmp_path: Path) -> None:
    from aipc import venvs, wheelhouse

    assert settings.wheels_dir(None, {}) == Path("wheels")
    assert settings.wheels_dir(None, {"AIPC_WHEELS": str(tmp_path)}) == tmp_path
    assert settings.wheels_dir(tmp_path / "x", {"AIPC_WHEELS": "other"}) == tmp_path / "x"
    assert settings.pins_file({}) is None and settings.pins_file({"AIPC_PINS": "p.toml"}) == Path("p.toml")
    assert wheelhouse.wheels_dir is settings.wheels_dir and venvs.cache_dir is settings.cache_dir


def _environ_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """``os.environ.get("AIPC_X")``, ``os.getenv("AIPC_X")``, ``environ["AIPC_X"]`` (a read) in one module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and node.args[0].value.startswith("AIPC_") \
                and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "getenv", "pop"):
            found.append((node.lineno, node.args[0].value))
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) \
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str) \
                and node.slice.value.startswith("AIPC_"):
            found.append((node.lineno, node.slice.value))
    return found


def test_no_aipc_variable_is_read_outside_settings() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "settings.py":
            continue
        for line, name in _environ_reads(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert offenders == []
    # the check sees what it looks for
    assert _environ_reads(ast.parse('import os\nos.environ.get("AIPC_X")\nos.environ["AIPC_Y"]\n')) == \
        [(2, "AIPC_X"), (3, "AIPC_Y")]


# --- per command ------------------------------------------------------------------------------------------------


def _resolved(argv: list[str], environ: dict[str, str]) -> argparse.Namespace:
    args = cli.build_parser().parse_args(argv)
    return settings.resolve(args.command, args, cli.all_options(), environ)


@pytest.mark.parametrize(("argv", "name", "default", "env", "env_value", "cli_args", "cli_value"), [
    (["verify"], "timeout", 300.0, "AIPC_SMOKE_TIMEOUT", "12", ["--timeout", "5"], 5.0),
    (["smoke", "genai"], "device", "auto", "AIPC_VERIFY_DEVICE", "cpu", ["--device", "gpu"], "gpu"),
    (["verify"], "paths", None, "AIPC_VERIFY_PATHS", "genai,npu", ["--paths", "openvino"], ("openvino",)),
    (["verify"], "build_npu", False, "AIPC_BUILD_NPU", "1", ["--build-npu"], True),
    (["bench"], "timeout", 900.0, "AIPC_BENCH_TIMEOUT", "12", ["--timeout", "5"], 5.0),
    (["bench"], "repetitions", 5, "AIPC_BENCH_REPETITIONS", "7", ["-r", "9"], 9),
    (["bench"], "allow_fallback", False, "AIPC_BENCH_ALLOW_FALLBACK", "yes", ["--allow-fallback"], True),
    (["build-npu", "--plan"], "openvino", None, "AIPC_NPU_OPENVINO", "2024.3.0", ["--openvino", "2024.2.0"],
     "2024.2.0"),
    (["build-npu", "--plan"], "platform", None, "AIPC_PLATFORM", "windows", ["--platform", "linux"], "linux"),
    (["doctor"], "goals", None, "AIPC_DOCTOR_GOALS", "verify|npu", ["--for", "npu"], ("npu",)),
    (["check-upstream"], "jobs", 2, "AIPC_UPSTREAM_JOBS", "1", ["--jobs", "3"], 3),
    (["plan"], "jobs", None, "AIPC_JOBS", "3", ["--jobs", "4"], 4),
])
def test_every_command_cli_over_variable_over_default(argv: list[str], name: str, default: object, env: str,
                                                      env_value: str, cli_args: list[str], cli_value: object) -> None:
    from aipc.bench.targets import MIN_REPETITIONS

    expected_default = MIN_REPETITIONS if name == "repetitions" else default
    assert getattr(_resolved(argv, {}), name) == expected_default
    from_env = getattr(_resolved(argv, {env: env_value}), name)
    assert from_env is not None and from_env != expected_default
    assert getattr(_resolved([*argv, *cli_args], {env: env_value}), name) == cli_value


def test_a_bad_variable_of_another_command_is_one_line(no_aipc_env: None, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AIPC_VERIFY_PATHS", "genai,nope")
    assert cli.main(["verify"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aipc: error: AIPC_VERIFY_PATHS='genai,nope': unknown path nope")


def test_stage_takes_no_variable_from_a_build_setting() -> None:
    """The build runs `aipc stage` with its whole command line: AIPC_ORT_RELEASE/AIPC_CONFIG must not reach it."""
    args = _resolved(["stage", "--out", "home"], {"AIPC_ORT_RELEASE": "pypi", "AIPC_CONFIG": "Debug"})
    assert args.ort_release is None and args.config == "Release"


# --- docs ---------------------------------------------------------------------------------------------------------


def test_docs_options_md_is_generated_from_the_model() -> None:
    doc = (ROOT / "docs" / "options.md").read_text(encoding="utf-8")
    assert doc == cli.options_markdown(), "docs/options.md is stale: run `aipc options > docs/options.md`"
    for o in cli.all_options():
        if o.env:
            assert f"`{o.env}`" in doc


def test_aipc_options_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["options"]) == 0
    assert capsys.readouterr().out == cli.options_markdown()


def test_every_variable_the_docs_name_exists() -> None:
    """No copy of an option list in README.md or docs/ names a variable aipc does not read (AIPC_FORCE...)."""
    import re

    known = settings.known_variables(cli.all_options())
    stale = []
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for doc in (d for d in docs if d.name != "options.md"):  # options.md is the model's (it names AIPC_FORCE as gone)
        for name in sorted(set(re.findall(r"\bAIPC_[A-Z][A-Z0-9_]*\b", doc.read_text(encoding="utf-8")))):
            if name not in known and not name.startswith(settings.UNWARNED_PREFIXES):
                stale.append(f"{doc.name}: {name}")
    assert stale == []


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("AIPC_BENCH_GRID", "bad", "AIPC_BENCH_GRID='bad': bad grid cell 'bad'; fix: write PROMPTxGEN cells"),
    ("AIPC_DOCTOR_GOALS", "x", "AIPC_DOCTOR_GOALS='x': --for 'x' is not a goal; fix: use one or more of: verify"),
    ("AIPC_BENCH_WARMUP", "x", "AIPC_BENCH_WARMUP='x': 'x' is not a whole number"),
])
def test_an_area_check_of_a_variable_names_the_variable(variable: str, value: str, expected: str) -> None:
    command = {"AIPC_BENCH_GRID": "bench", "AIPC_DOCTOR_GOALS": "doctor", "AIPC_BENCH_WARMUP": "bench"}[variable]
    with pytest.raises(UsageError) as exc:
        _resolved([command], {variable: value})
    assert exc.value.one_line().startswith(expected)
