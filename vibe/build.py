"""The composition root: config and flags → mode, model, provider, tools, permissions, session
and system prompt → a ready Agent. `vibe run` uses build_run, the TUI's Runtime wraps assemble,
and tests call the same functions. Imports only config at load time: the TUI's first frame
must not pay for the agent, the tools or the HTTP stack."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vibe.config import LoadedConfig, ModeConfig, ModelConfig, ProviderConfig, load_config
from vibe.config.secrets import redact
from vibe.errors import ConfigError, UsageError
from vibe.options import RunOptions

if TYPE_CHECKING:
    from tools.base import Tool
    from tools.permissions import PermissionPolicy as Policy
    from vibe.agent.approval import Approver
    from vibe.agent.budget import Limits
    from vibe.agent.interaction import Interaction
    from vibe.agent.loop import Agent
    from vibe.agent.turn import TurnExtras
    from vibe.mcp.session import McpBinding
    from vibe.providers.base import Provider
    from vibe.session import Session
    from vibe.skills import SkillSet

ProviderFactory = Callable[[ModelConfig, ProviderConfig, LoadedConfig], "Provider"]
AlwaysHook = Callable[[str, str], None]


@dataclass
class Run:
    """Everything a run needs, built and wired."""

    agent: Agent  # holds the provider (agent.provider): a model switch replaces it there
    session: Session
    model: ModelConfig
    mode: ModeConfig
    cwd: Path
    loaded: LoadedConfig
    add_dirs: tuple[Path, ...] = ()  # --add-dir folders the tools may also work in
    mcp: McpBinding | None = None  # the MCP servers of the session (vibe.mcp.session)
    extras: TurnExtras | None = None  # skills, plan mode, AGENTS.md below cwd (vibe.agent.turn)


def workdir(value: str | None) -> Path:
    cwd = Path(value).expanduser() if value else Path.cwd()
    if not cwd.is_dir():
        raise UsageError(f"--workdir {value}: not a directory")
    return cwd.resolve()


def add_dirs(values: list[str] | None) -> tuple[Path, ...]:
    """--add-dir DIR (repeatable): each resolved (symlinks too), and it must be a folder."""
    out: list[Path] = []
    for value in values or ():
        path = Path(value).expanduser()
        if not path.is_dir():
            raise UsageError(f"--add-dir {value}: not a directory")
        resolved = path.resolve()
        if resolved not in out:
            out.append(resolved)
    return tuple(out)


def pick_mode(loaded: LoadedConfig, name: str | None) -> ModeConfig:
    """--agent NAME, else the config's top-level mode if it defines one, else `default`."""
    if name:
        mode = loaded.mode(name)
        if mode is None:
            known = ", ".join(m.name for m in loaded.modes)
            raise UsageError(f"unknown agent {name!r}; known: {known}")
        return mode
    top = loaded.config.top_level_mode()
    return (top and loaded.mode(top.name)) or loaded.mode("default") or loaded.modes[0]


def known_secrets(loaded: LoadedConfig) -> list[str]:
    """Every API key the config can reach, so none is ever written anywhere."""
    keys = (loaded.api_key(p) for p in loaded.config.providers)
    return sorted({k for k in keys if k}, key=len, reverse=True)


def limits_from(opts: RunOptions) -> Limits:
    from vibe.agent.budget import Limits

    limits = Limits(opts.max_turns, opts.max_tokens, opts.max_price, opts.time_limit)
    for flag in ("max_turns", "max_tokens", "max_price", "time_limit"):
        value = getattr(limits, flag)
        if value is not None and value <= 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    return limits


def existing_session(
    loaded: LoadedConfig, cwd: Path, opts: RunOptions | argparse.Namespace, secrets: list[str]
) -> Session | None:
    """--resume ID, --continue (the latest here); None means start a new session. The session
    is locked for this process: a busy one is waited for with --wait; else --resume fails and
    --continue says so on stderr and starts a new session."""
    import sys

    from vibe.session import Session, SessionBusy, find_path, latest_path

    args = RunOptions.of(opts)
    wait = args.wait
    if args.resume == "":  # `--resume` without an id: only the TUI has a picker
        raise UsageError("--resume needs a session id here (`vibe --resume` opens a picker)")
    if args.resume:
        try:
            path = find_path(args.resume, loaded.home)
            return Session.load(path, secrets=secrets, lock=True, wait=wait)
        except SessionBusy as exc:
            raise UsageError(f"{exc}; wait for it with --wait") from None
    if args.continue_:
        path = latest_path(cwd, loaded.home)
        if path is None:
            raise UsageError(f"no session to continue in {cwd}; run without --continue")
        try:
            return Session.load(path, secrets=secrets, lock=True, wait=wait)
        except SessionBusy as exc:
            print(f"vibe: {exc}; starting a new session (--wait waits for it)", file=sys.stderr)
    return None


