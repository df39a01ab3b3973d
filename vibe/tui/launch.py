"""`vibe [PROMPT]`: run the Textual app; the config and the session to resume are read right
after its first frame, and a config or usage error still ends it with one line and exit 1."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vibe.config import LoadedConfig
    from vibe.session import Session


def launch_tui(args: argparse.Namespace) -> int:
    """Run the TUI; returns the exit code. Config and usage errors raise VibeError."""
    from vibe.build import add_dirs
    from vibe.tui.app import AppOptions, VibeApp

    dirs = add_dirs(getattr(args, "add_dir", None))  # a missing folder ends here, in one line
    # Shown by the first frame; load() validates it (a missing folder is a usage error).
    cwd = Path(args.workdir).expanduser().resolve() if args.workdir else Path.cwd()
    options = AppOptions(
        cwd=cwd,
        prompt=args.prompt,
        model=args.model,
        mode=args.agent,
        trust=args.trust,
        pick_session=args.resume == "",  # --resume without an id
        add_dirs=dirs,
        load=lambda: load(args),
    )
    app = VibeApp(None, options)
    code = app.run()
    if app.startup_error is not None:
        raise app.startup_error
    return code if isinstance(code, int) else 0


def load(args: argparse.Namespace) -> tuple[LoadedConfig, Session | None]:
    """What `vibe` reads before the agent starts: config, logging, the session to resume."""
    from vibe.build import existing_session, known_secrets, pick_mode, setup_logging, workdir
    from vibe.config import load_config

    cwd = workdir(args.workdir)
    loaded = load_config(cwd, trust=args.trust)
    pick_mode(loaded, args.agent)  # an unknown --agent ends the app, like a config error
    secrets = known_secrets(loaded)
    setup_logging(loaded.home, secrets)  # like `vibe run`: to $VIBE_HOME/logs, keys redacted
    if args.resume == "":  # the picker opens after the first frame (vibe.tui.startup)
        return loaded, None
    session = existing_session(loaded, cwd, args, secrets)
    return loaded, session
