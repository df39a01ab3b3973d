"""Engine: load a checkpoint, keep one conversation's KV cache, stream tokens and chat events."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from engine.checkpoint import Checkpoint, resolve
from engine.errors import (
    BadRequestError,
    ContextLengthError,
    EngineBusyError,
    EngineOutOfMemory,
)
from engine.events import ChatEvent, Finished, Timings, Usage
from engine.kernels import cpu_linear, cpu_quant
from engine.model import Transformer
from engine.parser import OutputParser
from engine.quant import quant_plan
from engine.sampling import SamplingParams, sample
from engine.spec import SpeculativeDecoder
from engine.tokenizer import ChatTokenizer, load_tokenizer
from engine.weights import load_into

PREFILL_CHUNK = 512  # bounds attention memory for long prompts
_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}  # fmt: skip


def pick_device(device: str | None) -> torch.device:
    """The requested device, else CUDA when available, else CPU."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise BadRequestError(f"unknown device {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BadRequestError(f"device {device!r} requested but CUDA is not available")
    return dev


def pick_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The requested dtype, else bf16 on CUDA and fp32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "", "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise BadRequestError(f"unknown dtype {dtype!r} (choose from {', '.join(_DTYPES)})")
    return _DTYPES[dtype]


def _sampling(temperature: float, top_p: float, top_k: int) -> SamplingParams:
    try:
        return SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from exc


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def load_model(
    ckpt: Checkpoint,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    max_context: int | None = None,
    tp: int = 1,
    dequantize: bool = False,
) -> Transformer:
    """Allocate the model on the chosen device and stream the checkpoint's weights into it;
    with tp > 1, rank 0's shard here and ranks 1..tp-1 in worker processes. A GGUF file's
    Q4_0/Q4_1/Q8_0 matrices stay as stored on one CPU (`dtype` is then the activations'),
    unless `dequantize`."""
    dev = pick_device(device)
    dt = pick_dtype(dtype, dev)
    limit = 32768 if dev.type == "cuda" else 8192
    max_len = max_context or min(ckpt.config.max_position_embeddings, limit)
    if max_len < 2:
        raise BadRequestError(f"max_context must be at least 2, got {max_len}")
    with _oom_as_engine_error():
        if tp > 1:
            from engine.parallel.workers import load_parallel

            return load_parallel(ckpt, tp, dev, dt, max_len)
        plan = quant_plan(ckpt, dev, tp, dequantize)
        model = Transformer(ckpt.config, max_len, dt, dev, quant=plan)
        load_into(model, ckpt.tensors(set(model.weight_targets()), model.quantized_names()))
    if dev.type == "cpu" and dt == torch.float32:
        cpu_linear.enabled()  # build the small-batch kernel now, not inside the first step
    if plan:
        cpu_quant.enabled()
    return model


@contextmanager
def _oom_as_engine_error() -> Iterator[None]:
    try:
        yield
    except torch.OutOfMemoryError as exc:
        raise EngineOutOfMemory(f"out of memory on the device: {str(exc).splitlines()[0]}") from exc


class Engine:
    """A loaded model with its tokenizer and one KV cache (one conversation at a time)."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        model: Transformer,
        tokenizer: ChatTokenizer,
        spec: SpeculativeDecoder | None = None,
    ) -> None:
        self.checkpoint = checkpoint
        self.spec = spec  # EAGLE speculative decoding when a draft head is loaded
        self.model = model
        self.tokenizer = tokenizer
        self.cache = model.new_cache()
        self.last_timings: Timings | None = None
        self._cached_ids: list[int] = []  # tokens whose keys/values are in self.cache
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        path: str | Path,
        tp: int = 1,
        draft: str | Path | None = None,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        max_context: int | None = None,
        spec_k: int | None = None,
        dequantize: bool = False,
    ) -> Engine:
        """Load a checkpoint folder, .gguf file or alias ("smollm2"), sharded over `tp` devices
        (processes on CPU). `draft`: an EAGLE head folder drafting `spec_k` tokens (default 4)
        per target forward pass (speculative decoding, same output). `dequantize`: expand a
        GGUF file's quantized weights to `dtype` at load instead of running them as stored
        (implied by `draft` for now)."""
        if tp < 1:
            raise BadRequestError(f"tensor_parallel_size must be >= 1, got {tp}")
        if spec_k is not None and (draft is None or spec_k < 1):
            raise BadRequestError("spec_k needs a draft head and must be >= 1")
        ckpt = resolve(path)
        tokenizer = load_tokenizer(ckpt.root, ckpt.gguf, ckpt.config.eos_token_ids)
        model = load_model(ckpt, device, dtype, max_context, tp, dequantize or draft is not None)
        spec = None
        if draft is not None:
            from engine.eagle_io import load_head
            from engine.parallel.workers import draft_target
            from engine.spec import EagleDrafter

            # Under TP the head drafts on rank 0 against a full-vocabulary view of the target.
            head = load_head(draft, draft_target(model, ckpt))
            spec = SpeculativeDecoder(model, EagleDrafter(head), spec_k or 4)
        return cls(ckpt, model, tokenizer, spec)

    @property
    def context_length(self) -> int:
        return self.model.max_len

    def reset(self) -> None:
        """Forget the cached prompt: the next generation prefills from scratch."""
        self.cache.truncate(0)
        self._cached_ids = []

    def close(self) -> None:
        """Drop the weights and cache so their memory can be freed."""
        self._cached_ids = []
        self.spec = None
        if self.model is not None and hasattr(self.model, "shutdown"):
            self.model.shutdown()  # tensor parallel: stop the worker processes
        self.model = None  # type: ignore[assignment]
        self.cache = None  # type: ignore[assignment]
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_tokens: int | None = None,
        reasoning_effort: str | None = None,
        seed: int | None = None,
    ) -> Iterator[ChatEvent]:
        """Stream one assistant turn for an OpenAI-format conversation; ends with Usage and
        Finished. The KV cache of the previous turn is reused up to the first differing token."""
        prompt = self.tokenizer.encode_chat(messages, tools, reasoning_effort)
        params = _sampling(temperature, top_p, 0)
        parser = OutputParser(self.tokenizer)
        eos = self.tokenizer.eos_ids
        budget = self.context_length if max_tokens is None else max_tokens  # _run clips it
        produced, reason = 0, "length"
        for tok in self._run(prompt, params, budget, seed, eos):
            produced += 1
            if tok in eos:
                reason = "stop"
                break
            yield from parser.feed(tok)
        yield from parser.finish()
        timings = self.last_timings
        reused = timings.reused_tokens if timings else 0
        yield Usage(prompt_tokens=len(prompt), completion_tokens=produced, cached_tokens=reused)
        yield Finished("tool_calls" if parser.machine.calls else reason)

    def generate(
        self,
        prompt_ids: list[int],
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        seed: int | None = None,
        stop_at_eos: bool = True,
    ) -> Iterator[int]:
        """Stream sampled token ids (the stop token included); timings land in last_timings."""
        params = _sampling(temperature, top_p, top_k)
        stop = self.tokenizer.eos_ids if stop_at_eos else frozenset()
        return self._run(list(prompt_ids), params, max_tokens, seed, stop)

    def _run(
        self,
        prompt: list[int],
        params: SamplingParams,
        max_tokens: int,
        seed: int | None,
        stop: frozenset[int],
    ) -> Iterator[int]:
        if not prompt:
            raise BadRequestError("the prompt is empty")
        if max_tokens < 0:
            raise BadRequestError(f"max_tokens must be >= 0, got {max_tokens}")
        if len(prompt) >= self.context_length:
            raise ContextLengthError(
                f"the prompt has {len(prompt)} tokens but the context holds {self.context_length}"
            )
        vocab = self.model.cfg.vocab_size
        if any(not 0 <= t < vocab for t in prompt):
            raise BadRequestError(f"prompt token ids must be in [0, {vocab})")
        return self._stream(
            prompt, params, min(max_tokens, self.context_length - len(prompt)), seed, stop
        )

    def _stream(
        self,
        prompt: list[int],
        params: SamplingParams,
        max_tokens: int,
        seed: int | None,
        stop: frozenset[int],
    ) -> Iterator[int]:
        if not self._lock.acquire(blocking=False):
            raise EngineBusyError("a generation is already running on this engine")
        try:
            timings = Timings(prompt_tokens=len(prompt))
            self.last_timings = timings
            gen = torch.Generator(device=self.model.device)
            gen.manual_seed(seed) if seed is not None else gen.seed()
            if self.spec is not None:
                yield from self.spec.stream(
                    self.cache, self._cached_ids, prompt, params, max_tokens, gen, stop, timings
                )
                return
            t0 = time.perf_counter()
            logits = self._prefill(prompt, timings)
            timings.prefill_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            for i in range(max_tokens):
                tok = int(sample(logits[-1], params, gen))
                timings.decode_tokens += 1
                timings.decode_s = time.perf_counter() - t1
                yield tok
                if tok in stop or i == max_tokens - 1:
                    break
                logits = self._forward([tok], len(self._cached_ids))
                self._cached_ids.append(tok)
            timings.decode_s = time.perf_counter() - t1
        finally:
            self._lock.release()

    def _prefill(self, prompt: list[int], timings: Timings) -> torch.Tensor:
        """Run the part of the prompt not already in the cache; return the last logits."""
        # Keep at least one token to run, so there are logits to sample from.
        reuse = min(common_prefix(self._cached_ids, prompt), len(prompt) - 1)
        self.cache.truncate(reuse)
        self._cached_ids = prompt[:reuse]
        timings.reused_tokens = reuse
        logits = None
        for lo in range(reuse, len(prompt), PREFILL_CHUNK):
            chunk = prompt[lo : lo + PREFILL_CHUNK]
            logits = self._forward(chunk, lo)
            self._cached_ids.extend(chunk)
        assert logits is not None  # the prompt is never fully reused
        return logits

    def _forward(self, ids: list[int], start: int) -> torch.Tensor:
        dev = self.model.device
        input_ids = torch.tensor(ids, dtype=torch.long, device=dev)
        positions = torch.arange(start, start + len(ids), device=dev)
        with _oom_as_engine_error():
            return self.model.forward(input_ids, positions, self.cache).logits