def default_provider(model: ModelConfig, pconf: ProviderConfig, loaded: LoadedConfig) -> Provider:
    """The provider the config names (imported only now: httpx, or torch for `local`)."""
    from vibe.providers.factory import make_provider

    return make_provider(model, pconf, loaded)


def build_tools(
    loaded: LoadedConfig,
    mode: ModeConfig,
    enabled: list[str] | None = None,
    disabled: list[str] | None = None,
    extras: dict[str, Tool] | None = None,
) -> dict[str, Tool]:
    """The built-in tools with their [tools.NAME] settings, narrowed by the mode and flags;
    `extras`: skill, ask_user_question, exit_plan_mode where offered (vibe.agent.turn)."""
    from tools.registry import builtin_tools
    from vibe.agent.policy import select_tools
    from vibe.subagents import TaskTool

    try:
        raw = {name: t.model_dump(exclude_none=True) for name, t in loaded.config.tools.items()}
        available = {**builtin_tools(raw, hidden_env=hidden_env(loaded)), **(extras or {})}
        available["task"] = TaskTool(loaded)  # subagents (vibe.subagents)
    except ValueError as exc:
        raise ConfigError(str(loaded.config_file), "tools", str(exc)) from exc
    later = [s.name + "_" for s in loaded.config.mcp_servers]  # MCP tools come when they start
    return select_tools(available, mode, enabled, disabled or (), later=later)


def hidden_env(loaded: LoadedConfig) -> list[str]:
    """The providers' key variables: withheld from tools and hooks like secret-looking names."""
    names = {p.api_key_env_var for p in loaded.config.providers if p.api_key_env_var}
    return sorted(names | {"MISTRAL_API_KEY"})


def mode_policy(
    loaded: LoadedConfig, mode: ModeConfig, dirs: tuple[Path, ...] = (), extras: TurnExtras | None = None
) -> Policy:
    """The permission policy of `mode`: its safety level, the [tools.*] tables, the folders;
    `extras`: in plan mode its plan file may be written without asking; its skills' folders
    may be read (vibe.agent.turn)."""
    from vibe.agent.policy import build_policy

    return build_policy(
        loaded.config,
        mode,
        extra_roots=dirs,
        protected=(loaded.env_file,),
        plan_file=extras.plan_file if extras else None,
        read_roots=extras.read_roots() if extras else (),
    )


def system_prompt(
    loaded: LoadedConfig,
    cwd: Path,
    mode: ModeConfig,
    tool_names: list[str],
    dirs: tuple[Path, ...] = (),
    skills: SkillSet | None = None,
) -> str:
    """The system prompt of `mode` with these tools (AGENTS.md only when the folder is trusted)."""
    from vibe.agent.prompts import build_system_prompt
    from vibe.skills import skills_prompt

    return build_system_prompt(
        cwd,
        tool_names,
        trusted=loaded.trusted,
        mode_prompt=mode.system_prompt,
        extra_dirs=dirs,
        home=loaded.home,
        skills_section=skills_prompt(skills.skills.values()) if skills else "",
    )


def always_saver(loaded: LoadedConfig, warn: Callable[[str], None] | None) -> AlwaysHook:
    """What "always allow" does: save the pattern to config.toml; when that fails, the rule
    still holds for the session and `warn` says why it was not saved."""
    from vibe.agent.policy import save_always

    def save(tool: str, pattern: str) -> None:
        try:
            save_always(loaded.config_file, tool, pattern)
        except ConfigError as exc:
            message = f"{tool} {pattern!r} is allowed for this session only: {exc}"
            logging.getLogger("vibe").warning("%s", message)
            if warn is not None:
                warn(message)

    return save


