"""The GitHub Actions workflows: lint clean (actionlint, zizmor), no drift from noxfile.py, supply-chain rules.

Each checker is also run on a synthetic bad workflow, so a regression in the checker itself is caught.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
NOXFILE = ROOT / "noxfile.py"


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def load(text: str) -> dict[str, Any]:
    """A workflow as data (PyYAML; YAML 1.1 reads the ``on:`` key as True, which nothing here uses)."""
    data = yaml.safe_load(text)
    assert isinstance(data, dict), "a workflow is a mapping"
    return data


def strings(node: object) -> str:
    """Every key and scalar below ``node``, one a line: for "this job mentions X" checks."""
    if isinstance(node, dict):
        return "\n".join(f"{k}\n{strings(v)}" for k, v in node.items())
    if isinstance(node, list):
        return "\n".join(strings(v) for v in node)
    return "" if node is None else str(node)


# --- the session-drift checker ----------------------------------------------------------------------------------


def noxfile_sessions(source: str) -> set[str]:
    """Session names defined in a noxfile: functions decorated with ``@nox.session`` (``name=`` wins)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for deco in node.decorator_list:
            call = deco if isinstance(deco, ast.Call) else None
            target = call.func if call else deco
            if not (isinstance(target, ast.Attribute) and target.attr == "session"):
                continue
            if not (isinstance(target.value, ast.Name) and target.value.id == "nox"):
                continue
            name = node.name
            for kw in call.keywords if call else []:
                if kw.arg == "name" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    name = kw.value.value
            names.add(name)
    return names


def run_scripts(text: str) -> list[tuple[int, str]]:
    """The ``run:`` scripts of a workflow (line number of the ``run:`` key, script), read with PyYAML's composer so
    block scalars, folding and quoting are YAML's own."""
    scripts: list[tuple[int, str]] = []
    todo = [yaml.compose(text)]
    while todo:
        node = todo.pop()
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == "run" and isinstance(value, yaml.ScalarNode) and value.value:
                    scripts.append((key.start_mark.line + 1, value.value))
                else:
                    todo.append(value)
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
    return sorted(scripts)


@dataclass(frozen=True)
class NoxCall:
    line: int
    command: str
    sessions: tuple[str, ...]
    posargs: tuple[str, ...]


_SPLIT = re.compile(r"&&|\|\||;|\|")
_SESSION_FLAGS = ("-s", "-e", "--session", "--sessions")


def _words(segment: str) -> list[str]:
    try:
        return shlex.split(segment, posix=False)
    except ValueError:
        return segment.split()


def nox_calls(script: str, first_line: int = 1) -> list[NoxCall]:
    """Every ``nox -s A [B ...] [-- POSARGS]`` (also ``python -m nox``, ``--session(s)``, ``-e``) in a script."""
    joined = re.sub(r"(\\|`)\n", " ", script)  # bash and PowerShell line continuations
    calls: list[NoxCall] = []
    for offset, line in enumerate(joined.splitlines()):
        for segment in _SPLIT.split(line.split(" #", 1)[0]):
            words = _words(segment)
            for k, word in enumerate(words):
                base = re.split(r"[\\/]", word.strip("'\""))[-1].lower()
                if base not in ("nox", "nox.exe"):
                    continue
                # the command word itself (after env assignments, `&` or `uvx`), or `python -m nox`
                before = words[:k]
                is_command = all(re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w) or w in ("&", "uvx") for w in before)
                if not (is_command or (base == "nox" and before[-1] == "-m")):
                    continue
                sessions: list[str] = []
                posargs: list[str] = []
                rest = words[k + 1 :]
                j = 0
                while j < len(rest):
                    arg = rest[j]
                    if arg == "--":
                        posargs = rest[j + 1 :]
                        break
                    if arg in _SESSION_FLAGS:
                        j += 1
                        while j < len(rest) and not rest[j].startswith("-"):
                            sessions.append(rest[j])
                            j += 1
                        continue
                    for flag in _SESSION_FLAGS:
                        if arg.startswith(flag + "="):
                            sessions.extend(s for s in arg.split("=", 1)[1].split(",") if s)
                    j += 1
                calls.append(NoxCall(first_line + offset, segment.strip(), tuple(sessions), tuple(posargs)))
                break
    return calls


