"""Subagents on the local engine share one model: their requests take turns (the engine runs
one generation at a time and refuses a second), and nothing deadlocks. Two concurrent streams
of the `local` provider on a tiny random model, as two children of one turn would make."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("torch")
pytest.importorskip("mistral_common")

from tests.fakes import tiny_models
from vibe.config.loader import load_config
from vibe.config.schema import ModelConfig, ProviderConfig
from vibe.messages import Message
from vibe.providers.base import ChatRequest, FinishChunk, TextChunk
from vibe.providers.local import LocalProvider

VOCAB = 1000 + 1500


def test_concurrent_requests_take_turns(tmp_path):
    path = tmp_path / "tiny"
    tiny_models.save_hf(tiny_models.mistral(vocab_size=VOCAB), path)
    tiny_models.mistral_common_tokenizer_file(path, "v13", vocab_size=VOCAB)
    pconf = ProviderConfig(name="engine", backend="local", device="cpu", dtype="float32")
    model = ModelConfig(name=str(path), provider="engine", alias="tiny")
    loaded = load_config(tmp_path, home=tmp_path / "home")
    provider = LocalProvider(model, pconf, loaded)

    async def one(text: str) -> tuple[str, str]:
        request = ChatRequest(
            model=str(path), messages=[Message("user", text)], tools=[], max_tokens=12
        )
        out, finish = [], ""
        async for chunk in provider.stream(request):
            if isinstance(chunk, TextChunk):
                out.append(chunk.text)
            elif isinstance(chunk, FinishChunk):
                finish = chunk.reason
        return "".join(out), finish

    async def main() -> list[tuple[str, str]]:
        return await asyncio.wait_for(
            asyncio.gather(one("first child"), one("second child"), one("third")), 120
        )

    results = asyncio.run(main())
    assert [finish for _, finish in results] == ["length"] * 3  # every one ran to its limit
    # Served one after another, each is what it would be alone (greedy, deterministic).
    alone = asyncio.run(asyncio.wait_for(one("second child"), 60))
    assert alone == results[1]
