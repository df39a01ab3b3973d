"""RunOptions: the command line of `vibe run` (and the session flags of `vibe`) as one typed
object, so build and headless code read fields, not an argparse Namespace. Imports nothing
heavy: cli.py builds it on every path."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class RunOptions:
    """What the user asked for on the command line; None/empty means "not given"."""

    prompt: str | None = None
    prompt_file: str | None = None
    output: str = "text"  # text | json | stream-json
    model: str | None = None
    agent: str | None = None
    workdir: str | None = None
    trust: bool = False
    add_dir: tuple[str, ...] = ()
    continue_: bool = False
    resume: str | None = None
    wait: bool = False
    auto_approve: bool = False
    max_turns: int | None = None
    max_tokens: int | None = None
    max_price: float | None = None
    time_limit: float | None = None
    enabled_tools: str | None = None
    disabled_tools: str | None = None
    record: str | None = None
    replay: str | None = None
    output_dir: str | None = None

    @classmethod
    def of(cls, value: RunOptions | argparse.Namespace | Any) -> RunOptions:
        """`value` itself, or the fields of a parsed Namespace (missing flags keep defaults)."""
        if isinstance(value, RunOptions):
            return value
        given: dict[str, Any] = {}
        for f in fields(cls):
            if hasattr(value, f.name):
                item = getattr(value, f.name)
                if f.name == "add_dir":
                    item = tuple(item or ())
                if item is not None or f.default is None:
                    given[f.name] = item
        return cls(**given)
