"""The decode core: one sequence's KV cache and token ids over a model, with prefill, step and
speculative decoding. Tokenizer-free: the Engine encodes, decodes, parses and locks.

Invariant: `cache.length == len(ids)`; the cache holds the keys/values of exactly `ids`. Every
forward step goes through a `StepRunner` (CUDA graphs where they apply). Plain decoding is
`generate` without a speculator; with one, `speculate` drafts K tokens per round and verifies
them in one target step, keeping the longest valid prefix plus one token.

A batched server (continuous batching) keeps one Decoder-like slot per sequence: the state here
is per sequence (its cache, its ids, its positions start at len(ids)), so a batched variant can
hold many of them over one slot-indexed cache without changing this interface.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import torch

from engine.events import Timings
from engine.graphs import StepRunner
from engine.kv_cache import KVCache
from engine.model import ForwardOutput, Transformer
from engine.sampling import SamplingParams, sample
from engine.spec import Speculator, accept_tokens

PREFILL_CHUNK = 512  # bounds attention memory for long prompts


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class Decoder:
    """One sequence being decoded by `model`: its KV cache and the token ids it holds."""

    def __init__(self, model: Transformer, cache: KVCache | None = None) -> None:
        self.model = model
        self.cache = cache if cache is not None else model.new_cache()
        self.ids: list[int] = []  # tokens whose keys/values are in self.cache
        self.runner = StepRunner(model, self.cache)

    @property
    def max_len(self) -> int:
        return self.cache.max_len

    def reset(self) -> None:
        """Forget every cached token: the next prefill runs from scratch."""
        self.truncate(0)

    def truncate(self, n: int) -> None:
        """Keep the first n tokens (O(1): later steps overwrite the rest)."""
        self.cache.truncate(n)
        del self.ids[n:]

    def run(
        self, ids: Sequence[int], all_logits: bool = False, capture: Sequence[int] = ()
    ) -> ForwardOutput:
        """Append `ids` to the sequence through one forward step."""
        out = self.runner.forward(ids, len(self.ids), all_logits, capture)
        self.ids.extend(ids)
        return out

    def step(self, token: int) -> torch.Tensor:
        """Append one token; the next token's logits [1, V]."""
        return self.run([token]).logits

    def prefill(
        self,
        prompt: Sequence[int],
        limit: int | None = None,
        capture: Sequence[int] = (),
        each: Callable[[ForwardOutput], None] | None = None,
    ) -> tuple[ForwardOutput, int]:
        """Make the sequence `prompt`, reusing the cached common prefix (at most `limit`
        tokens, and never all of it: the last one runs, for its logits). Runs in chunks of
        PREFILL_CHUNK, each output passed to `each`; returns (the last output, tokens reused)."""
        if not prompt:
            raise ValueError("the prompt is empty")
        prompt = list(prompt)  # a copy: truncating self.ids must not change it
        reuse = min(common_prefix(self.ids, prompt), len(prompt) - 1)
        if limit is not None:
            reuse = min(reuse, limit)
        self.truncate(reuse)
        out = None
        for lo in range(reuse, len(prompt), PREFILL_CHUNK):
            out = self.run(prompt[lo : lo + PREFILL_CHUNK], capture=capture)
            if each is not None:
                each(out)
        assert out is not None  # the prompt is never fully reused
        return out, reuse

    def generate(
        self,
        prompt: Sequence[int],
        params: SamplingParams,
        max_tokens: int,
        generator: torch.Generator | None,
        stop: frozenset[int],
        timings: Timings,
        speculator: Speculator | None = None,
    ) -> Iterator[int]:
        """Yield up to max_tokens sampled ids after `prompt` (a stop token included and ends
        it); fills `timings`. With a speculator, drafts and verifies (same distribution)."""
        if speculator is not None:
            yield from self.speculate(
                speculator, prompt, params, max_tokens, generator, stop, timings
            )
            return
        t0 = time.perf_counter()
        out, timings.reused_tokens = self.prefill(prompt)
        logits = out.logits
        timings.prefill_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        try:
            for i in range(max_tokens):
                tok = int(sample(logits[-1], params, generator))
                timings.decode_tokens += 1
                timings.decode_s = time.perf_counter() - t1
                yield tok
                if tok in stop or i == max_tokens - 1:
                    break
                logits = self.step(tok)
        finally:
            timings.decode_s = time.perf_counter() - t1

    def speculate(
        self,
        spec: Speculator,
        prompt: Sequence[int],
        params: SamplingParams,
        max_tokens: int,
        generator: torch.Generator | None,
        stop: frozenset[int],
        timings: Timings,
    ) -> Iterator[int]:
        """`generate` with draft-then-verify rounds; fills timings and `spec.stats`."""
        stats = spec.start()
        capture = spec.drafter.capture_layers
        t0 = time.perf_counter()
        # The draft cache's pairs stay valid up to the common prefix of the draft's source.
        valid_pairs = max(0, common_prefix(spec.draft_ids, prompt) - 1)
        feats: list[torch.Tensor] = []
        out, reuse = self.prefill(
            prompt, valid_pairs, capture, lambda o: feats.append(spec.drafter.features(o))
        )
        timings.reused_tokens = reuse
        timings.prefill_s = time.perf_counter() - t0
        if max_tokens <= 0:
            return
        pending_feats, start = torch.cat(feats), reuse
        ids = list(prompt)  # every token so far; the cache holds all but the last
        round_out = [int(sample(out.logits[-1], params, generator))]
        t1 = time.perf_counter()
        emitted, round_start = 0, len(self.ids) - 1
        try:
            while True:
                for j, tok in enumerate(round_out):
                    ids.append(tok)
                    emitted += 1
                    timings.decode_tokens = emitted
                    timings.decode_s = time.perf_counter() - t1
                    yield tok
                    if tok in stop or emitted >= max_tokens:
                        # Keep the cache equal to everything emitted but the last token.
                        self.truncate(min(len(self.ids), round_start + 1 + j))
                        return
                L = len(self.ids)
                k = min(spec.k, max_tokens - emitted - 1, self.max_len - L - 1)
                if k < 0:
                    return
                td = time.perf_counter()
                drafts, q = torch.empty(0, dtype=torch.long, device=self.model.device), None
                if k > 0:
                    drafts, q = spec.propose(ids, pending_feats, start, k, params, generator)
                tv = time.perf_counter()
                out = self.run([ids[-1], *drafts.tolist()], all_logits=True, capture=capture)
                accepted = accept_tokens(
                    drafts, q, out.logits, params, generator, spec.forced_alpha
                )
                n = accepted.shape[0] - 1
                stats.draft_s += tv - td
                stats.verify_s += time.perf_counter() - tv
                stats.record(k, n, spec.drafter.last_copied if k > 0 else ())
                self.truncate(L + n + 1)
                new_feats = spec.drafter.features(out)[: n + 1]
                if k > 0:
                    pending_feats, start = new_feats, L
                else:
                    pending_feats = torch.cat((pending_feats, new_feats))
                round_start = L
                round_out = accepted.tolist()
        finally:
            timings.decode_s = time.perf_counter() - t1
