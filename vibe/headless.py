"""`vibe run`: the agent without a human. Builds everything from config and flags, runs one
turn, and writes events as text, one JSON object, or JSON lines. Exit codes: 0 finished,
1 usage/config, 2 model/API failure, 3 limit, 130 interrupted (SIGINT/SIGTERM)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from vibe.agent.tokens import context_info
from vibe.config.secrets import redact
from vibe.errors import Interrupted, UsageError, VibeError
from vibe.events import (
    AssistantMessage,
    Compacted,
    ErrorEvent,
    Event,
    HookEvent,
    SubagentEvent,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
    UsageUpdated,
)
from vibe.export import ChangedFiles, check_output_dir, write_export
from vibe.messages import Usage
from vibe.options import RunOptions

log = logging.getLogger(__name__)


@dataclass
class _Output:
    """Projects agent events onto stdout in the chosen format; everything is redacted."""

    fmt: str
    secrets: list[str] = field(default_factory=list)
    session_id: str = ""
    started: float = field(default_factory=time.monotonic)
    denials: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, Any] | None = None  # the last UsageUpdated: used/threshold tokens
    extra: dict[str, Any] = field(default_factory=dict)  # a subagent's: parent_tool_call_id
    changed: ChangedFiles = field(default_factory=ChangedFiles)  # for --output-dir
    final: TurnFinished | None = None  # the run's result, once written
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr

    def line(self, obj: dict[str, Any]) -> None:
        text = redact(json.dumps({**obj, **self.extra}, ensure_ascii=False), self.secrets)
        self.out.write(text + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.err.write(redact(text, self.secrets).replace("\n", " ") + "\n")
        self.err.flush()

    def init(self, model: str, cwd: Path, tools: list[str]) -> None:
        if self.fmt == "stream-json":
            self.line(
                {
                    "type": "init",
                    "session_id": self.session_id,
                    "model": model,
                    "cwd": str(cwd),
                    "tools": tools,
                }
            )

    def event(self, event: Event) -> None:
        stream = self.fmt == "stream-json"
        match event:
            case AssistantMessage(message=m) if stream:
                self.line({"type": "message", **m.to_dict()})
            case ToolCallStarted() if stream:
                self.line(
                    {
                        "type": "tool_call",
                        "id": event.call_id,
                        "name": event.name,
                        "arguments": event.arguments,
                        "raw_arguments": event.raw_arguments,
                    }
                )
            case ToolCallFinished():
                self.changed.observe(event)
                if event.status == "denied":
                    self.denials.append(
                        {"id": event.call_id, "tool": event.name, "reason": event.result}
                    )
                    if self.fmt == "text":
                        self.note(f"denied: {event.name}: {event.result}")
                if stream:
                    self.line(_tool_result(event))
            case Compacted() if stream:
                self.line(
                    {
                        "type": "compaction",
                        "tokens_before": event.tokens_before,
                        "tokens_after": event.tokens_after,
                    }
                )
            case UsageUpdated():
                self.context = context_info(event.context_tokens, event.threshold)
            case ErrorEvent(message=msg):
                if stream:
                    self.line({"type": "error", "message": msg})
            case HookEvent():
                if stream:
                    self.line(_hook(event))
                elif event.decision in ("deny", "warning") and self.fmt == "text":
                    self.note(f"hook {event.name}: {event.message}")
            case SubagentEvent(event=inner) if not isinstance(inner, TurnFinished | UsageUpdated):
                saved = self.extra
                self.extra = {"parent_tool_call_id": event.parent_call_id, "subagent": event.agent}
                try:
                    self.event(inner)
                finally:
                    self.extra = saved
            case _:
                pass

    def result(self, fin: TurnFinished) -> None:
        self.final = fin
        if fin.error and fin.status != "completed":
            self.note(f"error: {fin.error}" if fin.status != "interrupted" else "interrupted")
        if self.fmt == "text":
            for warning in fin.warnings:
                self.note(f"warning: {warning}")
            if fin.text:
                self.out.write(redact(fin.text, self.secrets).rstrip("\n") + "\n")
                self.out.flush()
            return
        self.line(self.summary(fin))

    def summary(self, fin: TurnFinished) -> dict[str, Any]:
        """The `result` object of json and stream-json (and of --output-dir's export.json)."""
        return {
            "type": "result",
            "status": fin.status,
            "exit_code": fin.exit_code,
            "result": fin.text,
            "num_turns": fin.num_turns,
            "usage": fin.usage.to_dict(),
            "cost_usd": round(fin.cost_usd, 8),
            "duration_ms": int((time.monotonic() - self.started) * 1000),
            "session_id": self.session_id,
            "error": fin.error,
            "permission_denials": self.denials,
            "warnings": list(fin.warnings),
            **({"context": self.context} if self.context else {}),
        }


def _tool_result(event: ToolCallFinished) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "tool_result",
        "id": event.call_id,
        "name": event.name,
        "status": event.status,
        "result": event.result,
        "duration_ms": event.duration_ms,
    }
    if event.diff:
        obj["diff"] = event.diff
    return obj


