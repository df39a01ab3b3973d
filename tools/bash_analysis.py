"""Parse a bash command line (bashlex) into the simple commands it would run, for permission checks.

Pipes, lists, subshells, `$(…)`/backticks, process substitution, loops and functions are flattened;
`bash -c '…'` and `eval '…'` with literal arguments are parsed too, so nothing hides inside them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import bashlex

from tools._denyscan import STDIN_SHELLS, code_texts, extras
from tools._denyscan import Context as ScanContext
from tools._shellquote import static_word, unquote
from tools._wrappers import SHELLS, Resolution, resolve

__all__ = ["SHELLS", "Analysis", "Redirect", "SimpleCommand", "analyze", "inner_commands"]
_MAX_DEPTH = 8  # nesting of bash -c inside bash -c


@dataclass(frozen=True)
class Redirect:
    """One redirection. `target` is None for fd duplication (`2>&1`) and here-documents."""

    op: str
    target: str | None = None
    dynamic: bool = False  # the target (or a here-document body) contains expansions
    body: str | None = None  # a here-document's or here-string's text

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
    program: tuple[str, ...] = ()  # the words of what really runs, wrappers peeled
    wrappers: tuple[str, ...] = ()  # the wrappers peeled (`nice`, `sudo`, `env`, …)
    deny_texts: tuple[str, ...] = ()  # normalized spellings the denylist is matched against
    opaque: str | None = None  # why the program cannot be determined statically
    script_files: tuple[str, ...] = ()  # script files it runs, read and analysed (`bash x.sh`)

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


def analyze(command: str, cwd: str | None = None) -> Analysis:
    """Parse `command`; never raises (a parse failure is reported in `Analysis.error`).

    `cwd`: where script files the command runs (`bash x.sh`, `source x`) are read from."""
    if not command.strip():
        return Analysis(error="the command is empty")
    if "\x00" in command:
        return Analysis(error="the command contains a NUL byte")
    out: list[SimpleCommand] = []
    try:
        _parse_into(command, out, depth=0, scan=ScanContext(cwd))
    except _Unsupported as exc:
        return Analysis(error=str(exc))
    except RecursionError:
        return Analysis(error="could not parse the command (nested too deeply)")
    return Analysis(commands=tuple(out))


class _Unsupported(Exception):
    pass


# A quoted here-document delimiter (`<<'EOF'`), which bashlex cannot parse: the quotes are
# replaced by spaces (same length, so positions still point into the original text).
_QUOTED_HEREDOC = re.compile(r"<<(-?)([ \t]*)(?:(['\"])(\w+)\3|\\(\w+))")
# The `time` keyword at the start of a pipeline, which bashlex cannot parse either.
_TIME = re.compile(r"(^|[;&|(){}\n!]|\b(?:then|do|else|elif)\b)([ \t]*)time\b")


def _bare_delimiter(match: re.Match[str]) -> str:
    """`<<'EOF'` (a _QUOTED_HEREDOC match) as `<< EOF ` : the same length, no quotes."""
    word = match.group(4) or match.group(5)
    return f"<<{match.group(1)}{match.group(2)} {word}" + (" " if match.group(4) else "")


def _prepare(source: str) -> tuple[str, set[int]]:
    """(text bashlex can parse, start offsets of the `time` keywords replaced)."""
    text = _QUOTED_HEREDOC.sub(_bare_delimiter, source)
    times = {m.start(2) + len(m.group(2)) for m in _TIME.finditer(text)}
    for pos in times:
        text = text[:pos] + "TIME" + text[pos + 4 :]
    return text, times


def _parse_into(
    source: str, out: list[SimpleCommand], depth: int, scan: ScanContext | None = None
) -> None:
    scan = scan or ScanContext(None)
    if depth > _MAX_DEPTH:
        raise _Unsupported("commands nested too deeply")
    prepared, times = _prepare(source)
    try:
        nodes = bashlex.parse(prepared)
    except Exception as exc:  # bashlex raises many types, including NotImplementedError
        detail = str(exc).strip() or type(exc).__name__
        raise _Unsupported(f"could not parse the command ({detail})") from None
    walker = _Walker(source, out, depth, times, scan)
    for node in nodes:
        walker.visit(node, piped=False)


@dataclass
class _Walker:
    source: str
    out: list[SimpleCommand]
    depth: int
    times: set[int] = field(default_factory=set)
    scan: ScanContext = field(default_factory=lambda: ScanContext(None))

    def parse(self, script: str) -> None:
        _parse_into(script, self.out, self.depth + 1, self.scan)

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
                if part.kind == "parameter":
                    self._parameter(part, node)
                else:
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

    def _parameter(self, part: Any, word: Any) -> None:
        """`${X:-$(cmd)}`: bashlex keeps the inside as text; find and parse its commands."""
        text = self.source[part.pos[0] : max(word.pos[1], part.pos[1])]
        if "@P" in text or "@p" in text.split("}")[0]:
            reason = f"`@P` expands a variable as a prompt, which runs commands ({text})"
            self.out.append(SimpleCommand(words=(), source=text, opaque=reason))
            return
        inner = inner_commands(text)
        if inner is None:
            reason = f"a parameter expansion runs commands that could not be analysed ({text})"
            self.out.append(SimpleCommand(words=(), source=text, opaque=reason))
            return
        for script in inner:
            self.parse(script)

    def _command(self, node: Any, piped: bool) -> None:
        words: list[str] = []
        dynamic: list[bool] = []
        assignments: list[str] = []
        redirects: list[Redirect] = []
        for part in node.parts:
            if part.kind == "word":
                word, is_dynamic = _word_of(part, self.source)
                if not words and part.pos[0] in self.times and word == "TIME":
                    word = "TIME"  # the keyword; `_wrappers` peels it like `time`
                words.append(word)
                dynamic.append(is_dynamic)
                self.visit(part, piped=False)
            elif part.kind == "assignment":
                assignments.append(part.word)
                self.visit(part, piped=False)
            elif part.kind == "redirect":
                redirects.append(self._redirect(part))
            else:
                self.visit(part, piped)
        source = self.source[node.pos[0] : node.pos[1]]
        self._emit(tuple(words), tuple(dynamic), source, assignments, redirects, piped)

    def _emit(
        self,
        words: tuple[str, ...],
        dynamic: tuple[bool, ...],
        source: str,
        assignments: list[str] | tuple[str, ...] = (),
        redirects: list[Redirect] | tuple[Redirect, ...] = (),
        piped: bool = False,
    ) -> None:
        found = resolve(words, dynamic)
        extra = extras(found, words, dynamic, assignments, redirects, self.scan)
        found.deny_texts += extra.texts
        opaque = found.opaque or extra.opaque
        for script in found.scripts:
            self.parse(script)
        for script in extra.scripts:
            opaque = self._try_parse(script) or opaque
        for script in extra.file_scripts:
            self.scan.in_file += 1
            try:
                opaque = self._try_parse(script) or opaque
            finally:
                self.scan.in_file -= 1
        found.stdin_code = found.stdin_code or extra.stdin_code
        if found.stdin_code and opaque is None:
            opaque = self._stdin_code(found, redirects, piped)
        unwrapped = (
            bool(found.scripts)
            and found.name in SHELLS
            and all(w in BENIGN_WRAPPERS for w in found.wrappers)
        )
        self.out.append(
            SimpleCommand(
                words=words,
                source=source,
                dynamic=dynamic,
                assignments=tuple(assignments),
                redirects=tuple(redirects),
                piped=piped,
                unwrapped=unwrapped,
                program=found.program,
                wrappers=found.wrappers,
                deny_texts=tuple(dict.fromkeys(found.deny_texts)),
                opaque=opaque,
                script_files=tuple(extra.files),
            )
        )
        for run_words, run_dynamic in found.runs:  # `find -exec CMD ;`
            self._emit(run_words, run_dynamic, " ".join(run_words))

    def _try_parse(self, script: str) -> str | None:
        """Parse `script` into the commands; why not, instead of failing the whole line."""
        try:
            self.parse(script)
        except _Unsupported as exc:
            return f"runs commands that could not be analysed ({exc})"
        except RecursionError:
            return "runs commands nested too deeply"
        return None

    def _stdin_code(
        self, found: Resolution, redirects: list[Redirect] | tuple[Redirect, ...], piped: bool
    ) -> str | None:
        """A shell or interpreter reading its program from stdin: parse a literal here-document
        for a shell; anything else fed to it cannot be known."""
        for redirect in redirects:
            if redirect.op in ("<<", "<<-", "<<<"):
                if redirect.dynamic or redirect.body is None:
                    return f"`{found.name}` runs a here-document built from substitutions"
                if found.name in STDIN_SHELLS or not found.name:
                    return self._try_parse(redirect.body)
                found.deny_texts += code_texts(redirect.body)
                return None
            if redirect.op == "<" and found.name in SHELLS:
                return None  # a script file, like `bash script.sh`
        if piped:
            return f"pipes into an interpreter (`{found.name}`): what it runs cannot be known"
        return None

    def _redirect(self, node: Any) -> Redirect:
        op = node.type
        heredoc = getattr(node, "heredoc", None)
        if heredoc is not None:
            quoted = any(q in self.source[node.pos[0] : node.pos[1]] for q in "'\"\\")
            body = heredoc.value
            lines = body.split("\n")
            if len(lines) > 1:
                body = "\n".join(lines[:-1])  # the last line is the delimiter
            dynamic = not quoted and ("$" in body or "`" in body)
            if dynamic:
                inner = inner_commands(body)
                if inner is None:
                    reason = "a here-document runs commands that could not be analysed"
                    self.out.append(SimpleCommand(words=(), source=body, opaque=reason))
                for script in inner or ():
                    self.parse(script)
            return Redirect(op, None, dynamic=dynamic, body=body)
        target = node.output
        if isinstance(target, int) or target is None:
            return Redirect(op, None)
        for part in getattr(target, "parts", []):
            self.visit(part, piped=False)
        word, is_dynamic = _word_of(target, self.source)
        if op == "<<<":
            return Redirect(op, None, dynamic=is_dynamic, body=word)
        return Redirect(op, word, dynamic=is_dynamic)


def inner_commands(text: str) -> list[str] | None:
    """The commands of `$(…)`, `` `…` ``, `<(…)` and `>(…)` inside `text` (a parameter
    expansion), or None when they cannot be delimited reliably."""
    found: list[str] = []
    i, quote = 0, ""
    while i < len(text):
        char = text[i]
        if quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\":
            i += 1
        elif char == "'" and quote != '"':
            quote = "'"
        elif char == '"':
            quote = "" if quote == '"' else '"'
        elif char == "`":
            end = text.find("`", i + 1)
            if end < 0:
                return None
            found.append(text[i + 1 : end])
            i = end
        elif text.startswith(("$(", "<(", ">("), i):
            end = _closing(text, i + 1)
            if end is None:
                return None
            inner = text[i + 2 : end]
            if inner.startswith("("):
                return None  # arithmetic `$((…))`
            found.append(inner)
            i = end
        i += 1
    return found


def _closing(text: str, open_at: int) -> int | None:
    depth, quote = 0, ""
    for index in range(open_at, len(text)):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
    return None


def _is_dynamic(word: Any) -> bool:
    return any(part.kind != "tilde" for part in getattr(word, "parts", []))


def _word_of(word: Any, source: str) -> tuple[str, bool]:
    """(the word as bash passes it, whether it expands something that cannot be known)."""
    if word.pos[1] <= len(source):
        text = source[word.pos[0] : word.pos[1]]
        if not text.startswith("~"):
            static = static_word(text)
            if static is not None:
                return static, False
    return _word(word, source), _is_dynamic(word)


def _word(word: Any, source: str) -> str:
    """The word's text as bash sees it: our own quote removal when it has no expansions."""
    if not _is_dynamic(word) and word.pos[1] <= len(source):
        text = unquote(source[word.pos[0] : word.pos[1]])  # bashlex gets `a"'"b` wrong
        if text is not None and text != word.word:
            return text
    return _expand_tilde(word)


def _expand_tilde(word: Any) -> str:
    text: str = word.word
    if text.startswith("~") and any(p.kind == "tilde" for p in getattr(word, "parts", [])):
        if text.startswith(("~+", "~-")):
            return text  # resolved against the current folder by the path checks
        return os.path.expanduser(text)
    return text


BENIGN_WRAPPERS = frozenset(
    {"time", "TIME", "nice", "timeout", "nohup", "command", "builtin", "exec", "stdbuf"}
)
