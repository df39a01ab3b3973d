"""Parse a bash command line (bashlex) into the simple commands it would run, for permission checks.

Pipes, lists, subshells, `$(…)`/backticks, process substitution, loops and functions are flattened;
`bash -c '…'` and `eval '…'` with literal arguments are parsed too, so nothing hides inside them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import bashlex

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh"})
_MAX_DEPTH = 8  # nesting of bash -c inside bash -c


@dataclass(frozen=True)
class Redirect:
    """One redirection. `target` is None for fd duplication (`2>&1`) and here-documents."""

    op: str
    target: str | None = None
    dynamic: bool = False  # the target (or a here-document body) contains expansions

    @property
    def writes(self) -> bool:
        return self.op in (">", ">>", ">|", "&>", "&>>", "<>", ">&") and self.target is not None


@dataclass(frozen=True)
class SimpleCommand:
    """One simple command: literal words (quotes removed, `~` expanded) and how it is connected."""

    words: tuple[str, ...]
    source: str = ""  # the command as written (quotes and `~` kept)
    dynamic: tuple[bool, ...] = ()  # per word: contains $var, $(…), `…` or <(…)
    assignments: tuple[str, ...] = ()
    redirects: tuple[Redirect, ...] = ()
    piped: bool = False  # its stdin comes from a pipe
    unwrapped: bool = False  # a `bash -c LITERAL` whose inner commands are listed separately

    @property
    def text(self) -> str:
        """The words joined by single spaces: what allow/deny patterns are matched against."""
        return " ".join(self.words)

    @property
    def name(self) -> str:
        return self.words[0] if self.words else ""


@dataclass(frozen=True)
class Analysis:
    """Every simple command of a command line, in source order, or why it could not be parsed."""

    commands: tuple[SimpleCommand, ...] = ()
    error: str | None = None


def analyze(command: str) -> Analysis:
    """Parse `command`; never raises (a parse failure is reported in `Analysis.error`)."""
    if not command.strip():
        return Analysis(error="the command is empty")
    out: list[SimpleCommand] = []
    try:
        _parse_into(command, out, depth=0)
    except _Unsupported as exc:
        return Analysis(error=str(exc))
    return Analysis(commands=tuple(out))


class _Unsupported(Exception):
    pass


def _parse_into(source: str, out: list[SimpleCommand], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _Unsupported("commands nested too deeply")
    try:
        nodes = bashlex.parse(source)
    except Exception as exc:  # bashlex raises many types, including NotImplementedError
        detail = str(exc).strip() or type(exc).__name__
        raise _Unsupported(f"could not parse the command ({detail})") from None
    walker = _Walker(source, out, depth)
    for node in nodes:
        walker.visit(node, piped=False)


@dataclass
class _Walker:
    source: str
    out: list[SimpleCommand]
    depth: int
    _seen: set[int] = field(default_factory=set)

    def visit(self, node: Any, piped: bool) -> None:
        kind = node.kind
        if kind == "command":
            self._command(node, piped)
        elif kind == "pipeline":
            after_pipe = False
            for part in node.parts:
                if part.kind == "pipe":
                    after_pipe = True
                elif part.kind != "reservedword":
                    self.visit(part, piped or after_pipe)
        elif kind in ("commandsubstitution", "processsubstitution"):
            self.visit(node.command, piped=False)
        elif kind in ("word", "assignment"):
            for part in getattr(node, "parts", []):
                self.visit(part, piped=False)
        elif kind in ("list", "compound", "for", "if", "while", "until", "function"):
            for child in getattr(node, "parts", None) or getattr(node, "list", None) or []:
                self.visit(child, piped)
            redirects = [self._redirect(r) for r in getattr(node, "redirects", []) or []]
            if redirects:
                self.out.append(SimpleCommand(words=(), redirects=tuple(redirects)))
        elif kind in ("operator", "reservedword", "pipe", "parameter", "tilde", "heredoc"):
            return
        else:
            raise _Unsupported(f"unsupported shell syntax ({kind})")

    def _command(self, node: Any, piped: bool) -> None:
        words: list[str] = []
        dynamic: list[bool] = []
        assignments: list[str] = []
        redirects: list[Redirect] = []
        for part in node.parts:
            if part.kind == "word":
                words.append(_expand_tilde(part))
                dynamic.append(_is_dynamic(part))
                self.visit(part, piped=False)
            elif part.kind == "assignment":
                assignments.append(part.word)
                self.visit(part, piped=False)
            elif part.kind == "redirect":
                redirects.append(self._redirect(part))
            else:
                self.visit(part, piped)
        unwrapped = False
        if _is_shell_c(words, dynamic):
            _parse_into(words[2], self.out, self.depth + 1)
            unwrapped = True
        elif words and words[0] == "eval" and not any(dynamic[1:]):
            # Listed so the denylist sees them; `eval` itself is never read-only.
            _parse_into(" ".join(words[1:]), self.out, self.depth + 1)
        self.out.append(
            SimpleCommand(
                words=tuple(words),
                source=self.source[node.pos[0] : node.pos[1]],
                dynamic=tuple(dynamic),
                assignments=tuple(assignments),
                redirects=tuple(redirects),
                piped=piped,
                unwrapped=unwrapped,
            )
        )

    def _redirect(self, node: Any) -> Redirect:
        op = node.type
        heredoc = getattr(node, "heredoc", None)
        if heredoc is not None:
            quoted = any(q in self.source[node.pos[0] : node.pos[1]] for q in "'\"\\")
            body = heredoc.value
            return Redirect(op, None, dynamic=not quoted and ("$(" in body or "`" in body))
        target = node.output
        if isinstance(target, int) or target is None:
            return Redirect(op, None)
        for part in getattr(target, "parts", []):
            self.visit(part, piped=False)
        return Redirect(op, _expand_tilde(target), dynamic=_is_dynamic(target))


def _is_shell_c(words: list[str], dynamic: list[bool]) -> bool:
    return (
        len(words) >= 3
        and words[0] in SHELLS
        and words[1] == "-c"
        and not dynamic[2]
        and not dynamic[0]
    )


def _is_dynamic(word: Any) -> bool:
    return any(part.kind != "tilde" for part in getattr(word, "parts", []))


def _expand_tilde(word: Any) -> str:
    text: str = word.word
    if text.startswith("~") and any(p.kind == "tilde" for p in getattr(word, "parts", [])):
        return os.path.expanduser(text)
    return text


WRAPPERS = frozenset({"time", "nice", "timeout", "nohup", "command", "builtin", "exec", "stdbuf"})
PRIVILEGE = frozenset({"sudo", "doas", "su", "pkexec"})
_WRAPPER_VALUE_FLAGS = {
    "nice": {"-n"},
    "timeout": {"-s", "-k", "--signal", "--kill-after"},
    "sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"},
    "xargs": {"-n", "-I", "-L", "-P", "-d", "-E", "-s", "-a"},
    "stdbuf": {"-i", "-o", "-e"},
}


def strip_wrappers(words: tuple[str, ...], privilege: bool = False) -> tuple[str, ...]:
    """The command a wrapper such as `time`, `nice -n 5` or `timeout 10` runs.

    With `privilege`, `sudo`/`doas`/`env`/`xargs` are stripped too (used for denylist matching).
    """
    names = WRAPPERS | (PRIVILEGE | {"env", "xargs"} if privilege else frozenset())
    while words and words[0] in names:
        if words[0] == "command" and len(words) > 1 and words[1] in ("-v", "-V"):
            return words
        head = words[0]
        rest = list(words[1:])
        value_flags = _WRAPPER_VALUE_FLAGS.get(head, set())
        while rest and (rest[0].startswith("-") or (head == "env" and "=" in rest[0])):
            flag = rest.pop(0)
            if flag in value_flags and rest:
                rest.pop(0)
        if head == "timeout" and rest:
            rest.pop(0)  # the duration
        words = tuple(rest)
    return words
