"""Engine: load a checkpoint, keep one conversation's KV cache, stream tokens and chat events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from engine import gpu_quant
from engine.checkpoint import Checkpoint, resolve
from engine.decoder import Decoder
from engine.errors import (
    BadRequestError,
    ContextLengthError,
    EngineBusyError,
    EngineOutOfMemory,
)
from engine.events import ChatEvent, Finished, Timings, Usage
from engine.kernels import cpu_linear, omp
from engine.model import Transformer
from engine.parser import OutputParser
from engine.quant import pack_matrices, quant_plan
from engine.quantize import check_quantize, quantize_plan, quantize_stream
from engine.sampling import SamplingParams
from engine.spec import Speculator
from engine.tokenizer import ChatTokenizer, load_tokenizer
from engine.weights import load_into

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


def load_model(
    ckpt: Checkpoint,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    max_context: int | None = None,
    tp: int = 1,
    dequantize: bool = False,
    quantize: str | None = None,
) -> Transformer:
    """Allocate the model on the chosen device and stream the checkpoint's weights into it;
    with tp > 1, rank 0's shard here and ranks 1..tp-1 in worker processes. A GGUF file's
    Q4_0/Q4_1/Q8_0 matrices (and AWQ/GPTQ ones, repacked) stay as stored on the CPU (`dtype`
    is then the activations'), unless `dequantize`. `quantize` ("int8", "int4"): quantize a
    float checkpoint's matrices into blocks as they load (`engine.quantize`)."""
    dev = pick_device(device)
    dt = pick_dtype(dtype, dev)
    limit = 32768 if dev.type == "cuda" else 8192
    max_len = max_context or min(ckpt.config.max_position_embeddings, limit)
    if max_len < 2:
        raise BadRequestError(f"max_context must be at least 2, got {max_len}")
    if quantize:
        check_quantize(ckpt, quantize, dev, tp)
    elif tp > 1 and ckpt.quant_label():
        raise BadRequestError(f"{ckpt.quant_label()} checkpoints run with --tp 1 for now")
    with _oom_as_engine_error():
        if tp > 1:
            from engine.parallel.loader import check_blocks
            from engine.parallel.workers import load_parallel

            kinds: dict[str, int | str]
            if quantize:
                kinds = dict(gpu_quant.quant_plan(ckpt.config, quantize))
                gpu_quant.check_shards(ckpt.config, kinds, tp)
            else:  # a GGUF file's blocks stay as stored on every CPU rank
                kinds = dict(quant_plan(ckpt, dev, dequantize))
                check_blocks(ckpt.config, kinds, tp)  # before any worker starts
            return load_parallel(ckpt, tp, dev, dt, max_len, kinds)
        plan: dict[str, int | str]
        on_gpu = dev.type == "cuda"
        kept_on_gpu = ckpt.gpu_kinds() if on_gpu and not (dequantize or quantize) else {}
        if quantize and on_gpu:  # engine.gpu_quant: each matrix quantizes as it is copied in
            plan = dict(gpu_quant.quant_plan(ckpt.config, quantize))
        elif quantize:
            plan = dict(quantize_plan(ckpt.config, quantize))
        elif kept_on_gpu:  # FP8, AWQ/GPTQ as stored
            plan = dict(kept_on_gpu)
        else:
            plan = dict(quant_plan(ckpt, dev, dequantize))
        model = Transformer(ckpt.config, max_len, dt, dev, quant=plan)
        keep = model.quantized_names()
        gpu_kept = {n for n, kind in plan.items() if isinstance(kind, str)} if not quantize else ()
        tensors = ckpt.tensors(set(model.weight_targets()), keep, gpu_kept)
        cpu_blocks = quantize and not on_gpu
        load_into(model, quantize_stream(tensors, plan, keep) if cpu_blocks else tensors)
        if plan and dev.type == "cpu":
            pack_matrices(model)  # the kernel's tiled layout, once every row is in
    if dev.type == "cpu" and dt == torch.float32:
        cpu_linear.enabled()  # build the small-batch kernel now, not inside the first step
    return model


@contextmanager
def _oom_as_engine_error() -> Iterator[None]:
    try:
        yield
    except torch.OutOfMemoryError as exc:
        raise EngineOutOfMemory(f"out of memory on the device: {str(exc).splitlines()[0]}") from exc


class Engine:
    """A loaded model with its tokenizer and one decoder (one conversation at a time): the
    checkpoint, encoding/decoding, chat and the lock live here; decoding in `engine.decoder`."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        model: Transformer,
        tokenizer: ChatTokenizer,
        speculator: Speculator | None = None,
    ) -> None:
        self.checkpoint = checkpoint
        self.speculator = speculator  # EAGLE speculative decoding when a draft head is loaded
        self.model = model
        self.tokenizer = tokenizer
        self.decoder = Decoder(model)
        self.last_timings: Timings | None = None
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
        quantize: str | None = None,
    ) -> Engine:
        """Load a checkpoint folder, .gguf file or alias ("smollm2"), sharded over `tp` devices
        (processes on CPU). `draft`: an EAGLE head folder drafting `spec_k` tokens (default 4)
        per target forward pass (speculative decoding, same output). `dequantize`: expand a
        GGUF file's quantized weights to `dtype` at load instead of running them as stored
        (a draft head shares the stored embedding and LM head). `quantize` ("int8" | "int4"): quantize a float
        checkpoint's matrices into Q8_0 / Q4_1 blocks as they load (CPU, one process)."""
        if tp < 1:
            raise BadRequestError(f"tensor_parallel_size must be >= 1, got {tp}")
        if spec_k is not None and (draft is None or spec_k < 1):
            raise BadRequestError("spec_k needs a draft head and must be >= 1")
        ckpt = resolve(path)
        if quantize:  # before the tokenizer: a wrong flag fails fast
            check_quantize(ckpt, quantize, pick_device(device), tp)
        tokenizer = load_tokenizer(ckpt.root, ckpt.gguf, ckpt.config.eos_token_ids)
        model = load_model(ckpt, device, dtype, max_context, tp, dequantize, quantize)
        speculator = None
        if draft is not None:
            from engine.eagle_io import load_head
            from engine.parallel.workers import draft_target
            from engine.spec import EagleDrafter

            # Under TP the head drafts on rank 0 against a full-vocabulary view of the target.
            head = load_head(draft, draft_target(model, ckpt))
            speculator = Speculator(EagleDrafter(head), spec_k or 4)
        # Loading started this thread's OpenMP workers; the thread that generates (often
        # another: vibe serve, the agent's provider) starts its own. Two live pools on few
        # cores make every barrier of a decode step sleep instead of spin (engine.kernels.omp).
        engine = cls(ckpt, model, tokenizer, speculator)
        omp.release_workers()
        return engine

    @property
    def context_length(self) -> int:
        return self.model.max_len

    def reset(self) -> None:
        """Forget the cached prompt: the next generation prefills from scratch."""
        self.decoder.reset()

    def close(self) -> None:
        """Drop the weights and cache so their memory can be freed."""
        self.speculator = None
        if self.model is not None and hasattr(self.model, "shutdown"):
            self.model.shutdown()  # tensor parallel: stop the worker processes
        self.model = None  # type: ignore[assignment]
        self.decoder = None  # type: ignore[assignment]
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
        for tok in self._run(prompt, params, budget, seed, eos, True):
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
        speculate: bool = True,
    ) -> Iterator[int]:
        """Stream sampled token ids (the stop token included); timings land in last_timings.
        `speculate=False` decodes without the draft head even when one is loaded."""
        params = _sampling(temperature, top_p, top_k)
        stop = self.tokenizer.eos_ids if stop_at_eos else frozenset()
        return self._run(list(prompt_ids), params, max_tokens, seed, stop, speculate)

    def _run(
        self,
        prompt: list[int],
        params: SamplingParams,
        max_tokens: int,
        seed: int | None,
        stop: frozenset[int],
        speculate: bool,
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
        budget = min(max_tokens, self.context_length - len(prompt))
        return self._stream(prompt, params, budget, seed, stop, speculate)

    def _stream(
        self,
        prompt: list[int],
        params: SamplingParams,
        max_tokens: int,
        seed: int | None,
        stop: frozenset[int],
        speculate: bool,
    ) -> Iterator[int]:
        if not self._lock.acquire(blocking=False):
            raise EngineBusyError("a generation is already running on this engine")
        try:
            timings = Timings(prompt_tokens=len(prompt))
            self.last_timings = timings
            gen = torch.Generator(device=self.model.device)
            gen.manual_seed(seed) if seed is not None else gen.seed()
            spec = self.speculator if speculate else None
            with _oom_as_engine_error():
                yield from self.decoder.generate(
                    prompt, params, max_tokens, gen, stop, timings, spec
                )
        finally:
            self._lock.release()
