"""Static KV cache: preallocated per-layer key/value buffers with a valid length and rollback.

`KVPool` holds the caches of many sequences (continuous batching) in one tensor, so a batched
kernel indexes them by slot id; each slot is handed out as an ordinary `KVCache` over a view.
"""

from __future__ import annotations

import math
import mmap

import torch


def zeros(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A zero-filled buffer. On CPU an anonymous mapping in small pages: the pages are the
    kernel's zero page until written, so a cache of 8,192 positions commits only the memory of
    the positions a sequence has reached, and allocating it costs no memset. (Not calloc:
    numpy asks for 2 MiB huge pages, and one write would commit a whole layer's plane.)"""
    if torch.device(device).type != "cpu" or not hasattr(mmap, "MAP_ANONYMOUS"):  # (Windows)
        return torch.zeros(shape, dtype=dtype, device=device)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes == 0:
        return torch.zeros(shape, dtype=dtype)
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        buf.madvise(mmap.MADV_NOHUGEPAGE)
    return torch.frombuffer(buf, dtype=torch.uint8).view(dtype).view(shape)  # keeps buf alive


class KVCache:
    """Keys/values [n_layers, n_kv_heads, max_len, head_dim]; slots [0, length) are valid.

    `truncate(n)` is O(1): later writes overwrite the dropped slots. It serves prefix reuse
    across chat turns and speculative-decoding rollback.

    The buffers hold `storage` (default `dtype`); `write` rounds to it and `view` returns
    `dtype`. A GGUF model on CPU keeps fp16 keys/values (`Transformer.new_cache`,
    `cpu_decode.cache_storage`), as llama.cpp does: attention reads half the bytes, which
    decides the speed of long contexts.
    """

    def __init__(
        self,
        n_layers: int,
        n_kv_heads: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
        storage: torch.dtype | None = None,
    ) -> None:
        shape = (n_layers, n_kv_heads, max_len, head_dim)
        self.k = zeros(shape, storage or dtype, device)
        self.v = zeros(shape, storage or dtype, device)
        self.dtype = dtype
        self.max_len = max_len
        self.length = 0

    @classmethod
    def over(cls, k: torch.Tensor, v: torch.Tensor) -> KVCache:
        """A cache on existing buffers [n_layers, n_kv_heads, max_len, head_dim] (no copy)."""
        if k.dim() != 4 or k.shape != v.shape:
            raise ValueError(f"KVCache.over: k {tuple(k.shape)}, v {tuple(v.shape)}")
        cache = cls.__new__(cls)
        cache.k, cache.v, cache.max_len, cache.length = k, v, k.shape[2], 0
        cache.dtype = k.dtype
        return cache

    def truncate(self, n: int) -> None:
        """Forget every position >= n."""
        if not 0 <= n <= self.length:
            raise ValueError(f"cannot truncate a cache of length {self.length} to {n}")
        self.length = n

    def write(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store k, v [T, n_kv_heads, head_dim] at positions start .. start+T-1."""
        end = start + k.shape[0]
        self.k[layer, :, start:end] = k.transpose(0, 1)
        self.v[layer, :, start:end] = v.transpose(0, 1)

    def view(self, layer: int, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values [n_kv_heads, hi - lo, head_dim] of positions lo .. hi-1 (`dtype`)."""
        k, v = self.k[layer, :, lo:hi], self.v[layer, :, lo:hi]
        if k.dtype != self.dtype:
            return k.to(self.dtype), v.to(self.dtype)
        return k, v

    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() * 2


class KVPool:
    """The KV caches of `slots` sequences in one pair of buffers
    [slots, n_layers, n_kv_heads, max_len, head_dim], allocated at once (a GPU server reserves
    its cache memory up front, as vLLM does). `slot(i)` is slot i as a `KVCache` whose k/v are
    contiguous views, so every user of a cache works on it unchanged; `layer(i)` is layer i of
    every slot as [slots, max_len, n_kv_heads, head_dim] views, the batched kernels' layout."""

    def __init__(
        self,
        slots: int,
        n_layers: int,
        n_kv_heads: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        if slots < 1:
            raise ValueError(f"a KV pool needs at least one slot, got {slots}")
        shape = (slots, n_layers, n_kv_heads, max_len, head_dim)
        self.k = zeros(shape, dtype, device)
        self.v = zeros(shape, dtype, device)
        self.slots, self.max_len = slots, max_len

    def slot(self, i: int) -> KVCache:
        """Slot i as a cache of length 0 (its buffers are shared with the pool)."""
        if not 0 <= i < self.slots:
            raise IndexError(f"slot {i} outside a pool of {self.slots}")
        return KVCache.over(self.k[i], self.v[i])

    def layer(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of layer i, every slot: [slots, max_len, n_kv_heads, head_dim] views."""
        return self.k[:, i].transpose(1, 2), self.v[:, i].transpose(1, 2)

    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() * 2
