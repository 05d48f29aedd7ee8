"""Helpers of the real-upstream check (issue 10): tree snapshots and the Ninja log's job overlap. Fast, offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aipc.errors import AipcError
from aipc.fsutil import tree_changes, tree_digest, tree_snapshot
from aipc.wheelbuild.ninjalog import Job, log_max_overlap, max_overlap, parse_ninja_log

# --- tree snapshots -------------------------------------------------------------------------------------------


def _tree(root: Path) -> Path:
    (root / "src" / "sub").mkdir(parents=True)
    (root / "src" / "a.cc").write_text("int a;\n")
    (root / "src" / "sub" / "b.h").write_text("#pragma once\n")
    (root / "build.py").write_text("print('hi')\n")
    os.symlink("src/a.cc", root / "link")
    return root


def test_snapshot_is_stable_and_digest_ignores_listing_order(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    first, second = tree_snapshot(root), tree_snapshot(root)
    assert first == second
    assert tree_digest(first) == tree_digest(dict(reversed(list(first.items()))))
    assert set(first) == {".", "src", "src/sub", "src/a.cc", "src/sub/b.h", "build.py", "link"}
    assert first["link"].startswith("l ") and first["link"].endswith(" src/a.cc")


@pytest.mark.parametrize("change, expected", [
    (lambda r: (r / "src" / "a.cc").write_text("int b;\n"), "changed src/a.cc"),  # bytes
    (lambda r: (r / "src" / "a.cc").chmod(0o755), "changed src/a.cc"),  # mode only
    (lambda r: (r / "src" / "__pycache__").mkdir(), "added src/__pycache__"),  # an empty directory
    (lambda r: (r / "build.py").unlink(), "removed build.py"),
    (lambda r: (r / "build.py").rename(r / "Build.py"), "added Build.py"),  # a name
    (lambda r: (os.unlink(r / "link"), os.symlink("build.py", r / "link")), "changed link"),  # a link target
    (lambda r: (r / "src").chmod(0o700), "changed src"),  # a directory's mode
])
def test_every_kind_of_change_is_seen(tmp_path: Path, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    root = _tree(tmp_path / "t")
    before = tree_snapshot(root)
    change(root)
    after = tree_snapshot(root)
    assert tree_digest(before) != tree_digest(after)
    assert expected in tree_changes(before, after)


def test_same_bytes_rewritten_is_no_change(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    before = tree_snapshot(root)
    (root / "src" / "a.cc").write_text("int a;\n")  # rewritten (new mtime), same bytes and mode
    assert tree_changes(before, tree_snapshot(root)) == []


def test_a_symlinked_directory_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = _tree(tmp_path / "t")
    os.symlink(outside, root / "ext")
    before = tree_snapshot(root)
    (outside / "x").write_text("x")  # outside the tree: not part of it
    assert tree_changes(before, tree_snapshot(root)) == []


# --- Ninja log ------------------------------------------------------------------------------------------------

HEADER = "# ninja log v7\n"
ORIGIN_MS = 1_795_970_267_000  # wall-clock start of the first Ninja run (ms)


def _line(start: int, end: int, out: str, h: str = "", origin: int = ORIGIN_MS) -> str:
    """A v7 line as Ninja 1.13 writes it: mtime = the command's wall-clock start in ns."""
    return f"{start}\t{end}\t{(origin + start) * 1_000_000 + 387}\t{out}\t{h or format(abs(hash(out)), 'x')}\n"


def test_two_jobs_at_a_time_is_two() -> None:
    log = HEADER + "".join([_line(0, 100, "a.o"), _line(5, 150, "b.o"), _line(100, 200, "c.o"),
                            _line(150, 260, "d.o"), _line(260, 270, "lib.a")])
    (run,) = parse_ninja_log(log)
    found = max_overlap(run)
    assert found.jobs == 2  # a job ending at t does not overlap one starting at t
    assert found.at_ms == 5 and found.running == ("a.o", "b.o")


