"""Capture a fixed-shape step (decode, speculative verify) into a CUDA graph and replay it.

On CPU, or when disabled, the same object just calls the function, so callers have one code path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


class CudaGraphStep:
    """`fn(*inputs)` captured with static input buffers; each call copies new inputs in and replays.

    `fn` must take only tensors of the example shapes and avoid host syncs (`.item()`,
    `.tolist()`, data-dependent shapes). The returned outputs are the graph's static buffers: the
    next call overwrites them, so clone what must outlive it. Capture first runs `fn`
    `warmup_iters` times on copies of the example inputs, so its side effects (e.g. KV-cache
    writes at the example positions) happen then too. Graphs that never run at the same time may
    share one memory `pool` (`torch.cuda.graph_pool_handle()`, or `.pool` of an earlier step).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        example_inputs: Sequence[torch.Tensor],
        *,
        enabled: bool | None = None,
        warmup_iters: int = 2,
        pool: Any = None,
    ) -> None:
        self.fn = fn
        self._specs = [(tuple(t.shape), t.dtype, t.device) for t in example_inputs]
        on_cuda = bool(example_inputs) and all(t.is_cuda for t in example_inputs)
        if enabled and not on_cuda:
            raise ValueError("CudaGraphStep: capture needs every example input on a CUDA device")
        self.enabled = on_cuda if enabled is None else enabled
        self.static_inputs: list[torch.Tensor] = []
        self.static_outputs: Any = None
        self.pool = pool
        self._graph: torch.cuda.CUDAGraph | None = None
        if self.enabled:
            self._capture(example_inputs, warmup_iters)

    def _capture(self, example_inputs: Sequence[torch.Tensor], warmup_iters: int) -> None:
        self.static_inputs = [t.clone() for t in example_inputs]
        # Warm up on a side stream (lazy init, autotuning, allocator) as CUDA graph docs require.
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup_iters):
                self.fn(*self.static_inputs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            self.static_outputs = self.fn(*self.static_inputs)
        self._graph = graph
        if self.pool is None:
            self.pool = graph.pool()

    def _check(self, inputs: Sequence[torch.Tensor]) -> None:
        if len(inputs) != len(self._specs):
            raise ValueError(
                f"CudaGraphStep: expected {len(self._specs)} inputs, got {len(inputs)}"
            )
        for i, (t, (shape, dtype, device)) in enumerate(zip(inputs, self._specs, strict=True)):
            if tuple(t.shape) != shape or t.dtype != dtype or t.device != device:
                raise ValueError(
                    f"CudaGraphStep: input {i} is {tuple(t.shape)} {t.dtype} on {t.device}, "
                    f"captured as {shape} {dtype} on {device}"
                )

    def __call__(self, *inputs: torch.Tensor) -> Any:
        """Run the step on `inputs` (shapes, dtypes and devices as captured)."""
        self._check(inputs)
        if not self.enabled:
            return self.fn(*inputs)
        for static, new in zip(self.static_inputs, inputs, strict=True):
            if new is not static:
                static.copy_(new)
        return self.replay()

    def replay(self) -> Any:
        """Replay with whatever is in `static_inputs` now (skip the copies by writing there)."""
        if self._graph is None:
            raise RuntimeError("CudaGraphStep.replay: nothing captured (CPU or disabled)")
        self._graph.replay()
        return self.static_outputs
