"""Shared fixtures: `fake_llm`, a loopback fake LLM server (see tests/fakes/server.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.fakes.server import FakeLLMServer

# CI runs a fixed sequence of examples (derandomized), so a red build always reproduces and a
# green one cannot turn red by a new random draw; local runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    """A started server: `.url` (ends in /v1), `.script(...)`, `.requests`, `.dialect`."""
    with FakeLLMServer() as server:
        yield server