def assemble(
    loaded: LoadedConfig,
    cwd: Path,
    approver: Approver,
    mode: ModeConfig,
    *,
    model_alias: str | None = None,
    session: Session | None = None,
    provider_factory: ProviderFactory = default_provider,
    secrets: list[str] | None = None,
    limits: Limits | None = None,
    enabled: list[str] | None = None,
    disabled: list[str] | None = None,
    dirs: tuple[Path, ...] = (),
    warn: Callable[[str], None] | None = None,
    mcp: McpBinding | None = None,
    interaction: Interaction | None = None,
) -> Run:
    """Mode + model alias (else the mode's, else the config's) → tools, provider, session (a
    new one unless given), Agent. Bad config raises ConfigError before anything is created.
    `dirs`: the --add-dir folders; `warn`: shows a warning to the user (the TUI's notify)."""
    from vibe.agent.budget import Limits
    from vibe.agent.loop import Agent, AgentSettings
    from vibe.agent.turn import turn_extras
    from vibe.hooks import hooks_for, load_hooks
    from vibe.session import Session

    model, provider_config = loaded.resolve_model(model_alias or mode.active_model)
    tools = build_tools(loaded, mode, enabled, disabled)
    hook_configs = load_hooks(loaded, cwd)  # a bad hooks.toml stops here (ConfigError)
    policy = mode_policy(loaded, mode, dirs)
    provider = provider_factory(model, provider_config, loaded)
    keys = known_secrets(loaded) if secrets is None else secrets
    if session is None:
        session = Session.create(loaded.home, cwd, model=model.key, secrets=keys)
    extras = turn_extras(loaded, cwd, mode, session, interaction)  # skills, plan mode
    tools = build_tools(loaded, mode, enabled, disabled, extras=extras.tools_for(mode))
    policy = mode_policy(loaded, mode, dirs, extras)
    settings = AgentSettings(
        model=model,
        policy=policy,
        cwd=cwd,
        limits=limits or Limits(),
        system_prompt=system_prompt(loaded, cwd, mode, list(tools), dirs, extras.skills),
        max_tool_output_bytes=loaded.config.max_tool_output_bytes,
        annotate=extras.annotate,
        on_always=always_saver(loaded, warn),
        secrets=keys,
    )
    agent = Agent(provider, tools, approver, settings, session)
    if hook_configs:
        agent.settings.hooks = hooks_for(hook_configs, agent, hidden_env(loaded))
    run = Run(agent, session, model, mode, cwd, loaded, dirs, extras=extras)
    from vibe.mcp.session import attach, mcp_secrets

    keys.extend(k for k in mcp_secrets(loaded) if k not in keys)
    run.mcp = attach(run, loaded, enabled, disabled or (), warn, existing=mcp)
    return run


def build_run(args: RunOptions, secrets: list[str]) -> Run:
    """Config → Run for `vibe run`; `secrets` is filled in place with every known API key."""
    from vibe.agent.approval import HeadlessApprover
    from vibe.agent.policy import parse_tool_list

    cwd = workdir(args.workdir)
    dirs = add_dirs(list(args.add_dir))
    loaded = load_config(cwd, trust=args.trust)
    secrets.extend(known_secrets(loaded))
    setup_logging(loaded.home, secrets)
    mode = pick_mode(loaded, args.agent)
    limits = limits_from(args)
    return assemble(
        loaded,
        cwd,
        HeadlessApprover(auto_approve=args.auto_approve),
        mode,
        model_alias=args.model,
        session=existing_session(loaded, cwd, args, secrets),
        provider_factory=_run_provider(args, secrets),
        secrets=secrets,
        limits=limits,
        enabled=parse_tool_list(args.enabled_tools),
        disabled=parse_tool_list(args.disabled_tools),
        dirs=dirs,
    )


def _run_provider(args: RunOptions, secrets: list[str]) -> ProviderFactory:
    """The config's provider, or --replay FILE instead; --record FILE wraps either."""

    def make(model: ModelConfig, pconf: ProviderConfig, loaded: LoadedConfig) -> Provider:
        if args.replay:
            from vibe.providers.recording import ReplayProvider

            provider: Provider = ReplayProvider(Path(args.replay))
        else:
            provider = default_provider(model, pconf, loaded)
        if args.record:
            from vibe.providers.recording import RecordingProvider

            provider = RecordingProvider(provider, Path(args.record), secrets)
        return provider

    return make


class _Redact(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = ()
        if record.exc_info:
            import traceback

            text = "".join(traceback.format_exception(*record.exc_info))
            record.msg += "\n" + redact(text, self.secrets)
            record.exc_info = None
        return True


def setup_logging(home: Path, secrets: list[str]) -> None:
    """Log to $VIBE_HOME/logs/vibe.log (never to the terminal), secrets redacted."""
    root = logging.getLogger("vibe")
    if any(getattr(h, "_vibe", False) for h in root.handlers):
        return
    try:
        (home / "logs").mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(home / "logs" / "vibe.log", encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler._vibe = True  # type: ignore[attr-defined]
    handler.addFilter(_Redact(secrets))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("tools").addHandler(handler)
