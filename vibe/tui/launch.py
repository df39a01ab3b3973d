"""`vibe [PROMPT]`: read the config, pick the session to resume, run the Textual app."""

from __future__ import annotations

import argparse

from vibe.build import existing_session, known_secrets, setup_logging, workdir
from vibe.config import load_config
from vibe.errors import UsageError


def launch_tui(args: argparse.Namespace) -> int:
    """Run the TUI; returns the exit code. Config and usage errors raise VibeError."""
    cwd = workdir(args.workdir)
    loaded = load_config(cwd, trust=args.trust)
    secrets = known_secrets(loaded)
    setup_logging(loaded.home, secrets)  # like `vibe run`: to $VIBE_HOME/logs, keys redacted
    session = existing_session(loaded, cwd, args, secrets)
    if session is None and args.continue_:
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
