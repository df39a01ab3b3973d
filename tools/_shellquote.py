"""Bash quote removal for words without expansions, ANSI-C quoting (`$'\\x72m'`) included.

bashlex reads `$'rm'` as the parameter `$rm`; `static_word` returns what bash really passes
(`rm`), or None when the word expands something (`$X`, `$(…)`, `` `…` ``) and cannot be known.
"""

from __future__ import annotations

import re

_MAX_CODE = 512 * 1024
_MAX_TEXTS = 20000
_LINE = 400
_NORMALIZE = re.compile(r"[\"'`,()\[\]{};|&<>$/:=!\\%\t@+]")

_SIMPLE = {
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}
_HEX = "0123456789abcdefABCDEF"


def _ansi_c(text: str, i: int) -> tuple[str, int] | None:
    """Decode `$'…'` whose body starts at `i`: (decoded text, index after the closing quote)."""
    out: list[str] = []
    while i < len(text):
        char = text[i]
        if char == "'":
            return "".join(out), i + 1
        if char != "\\" or i + 1 >= len(text):
            out.append(char)
            i += 1
            continue
        esc = text[i + 1]
        i += 2
        if esc in _SIMPLE:
            out.append(_SIMPLE[esc])
        elif esc in "01234567":
            digits = esc
            while len(digits) < 3 and i < len(text) and text[i] in "01234567":
                digits += text[i]
                i += 1
            out.append(chr(int(digits, 8) & 0xFF))
        elif esc in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = ""
            while len(digits) < width and i < len(text) and text[i] in _HEX:
                digits += text[i]
                i += 1
            if not digits:
                out.append("\\" + esc)
            else:
                try:
                    out.append(chr(int(digits, 16)))
                except (ValueError, OverflowError):
                    return None
        elif esc == "c" and i < len(text):
            out.append(chr(ord(text[i]) & 0x1F))
            i += 1
        else:
            out.append("\\" + esc)
    return None


def static_word(text: str) -> str | None:
    """`text` (one shell word as written) after quote removal, or None when it has expansions
    (`$X`, `${…}`, `$(…)`, `` `…` ``, `$((…))`) or unbalanced quotes. Globs are left as they are."""
    return _remove_quotes(text, strict=True)


def unquote(text: str) -> str | None:
    """Plain quote removal (backslashes, '…', "…") of a word known to have no expansions: `$`
    and backquotes are kept as they are; None for unbalanced quotes."""
    return _remove_quotes(text, strict=False)


def _remove_quotes(text: str, strict: bool) -> str | None:
    """Quote removal; `strict` also decodes `$'…'` and `$"…"` and gives None for expansions."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            if i + 1 < len(text) and text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
        elif char == "'":
            end = text.find("'", i + 1)
            if end < 0:
                return None
            out.append(text[i + 1 : end])
            i = end + 1
        elif strict and text.startswith("$'", i):
            decoded = _ansi_c(text, i + 2)
            if decoded is None:
                return None
            out.append(decoded[0])
            i = decoded[1]
        elif (strict and text.startswith('$"', i)) or char == '"':
            i += 2 if char == "$" else 1
            while i < len(text) and text[i] != '"':
                if strict and text[i] in "$`":
                    return None
                if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in '$`"\\\n':
                    if text[i + 1] != "\n":
                        out.append(text[i + 1])
                    i += 2
                    continue
                out.append(text[i])
                i += 1
            if i >= len(text):
                return None
            i += 1
        elif strict and char in "$`":
            if char == "$" and (i + 1 >= len(text) or not _starts_expansion(text[i + 1])):
                out.append(char)  # a lone `$` is literal
                i += 1
                continue
            return None
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _starts_expansion(char: str) -> bool:
    return char.isalnum() or char in "_{(@*#?$!-"


def code_texts(code: str) -> list[str]:
    """Every word-start suffix of every line of `code`, quotes and brackets made spaces."""
    out: list[str] = []
    for line in code[:_MAX_CODE].splitlines():
        words = _NORMALIZE.sub(" ", line).split()
        for start in range(len(words)):
            out.append(" ".join(words[start:])[:_LINE])
            if len(out) >= _MAX_TEXTS:
                return out
    return out
