"""The scheduler of `vibe serve`: a queue of sequences, a running batch, one engine thread.

Requests `submit` a `SeqRequest` and read token ids from their `Sequence` (an asyncio queue fed
from the engine thread). The engine thread loops: drop cancelled sequences, admit waiting ones
up to `max_batch`, prefill at most `prefill_chunk` prompt tokens (first come, first served,
each sequence in its own KV slot), then run one decode step for the whole running batch and hand
each sequence its token. Sequences join and leave between steps (continuous batching); a
cancelled one frees its slot before the next step.

Chunked prefill (vLLM's): a long prompt goes in over several iterations, `prefill_chunk` tokens
each, so the running streams keep getting a token after every chunk instead of stalling for the
whole prefill. A sequence's slot is taken when its first chunk runs (after the sequences ahead
of it are fully in, so their shared prefix is there to copy). A sequence's own computation does
not depend on what else runs, so a greedy request gives the tokens it gives alone.

Two executors: `BatchDecoder` steps every running sequence in one batched forward (one device,
no draft head); with a draft head or tensor parallelism the engine's own speculative/parallel
decoder runs one sequence at a time (max batch 1), the others wait in the queue.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from vibe.serve.metrics import Metrics

PREFILL_CHUNK = 256  # prompt tokens prefilled between two decode steps


class QueueFullError(Exception):
    """The waiting queue holds max_queue sequences already."""


class ShuttingDownError(Exception):
    """The server is draining and takes no new sequences."""


@dataclass
class SeqRequest:
    prompt: list[int]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    ignore_eos: bool = False


@dataclass
class Done:
    reason: str  # stop | length | cancelled | error
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    error: BaseException | None = None


_ids = itertools.count(1)


@dataclass
class Sequence:
    """One request's generation: tokens and a final `Done` arrive on `queue` (int | Done)."""

    request: SeqRequest
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    id: int = field(default_factory=lambda: next(_ids))
    submitted: float = field(default_factory=time.monotonic)
    cancelled: bool = False
    stops: list[str] = field(default_factory=list)  # stop strings, matched by the handler
    # engine-thread state
    slot: int | None = None
    produced: int = 0
    reused: int = 0
    generator: Any = None
    stream: Iterator[int] | None = None
    last: int | None = None

    def cancel(self) -> None:
        """Stop generating; the engine thread frees the slot before its next step."""
        self.cancelled = True

    def _put(self, item: int | Done) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class Scheduler:
    """Owns the engine thread; thread-safe `submit`, `cancel` through the Sequence."""

    def __init__(
        self,
        engine: Any,
        max_batch: int,
        max_queue: int,
        metrics: Metrics,
        prefill_chunk: int = PREFILL_CHUNK,
    ) -> None:
        from engine.batch import BatchDecoder, batchable

        if prefill_chunk < 1:
            raise ValueError(f"prefill_chunk must be >= 1, got {prefill_chunk}")
        self.engine, self.metrics, self.prefill_chunk = engine, metrics, prefill_chunk
        self.batched = batchable(engine.model) and engine.speculator is None
        self.max_batch = max_batch if self.batched else 1
        self.max_queue = max_queue
        self.decoder = BatchDecoder(engine.model, self.max_batch) if self.batched else None
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []  # decoding
        self.prefilling: deque[Sequence] = deque()  # admitted, prompt not fully in yet
        self._cond = threading.Condition()
        self._stop = False
        self._accepting = True
        self._thread = threading.Thread(target=self._loop, name="vibe-serve-engine", daemon=True)

    @property
    def mode(self) -> str:
        return "batched" if self.batched else "serial"

    def start(self) -> None:
        self._thread.start()

    def submit(self, request: SeqRequest, loop: asyncio.AbstractEventLoop) -> Sequence:
        seq = Sequence(request, loop)
        with self._cond:
            if not self._accepting:
                raise ShuttingDownError("the server is shutting down")
            if len(self.waiting) >= self.max_queue:
                raise QueueFullError(f"the queue is full ({self.max_queue} waiting)")
            self.waiting.append(seq)
            self._cond.notify()
        return seq

    def close(self) -> None:
        """Stop accepting; cancel everything still queued or running; end the thread."""
        with self._cond:
            self._accepting = False
            self._stop = True
            for seq in [*self.waiting, *self.prefilling, *self.running]:
                seq.cancel()
            self._cond.notify()
        self._thread.join(timeout=30)

    def counts(self) -> tuple[int, int]:
        """(sequences holding a slot: decoding or prefilling, sequences waiting)."""
        return len(self.running) + len(self.prefilling), len(self.waiting)

    # -- engine thread ----------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._stop or self.waiting or self.running or self.prefilling):
                    self._cond.wait()
                if self._stop:
                    for seq in [*self.waiting, *self.prefilling, *self.running]:
                        self._finish(seq, "cancelled")
                    self.waiting.clear()
                    self.prefilling.clear()
                    self.running.clear()
                    return
                admit: list[Sequence] = []
                held = len(self.running) + len(self.prefilling)
                while self.waiting and held + len(admit) < self.max_batch:
                    admit.append(self.waiting.popleft())
                queued = sum(len(s.request.prompt) for s in self.waiting)
            self.running = [s for s in self.running if not self._dropped(s)]
            self.prefilling = deque(s for s in self.prefilling if not self._dropped(s))
            for seq in admit:
                if not self._dropped(seq):
                    self._admit(seq)
            if self.prefilling:
                self._prefill()
            if self.running:
                self._step()
            queued += sum(self._unprefilled(s) for s in self.prefilling)
            self.metrics.gauges(
                len(self.running) + len(self.prefilling), len(self.waiting), self._kv(),
                len(self.prefilling), queued,
            )  # fmt: skip

    def _dropped(self, seq: Sequence) -> bool:
        if seq.cancelled:
            self._finish(seq, "cancelled")
            return True
        return False

    def _admit(self, seq: Sequence) -> None:
        """Queue `seq` for chunked prefill (serial mode: start its stream)."""
        import torch

        req = seq.request
        gen = torch.Generator(device=self.engine.model.device)
        gen.manual_seed(req.seed) if req.seed is not None else gen.seed()
        seq.generator = gen
        if self.decoder is None:
            seq.stream = self._serial_stream(seq)
            self.running.append(seq)
        else:
            self.prefilling.append(seq)

    def _prefill(self) -> None:
        """Prefill up to `prefill_chunk` prompt tokens, oldest sequence first; a sequence whose
        prompt is in samples its first token and joins the running batch."""
        assert self.decoder is not None
        budget = self.prefill_chunk
        while self.prefilling and budget > 0:
            seq = self.prefilling[0]
            prompt = seq.request.prompt
            t0 = time.perf_counter()
            try:
                first = seq.slot is None
                if first:
                    seq.slot = self.decoder.acquire(prompt)
                logits, before = self.decoder.prefill_chunk(seq.slot, prompt, budget)
                if first:
                    seq.reused = before
                ran = len(self.decoder.ids(seq.slot)) - before
                budget -= ran
                self.metrics.prefill_chunk(ran, time.perf_counter() - t0)
                if logits is None:
                    continue
                tok = self._sample(seq, logits)
            except Exception as exc:  # one failing request never takes the server down
                self.prefilling.popleft()
                self._finish(seq, "error", exc, keep=False)
                continue
            self.prefilling.popleft()
            self.running.append(seq)
            self._emit(seq, tok)

    def _unprefilled(self, seq: Sequence) -> int:
        """Prompt tokens of a prefilling sequence not in its slot yet."""
        if seq.slot is None or self.decoder is None:
            return len(seq.request.prompt)
        return len(seq.request.prompt) - len(self.decoder.ids(seq.slot))

    def _serial_stream(self, seq: Sequence) -> Iterator[int]:
        from engine.events import Timings

        req = seq.request
        timings = Timings(prompt_tokens=len(req.prompt))
        stream = self.engine.decoder.generate(
            req.prompt, self._params(seq), req.max_tokens, seq.generator, frozenset(), timings,
            self.engine.speculator,
        )  # fmt: skip
        for tok in stream:
            seq.reused = timings.reused_tokens
            yield tok

    @staticmethod
    def _params(seq: Sequence) -> Any:
        """The request's `engine.sampling.SamplingParams`."""
        from engine.sampling import SamplingParams

        return SamplingParams(temperature=seq.request.temperature, top_p=seq.request.top_p)

    def _sample(self, seq: Sequence, logits: Any) -> int:
        from engine.sampling import sample

        return int(sample(logits, self._params(seq), seq.generator))

    def _step(self) -> None:
        t0 = time.perf_counter()
        batch = list(self.running)
        try:
            if self.decoder is None:
                for seq in batch:
                    assert seq.stream is not None
                    tok = next(seq.stream, None)
                    if tok is None:
                        self._finish(seq, "length")
                        self.running.remove(seq)
                    else:
                        self._emit(seq, tok)
            else:
                logits = self.decoder.step([s.slot for s in batch], [s.last for s in batch])
                greedy = logits.argmax(-1).tolist()  # one call for every greedy row
                for i, (seq, row) in enumerate(zip(batch, logits, strict=True)):
                    self._emit(
                        seq, greedy[i] if self._params(seq).greedy else self._sample(seq, row)
                    )
        except Exception as exc:  # the whole step failed: fail its sequences, keep serving
            for seq in batch:
                if seq in self.running:
                    self._finish(seq, "error", exc, keep=False)
            self.running = []
            return
        self.metrics.step(len(batch), time.perf_counter() - t0)

    def _emit(self, seq: Sequence, tok: int) -> None:
        """Hand `tok` to the request; end the sequence on a stop token or its budget."""
        seq.produced += 1
        seq.last = tok
        if seq.produced == 1:
            self.metrics.first_token(time.monotonic() - seq.submitted)
        self.metrics.tokens(1)
        seq._put(tok)
        eos = tok in self.engine.tokenizer.eos_ids and not seq.request.ignore_eos
        ctx_full = len(seq.request.prompt) + seq.produced >= self.engine.context_length
        if eos or seq.produced >= seq.request.max_tokens or ctx_full:
            self._finish(seq, "stop" if eos else "length")
            if seq in self.running:
                self.running.remove(seq)

    def _finish(
        self, seq: Sequence, reason: str, error: BaseException | None = None, keep: bool = True
    ) -> None:
        if seq.slot is not None and self.decoder is not None:
            self.decoder.release(seq.slot, keep=keep)
            seq.slot = None
        if seq.stream is not None:
            seq.stream.close()  # type: ignore[attr-defined]
            seq.stream = None
        self.metrics.finished(reason)
        seq._put(Done(reason, len(seq.request.prompt), seq.produced, seq.reused, error))

    def _kv(self) -> tuple[int, int, int]:
        """(cached tokens, capacity tokens, bytes)."""
        if self.decoder is None:
            cache = self.engine.decoder.cache
            return cache.length, cache.max_len, cache.nbytes()
        s = self.decoder.stats()
        return s.cached_tokens, s.capacity_tokens, s.nbytes
