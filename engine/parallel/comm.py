"""Process-group plumbing: backend from the device (NCCL on CUDA, gloo on CPU), a rendezvous
store on a free loopback port, and per-engine groups that never touch torch's global default."""

from __future__ import annotations

import datetime
from typing import Any

import torch

from engine.errors import EngineError

HOST = "127.0.0.1"


class TensorParallelError(EngineError):
    """Raised when a tensor-parallel worker cannot start, dies, or a collective fails."""


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def rank_device(base: torch.device, rank: int) -> torch.device:
    """Rank r's device: cuda:(base index + r) on GPUs, the CPU otherwise."""
    if base.type != "cuda":
        return base
    index = (base.index or 0) + rank
    if index >= torch.cuda.device_count():
        raise TensorParallelError(
            f"tensor parallelism over GPUs {base.index or 0}..{index} needs {index + 1} GPUs, "
            f"but {torch.cuda.device_count()} are visible"
        )
    return torch.device("cuda", index)


def master_store(size: int, timeout_s: float) -> Any:
    """Rank 0's rendezvous store; the OS picks a free port (read it from `.port`)."""
    from torch.distributed import TCPStore

    return TCPStore(
        HOST, 0, size, True, timeout=datetime.timedelta(seconds=timeout_s), wait_for_workers=False
    )


def join_store(port: int, size: int, timeout_s: float) -> Any:
    from torch.distributed import TCPStore

    return TCPStore(HOST, port, size, False, timeout=datetime.timedelta(seconds=timeout_s))


def make_group(store: Any, rank: int, size: int, device: torch.device, timeout_s: float) -> Any:
    """A gloo or NCCL group of `size` ranks built directly on `store` (blocks until all join).

    Built without `init_process_group`, so one process may hold several engines' groups.
    """
    from torch import distributed as dist

    timeout = datetime.timedelta(seconds=timeout_s)
    prefixed = dist.PrefixStore("vibe-tp/", store)
    if backend_for(device) == "nccl":
        torch.cuda.set_device(device)
        opts = dist.ProcessGroupNCCL.Options()
        opts._timeout = timeout
        return dist.ProcessGroupNCCL(prefixed, rank, size, opts)
    return dist.ProcessGroupGloo(prefixed, rank, size, timeout)
