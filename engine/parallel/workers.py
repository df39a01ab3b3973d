"""Rank 0's side of tensor parallelism: start ranks 1..N-1 as child processes, drive them over a
command channel, watch them, and stop them. Rank 0 is the calling (vibe) process itself.

Every forward pass is a command (token ids, start position, flags) sent to all workers before
rank 0 runs its own shard; sampling and speculative accept/reject happen on rank 0 only, so the
ranks cannot diverge. A dead worker surfaces as one `TensorParallelError` within seconds.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from engine.checkpoint import Checkpoint
from engine.config import ModelConfig
from engine.errors import first_line
from engine.kv_cache import KVCache
from engine.model import ForwardOutput, Transformer
from engine.parallel.comm import (
    TensorParallelError,
    backend_for,
    make_group,
    master_store,
    rank_device,
)
from engine.parallel.loader import load_shard
from engine.parallel.shard import TPContext

TIMEOUT_S = float(os.environ.get("VIBE_TP_TIMEOUT", "60"))  # per collective and rendezvous
_ROOT = str(Path(os.path.abspath(__file__)).parents[2])  # the folder holding our `engine` package
# Import our engine first, whatever the worker's cwd holds (python -c puts cwd on sys.path).
_BOOT = f"import sys; sys.path.insert(0, {_ROOT!r}); from engine.parallel.worker_main import main; main()"


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class WorkerPool:
    """Ranks 1..N-1 of one engine as child processes, each with a command channel and a log."""

    def __init__(self, ckpt: Checkpoint, size: int, device: torch.device, dtype: torch.dtype,
                 max_len: int, port: int, quant: Mapping[str, int | str] | None = None) -> None:  # fmt: skip
        self.size, self.error = size, None
        self.procs: list[subprocess.Popen[bytes]] = []
        self.conns: list[Connection] = []
        self.logs: list[Path] = []
        path = ckpt.files[0] if ckpt.kind == "gguf" else ckpt.root
        threads = max(1, torch.get_num_threads() // size) if device.type == "cpu" else 1
        atexit.register(self.close)
        for rank in range(1, size):
            ours, theirs = socket.socketpair()
            spec = {
                "rank": rank, "size": size, "port": port, "path": str(path),
                "device": str(rank_device(device, rank)),
                "dtype": str(dtype).removeprefix("torch."), "max_len": max_len,
                "threads": threads, "timeout_s": TIMEOUT_S, "parent": os.getpid(),
                "fd": theirs.fileno(), "quant": dict(quant or {}),
            }  # fmt: skip
            log = Path(tempfile.gettempdir()) / f"vibe-tp-{os.getpid()}-{id(self)}-rank{rank}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-c", _BOOT, json.dumps(spec)],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    pass_fds=(theirs.fileno(),), start_new_session=True,
                )  # fmt: skip
            theirs.close()
            self.procs.append(proc)
            self.conns.append(Connection(ours.detach()))
            self.logs.append(log)

    def wait_for(self, stage: str) -> None:
        """Block until every worker reports `stage`, failing fast if one errs or dies."""
        pending = set(range(len(self.procs)))
        while pending:
            for i in sorted(pending):
                self._raise_if_dead(i)
                if self.conns[i].poll(0.05):
                    try:
                        msg = self.conns[i].recv()
                    except (EOFError, OSError) as exc:
                        self._raise_if_dead(i, grace=2.0)
                        msg = f"tensor-parallel worker {i + 1} closed its channel"
                        raise self._fail(msg) from exc
                    if msg[0] == "error":
                        raise self._fail(f"tensor-parallel worker failed: {msg[1]}")
                    if msg[0] == stage:
                        pending.discard(i)

    def send(self, cmd: tuple[Any, ...]) -> None:
        """Send one command to every worker."""
        if self.error is not None:
            raise self.error
        for i, conn in enumerate(self.conns):
            self._raise_if_dead(i)
            try:
                conn.send(cmd)
            except OSError as exc:
                self._raise_if_dead(i, grace=2.0)
                msg = f"tensor-parallel worker {i + 1} stopped reading commands"
                raise self._fail(msg) from exc

    def failure(self, exc: BaseException) -> TensorParallelError:
        """The error to report for a failed collective: a dead worker if there is one."""
        if self.error is not None:
            return self.error
        for i in range(len(self.procs)):
            try:
                self._raise_if_dead(i, grace=1.0)
            except TensorParallelError as err:
                return err
        return self._fail(f"tensor-parallel collective failed: {first_line(exc)}")

    def _raise_if_dead(self, i: int, grace: float = 0.0) -> None:
        deadline = time.monotonic() + grace
        while (code := self.procs[i].poll()) is None:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.02)
        raise self._fail(
            f"tensor-parallel worker {i + 1} {_exit_text(code)}{self._log_tail(i)}; "
            "reload the model"
        )

    def _log_tail(self, i: int) -> str:
        try:
            lines = self.logs[i].read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f" ({lines[-1].strip()[:200]}; log: {self.logs[i]})" if lines else ""

    def _fail(self, message: str) -> TensorParallelError:
        self.error = TensorParallelError(message)
        self.close(keep_logs=True)
        return self.error

    def close(self, keep_logs: bool = False) -> None:
        """Stop every worker: ask, wait briefly, then kill; no process is left behind."""
        for conn in self.conns:
            try:
                conn.send(("shutdown",))
                conn.close()
            except OSError:
                pass
        self.conns = []
        deadline = time.monotonic() + 3.0
        for proc in self.procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.error is None:
            self.error = TensorParallelError("the tensor-parallel engine was closed")
        if not keep_logs:
            for log in self.logs:
                log.unlink(missing_ok=True)
        atexit.unregister(self.close)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]


class DriverTransformer(Transformer):
    """Rank 0's shard of the model: each forward is first commanded to the workers.

    Every cache made by `new_cache` has a twin on each worker, named by a key sent with each
    forward; twins of caches rank 0 has dropped are freed with the next command.
    """

    def __init__(
        self, cfg: ModelConfig, max_len: int, dtype: torch.dtype, device: torch.device,
        tp: TPContext, pool: WorkerPool, store: Any, quant: Mapping[str, int | str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(cfg, max_len, dtype, device, tp, quant)
        self.pool, self.store = pool, store  # the store must outlive the group
        self._keys = itertools.count()
        self._twins: weakref.WeakKeyDictionary[KVCache, int] = weakref.WeakKeyDictionary()
        self._dropped: list[int] = []

    def new_cache(self) -> KVCache:
        cache = super().new_cache()
        self._twins[cache] = key = next(self._keys)
        weakref.finalize(cache, self._dropped.append, key)
        return cache

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        cache: Any,
        *,
        all_logits: bool = False,
        capture_layers: Sequence[int] = (),
    ) -> ForwardOutput:
        start = int(positions[0])
        if start + input_ids.shape[0] > cache.max_len:  # checked before any worker is involved
            raise ValueError(f"positions up to {start + input_ids.shape[0]} exceed the cache")
        key = self._twins.get(cache)
        if key is None:
            raise ValueError("under tensor parallelism, caches must come from model.new_cache()")
        dropped, self._dropped[:] = list(self._dropped), []
        ids = input_ids.tolist()
        self.pool.send(("forward", ids, start, all_logits, tuple(capture_layers), key, dropped))
        try:
            return super().forward(
                input_ids, positions, cache, all_logits=all_logits, capture_layers=capture_layers
            )
        except RuntimeError as exc:  # gloo/NCCL errors: a peer died or timed out
            raise self.pool.failure(exc) from exc
        except BaseException:  # interrupted mid-pass: the ranks are out of step for good
            self.pool.failure(RuntimeError("a forward pass was interrupted"))
            raise

    def shutdown(self) -> None:
        self.pool.close()


@dataclass
class FullVocabTarget:
    """What an EAGLE head needs of its target on rank 0: the whole embedding and LM head
    (the target's own are vocabulary shards), with the target's config, dtype and device."""

    cfg: ModelConfig
    max_len: int
    dtype: torch.dtype
    device: torch.device
    embed: torch.Tensor  # [V, dim]
    lm_head: torch.Tensor  # [V, dim]


def draft_target(model: Transformer, ckpt: Checkpoint) -> Transformer | FullVocabTarget:
    """The target to build a draft head against: the model itself on one device; under tensor
    parallelism a full-vocabulary view on rank 0, where drafting and accept/reject run."""
    if not isinstance(model, DriverTransformer):
        return model
    cfg = model.cfg
    names = {"model.embed_tokens.weight"} | (set() if cfg.tie_embeddings else {"lm_head.weight"})
    full = dict(ckpt.tensors(names))
    cast = {k: v.to(device=model.device, dtype=model.dtype) for k, v in full.items()}
    embed = cast["model.embed_tokens.weight"]
    head = embed if cfg.tie_embeddings else cast["lm_head.weight"]
    return FullVocabTarget(cfg, model.max_len, model.dtype, model.device, embed, head)


def load_parallel(
    ckpt: Checkpoint,
    size: int,
    device: torch.device,
    dtype: torch.dtype,
    max_len: int,
    quant: Mapping[str, int | str] | None = None,
) -> DriverTransformer:
    """Start ranks 1..size-1, join the group, and load rank 0's shard here (in parallel).
    `quant` by canonical name: `engine.gpu_quant` kinds (each rank quantizes its own shard)
    or GGML types (GGUF blocks kept as stored on CPU ranks, split on block boundaries). On CPU
    every rank, this process included, takes 1/size of torch's threads: N ranks of all the
    threads each would spin against each other at every barrier and all-reduce."""
    TPContext(0, size).check(ckpt.config)
    dev0 = rank_device(device, 0)
    store = master_store(size, TIMEOUT_S)
    pool = WorkerPool(ckpt, size, device, dtype, max_len, store.port, quant)
    if device.type == "cpu":  # rank 0 takes its share of the cores, as each worker does
        torch.set_num_threads(max(1, torch.get_num_threads() // size))
    try:
        pool.wait_for("joined")
        group = make_group(store, 0, size, dev0, TIMEOUT_S)
        tp = TPContext(0, size, group)
        model = DriverTransformer(ckpt.config, max_len, dtype, dev0, tp, pool, store, quant)
        load_shard(model, ckpt)
        pool.wait_for("ready")
    except BaseException:
        pool.close(keep_logs=pool.error is not None)
        raise
    return model


__all__ = [
    "DriverTransformer",
    "FullVocabTarget",
    "TensorParallelError",
    "WorkerPool",
    "backend_for",
    "draft_target",
    "load_parallel",
]
