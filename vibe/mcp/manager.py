"""One long-lived MCP connection per configured server for the whole session.

Servers start concurrently in background tasks (`start`, on the running loop); `wait_started`
returns once every server is up or past its `startup_timeout_sec`. A stdio server that dies is
restarted once, on its next call; a call past `tool_timeout_sec` is cancelled. `aclose` stops
every server (stdin closed, then SIGTERM/SIGKILL to its process group: the SDK's shutdown).
Failures are reported once each through `on_notice` (queued until a listener is set)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from vibe.mcp.config import McpHttp, McpStdio

log = logging.getLogger(__name__)

Server = McpStdio | McpHttp
MAX_RESTARTS = 1


class McpCallError(Exception):
    """A call that could not reach its server, or timed out: told to the model as an error."""


@dataclass
class ServerState:
    """What the session knows about one server (the TUI's /mcp and `vibe mcp list` show it)."""

    config: Server
    status: str = "pending"  # pending, starting, ready, failed, dead, disabled, stopped
    error: str = ""
    tools: list[Any] = field(default_factory=list)  # mcp.types.Tool
    instructions: str = ""
    started: float = 0.0
    ready_s: float | None = None  # seconds from start to tools listed
    restarts: int = 0
    http_status: int | None = None  # the last HTTP error status the server answered
    session: Any = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.config.name


class McpManager:
    def __init__(
        self,
        servers: tuple[Server, ...] | list[Server],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        key_lookup: Callable[[str], str | None] | None = None,
    ) -> None:
        self.cwd = cwd
        self.env = env
        self.log_dir = log_dir
        self.key_lookup = key_lookup or (lambda name: None)
        self.servers: dict[str, ServerState] = {}
        for server in servers:
            state = ServerState(server)
            if server.disabled:
                state.status = "disabled"
                state._ready.set()
            self.servers[server.name] = state
        self._notices: list[str] = []
        self._on_notice: Callable[[str], None] | None = None
        self._on_change: list[Callable[[], None]] = []
        self._started = False
        self._closed = False
        self._logs: list[IO[str]] = []

    # ---- listeners -------------------------------------------------------------------------

    def set_notice_listener(self, listener: Callable[[str], None] | None) -> None:
        """Where failures go (TUI notification, stderr line, stream-json `error`); notices
        raised before a listener was set are delivered now."""
        self._on_notice = listener
        if listener is not None:
            pending, self._notices = self._notices, []
            for text in pending:
                listener(text)

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Called when a server's tools become available or go away."""
        self._on_change.append(listener)

    def _notice(self, text: str) -> None:
        log.info("%s", text)
        if self._on_notice is None:
            self._notices.append(text)
        else:
            self._on_notice(text)

    def _changed(self) -> None:
        for listener in self._on_change:
            try:
                listener()
            except Exception:  # a UI refresh must not break a server task
                log.exception("MCP change listener failed")

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> bool:
        """Start every enabled server in the background; needs a running loop (idempotent).
        False when there is no running loop yet (call again from inside it)."""
        if self._started or self._closed:
            return self._started
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._started = True
        for state in self.servers.values():
            if state.status == "pending":
                self._launch(state)
        return True

    def _launch(self, state: ServerState) -> None:
        state.status, state.error, state.started = "starting", "", time.monotonic()
        state._ready, state._stop = asyncio.Event(), asyncio.Event()
        state._task = asyncio.create_task(self._serve(state), name=f"mcp:{state.name}")

    async def wait_started(self) -> None:
        """Until every server is ready, failed or past its startup timeout."""
        self.start()
        waits = [s._ready.wait() for s in self.servers.values() if s.status != "pending"]
        if waits:
            await asyncio.gather(*waits)

    @property
    def starting(self) -> bool:
        return any(s.status == "starting" for s in self.servers.values())

    async def aclose(self) -> None:
        """Stop every server and wait (bounded by the SDK's kill escalation) for them to go."""
        self._closed = True
        tasks = []
        for state in self.servers.values():
            state._stop.set()
            if state._task is not None and not state._task.done():
                tasks.append(state._task)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=8)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        for state in self.servers.values():
            if state.status in ("ready", "starting", "dead"):
                state.status = "stopped"
            state.session = None
        for handle in self._logs:
            with contextlib.suppress(OSError):
                handle.close()
        self._logs.clear()

    async def _serve(self, state: ServerState) -> None:
        """The server's whole connection lives in this one task (the SDK's task groups must be
        entered and left in the same task)."""
        # The SDK takes about a second to import: in a thread, so the TUI never feels it.
        await asyncio.to_thread(importlib.import_module, "mcp.client.stdio")
        import anyio
        from mcp import ClientSession

        config = state.config
        try:
            async with self._transport(state) as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(read, write) as session:
                    with anyio.fail_after(config.startup_timeout_sec):
                        init = await session.initialize()
                        tools = await _list_tools(session)
                    state.instructions = getattr(init, "instructions", None) or ""
                    state.tools, state.session = tools, session
                    state.status = "ready"
                    state.ready_s = time.monotonic() - state.started
                    state._ready.set()
                    self._changed()
                    await state._stop.wait()
        except BaseException as exc:
            failed = state.status == "starting"
            state.session = None
            if failed:
                state.status = "failed"
                state.error = _describe_start_error(exc, config, state.http_status)
                self._notice(f"MCP server {state.name!r} did not start: {state.error}")
            elif state.status == "ready" and not state._stop.is_set():
                state.status = "dead"
                state.error = f"the connection ended: {_short(exc)}"
            state._ready.set()
            self._changed()
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                raise
            if not isinstance(exc, Exception):
                raise
        finally:
            state._ready.set()

    def _transport(self, state: ServerState) -> Any:
        config = state.config
        if isinstance(config, McpStdio):
            from mcp.client.stdio import StdioServerParameters, stdio_client

            env = {**(self.env or {}), **config.env}
            cwd = Path(config.cwd).expanduser() if config.cwd else self.cwd
            if not cwd.is_absolute():
                cwd = self.cwd / cwd
            params = StdioServerParameters(
                command=config.command[0], args=config.argv[1:], env=env, cwd=str(cwd)
            )
            return stdio_client(params, errlog=self._errlog(config.name))
        return _http_transport(config, self._headers(config), state)

    def _headers(self, config: McpHttp) -> dict[str, str]:
        headers = dict(config.headers)
        if config.api_key_env:
            token = self.key_lookup(config.api_key_env)
            if token:
                headers[config.api_key_header] = config.api_key_format.replace("{token}", token)
        return headers

    def _errlog(self, name: str) -> IO[str]:
        """The server's stderr: $VIBE_HOME/logs/mcp-NAME.log (never the terminal: the TUI)."""
        if self.log_dir is not None:
            try:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                handle = (self.log_dir / f"mcp-{name}.log").open("a", encoding="utf-8")
                self._logs.append(handle)
                return handle
            except OSError:
                pass
        handle = open(  # noqa: SIM115 - closed in aclose
            "/dev/null" if Path("/dev/null").exists() else "nul", "w", encoding="utf-8"
        )
        self._logs.append(handle)
        return handle

    # ---- calls -----------------------------------------------------------------------------

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> Any:
        """One tools/call over the server's connection (a dead stdio server is restarted once
        first); returns mcp.types.CallToolResult, raises McpCallError for the model."""
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        state = self.servers.get(server)
        if state is None:
            raise McpCallError(f"no MCP server {server!r}")
        self.start()
        if state.status == "starting":
            await state._ready.wait()
        if state.status == "dead":
            await self._restart(state)
        if state.status != "ready" or state.session is None:
            why = f": {state.error}" if state.error else ""
            raise McpCallError(f"MCP server {server!r} is not available ({state.status}{why})")
        timeout = state.config.tool_timeout_sec
        try:
            return await state.session.call_tool(tool, arguments, read_timeout_seconds=timeout)
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise McpCallError(
                    f"{server}_{tool} timed out after {timeout:g} s (tool_timeout_sec) and "
                    "was cancelled"
                ) from None
            if exc.code == CONNECTION_CLOSED:
                raise self._died(state, str(exc.message)) from None
            raise McpCallError(f"MCP error {exc.code}: {exc.message}") from None
        except (OSError, EOFError) as exc:
            raise self._died(state, _short(exc)) from None
        except Exception as exc:
            if type(exc).__module__.startswith("anyio"):  # closed/broken streams
                raise self._died(state, _short(exc)) from None
            raise

    def _died(self, state: ServerState, why: str) -> McpCallError:
        state.status, state.error, state.session = "dead", f"the connection ended: {why}", None
        state._stop.set()  # let its task unwind the old connection
        self._changed()
        again = (
            "it will be restarted on the next call"
            if isinstance(state.config, McpStdio) and state.restarts < MAX_RESTARTS
            else "it will not be restarted"
        )
        return McpCallError(f"MCP server {state.name!r} stopped during the call ({why}); {again}")

    async def _restart(self, state: ServerState) -> None:
        if not isinstance(state.config, McpStdio) or state.restarts >= MAX_RESTARTS:
            state.status = "failed"
            return
        state.restarts += 1
        old = state._task
        if old is not None and not old.done():
            state._stop.set()
            await asyncio.wait([old], timeout=5)
        self._launch(state)
        await state._ready.wait()
        if state.status == "ready":
            self._notice(f"MCP server {state.name!r} stopped and was restarted")
        else:
            self._notice(f"MCP server {state.name!r} stopped and could not be restarted")


