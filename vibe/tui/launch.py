"""`vibe [PROMPT]`: read the config, pick the session to resume, run the Textual app."""

from __future__ import annotations

import argparse
from pathlib import Path

from vibe.config import load_config
from vibe.errors import UsageError
from vibe.session import Session, find, latest_for
from vibe.tui.build import secrets_of


def launch_tui(args: argparse.Namespace) -> int:
    """Run the TUI; returns the exit code. Config and usage errors raise VibeError."""
    cwd = Path(args.workdir).expanduser().resolve() if args.workdir else Path.cwd()
    if not cwd.is_dir():
        raise UsageError(f"--workdir {args.workdir}: not a directory")
    loaded = load_config(cwd, trust=args.trust)
    session: Session | None = None
    if args.resume:
        session = find(args.resume, loaded.home, secrets=secrets_of(loaded))
    elif args.continue_:
        session = latest_for(cwd, loaded.home, secrets=secrets_of(loaded))
        if session is None:
            raise UsageError(f"no saved session for {cwd}; start one with `vibe`")

    from vibe.tui.app import AppOptions, VibeApp

    options = AppOptions(
        cwd=cwd,
        prompt=args.prompt,
        model=args.model,
        mode=args.agent,
        session=session,
        trust=args.trust,
    )
    code = VibeApp(loaded, options).run()
    return code if isinstance(code, int) else 0