def session_drift(workflow_text: str, sessions: set[str], where: str = "workflow") -> list[str]:
    """Problems: a nox call without an explicit session, or naming a session the noxfile does not define."""
    problems = []
    for line, script in run_scripts(workflow_text):
        for call in nox_calls(script, line):
            if not call.sessions:
                problems.append(f"{where}:{call.line}: `{call.command}` names no session (use nox -s NAME)")
            for name in call.sessions:
                if name not in sessions:
                    problems.append(f"{where}:{call.line}: nox session {name!r} is not defined in noxfile.py")
    return problems


def _aipc_command(call: ast.Call) -> str | None:
    """The ``aipc`` subcommand of ``_aipc(session, "CMD", ...)`` or ``session.run(..., "aipc", "CMD", ...)``; a
    nested one (``_aipc(session, "pins", "update")``) as ``"pins update"``."""
    consts = [a.value if isinstance(a, ast.Constant) else None for a in call.args]
    start = None
    if isinstance(call.func, ast.Name) and call.func.id == "_aipc" and len(consts) > 1 and consts[1]:
        start = 1
    elif "aipc" in consts and consts.index("aipc") + 1 < len(consts):
        start = consts.index("aipc") + 1
    if start is None or not isinstance(consts[start], str):
        return None
    words = [str(consts[start])]
    parser = _subcommands().get(words[0])
    for nxt in consts[start + 1:]:
        if parser is None or not isinstance(nxt, str) or nxt not in parser:
            break
        words.append(nxt)
        parser = None  # one level of nesting is all aipc has
    return " ".join(words)


def _subcommands() -> dict[str, set[str]]:
    """aipc command -> the names of its own subcommands (``pins`` -> ``{"update"}``)."""
    import argparse

    from aipc.cli import build_parser

    top = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    out: dict[str, set[str]] = {}
    for name, parser in top.choices.items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                out[name] = set(action.choices)
    return out


def _posargs_test(test: ast.expr) -> bool | None:
    """True for ``if session.posargs``, False for ``if not session.posargs``, None for any other condition."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _posargs_test(test.operand)
        return None if inner is None else not inner
    if isinstance(test, ast.Attribute) and test.attr == "posargs":
        return True
    return None


def _aipc_calls(body: list[ast.stmt], with_posargs: bool | None) -> list[tuple[bool | None, str]]:
    """(branch, command) per aipc call: branch True/False inside an ``if session.posargs`` branch, else None."""
    found: list[tuple[bool | None, str]] = []
    for stmt in body:
        polarity = _posargs_test(stmt.test) if isinstance(stmt, ast.If) else None
        if isinstance(stmt, ast.If) and polarity is not None:
            found += _aipc_calls(stmt.body, polarity) + _aipc_calls(stmt.orelse, not polarity)
            continue
        for node in ast.walk(stmt):
            command = _aipc_command(node) if isinstance(node, ast.Call) else None
            if command:
                found.append((with_posargs, command))
    return found


def noxfile_aipc_commands(source: str) -> dict[str, str]:
    """Session name -> the ``aipc`` subcommand that receives the session's posargs (``nox -s S -- ARGS``).

    A session that runs another command without posargs (``if session.posargs: ... else: ...``) maps to the
    command of the posargs branch.
    """
    sessions = noxfile_sessions(source)
    rank = {True: 0, None: 1, False: 2}
    commands: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef) or node.name not in sessions:
            continue
        calls = _aipc_calls(node.body, None)
        if calls:
            commands[node.name] = min(calls, key=lambda c: rank[c[0]])[1]
    return commands


def posargs_problems(workflow_text: str, commands: dict[str, str], where: str = "workflow") -> list[str]:
    """Arguments after ``--`` that the ``aipc`` command a session runs would reject (unknown flag, bad choice)."""
    import contextlib
    import io

    from aipc.cli import build_parser

    parser = build_parser()
    problems = []
    for line, script in run_scripts(workflow_text):
        for call in nox_calls(script, line):
            if not call.posargs:
                continue
            for name in call.sessions:
                if name not in commands:
                    continue  # e.g. `tests` passes its arguments to pytest: nothing to check against aipc
                args = [("X" if "$" in a else a.strip("'\"")) for a in call.posargs]
                err = io.StringIO()
                try:
                    with contextlib.redirect_stderr(err):
                        parser.parse_args([*commands[name].split(), *args])
                except SystemExit:
                    last = err.getvalue().strip().splitlines()[-1:] or ["?"]
                    problems.append(f"{where}:{call.line}: aipc {commands[name]} {' '.join(args)}: {last[0]}")
    return problems


# --- the lint tools -----------------------------------------------------------------------------------------------


def tool(name: str) -> str:
    """The tool from this interpreter's environment (the ``test`` extra installs it), else from PATH."""
    scripts = Path(sys.executable).parent
    for candidate in (scripts / name, scripts / f"{name}.exe"):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed (pip install -e '.[test]')"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def actionlint_findings(cwd: Path, *files: Path) -> list[dict[str, object]]:
    proc = subprocess.run(
        [tool("actionlint"), "-format", "{{json .}}", *map(str, files)],
        cwd=cwd, capture_output=True, text=True, timeout=60,
    )
    if proc.returncode not in (0, 1):
        raise AssertionError(f"actionlint failed to run (exit {proc.returncode}): {proc.stderr.strip()}")
    out = proc.stdout.strip()
    return json.loads(out) if out else []


