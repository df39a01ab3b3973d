"""Chunked prefill in `vibe serve`'s scheduler (a tiny random model, in process): a long prompt
admitted while another stream decodes goes in over several chunks with a decode step of the
running stream after each, and both greedy outputs equal the tokens each gives alone."""

from __future__ import annotations

import asyncio
import random

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mistral_common")

from engine.batch import BatchDecoder  # noqa: E402
from engine.engine import Engine  # noqa: E402
from tests.fakes import tiny_models  # noqa: E402
from vibe.serve.metrics import Metrics  # noqa: E402
from vibe.serve.scheduler import Done, Scheduler, SeqRequest  # noqa: E402

VOCAB = 1000 + 1500
CHUNK = 16


class Recorder(Metrics):
    """Metrics that also log, in engine-thread order, each prefill chunk and decode step."""

    def __init__(self) -> None:
        super().__init__("tiny")
        self.log: list[tuple[str, int]] = []

    def prefill_chunk(self, tokens: int, seconds: float) -> None:
        self.log.append(("chunk", tokens))
        super().prefill_chunk(tokens, seconds)

    def step(self, batch: int, seconds: float) -> None:
        self.log.append(("step", batch))
        super().step(batch, seconds)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny")
    tiny_models.save_hf(tiny_models.mistral(vocab_size=VOCAB), path)
    tiny_models.mistral_common_tokenizer_file(path, "v13", vocab_size=VOCAB)
    eng = Engine.load(path, device="cpu", dtype="float32", max_context=512)
    yield eng
    eng.close()


def ids(n: int, seed: int, lo: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(lo, lo + 400) for _ in range(n)]


async def drain(seq, limit: int | None = None) -> list[int]:
    out: list[int] = []
    while not isinstance(item := await seq.queue.get(), Done):
        out.append(item)
        if limit is not None and len(out) == limit:
            seq.cancel()
    return out


def test_long_prompt_is_prefilled_in_chunks_between_decode_steps(engine):
    short, long_ = ids(10, 1, 1000), ids(300, 2, 1500)  # no shared prefix
    alone_a = list(engine.generate(short, 120, stop_at_eos=False))
    alone_b = list(engine.generate(long_, 8, stop_at_eos=False))
    metrics = Recorder()
    sched = Scheduler(engine, max_batch=4, max_queue=4, metrics=metrics, prefill_chunk=CHUNK)
    sched.start()

    async def scenario() -> tuple[list[int], list[int], int]:
        loop = asyncio.get_running_loop()
        a = sched.submit(SeqRequest(short, 450, ignore_eos=True), loop)
        first = await a.queue.get()  # A is decoding now
        b = sched.submit(SeqRequest(long_, 8, ignore_eos=True), loop)
        out_b = await drain(b)
        produced_a = a.produced  # A still running when B finished (450 tokens budget)
        out_a = [first, *await drain(a, limit=119)][:120]  # a step may land before the cancel
        return out_a, out_b, produced_a

    try:
        out_a, out_b, produced_a = asyncio.run(scenario())
    finally:
        sched.close()
    assert out_b == alone_b  # greedy: exactly the tokens it gives alone
    assert out_a == alone_a
    assert produced_a < 450
    chunks = [i for i, (kind, _) in enumerate(metrics.log) if kind == "chunk"]
    assert metrics.log[chunks[0]] == ("chunk", 10)  # A's prompt: one chunk
    b_chunks = chunks[1:]
    assert [metrics.log[i][1] for i in b_chunks] == [CHUNK] * 18 + [300 - 18 * CHUNK]
    # Between B's first and last chunk, A got one decode step after every chunk.
    between = metrics.log[b_chunks[0] : b_chunks[-1] + 1]
    assert between == [("chunk", CHUNK), ("step", 1)] * 18 + [("chunk", 12)]
    assert metrics.log[b_chunks[-1] + 1] == ("step", 2)  # then B joins the batch
    text = metrics.render()
    assert 'vibe_serve_prefill_chunks_total{model="tiny"} 20' in text
    assert 'vibe_serve_prefill_tokens_total{model="tiny"} 310' in text


def test_prefill_chunks_give_the_logits_of_one_prefill(engine):
    prompt = ids(100, 3, 1000)
    dec = BatchDecoder(engine.model, 2)
    whole, chunked = dec.acquire(prompt), dec.acquire(ids(5, 4, 1900))
    want, reused = dec.prefill(whole, prompt)
    assert reused == 0
    steps = []
    while True:
        logits, before = dec.prefill_chunk(chunked, prompt, 32)
        steps.append(before)
        if logits is not None:
            break
    assert steps == [0, 32, 64, 96]
    assert dec.ids(chunked) == prompt
    torch.testing.assert_close(logits, want, rtol=1e-4, atol=1e-4)
    dec.release(chunked)
    # A prompt sharing a cached prefix starts from it; the last token always runs.
    again = dec.acquire(prompt)
    assert dec.prefill_chunk(again, prompt, 32)[1] == 99
    with pytest.raises(ValueError, match="budget"):
        dec.prefill_chunk(again, prompt, 0)
