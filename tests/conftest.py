"""Shared fixtures. Tests make their own data; nothing is loaded from a hub or the network at run time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ``AIPC_CACHE`` for tests that must not share venvs or models with the user's cache."""
    cache = tmp_path / "aipc-cache"
    monkeypatch.setenv("AIPC_CACHE", str(cache))
    yield cache


def shared_cache() -> Path:
    """The cache shared by slow end-to-end tests (venvs, tiny model, downloaded sdists/wheels), so reruns are warm.

    It lives outside the checkout (CI clones afresh each run); everything in it is keyed by a fingerprint of its
    inputs, so reuse is safe. ``AIPC_TEST_CACHE`` overrides it (point it at an empty directory for a cold run).
    """
    from aipc.venvs import cache_dir

    return Path(os.environ.get("AIPC_TEST_CACHE", cache_dir() / "test-cache"))


def write_pins(tmp_path: Path, **replace: str) -> Path:
    """A copy of the shipped pins file with exact text replacements (each must match), for refusal tests."""
    from aipc.pins import DEFAULT_PINS

    text = DEFAULT_PINS.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "pins.toml"
    path.write_text(text, encoding="utf-8")
    return path