def zizmor_findings(path: Path, min_severity: str = "high") -> list[dict[str, object]]:
    proc = subprocess.run(
        [tool("zizmor"), "--offline", "--no-progress", "--format", "json", "--min-severity", min_severity,
         str(path)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"},
    )
    # zizmor exits 0 without findings, 10-14 with findings by highest severity, 1/2 on a tool or usage error
    if proc.returncode not in (0, 10, 11, 12, 13, 14):
        raise AssertionError(f"zizmor failed to run (exit {proc.returncode}): {proc.stderr.strip()}")
    findings: list[dict[str, object]] = json.loads(proc.stdout or "[]")
    return findings


def _describe(findings: list[dict[str, object]]) -> str:
    return "\n".join(json.dumps(f)[:400] for f in findings)


BAD_WORKFLOW = """\
name: bad
on: pull_request_target
permissions: write-all
jobs:
  x:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
      - run: python -m nox -s bogus_session
      - run: echo ${{ steps.nope.outputs.x }}
"""


@pytest.fixture
def bad_repo(tmp_path: Path) -> Path:
    wf = tmp_path / ".github" / "workflows"
    wf.mkdir(parents=True)
    (wf / "bad.yml").write_text(BAD_WORKFLOW, encoding="utf-8")
    return tmp_path


def test_there_is_a_workflow() -> None:
    assert ROOT.joinpath(".github", "workflows", "wheels.yml").is_file()


def test_actionlint_clean() -> None:
    findings = actionlint_findings(ROOT, *workflow_files())
    assert not findings, "actionlint findings:\n" + _describe(findings)


def test_actionlint_reports_a_bad_workflow(bad_repo: Path) -> None:
    findings = actionlint_findings(bad_repo, bad_repo / ".github" / "workflows" / "bad.yml")
    messages = " ".join(str(f.get("message")) for f in findings)
    assert "untrusted" in messages  # the template injection
    assert "steps.nope" in messages or "nope" in messages  # an undefined step output


def test_zizmor_no_high_severity_findings() -> None:
    findings = zizmor_findings(WORKFLOWS)
    assert not findings, "zizmor findings at high severity:\n" + _describe(findings)


def test_zizmor_reports_a_bad_workflow(bad_repo: Path) -> None:
    idents = {str(f["ident"]) for f in zizmor_findings(bad_repo / ".github" / "workflows")}
    assert {"unpinned-uses", "template-injection", "dangerous-triggers"} <= idents


# --- session drift ------------------------------------------------------------------------------------------------


def test_noxfile_sessions_parsed() -> None:
    sessions = noxfile_sessions(NOXFILE.read_text(encoding="utf-8"))
    assert {"verify", "build", "build_npu", "bench", "doctor", "tests", "lint"} <= sessions
    src = "import nox\n@nox.session(name='x-y')\ndef f(s): pass\n@nox.session\ndef g(s): pass\ndef h(): pass\n"
    assert noxfile_sessions(src) == {"x-y", "g"}


def test_every_workflow_session_exists_in_noxfile() -> None:
    sessions = noxfile_sessions(NOXFILE.read_text(encoding="utf-8"))
    problems: list[str] = []
    called: set[str] = set()
    for path in workflow_files():
        text = path.read_text(encoding="utf-8")
        problems += session_drift(text, sessions, path.name)
        called |= {s for _, script in run_scripts(text) for c in nox_calls(script) for s in c.sessions}
    assert not problems, "\n".join(problems)
    # the workflow drives the sessions the CI design needs (guards against the extractor silently finding nothing)
    assert {"build", "build_npu", "verify", "bench"} <= called


def test_drift_checker_catches_a_bogus_session() -> None:
    sessions = {"verify", "build"}
    text = (
        "jobs:\n  a:\n    steps:\n"
        "      - run: nox -s verify\n"
        "      - run: |\n"
        "          python -m nox --session build bogus -- --flag x\n"
        "          echo done && nox -s=verify,typo_session\n"
        "      - name: continued\n"
        "        run: >\n"
        "          py -m nox \\\n"
        "            -e missing_one\n"
        "      - run: nox -l\n"
    )
    problems = session_drift(text, sessions)
    assert any("'bogus'" in p for p in problems)
    assert any("'typo_session'" in p for p in problems)
    assert any("'missing_one'" in p for p in problems)
    assert any("names no session" in p for p in problems)
    assert not any("'verify'" in p or "'build'" in p for p in problems)
    assert session_drift("steps:\n  - run: nox -s verify build\n", sessions) == []


def test_workflow_arguments_are_accepted_by_aipc() -> None:
    commands = noxfile_aipc_commands(NOXFILE.read_text(encoding="utf-8"))
    assert commands.get("build") == "build" and commands.get("bench") == "bench" and commands.get("doctor") == "doctor"
    assert commands.get("stage") == "stage"  # posargs go to `aipc stage`, not to the no-posargs `aipc build` form
    problems: list[str] = []
    for path in workflow_files():
        problems += posargs_problems(path.read_text(encoding="utf-8"), commands, path.name)
    assert not problems, "\n".join(problems)


def test_session_command_is_the_one_that_gets_the_posargs() -> None:
    src = (
        "import nox\n"
        "@nox.session\n"
        "def a(session):\n"
        "    if session.posargs:\n"
        "        _aipc(session, 'stage')\n"
        "    else:\n"
        "        _aipc(session, 'build', '--steps', 'stage')\n"
        "@nox.session\n"
        "def b(session):\n"
        "    if not session.posargs:\n"
        "        session.run('aipc', 'build')\n"
        "    else:\n"
        "        session.run('aipc', 'pins', *session.posargs)\n"
        "@nox.session\n"
        "def c(session):\n"
        "    _aipc(session, 'verify')\n"
    )
    assert noxfile_aipc_commands(src) == {"a": "stage", "b": "pins", "c": "verify"}
    nested = "import nox\n@nox.session\ndef u(session):\n    _aipc(session, 'pins', 'update')\n"
    assert noxfile_aipc_commands(nested) == {"u": "pins update"}


def test_argument_checker_catches_drift() -> None:
    commands = {"verify": "verify", "build": "build"}
    text = (
        "steps:\n"
        "  - run: nox -s verify -- --devise npu\n"
        "  - run: nox -s build -- --generator make\n"
        "  - run: nox -s verify -- --device cpu --json \"$OUT\"\n"
        "  - run: nox -s tests -- -k x\n"
    )
    problems = posargs_problems(text, commands)
    assert len(problems) == 2, problems
    assert "--devise" in problems[0] and "unrecognized arguments" in problems[0]
    assert "invalid choice: 'make'" in problems[1]


def test_nox_call_parsing() -> None:
    (call,) = nox_calls(r".ci-venv\Scripts\python -m nox -s bench -- --model C:\m --device npu")
    assert call.sessions == ("bench",)
    assert call.posargs == ("--model", r"C:\m", "--device", "npu")
    assert nox_calls("pip install nox") == []  # installing nox is not a call
    assert nox_calls("python -m pip install nox && echo nox") == []
    assert [c.sessions for c in nox_calls("CI=1 nox -s lint tests")] == [("lint", "tests")]
    assert [c.sessions for c in nox_calls("nox -s a b --no-venv -s c")] == [("a", "b", "c")]


# --- supply-chain rules -------------------------------------------------------------------------------------------

_USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")


def test_actions_pinned_by_full_sha_with_version_comment() -> None:
    seen = 0
    for path in workflow_files():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = _USES.match(line)
            if not m or m.group(1).startswith("./"):
                continue
            seen += 1
            ref = m.group(1).partition("@")[2]
            assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{path.name}:{n}: {m.group(1)} is not pinned by commit SHA"
            assert re.search(r"#\s*v\d+(\.\d+)*\b", m.group(2)), f"{path.name}:{n}: no '# vX.Y.Z' comment"
    assert seen >= 5


def _jobs(text: str) -> dict[str, dict[str, Any]]:
    """Job id -> the job (a mapping)."""
    jobs = load(text)["jobs"]
    assert isinstance(jobs, dict)
    return jobs


def test_least_privilege_and_concurrency() -> None:
    data = load((WORKFLOWS / "wheels.yml").read_text(encoding="utf-8"))
    assert data["permissions"] == {"contents": "read"}, "top-level permissions"
    assert data["concurrency"]["group"]
    jobs = data["jobs"]
    assert {"build-dml", "build-npu", "verify", "aipc", "release", "index", "pages"} <= set(jobs)
    # who may write what: the release job makes the release and its attestation, the pages job deploys the index
    writers = {"contents": {"release"}, "attestations": {"release"}, "id-token": {"release", "pages"},
               "pages": {"pages"}}
    for name, job in jobs.items():
        for scope, allowed in writers.items():
            granted = (job.get("permissions") or {}).get(scope) == "write"
            assert granted == (name in allowed), f"job {name}: {scope}: write only on {', '.join(sorted(allowed))}"
        for step in steps_of(job):
            if step.uses == "actions/checkout":
                assert step.with_.get("persist-credentials") is False, f"job {name}: checkout keeps credentials"


def test_workflow_follows_the_pins() -> None:
    text = (WORKFLOWS / "wheels.yml").read_text(encoding="utf-8")
    jobs = _jobs(text)
    assert "src/aipc/pins.toml" in strings(jobs["pins"]) and "wheel_versions" in strings(jobs["pins"])
    assert "fromJSON(needs.pins.outputs.pythons)" in strings(jobs["build-dml"]["strategy"])
    assert "hashFiles('src/aipc/pins.toml')" in strings(jobs["build-ort-source"])
    assert jobs["build-dml"]["runs-on"] == jobs["build-ort-source"]["runs-on"] == "windows-2022"
    assert jobs["aipc"]["runs-on"] == ["self-hosted", "windows", "aipc"]
    assert "vars.AIPC_RUNNER == 'true'" in jobs["aipc"]["if"]
    assert "startsWith(github.ref, 'refs/tags/v')" in jobs["release"]["if"]
    for asset in ("SHA256SUMS", "cyclonedx-py", "attest-build-provenance", "gh release create"):
        assert asset in strings(jobs["release"]["steps"]), asset
    # no Python version literal outside what the pins job reads (the matrix comes from pins.toml)
    assert not re.search(r"python-version:\s*['\"]?3\.\d+", text)


def pins_job_outputs(text: str, tmp_path: Path) -> dict[str, str]:
    """Run the ``pins`` job's Python step (against the checked-in pins.toml) and return what it writes to outputs."""
    found = [s.field("run") for s in steps_of(_jobs(text)["pins"]) if s.field("shell") == "python3 {0}"]
    assert len(found) == 1 and found[0], "the pins job has no one `shell: python3 {0}` step with a script"
    script = found[0]
    out = tmp_path / "github_output"
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60, capture_output=True,
                   env={**os.environ, "GITHUB_OUTPUT": str(out)})
    return dict(line.split("=", 1) for line in out.read_text(encoding="utf-8").splitlines())


