"""`linear(x, w)` for CPU decoding: a small C kernel (`cpu_linear.c`) for fp32 steps of 1 to 16
tokens (decode, speculative verification), `F.linear` for everything else.

MKL is far from the bandwidth limit on these shapes. Measured on the 2-core VM (2 threads,
one row): SmolLM2's 49152x576 LM head 10.7 ms with MKL's gemv against 3.9 ms here, a 4096x4096
matrix 3.1 against 1.4 ms; and MKL's sgemm with 2-16 rows costs up to 2x a 1-row product,
although both read the same weights (here a 5-row product costs about 1.3x a 1-row one).
The fused decode step (`cpu_decode.c`) calls the same row kernel (`vibe_f32_rows`).

The kernel is compiled on first use with the system C compiler (`cc -O3 -march=native
-fopenmp`) into a per-user cache and loaded with ctypes; it shares torch's OpenMP runtime, so it
uses `torch.get_num_threads()` threads. Without a compiler, on a compile error, or with
`VIBE_CPU_KERNELS=0`, every call takes `F.linear` (same results up to float rounding).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

ENV_VAR = "VIBE_CPU_KERNELS"
MIN_ROWS, MAX_ROWS = 1, 16
_SOURCE = Path(__file__).with_name("cpu_linear.c")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vibe" / "kernels"


def _cpu_signature() -> str:
    """What -march=native compiles for: the CPU model and flags (a cached build is per CPU)."""
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace")
        lines = [ln for ln in info.splitlines() if ln.startswith(("model name", "flags"))][:2]
    except OSError:
        lines = [platform.processor()]
    return "\n".join(lines)


def _compile(sources: Sequence[Path], target: Path) -> None:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise OSError("no C compiler")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        cmd = [cc, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC"]
        cmd += [str(s) for s in sources] + ["-o", tmp, "-lm"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        os.replace(tmp, target)  # atomic: concurrent processes never load a half-written file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build_library(source: Path | Sequence[Path], stem: str) -> ctypes.CDLL | None:
    """`source` (one C file or several linked together, with the headers next to them)
    compiled once per source text and CPU into the cache, and loaded; None when it cannot be
    built or loaded. Shared by the C kernels in this package."""
    sources = [source] if isinstance(source, Path) else list(source)
    if platform.system() != "Linux" or not all(s.exists() for s in sources):
        return None
    headers = sorted({h for s in sources for h in s.parent.glob("*.h")})
    digest = hashlib.sha256(_cpu_signature().encode())
    for path in [*sources, *headers]:
        digest.update(path.read_bytes())
    target = _cache_dir() / f"{stem}-{digest.hexdigest()[:16]}.so"
    try:
        if not target.exists():
            _compile(sources, target)
        return ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError):
        return None


def switched_on() -> bool:
    """False when VIBE_CPU_KERNELS says off; read on every call: tests and users may flip it."""
    flag = os.environ.get(ENV_VAR)
    return flag is None or flag.strip().lower() not in ("0", "false", "off")


@functools.cache
def _library() -> ctypes.CDLL | None:
    """The compiled kernel, or None when it cannot be built or loaded (checked once)."""
    lib = build_library(_SOURCE, "cpu_linear")
    if lib is None:
        return None
    fn = lib.vibe_linear_f32
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [ptr, i64, ptr, i64, ptr, i64, i64, i64, i64]
    fn.restype = ctypes.c_int
    norm = lib.vibe_add_rmsnorm_f32
    norm.argtypes = [ptr, ptr, ptr, ptr, ptr, i64, i64, ctypes.c_float]
    norm.restype = None
    return lib


def enabled() -> bool:
    """True when the C kernel is switched on (VIBE_CPU_KERNELS, default on) and available."""
    return switched_on() and _library() is not None


def linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x [..., K] @ w[N, K].T, like `F.linear(x, w)` without bias. `w` may also be a
    quantized matrix (`engine.quant.QuantWeight`), which runs its own kernel."""
    if not isinstance(w, torch.Tensor):
        return w.linear(x)
    K = x.shape[-1]
    M = x.numel() // K if K else 0
    if (
        M < MIN_ROWS
        or M > MAX_ROWS
        or x.device.type != "cpu"
        or x.dtype != torch.float32
        or w.dtype != torch.float32
        or w.dim() != 2
        or w.stride(1) != 1
        or w.shape[1] != K
        or (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))
        or not enabled()
    ):
        return F.linear(x, w)
    x2 = x.reshape(M, K)
    if x2.stride(1) != 1:
        x2 = x2.contiguous()
    N = w.shape[0]
    out = torch.empty((M, N), dtype=torch.float32)
    lib = _library()
    assert lib is not None
    lib.vibe_linear_f32(
        x2.data_ptr(), x2.stride(0), w.data_ptr(), w.stride(0), out.data_ptr(), N, M, N, K
    )
    return out.view(*x.shape[:-1], N)


def add_rmsnorm(
    delta: torch.Tensor, resid: torch.Tensor | None, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(rmsnorm(resid + delta) * weight, resid + delta) for 1 to 16 contiguous fp32 CPU rows
    in one C call (a decode step's norms cost a dozen torch ops each); None: not applicable,
    use torch."""
    K = delta.shape[-1]
    if (
        delta.dtype != torch.float32
        or delta.device.type != "cpu"
        or not delta.is_contiguous()
        or delta.numel() > MAX_ROWS * K
        or weight.dtype != torch.float32
        or (resid is not None and (resid.dtype != torch.float32 or not resid.is_contiguous()))
        or (torch.is_grad_enabled() and delta.requires_grad)
        or not enabled()
    ):
        return None
    lib = _library()
    assert lib is not None
    total = torch.empty_like(delta)
    out = torch.empty_like(delta)
    lib.vibe_add_rmsnorm_f32(
        delta.data_ptr(), None if resid is None else resid.data_ptr(), total.data_ptr(),
        weight.data_ptr(), out.data_ptr(), delta.numel() // K, K, eps,
    )  # fmt: skip
    return out, total
