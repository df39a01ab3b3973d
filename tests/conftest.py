"""Shared fixtures: `fake_llm`, a loopback fake LLM server (see tests/fakes/server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.server import FakeLLMServer


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    """A started server: `.url` (ends in /v1), `.script(...)`, `.requests`, `.dialect`."""
    with FakeLLMServer() as server:
        yield server
