"""The step runner the decode core calls: a model's forward steps against one KV cache, with
CUDA graphs for fused-kernel steps (decode: 1 token, speculative verify: K + 1 tokens).

A step shape (tokens, all_logits, captured layers) is captured the second time it is seen (the
first run compiles the Triton kernels eagerly and one-off shapes, such as a shortened last
verify, never pay for a capture), then replayed. The cache length is computed on the device
from the positions, so a replay needs no host sync. `VIBE_CUDA_GRAPHS=0` turns graphs off; on
CPU and under tensor parallelism they are never used. The graphs belong to the runner (and so
to its cache): the model and the cache know nothing of them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from engine import fast_path
from engine.kernels.cuda_graph import CudaGraphStep
from engine.model import ForwardOutput

if TYPE_CHECKING:
    from engine.kv_cache import KVCache
    from engine.model import Transformer

ENV_VAR = "VIBE_CUDA_GRAPHS"


def enabled(model: Transformer) -> bool:
    """Graphs apply: a CUDA model on one device, not disabled by VIBE_CUDA_GRAPHS=0."""
    if os.environ.get(ENV_VAR, "1").strip() == "0":
        return False
    return model.device.type == "cuda" and model.tp.size == 1


class StepRunner:
    """Runs forward steps of `model` against `cache`, replaying captured graphs when they
    apply. The graphs share one memory pool and never run concurrently; outputs are cloned
    out of their static buffers."""

    def __init__(self, model: Transformer, cache: KVCache) -> None:
        self.model, self.cache = model, cache
        self.steps: dict[Any, CudaGraphStep] = {}
        self._seen: dict[Any, int] = {}
        self._pool: Any = None

    def forward(
        self, ids: Sequence[int], start: int, all_logits: bool = False, capture: Sequence[int] = ()
    ) -> ForwardOutput:
        """Run tokens `ids` at positions start .. start+len-1; sets the cache length."""
        model, dev = self.model, self.model.device
        input_ids = torch.tensor(list(ids), dtype=torch.long, device=dev)
        positions = torch.arange(start, start + len(ids), device=dev)
        if enabled(model) and fast_path.wanted(model.norm, len(ids)):
            end = start + len(ids)
            if end > self.cache.max_len:
                raise ValueError(f"positions up to {end} exceed the cache ({self.cache.max_len})")
            out = self._replay(input_ids, positions, all_logits, tuple(sorted(set(capture))))
            if out is not None:
                self.cache.length = end
                return out
        return model.forward(
            input_ids, positions, self.cache, all_logits=all_logits, capture_layers=capture
        )

    def _replay(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        all_logits: bool,
        capture: tuple[int, ...],
    ) -> ForwardOutput | None:
        """Replay (capturing if due) and return the outputs; None: run this step eagerly."""
        key = (input_ids.shape[0], all_logits, capture)
        step = self.steps.get(key)
        if step is None:
            self._seen[key] = self._seen.get(key, 0) + 1
            if self._seen[key] < 2:
                return None
            model, cache = self.model, self.cache

            def fn(ids: torch.Tensor, pos: torch.Tensor) -> Any:
                length = pos[-1:] + 1  # on the device: no sync, valid for every replay
                out = model.forward(
                    ids, pos, cache, all_logits=all_logits, capture_layers=capture, length=length
                )
                return out.logits, out.hidden, out.layer_hidden

            # Capture warms up on these very inputs: its KV writes are the ones this step makes.
            step = CudaGraphStep(fn, (input_ids, positions), enabled=True, pool=self._pool)
            self._pool = step.pool
            self.steps[key] = step
        logits, hidden, layers = step(input_ids, positions)
        return ForwardOutput(
            logits=logits.clone(),
            hidden=hidden.clone(),
            layer_hidden={i: t.clone() for i, t in layers.items()},
        )
