"""`vibe serve --model ALIAS|PATH ...`: load the engine once and serve it over the OpenAI API."""

from __future__ import annotations

import argparse
import os
import sys
import time

from vibe.serve.scheduler import PREFILL_CHUNK  # no torch: the engine loads in main()


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="vibe serve",
        description="Serve the embedded engine over the OpenAI API (chat/completions, "
        "completions, models, health, metrics) with continuous batching.",
    )
    p.add_argument(
        "--model", required=True, help="checkpoint folder, .gguf file, or alias (smollm2)"
    )
    p.add_argument(
        "--served-model-name", default=None, help="model id in the API (default: --model)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key-env",
        metavar="VAR",
        default=None,
        help="require `Authorization: Bearer $VAR` on /v1/* (the key is read from this variable)",
    )
    p.add_argument("--max-batch", type=int, default=16, help="sequences decoded together")
    p.add_argument("--max-queue", type=int, default=64, help="waiting sequences before 503")
    p.add_argument(
        "--prefill-chunk",
        type=int,
        default=PREFILL_CHUNK,
        metavar="N",
        help=f"prompt tokens prefilled between two decode steps (default {PREFILL_CHUNK}): "
        "smaller keeps running streams smoother while a long prompt comes in",
    )
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)"
    )
    p.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: per device)")
    p.add_argument("--max-context", type=int, default=None, help="KV cache length per sequence")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for the engine (default: every core)",
    )
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel size (GPUs; CPU: processes)")
    p.add_argument("--draft", default=None, help="EAGLE draft head folder (speculative decoding)")
    p.add_argument("--spec-k", type=int, default=None, help="draft tokens per step with --draft")
    p.add_argument(
        "--dequantize", action="store_true", help="expand a GGUF file's quantized weights at load"
    )
    p.add_argument(
        "--quantize", default=None, help="int8 | int4: quantize a float checkpoint at load"
    )
    return p


def _validate(args: argparse.Namespace) -> str | None:
    if not 0 <= args.port <= 65535:
        raise _UsageError("--port must be in [0, 65535]")
    if args.max_batch < 1 or args.max_queue < 0:
        raise _UsageError("--max-batch must be >= 1 and --max-queue >= 0")
    if args.prefill_chunk < 1:
        raise _UsageError("--prefill-chunk must be >= 1")
    if args.tp < 1:
        raise _UsageError("--tp must be >= 1")
    if args.spec_k is not None and (args.draft is None or args.spec_k < 1):
        raise _UsageError("--spec-k needs --draft and must be >= 1")
    if args.threads is not None and args.threads < 1:
        raise _UsageError("--threads must be >= 1")
    if args.api_key_env is None:
        return None
    key = os.environ.get(args.api_key_env, "")
    if not key:
        raise _UsageError(f"--api-key-env {args.api_key_env}: that variable is not set or empty")
    return key


def main(argv: list[str]) -> int:
    """Entry point for `vibe serve ...`; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        key = _validate(args)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        import uvicorn

        from engine.engine import Engine
        from engine.errors import EngineError, first_line
    except ImportError as exc:
        print(
            f"error: `vibe serve` needs the local engine ({exc.name} missing); "
            "install it with: pip install 'vibe[local]'",
            file=sys.stderr,
        )
        return 1
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        engine = Engine.load(
            args.model, tp=args.tp, draft=args.draft, device=args.device, dtype=args.dtype,
            max_context=args.max_context, spec_k=args.spec_k, dequantize=args.dequantize,
            quantize=args.quantize,
        )  # fmt: skip
    except (EngineError, ValueError) as exc:
        print(
            f"error: {first_line(exc)}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    from vibe.serve.app import ServeState, build_app
    from vibe.serve.metrics import Metrics
    from vibe.serve.scheduler import Scheduler

    name = args.served_model_name or args.model
    metrics = Metrics(name)
    try:  # on a GPU the KV slots are reserved here: too many for its memory is a user error
        scheduler = Scheduler(engine, args.max_batch, args.max_queue, metrics, args.prefill_chunk)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    scheduler.start()
    app = build_app(ServeState(engine, scheduler, metrics, name, key, int(time.time())))
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=10, lifespan="on",
    )  # fmt: skip
    server = uvicorn.Server(config)
    print(
        f"vibe serve: {name} on http://{args.host}:{args.port}/v1 "
        f"({scheduler.mode}, max batch {scheduler.max_batch}, context {engine.context_length})",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.close()
        engine.close()
    return 0 if server.started else 1
