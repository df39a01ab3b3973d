"""CUDA graphs for fast-path steps: decode (1 token) and speculative verify (K + 1 tokens).

A step shape (tokens, all_logits, captured layers) is captured against one KVCache the second
time it is seen (the first run compiles the Triton kernels eagerly and one-off shapes, such as
a shortened last verify, never pay for a capture), then replayed. The cache length is computed
on the device from the positions, so a replay needs no host sync. `VIBE_CUDA_GRAPHS=0` turns
graphs off; on CPU and under tensor parallelism they are never used.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from engine import fast_path
from engine.kernels.cuda_graph import CudaGraphStep

if TYPE_CHECKING:
    from engine.kv_cache import KVCache
    from engine.model import Transformer

ENV_VAR = "VIBE_CUDA_GRAPHS"
Outputs = tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]


def enabled(model: Transformer) -> bool:
    """Graphs apply: a CUDA model on one device, not disabled by VIBE_CUDA_GRAPHS=0."""
    if os.environ.get(ENV_VAR, "1").strip() == "0":
        return False
    return model.device.type == "cuda" and model.tp.size == 1


class StepGraphs:
    """The graphs captured against one KVCache, keyed by step shape (they share a memory pool
    and never run concurrently). Outputs are cloned out of the static buffers."""

    def __init__(self) -> None:
        self.steps: dict[Any, CudaGraphStep] = {}
        self.seen: dict[Any, int] = {}
        self.pool: Any = None

    def run(
        self,
        model: Transformer,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        cache: KVCache,
        all_logits: bool,
        capture_layers: Sequence[int],
    ) -> Outputs | None:
        """Replay (capturing if due) and return the outputs; None: run this step eagerly."""
        key = (input_ids.shape[0], all_logits, tuple(sorted(set(capture_layers))))
        step = self.steps.get(key)
        inputs = (input_ids.to(torch.int64), positions.to(torch.int64))
        if step is None:
            self.seen[key] = self.seen.get(key, 0) + 1
            if self.seen[key] < 2:
                return None

            def fn(ids: torch.Tensor, pos: torch.Tensor) -> Outputs:
                length = pos[-1:] + 1  # on the device: no sync, valid for every replay
                return fast_path.run(model, ids, pos, cache, length, all_logits, key[2])

            # Capture warms up on these very inputs: its KV writes are the ones this step makes.
            step = CudaGraphStep(fn, inputs, enabled=True, pool=self.pool)
            self.pool = step.pool
            self.steps[key] = step
        logits, hidden, layers = step(*inputs)
        return logits.clone(), hidden.clone(), {i: t.clone() for i, t in layers.items()}


def run_step(
    model: Transformer,
    input_ids: torch.Tensor,
    positions: torch.Tensor,
    cache: KVCache,
    end: int,
    all_logits: bool,
    capture_layers: Sequence[int],
) -> Outputs:
    """One fast-path step of T tokens ending at position `end - 1`: replayed from a CUDA graph
    when graphs apply, eagerly otherwise."""
    if enabled(model):
        graphs = cache.graphs.get("steps")
        if graphs is None:
            graphs = cache.graphs["steps"] = StepGraphs()
        out = graphs.run(model, input_ids, positions, cache, all_logits, capture_layers)
        if out is not None:
            return out
    return fast_path.run(model, input_ids, positions, cache, end, all_logits, capture_layers)