def test_build_npu_runs_on_a_python_the_npu_build_supports(tmp_path: Path) -> None:
    from aipc.pins import load_pins

    text = (WORKFLOWS / "wheels.yml").read_text(encoding="utf-8")
    outputs = pins_job_outputs(text, tmp_path)
    pins = load_pins()
    npu, wheel_versions = pins.npu, pins.wheel_pythons

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("."))

    want = max((v for v in wheel_versions if key(str(npu["python_min"])) <= key(v) <= key(str(npu["python_max"]))),
               key=key)
    assert outputs.get("npu-python") == want, outputs
    jobs = _jobs(text)
    assert jobs["pins"]["outputs"]["npu-python"] == "${{ steps.pins.outputs.npu-python }}"
    setup = [s.with_.get("python-version") for s in steps_of(jobs["build-npu"]) if s.uses == "actions/setup-python"]
    assert setup == ["${{ needs.pins.outputs.npu-python }}"]
    assert "needs.pins.outputs.python }}" not in strings(jobs["build-npu"])


def test_the_merge_steps_merge(tmp_path: Path) -> None:
    """Every job's merge step runs ``merge_wheelhouses`` over dl/ into wheels/ (run here on two fake artifacts)."""
    from aipc.wheelhouse import add_wheels, verify_sums

    text = (WORKFLOWS / "wheels.yml").read_text(encoding="utf-8")
    commands = [script for _, script in run_scripts(text) if "merge_wheelhouses" in script]
    assert len(commands) == 3, commands  # verify, aipc, release
    for n, command in enumerate(commands):
        work = tmp_path / str(n)
        for part, name in (("wheels-npu-Linux", "a-1.0-py3-none-any.whl"),
                           ("wheels-dml-py3.12", "b-2.0-py3-none-any.whl")):
            src = work / "scratch" / name
            src.parent.mkdir(parents=True, exist_ok=True)
            src.write_bytes(name.encode())
            add_wheels(work / "dl" / part, [src], {})
        argv = shlex.split(command.replace("\\", "/"))  # .ci-venv\Scripts\python on the Windows runner
        assert argv[0].endswith("python") and argv[1] == "-c", argv
        proc = subprocess.run([sys.executable, *argv[1:]], cwd=work, capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["a-1.0-py3-none-any.whl", "b-2.0-py3-none-any.whl"]
        assert verify_sums(work / "wheels") == []


# --- the package index on GitHub Pages (issue 14) -------------------------------------------------------------------


def test_the_index_is_built_without_write_access_and_deployed_by_a_job_that_runs_no_code() -> None:
    jobs = _jobs((WORKFLOWS / "wheels.yml").read_text(encoding="utf-8"))
    release, index, pages = jobs["release"], jobs["index"], jobs["pages"]
    handed = [s for s in steps_of(release) if s.uses == "actions/upload-artifact"]
    assert [s.with_.get("name") for s in handed] == ["release-assets"] and handed[0].field("path") == "release/"
    assert "release" in index["needs"] and "permissions" not in index  # the top level's contents: read
    assert [s.with_.get("name") for s in steps_of(index) if s.uses == "actions/download-artifact"] == ["release-assets"]
    calls = [c for _, script in run_scripts(strings_yaml(index)) for c in nox_calls(script)]
    assert calls and all(c.sessions == ("index",) for c in calls)
    uploads = [s.field("path") for s in steps_of(index) if s.uses == "actions/upload-pages-artifact"]
    assert len(uploads) == 1 and all(c.posargs[c.posargs.index("--out") + 1] == uploads[0] for c in calls)
    assert pages["needs"] == "index" and pages["permissions"] == {"pages": "write", "id-token": "write"}
    assert pages["environment"]["name"] == "github-pages"
    assert [s.uses for s in steps_of(pages)] == ["actions/configure-pages", "actions/deploy-pages"]
    for job in (index, pages):
        assert "startsWith(github.ref, 'refs/tags/v')" in job["if"]


def strings_yaml(job: dict[str, Any]) -> str:
    """A job back as YAML text (for :func:`run_scripts`)."""
    return yaml.safe_dump({"jobs": {"x": job}})


def test_the_index_job_commands_index_a_release_folder(tmp_path: Path) -> None:
    """Each ``nox -s index`` command of the index job, run as ``aipc index`` on a release/ folder like the release
    job's (with and without the attestation bundle): the site holds the wheels, SBOM and attestation."""
    from aipc.wheelhouse import add_wheels
    from conftest import run_aipc
    from fixture_deps import pure_wheel

    text = (WORKFLOWS / "wheels.yml").read_text(encoding="utf-8")
    scripts = [script for _, script in run_scripts(strings_yaml(_jobs(text)["index"]))]
    calls = [c for script in scripts for c in nox_calls(script)]
    assert len(calls) == 2, calls
    for n, call in enumerate(calls):
        work = tmp_path / str(n)
        (work / "scratch").mkdir(parents=True)
        wheel = work / "scratch" / "a-1.0-py3-none-any.whl"
        pure_wheel(wheel, "a", "1.0", {}, {})
        add_wheels(work / "release", [wheel], {})
        for arg in call.posargs:
            if arg.startswith("release/"):
                (work / arg).write_text("{}\n", encoding="utf-8")
        proc = run_aipc("index", *call.posargs, cwd=work, clean_env=True)
        assert proc.returncode == 0, proc.stderr
        site = work / call.posargs[call.posargs.index("--out") + 1]
        published = sorted(p.name for p in (site / "files").iterdir())
        assert "a-1.0-py3-none-any.whl" in published and "aipc-wheels.cdx.json" in published
        assert ("aipc-wheels.intoto.jsonl" in published) == ("release/aipc-wheels.intoto.jsonl" in call.posargs)
    assert any("-f release/aipc-wheels.intoto.jsonl" in s for s in scripts)  # the bundle when the release made one


# --- the job structure, the compiler cache and its budget (issue 12, points 3-5) ------------------------------------

CACHE_BUDGET = 10 * 1024**3  # GitHub's cache storage per repository
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$", re.I)


def parse_size(text: str) -> int:
    """A ccache size (``4G``, ``500M``, ``2.5GB``) in bytes (ccache's suffixes are powers of 1024 with an ``i``, of
    1000 without; counted as 1024 here, the larger)."""
    m = _SIZE.match(text.strip())
    assert m, f"not a size: {text!r}"
    return int(float(m.group(1)) * 1024 ** "_KMGT".index(m.group(2).upper() or "_"))


@dataclass(frozen=True)
class WorkflowStep:
    data: dict[str, Any]

    @property
    def with_(self) -> dict[str, Any]:
        return self.data.get("with") or {}

    def field(self, name: str) -> str | None:
        """A key of the step, else of its ``with:`` (``key``, ``path``), as text."""
        value = self.data.get(name, self.with_.get(name))
        return None if value is None else str(value).strip()

    @property
    def uses(self) -> str:
        return (self.field("uses") or "").partition("@")[0]

    @property
    def text(self) -> str:
        return strings(self.data)


def steps_of(job: dict[str, Any]) -> list[WorkflowStep]:
    return [WorkflowStep(step) for step in job.get("steps") or []]


def job_env(job: dict[str, Any], name: str) -> str | None:
    value = (job.get("env") or {}).get(name)
    return None if value is None else str(value)


def job_runs(job: dict[str, Any], pins_pythons: int) -> int:
    """How many jobs one job entry starts: its matrix over the pinned Pythons, else one."""
    return pins_pythons if "fromJSON(needs.pins.outputs.pythons)" in strings(job.get("strategy")) else 1


def cache_problems(text: str, pins_pythons: int) -> list[str]:
    """Everything issue 12 asks of the workflow's caches: saved with ``if: always()`` (never the save-on-success
    ``actions/cache``), restore and save with one key that names the runner image, the compiler and the pins, and
    ccache sizes (set explicitly) that fit the budget twice (the previous run's entries stay until evicted)."""
    problems: list[str] = []
    total = 0
    for name, job in _jobs(text).items():
        steps = steps_of(job)
        saves = [s for s in steps if s.uses == "actions/cache/save"]
        restores = [s for s in steps if s.uses == "actions/cache/restore"]
        if any(s.uses == "actions/cache" for s in steps):
            problems.append(f"{name}: actions/cache saves only after a successful job; use cache/restore + cache/save")
        for save in saves:
            cond = save.field("if") or ""
            if "always()" not in cond:
                problems.append(f"{name}: the cache save runs without always() (if: {cond or '-'})")
        for step in saves + restores:
            key = step.field("key") or ""
            for part, what in (("image", "the runner image"), ("msvc", "the compiler version"),
                               ("hashFiles('src/aipc/pins.toml')", "the pins")):
                if part not in key:
                    problems.append(f"{name}: cache key {key!r} does not include {what}")
        if sorted((s.field("key"), s.field("path")) for s in saves) != \
                sorted((s.field("key"), s.field("path")) for s in restores):
            problems.append(f"{name}: every restored cache needs a save with the same key and path")
        if saves:
            paths = {s.field("path") for s in saves}
            size = job_env(job, "CCACHE_MAXSIZE")
            if size is None or paths != {job_env(job, "CCACHE_DIR")}:
                problems.append(f"{name}: a cached folder that is not the ccache directory with CCACHE_MAXSIZE set")
                continue
            total += parse_size(size) * job_runs(job, pins_pythons)
    if 2 * total > CACHE_BUDGET:
        problems.append(f"caches of one run: {total / 1024**3:.1f} GiB; with the previous run's that exceeds "
                        f"{CACHE_BUDGET / 1024**3:.0f} GiB")
    return problems


def test_caches_survive_failures_key_on_image_compiler_pins_and_fit_the_budget() -> None:
    from aipc.pins import load_pins

    text = (WORKFLOWS / "wheels.yml").read_text(encoding="utf-8")
    assert cache_problems(text, len(load_pins().wheel_pythons)) == []
    jobs = _jobs(text)
    assert [s.uses for s in steps_of(jobs["build-ort-source"])].count("actions/cache/save") == 1
    # the build step stops before the job's limit, so the save after it still runs
    build = next(s for s in steps_of(jobs["build-ort-source"]) if "nox -s build" in (s.field("run") or ""))
    job_limit = int(jobs["build-ort-source"]["timeout-minutes"])
    assert int(build.field("timeout-minutes") or job_limit) <= job_limit - 15


def test_the_cache_checker_catches_each_problem() -> None:
    good = (WORKFLOWS / "wheels.yml").read_text(encoding="utf-8")
    no_always = cache_problems(good.replace("always() && ", ""), 4)
    assert no_always[0].endswith("without always() (if: ${{ !startsWith(github.ref, 'refs/tags/') }})")
    no_image = cache_problems(good.replace("${{ steps.toolchain.outputs.image }}-", ""), 4)
    assert any("runner image" in p for p in no_image)
    no_msvc = cache_problems(good.replace("msvc${{ steps.toolchain.outputs.msvc }}", ""), 4)
    assert any("compiler" in p for p in no_msvc)
    assert any("exceeds 10 GiB" in p for p in cache_problems(good.replace("CCACHE_MAXSIZE: 4G", "CCACHE_MAXSIZE: 6G"),
                                                              4))
    old = ("    env:\n      CCACHE_DIR: C:\\b\\ccache\n      CCACHE_MAXSIZE: 4G\n    strategy:\n      matrix:\n"
           "        python: ${{ fromJSON(needs.pins.outputs.pythons) }}\n    steps:\n"
           "      - uses: actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae # v5.0.5\n"
           "        with:\n          path: C:\\b\\ccache\n          key: ccache-dml-py3-x\n")
    problems = cache_problems("on: push\njobs:\n  build-dml:\n" + old, 4)
    assert any("saves only after a successful job" in p for p in problems), problems
    assert parse_size("4G") == 4 * 1024**3 and parse_size("500M") == 500 * 1024**2
    assert parse_size("2.5GiB") == int(2.5 * 1024**3)


def test_genai_wheels_come_from_the_release_route_and_ort_from_source_runs_once() -> None:
    text = (WORKFLOWS / "wheels.yml").read_text(encoding="utf-8")
    jobs = _jobs(text)
    calls = {name: [c for s in steps_of(job) for c in nox_calls(s.field("run") or "")] for name, job in jobs.items()}
    (dml,) = calls["build-dml"]
    assert dml.sessions == ("build",) and "--ort-release" in dml.posargs
    assert dml.posargs[dml.posargs.index("--ort-release") + 1] == "nuget"
    assert int(jobs["build-dml"]["timeout-minutes"]) <= 60
    (source,) = calls["build-ort-source"]
    assert source.sessions == ("build",) and "--ort-release" not in source.posargs
    assert "matrix" not in strings(jobs["build-ort-source"])  # once, not per Python
    assert "github.event_name != 'pull_request'" in jobs["build-ort-source"]["if"]
    # the released wheels are build-dml's: the source build's artifact is not merged into wheels/
    def uploads(job: dict[str, Any]) -> list[str]:
        return [str(s.with_.get("name")) for s in steps_of(job) if s.uses == "actions/upload-artifact"]

    assert not [n for n in uploads(jobs["build-ort-source"]) if n.startswith("wheels-")]
    assert [n for n in uploads(jobs["build-dml"]) if n.startswith("wheels-")]  # the rule can see an upload


def test_no_floating_cmake_or_ninja() -> None:
    """CMake and Ninja come from [build_tools] through aipc's build venv; nothing installs a floating version."""
    for path in workflow_files():
        for line, script in run_scripts(path.read_text(encoding="utf-8")):
            for m in re.finditer(r"pip install ([^\n]*)", script):
                for word in m.group(1).split():
                    name = re.split(r"[<>=!~\[;]", word.strip("'\""))[0].lower()
                    if name in ("cmake", "ninja"):
                        assert "==" in word, f"{path.name}:{line}: {word} floats"


def test_the_attestation_is_conditional_on_a_public_repository_or_a_variable() -> None:
    text = (WORKFLOWS / "wheels.yml").read_text(encoding="utf-8")
    (attest,) = [s for s in steps_of(_jobs(text)["release"]) if s.uses == "actions/attest-build-provenance"]
    cond = attest.field("if") or ""
    assert "github.event.repository.private" in cond and "vars.AIPC_ATTEST" in cond
    create = next(s for s in steps_of(_jobs(text)["release"]) if "gh release create" in s.text)
    assert 'if [ -n "$BUNDLE" ]' in create.text  # a skipped attestation leaves no bundle to copy
