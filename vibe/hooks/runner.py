"""Running one hook: the event as one JSON object on stdin, the reply on stdout.

Exit 0 with empty stdout passes. Exit 0 with a JSON object is structured:
`{"decision": "allow" | "deny", "reason", "system_message",
  "hook_specific_output": {"tool_input" | "additional_context"}}`.
Anything else (a non-zero exit, output that is not such an object, a timeout) is a failure:
the hook fails open with a warning, or denies when it is `strict`. The hook runs with bash in
its own process group (killed, children included, on timeout or cancel), in the working
folder, with the scrubbed environment the tools get (no credentials)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools._proc import kill_group
from vibe.hooks.config import HookConfig

MAX_REPLY_BYTES = 1_000_000


@dataclass(frozen=True)
class HookReply:
    """What one hook said. `failure` is set when its answer could not be used."""

    hook: HookConfig
    decision: str | None = None  # "allow" | "deny" | None (no opinion)
    reason: str = ""
    system_message: str = ""
    tool_input: dict[str, Any] | None = None
    additional_context: str = ""
    failure: str = ""

    @property
    def denied(self) -> bool:
        return self.decision == "deny" or bool(self.failure and self.hook.strict)

    @property
    def deny_reason(self) -> str:
        if self.decision == "deny":
            return self.reason or f"blocked by the {self.hook.name} hook"
        return f"the {self.hook.name} hook failed ({self.failure}) and is strict"


async def run_hook(
    hook: HookConfig, payload: Mapping[str, Any], cwd: Path, env: Mapping[str, str]
) -> HookReply:
    """Run `hook` with `payload` on stdin and interpret its reply."""
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    try:
        proc = await asyncio.create_subprocess_exec(
            shutil.which("bash") or "/bin/bash",
            "-c",
            hook.command,
            cwd=str(cwd),
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return HookReply(hook, failure=f"could not start: {exc.strerror or exc}")
    try:
        out, err = await asyncio.wait_for(proc.communicate(data), hook.timeout)
    except TimeoutError:
        await kill_group(proc.pid, lambda: proc.returncode is not None)
        return HookReply(hook, failure=f"timed out after {hook.timeout:g} s")
    finally:
        if proc.returncode is None:  # cancelled (Esc) or timed out: no process is left behind
            with contextlib.suppress(Exception):
                await asyncio.shield(kill_group(proc.pid, lambda: proc.returncode is not None))
    if proc.returncode != 0:
        tail = err.decode("utf-8", errors="replace").strip().splitlines()[-1:] or [""]
        detail = f": {tail[0][:200]}" if tail[0] else ""
        return HookReply(hook, failure=f"exited with code {proc.returncode}{detail}")
    return parse_reply(hook, out)


def parse_reply(hook: HookConfig, out: bytes) -> HookReply:
    """Interpret a hook's stdout after exit 0."""
    text = out[:MAX_REPLY_BYTES].decode("utf-8", errors="replace").strip()
    if not text:
        return HookReply(hook)
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return HookReply(hook, failure=f"printed something that is not JSON: {text[:80]!r}")
    if not isinstance(obj, dict):
        return HookReply(hook, failure="printed JSON that is not an object")
    decision = obj.get("decision")
    if decision not in (None, "allow", "deny"):
        return HookReply(hook, failure=f"unknown decision {decision!r} (allow or deny)")
    specific = obj.get("hook_specific_output") or {}
    if not isinstance(specific, dict):
        return HookReply(hook, failure="hook_specific_output is not an object")
    tool_input = specific.get("tool_input")
    if tool_input is not None and not isinstance(tool_input, dict):
        return HookReply(hook, failure="hook_specific_output.tool_input is not an object")
    context = specific.get("additional_context") or ""
    reason, message = obj.get("reason") or "", obj.get("system_message") or ""
    if not all(isinstance(v, str) for v in (context, reason, message)):
        return HookReply(hook, failure="reason, system_message and additional_context are text")
    return HookReply(hook, decision, reason, message, tool_input, context)