def test_three_overlapping_jobs_are_counted() -> None:
    log = HEADER + "".join([_line(0, 300, "a.o"), _line(10, 310, "b.o"), _line(20, 320, "c.o"),
                            _line(320, 330, "d.o")])
    assert max_overlap(parse_ninja_log(log)[0]).jobs == 3


def test_outputs_of_one_edge_count_once_and_zero_length_jobs_never_overlap() -> None:
    log = HEADER + "".join([_line(0, 50, "x.h", "aa"), _line(0, 50, "x.cc", "aa"),  # one edge, two outputs
                            _line(60, 60, "phony", "bb"), _line(60, 90, "y.o", "cc")])
    (run,) = parse_ninja_log(log)
    assert len(run) == 3
    assert max_overlap(run).jobs == 1


def test_a_rerun_starts_a_new_run_and_the_worst_run_is_reported(tmp_path: Path) -> None:
    first = [_line(0, 100, "a.o"), _line(50, 120, "b.o")]  # 2 at once
    later = ORIGIN_MS + 5_000  # a second Ninja run 5 s later: its times restart at 0
    second = [_line(0, 10, "a.o", origin=later), _line(1, 20, "b.o", origin=later), _line(2, 30, "c.o", origin=later)]
    log = tmp_path / ".ninja_log"
    log.write_text(HEADER + "".join(first + second))
    runs = parse_ninja_log(log.read_text())
    assert [len(r) for r in runs] == [2, 3]
    found = log_max_overlap(log)
    assert (found.jobs, found.run) == (3, 1)


def test_a_recompacted_log_keeps_each_line_in_its_own_run() -> None:
    """What genai's build.py left after a rerun: Ninja rewrote the log, and the rerun's cmake.verify_globs line
    (9-30 ms of the rerun, 23 minutes later) came first, among the first build's lines (17 ms on)."""
    rerun = ORIGIN_MS + 1_375_000
    log = HEADER + "".join([_line(9, 30, "CMakeFiles/cmake.verify_globs", origin=rerun),
                            _line(17, 1220, "base64.cc.o"), _line(17, 4868, "ocos.cc.o"),
                            _line(1220, 7312, "string_tensor.cc.o")])
    runs = parse_ninja_log(log)
    assert sorted(len(r) for r in runs) == [1, 3]
    assert max(max_overlap(r).jobs for r in runs) == 2  # not 3: the verify_globs line is from another run


def test_old_log_versions_split_runs_where_end_times_drop() -> None:
    log = "# ninja log v5\n" + "".join(f"{a}\t{b}\t0\t{o}\th{o}\n" for a, b, o in
                                      [(0, 100, "a"), (50, 120, "b"), (0, 10, "c"), (1, 20, "d"), (2, 30, "e")])
    assert [len(r) for r in parse_ninja_log(log)] == [2, 3]


def test_empty_log_has_no_overlap() -> None:
    assert parse_ninja_log(HEADER) == []
    assert max_overlap([]).jobs == 0


@pytest.mark.parametrize("text, words", [
    ("", "not a Ninja log"),
    ("0\t1\t2\ta.o\th\n", "not a Ninja log"),
    ("# ninja log v4\n", "version 4"),
    (HEADER + "0\t1\ta.o\n", "line 2 has 3 fields"),
    (HEADER + "x\t1\t2\ta.o\th\n", "not integers"),
    (HEADER + "0\t1\tnot-a-time\ta.o\th\n", "not integers"),
])
def test_bad_logs_are_one_line_errors(text: str, words: str) -> None:
    with pytest.raises(AipcError) as err:
        parse_ninja_log(text, "L")
    assert words in err.value.one_line() and "\n" not in err.value.one_line()


def test_missing_log_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AipcError, match="cannot read Ninja log"):
        log_max_overlap(tmp_path / ".ninja_log")


def test_job_record_keeps_the_fields() -> None:
    (run,) = parse_ninja_log(HEADER + _line(3, 9, "o/a.o", "ff"))
    assert run == [Job(3, 9, "o/a.o", "ff")]
