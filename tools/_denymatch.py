"""The bash denylist: every spelling of every command on the line, matched against each pattern.

Beyond the texts `bash_analysis` collects (the words as written, wrappers peeled, git's global
options removed, code of other languages), a word the shell expands (`$X`, `$(…)`, `pus[h]`,
`pu*`) may become any word of a pattern: `git $X` is checked as `git push`. Texts are also
matched in lower case (`RM x` runs rm where file names ignore case). A command that cannot be
determined, or a script file the same line writes before running it, is denied.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterable

from tools._wrappers import git_texts, resolve
from tools.bash_analysis import Analysis, SimpleCommand

_GLOB = re.compile(r"[*?\[\]{}]")
_MAX_VARIANTS = 256


def deny_reason(
    command: str,
    analysis: Analysis,
    denylist: Iterable[str],
    matches: Callable[[str, str], bool],
) -> str | None:
    """Why the denylist denies this line, or None."""
    patterns = tuple(denylist)
    if not patterns:
        return None
    texts = [command.strip()]
    tokens = _tokens(patterns)
    for cmd in analysis.commands:
        texts += [cmd.text, cmd.source, *cmd.deny_texts, *_variants(cmd, tokens)]
    texts = [t for t in dict.fromkeys(texts) if t]
    for pattern in patterns:
        for text in texts:
            if matches(pattern, text) or matches(pattern, text.lower()):
                return f"`{text}` matches the denylist pattern {pattern!r}"
    for cmd in analysis.commands:
        if cmd.opaque:
            return (
                f"the program could not be determined ({cmd.opaque}), so the bash denylist "
                "cannot be checked"
            )
    written = _written(analysis)
    for cmd in analysis.commands:
        for script in cmd.script_files:
            if os.path.basename(script) in written:
                return (
                    f"the line changes the script file `{script}` before running it, so the "
                    "bash denylist cannot be checked"
                )
    return None


def _tokens(patterns: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for pattern in patterns:
        for word in pattern.split():
            token = _GLOB.sub("", word)
            if token and token not in out:
                out.append(token)
    return out


def _variants(cmd: SimpleCommand, tokens: list[str]) -> list[str]:
    """Texts of the command with each expanded word replaced by words of the patterns."""
    if cmd.opaque or not cmd.words or not tokens:
        return []
    dynamic = tuple(cmd.dynamic) + (False,) * (len(cmd.words) - len(cmd.dynamic))
    spots = [
        i
        for i, word in enumerate(cmd.words)
        if i > 0 and (dynamic[i] or _GLOB.search(word) or word.startswith("$"))
    ]
    if not spots:
        return []
    if len(tokens) ** len(spots) <= _MAX_VARIANTS:
        choices = itertools.product(tokens, repeat=len(spots))
    else:
        choices = ((t,) * len(spots) for t in tokens)
    out: list[str] = []
    for choice in choices:
        words = list(cmd.words)
        for spot, token in zip(spots, choice, strict=True):
            words[spot] = token
        found = resolve(tuple(words), (False,) * len(words))
        out.append(" ".join(words))
        if found.program:  # the program itself, not every suffix after a wrapper
            out.append(" ".join(found.program))
            if found.name == "git":
                out += git_texts(found.program[1:])
    return out


def _written(analysis: Analysis) -> set[str]:
    """Base names of files some command on the line may write."""
    out: set[str] = set()
    for cmd in analysis.commands:
        for redirect in cmd.redirects:
            if redirect.writes and redirect.target:
                out.add(os.path.basename(redirect.target))
        if cmd.words and cmd.name not in ("bash", "sh", "source", ".", "cat", "echo"):
            out.update(os.path.basename(w) for w in cmd.words[1:])
    return out
