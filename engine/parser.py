"""Streaming output parser: token ids -> text, reasoning and tool-call events.

Mistral models write `[THINK]reasoning[/THINK]answer` and `[TOOL_CALLS]name[ARGS]{json}` (v11+,
optionally `[CALL_ID]id` before `[ARGS]`), or `[TOOL_CALLS][{"name": ..., "arguments": ...}]`
(v2/v3). Tool-call ids are minted here, never taken from the model.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

from engine.events import ChatEvent, ReasoningDelta, TextDelta, ToolCallEvent
from engine.tokenizer import PARSER_SPECIALS, ChatTokenizer


def mint_call_id() -> str:
    """A 9-character alphanumeric id, the shape Mistral's API uses."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(9))


class IncrementalDecoder:
    """Decode a token stream to text deltas without splitting multi-byte characters or losing
    SentencePiece leading spaces: decode a short window and emit only what is new."""

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0  # window start
        self._read = 0  # ids already turned into emitted text

    def feed(self, token_id: int) -> str:
        self._ids.append(token_id)
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return after[len(before) :]
        return ""

    def reset(self) -> None:
        self._ids, self._prefix, self._read = [], 0, 0


class ToolCallParser:
    """State machine over text pieces and control-token names."""

    def __init__(self, mint: Callable[[], str] = mint_call_id) -> None:
        self._mint = mint
        self.state = "text"  # text | think | name | call_id | args
        self._name = ""
        self._args = ""
        self.calls = 0

    def text(self, piece: str) -> list[ChatEvent]:
        if not piece:
            return []
        if self.state == "text":
            return [TextDelta(piece)]
        if self.state == "think":
            return [ReasoningDelta(piece)]
        if self.state == "name":
            self._name += piece
        elif self.state == "args":
            self._args += piece
        return []  # call_id text is ignored: ids are ours

    def special(self, name: str) -> list[ChatEvent]:
        out: list[ChatEvent] = []
        if name == "[THINK]" and self.state == "text":
            self.state = "think"
        elif name == "[/THINK]" and self.state == "think":
            self.state = "text"
        elif name == "[TOOL_CALLS]":
            out = self._flush()
            self.state = "name"
        elif name == "[CALL_ID]" and self.state == "name":
            self.state = "call_id"
        elif name == "[ARGS]" and self.state in ("name", "call_id"):
            self.state = "args"
        return out

    def finish(self) -> list[ChatEvent]:
        out = self._flush()
        self.state = "text"
        return out

    def _flush(self) -> list[ChatEvent]:
        name, args, state = self._name.strip(), self._args.strip(), self.state
        self._name = self._args = ""
        if state == "args" and name:
            return [self._call(name, args or "{}")]
        if state == "name" and name.startswith("["):
            return self._legacy(name)
        if state in ("name", "call_id") and name:
            return [self._call(name, "{}")]
        return []

    def _legacy(self, payload: str) -> list[ChatEvent]:
        try:
            items = json.loads(payload)
        except ValueError:
            return [TextDelta(payload)]
        if not isinstance(items, list):
            return [TextDelta(payload)]
        out: list[ChatEvent] = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                args = item.get("arguments", {})
                out.append(
                    self._call(item["name"], args if isinstance(args, str) else json.dumps(args))
                )
        return out

    def _call(self, name: str, args: str) -> ToolCallEvent:
        self.calls += 1
        return ToolCallEvent(id=self._mint(), name=name, arguments_json=args)


class OutputParser:
    """Token ids in, chat events out; the model's own control tokens drive the state machine."""

    def __init__(self, tokenizer: ChatTokenizer, mint: Callable[[], str] = mint_call_id) -> None:
        self._tok = tokenizer
        self._decoder = IncrementalDecoder(tokenizer.decode)
        self.machine = ToolCallParser(mint)

    def feed(self, token_id: int) -> list[ChatEvent]:
        special = self._tok.special_name(token_id)
        if special is None:
            return self.machine.text(self._decoder.feed(token_id))
        if special not in PARSER_SPECIALS:
            return []
        self._decoder.reset()
        return self.machine.special(special)

    def finish(self) -> list[ChatEvent]:
        return self.machine.finish()
