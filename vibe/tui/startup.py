"""What happens between the first frame and the first prompt: read the config, ask about trust,
onboard (API key or the offline demo), offer the sessions of this folder (`--resume` without an
id). Each step runs in the controller's startup worker and may show a dialog."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from vibe.errors import VibeError

if TYPE_CHECKING:
    from vibe.config import LoadedConfig
    from vibe.session import Session
    from vibe.tui.controller import Controller

HISTORY_FILE = "input_history.jsonl"


async def load(ctl: Controller) -> bool:
    """Read the config in a thread; on a VibeError end the app (False)."""
    assert ctl.options.load is not None
    try:
        ctl.loaded, session = await asyncio.to_thread(ctl.options.load)
    except VibeError as exc:
        ctl.startup_error = exc
        ctl.app.exit(exc.exit_code)
        return False
    if session is not None:
        ctl.options.session = session
    ctl.app.history.open(ctl.loaded.home / HISTORY_FILE)
    return True


def show_mode(ctl: Controller) -> None:
    from vibe.build import pick_mode
    from vibe.tui.modes import label

    assert ctl.loaded is not None
    mode = pick_mode(ctl.loaded, ctl.options.mode)
    ctl.app.footer_bar.set_state(
        mode=label(mode),
        model=ctl.options.model or mode.active_model or ctl.loaded.config.active_model,
    )


async def ask_trust(ctl: Controller) -> None:
    """Ask about the project root (git root, else cwd) once; both answers are remembered."""
    from vibe.config import load_config
    from vibe.config.trust import distrust_folder, is_untrusted, trust_folder
    from vibe.tui.screens.confirm import trust_screen

    assert ctl.loaded is not None
    project, home = ctl.loaded.project_dir, ctl.loaded.home
    if project is None or ctl.loaded.trusted or ctl.options.trust:
        return
    if is_untrusted(project, home):
        return
    trusted = await ctl.app.push_screen_wait(trust_screen(project))
    try:
        (trust_folder if trusted else distrust_folder)(project, home)
    except OSError as exc:  # the answer still holds for this session
        await ctl.say(f"could not remember the answer: {exc}", "error")
    if trusted:
        ctl.loaded = load_config(ctl.cwd, trust=True, home=home)
        await ctl.say(f"Trusted {project}.", "info")


async def onboard(ctl: Controller) -> str | bool | None:
    """None: nothing to do; an alias to start with; False: the user quit."""
    from vibe.build import pick_mode
    from vibe.config.secrets import save_key
    from vibe.tui.screens.onboarding import OnboardingScreen
    from vibe.tui.widgets.footer import short_path

    loaded = ctl.loaded
    assert loaded is not None
    mode = pick_mode(loaded, ctl.options.mode)
    _model, pconf = loaded.resolve_model(ctl.options.model or mode.active_model)
    if not pconf.api_key_env_var or loaded.api_key(pconf):
        return None
    demo = await asyncio.to_thread(_demo_available, loaded)
    env_file = short_path(loaded.env_file)
    screen = OnboardingScreen(pconf.name, pconf.api_key_env_var, env_file, demo)
    result = await ctl.app.push_screen_wait(screen)
    if result.action == "key":
        save_key(loaded.env_file, pconf.api_key_env_var, result.value)
        await ctl.say(f"Saved {pconf.api_key_env_var} to {loaded.env_file}.")
        return None
    if result.action == "demo":
        await ctl.say("Using the offline demo model (SmolLM2-135M).", "info")
        return "smollm2"
    return False


def _demo_available(loaded: LoadedConfig) -> bool:
    from vibe.providers import factory

    return factory.demo_available(loaded)


async def pick_session(ctl: Controller) -> Session | None:
    """`--resume` without an id: the picker of this folder's sessions; None starts a new one."""
    from vibe.tui.sessions import choose_session, open_session

    path = await choose_session(ctl, exclude=None)
    if path is None:
        return None
    return await open_session(ctl, path)
