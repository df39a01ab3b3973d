"""Static KV cache: preallocated per-layer key/value buffers with a valid length and rollback."""

from __future__ import annotations

import torch


class KVCache:
    """Keys/values [n_layers, n_kv_heads, max_len, head_dim]; slots [0, length) are valid.

    `truncate(n)` is O(1): later writes overwrite the dropped slots. It serves prefix reuse
    across chat turns and speculative-decoding rollback.
    """

    def __init__(
        self,
        n_layers: int,
        n_kv_heads: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        shape = (n_layers, n_kv_heads, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.max_len = max_len
        self.length = 0

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
        """Keys and values [n_kv_heads, hi - lo, head_dim] of positions lo .. hi-1."""
        return self.k[layer, :, lo:hi], self.v[layer, :, lo:hi]

    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() * 2
