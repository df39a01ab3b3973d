"""Fixtures shared by the end-to-end tests: a VIBE_HOME, a clean environment pointing at it and a
working folder that is a git project (helpers to run `vibe` are in tests/fakes/vibe_proc.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.vibe_proc import vibe_env


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty $VIBE_HOME."""
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    """This environment without VIBE_* or *_API_KEY variables, VIBE_HOME=home, NO_COLOR=1."""
    return vibe_env(home)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty working folder with a .git folder (a project root)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / ".git").mkdir()
    return work


@pytest.fixture
def workdir(work: Path) -> Path:
    return work