def _hook(event: HookEvent) -> dict[str, Any]:
    return {
        "type": "hook",
        "name": event.name,
        "hook_event_name": event.type,
        "decision": event.decision,
        "message": event.message,
        "tool_name": event.tool_name,
        "tool_call_id": event.call_id,
    }


def _failed(exc: VibeError) -> TurnFinished:
    status = {1: "error", 2: "error", 3: "limit", 130: "interrupted"}.get(exc.exit_code, "error")
    return TurnFinished(status, exc.exit_code, "", 0, Usage(), 0.0, str(exc))


def run_headless(options: RunOptions | argparse.Namespace) -> int:
    """Run one headless turn for the parsed `vibe run` arguments; returns the exit code."""
    args = RunOptions.of(options)
    output = _Output(args.output)
    # Until the event loop takes over, SIGTERM behaves like Ctrl-C (result event, exit 130).
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        prompt = _read_prompt(args)
        export_dir = check_output_dir(args.output_dir)
        from vibe.build import build_run

        run = build_run(args, output.secrets)
        output.session_id = run.session.id
        for warning in run.session.warnings:
            output.note(f"warning: {warning}")
        try:
            return asyncio.run(_drive(run, prompt, output))
        finally:
            if export_dir is not None and output.final is not None:
                _export(export_dir, run, output)
    except VibeError as exc:
        fin = _failed(exc)
    except KeyboardInterrupt:
        fin = _failed(Interrupted("interrupted"))
    finally:
        signal.signal(signal.SIGTERM, previous)
    output.result(fin)
    return fin.exit_code


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _export(folder: Path, run: Any, output: _Output) -> None:
    assert output.final is not None
    try:
        write_export(folder, output.summary(output.final), run, output.changed, output.secrets)
    except OSError as exc:  # the run's outcome stands; say why there is no export
        output.note(f"warning: could not write {folder / 'export.json'}: {exc.strerror or exc}")


def _read_prompt(args: RunOptions) -> str:
    """The prompt: the argument, else --prompt-file FILE (`-` is stdin), else stdin."""
    if args.prompt is not None:
        prompt = args.prompt
    elif args.prompt_file and args.prompt_file != "-":
        try:
            prompt = Path(args.prompt_file).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise UsageError(f"--prompt-file {args.prompt_file}: {why}") from None
    elif sys.stdin is None or sys.stdin.isatty():
        raise UsageError(
            "no prompt: pass it as an argument, with --prompt-file FILE, or pipe it on stdin"
        )
    else:
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    return prompt


async def _drive(run: Any, prompt: str, output: _Output) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, run.agent.interrupt)
    try:
        if run.mcp is not None:  # MCP servers up (or reported) first: `init` lists their tools
            from vibe.mcp.session import start_headless

            await start_headless(run, output.line if output.fmt == "stream-json" else None,
                                 output.note)
        output.init(run.model.key, run.cwd, list(run.agent.tools))
        fin: TurnFinished | None = None
        from vibe.agent.turn import headless_turn

        async for event in headless_turn(run, prompt):  # skills, plan mode (vibe.agent.turn)
            if isinstance(event, TurnFinished):
                fin = event
            else:
                output.event(event)
        assert fin is not None  # Agent.run always ends with one TurnFinished
        output.result(fin)
        return fin.exit_code
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        run.session.close()
        if run.mcp is not None:  # every server process is gone before vibe exits
            await run.mcp.aclose()
        try:
            await run.agent.provider.aclose()
        except Exception:  # closing must not change the outcome
            log.debug("provider close failed", exc_info=True)
