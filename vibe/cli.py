"""The composition root: parse the command line, then hand over to the TUI, `vibe run`,
`vibe config` or `vibe engine`. Heavy imports (textual, torch) happen only on those paths."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vibe import __version__
from vibe.errors import VibeError

_OUTPUTS = ("text", "json", "stream-json")


def _add_session_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="ALIAS", help="model alias to use (see config.toml)")
    parser.add_argument("--agent", metavar="NAME", help="mode (agent profile) to start in")
    parser.add_argument("--workdir", metavar="DIR", help="working directory (default: cwd)")
    parser.add_argument(
        "--trust", action="store_true", help="trust this folder: read .vibe/config.toml, AGENTS.md"
    )
    parser.add_argument(
        "--add-dir",
        action="append",
        metavar="DIR",
        help="another folder the tools may work in, like the working directory (repeatable)",
    )
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument(
        "-c",
        "--continue",
        dest="continue_",
        action="store_true",
        help="continue the latest session of this folder",
    )
    resume.add_argument(
        "--resume",
        metavar="ID",
        nargs="?",
        const="",  # no id: the TUI opens a picker of this folder's sessions
        help="resume a session by id (prefix); without ID, pick one of this folder's (TUI)",
    )


def build_run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vibe run",
        description="Run the agent headless: for CI and scripts. Never waits for a human.",
        epilog="Exit codes: 0 finished, 1 usage/config error, 2 model/API failure, "
        "3 limit reached, 130 interrupted.",
    )
    p.add_argument("prompt", nargs="?", help="the task (default: --prompt-file, else stdin)")
    p.add_argument(
        "--prompt-file", metavar="FILE", help="read the prompt from FILE (`-`: stdin)"
    )
    p.add_argument("--output", choices=_OUTPUTS, default="text", help="output format")
    _add_session_flags(p)
    p.add_argument(
        "--auto-approve",
        "--yolo",
        dest="auto_approve",
        action="store_true",
        help="allow tool calls that would ask (denylists and `never` still deny)",
    )
    p.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write DIR/export.json at the end: messages, usage, cost, files changed",
    )
    p.add_argument("--max-turns", type=int, metavar="N", help="stop after N model calls")
    p.add_argument("--max-price", type=float, metavar="USD", help="stop when the cost exceeds USD")
    p.add_argument("--max-tokens", type=int, metavar="N", help="stop after N tokens in total")
    p.add_argument("--time-limit", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--enabled-tools", metavar="LIST", help="comma-separated tools to enable")
    p.add_argument("--disabled-tools", metavar="LIST", help="comma-separated tools to disable")
    p.add_argument("--record", metavar="FILE", help="record model exchanges (secrets redacted)")
    p.add_argument("--replay", metavar="FILE", help="replay recorded model exchanges, no network")
    p.add_argument(
        "--wait",
        action="store_true",
        help="with --continue/--resume: wait for a session another vibe process is using",
    )
    return p


def build_main_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vibe",
        description="A coding agent for the terminal, built for Mistral models.",
        epilog="Commands: `vibe run PROMPT` (headless), `vibe config check`, "
        "`vibe engine generate|bench` (local engine), `vibe mcp list|add|remove` (MCP servers), `vibe serve` (OpenAI API server), `vibe acp` (editors). `vibe run --help` for CI flags.",
    )
    p.add_argument("prompt", nargs="?", help="first message to send")
    p.add_argument("-v", "--version", action="version", version=f"vibe {__version__}")
    p.add_argument(
        "-p",
        dest="print_prompt",
        metavar="PROMPT",
        nargs="?",
        const="",
        help="same as `vibe run PROMPT`; a bare -p reads the prompt from stdin",
    )
    p.add_argument(
        "--auto-approve",
        "--yolo",
        dest="auto_approve",
        action="store_true",
        help="start in the auto-approve mode (tool calls that would ask run)",
    )
    _add_session_flags(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
    except VibeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and friends: not an error worth a traceback.
        sys.stderr.close()
        return 0
    except Exception as exc:  # a bug: keep the traceback in a log, show one line
        log = _write_crash_log()
        print(
            f"error: internal error: {type(exc).__name__}: {exc} (details: {log})", file=sys.stderr
        )
        return 1


def _write_crash_log() -> str:
    import os
    import time
    import traceback
    from pathlib import Path

    home = Path(os.environ.get("VIBE_HOME") or Path.home() / ".vibe").expanduser()
    try:
        logs = home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text(traceback.format_exc(), encoding="utf-8")
        return str(path)
    except OSError:
        return "unavailable"


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] == "run":
        return _run(build_run_parser().parse_args(argv[1:]))
    if argv and argv[0] == "config":
        from vibe.config_cli import main as config_main

        return config_main(argv[1:])
    if argv and argv[0] == "engine":
        return _engine(argv[1:])
    if argv and argv[0] == "mcp":
        from vibe.mcp.cli import main as mcp_main

        return mcp_main(argv[1:])
    if argv and argv[0] == "serve":  # the engine as an OpenAI-compatible server
        from vibe.serve.cli import main as serve_main

        return serve_main(argv[1:])
    if argv and argv[0] == "acp":  # the Agent Client Protocol server, for editors
        from vibe.acp.server import main as acp_main

        return acp_main(argv[1:])
    parser = build_main_parser()
    # parse_known_args: `vibe -p PROMPT` takes every `vibe run` flag (--output, --max-turns…).
    args, unknown = parser.parse_known_args(argv)
    if args.print_prompt is not None:
        # A bare -p: the prompt comes from --prompt-file or stdin, as with `vibe run`.
        given = [args.print_prompt] if args.print_prompt else []
        run_argv = [*given, *_passthrough(argv, bare=not args.print_prompt)]
        return _run(build_run_parser().parse_args(run_argv))
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.auto_approve:  # --yolo: the TUI starts in the auto-approve mode
        if args.agent and args.agent != "auto-approve":
            parser.error("--yolo starts in the auto-approve mode; leave out --agent")
        args.agent = "auto-approve"
    from vibe.tui.launch import launch_tui

    return launch_tui(args)


def _passthrough(argv: list[str], *, bare: bool = False) -> list[str]:
    """The flags of `vibe -p PROMPT ...` other than -p itself (and its PROMPT unless `bare`),
    for `vibe run`."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "-p":
            skip = not bare
            continue
        if arg.startswith("-p") and len(arg) > 2:
            continue
        out.append(arg)
    return out


def _run(args: argparse.Namespace) -> int:
    from vibe.headless import run_headless
    from vibe.options import RunOptions

    return run_headless(RunOptions.of(args))


def _engine(argv: list[str]) -> int:
    try:
        from engine.cli import main as engine_main
    except ImportError as exc:
        print(
            f"error: the local engine is not installed ({exc.name} missing); "
            "install it with: pip install 'vibe[local]'",
            file=sys.stderr,
        )
        return 1
    return engine_main(argv)