async def _list_tools(session: Any) -> list[Any]:
    """Every tool, following pagination."""
    from mcp_types import PaginatedRequestParams

    tools: list[Any] = []
    cursor: str | None = None
    for _ in range(1000):
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


@contextlib.asynccontextmanager
async def _http_transport(config: McpHttp, headers: dict[str, str], state: ServerState) -> Any:
    """Streamable HTTP; `sse` is the legacy HTTP+SSE transport. HTTP error statuses are noted
    on `state` (the SDK reports them without the status)."""
    import httpx2

    async def note(response: Any) -> None:
        if response.status_code >= 400:
            state.http_status = response.status_code

    if config.transport == "sse":
        from mcp.client.sse import sse_client

        def factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> Any:
            return httpx2.AsyncClient(
                headers=headers, timeout=timeout, auth=auth, event_hooks={"response": [note]}
            )

        async with sse_client(
            config.url, headers=headers, timeout=30, httpx_client_factory=factory
        ) as streams:
            yield streams
        return
    from mcp.client.streamable_http import streamable_http_client

    client = httpx2.AsyncClient(
        headers=headers,
        timeout=httpx2.Timeout(30.0, read=300.0),
        event_hooks={"response": [note]},
    )
    async with client, streamable_http_client(config.url, http_client=client) as streams:
        yield streams


def _describe_start_error(exc: BaseException, config: Server, status: int | None = None) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if status in (401, 403):
        return f"HTTP {status} from {getattr(config, 'url', '')}: check headers / api_key_env"
    if status is not None:
        return f"HTTP {status} from {getattr(config, 'url', '')}"
    if isinstance(exc, TimeoutError) or type(exc).__name__ == "TimeoutError":
        return f"no answer within startup_timeout_sec = {config.startup_timeout_sec:g} s"
    if isinstance(exc, FileNotFoundError) and isinstance(config, McpStdio):
        return f"command not found: {config.command[0]}"
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return _short(exc)


def _short(exc: BaseException) -> str:
    """One line for an exception, unwrapping the SDK's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
