"""grep's Python search, run in a child process (`python -m`-free: see grep.py) so that a
regex that backtracks for ever can be killed: a time budget, Esc and --time-limit all stop it.

The child prints one row per matching line, as ripgrep does with `--null`:
`PATH \\0 NUMBER : LINE \\n` (LINE cut to `MAX_LINE_CHARS + 1` characters). Imports only the
standard library and the tools' stdlib-only helpers, so it starts in a few milliseconds.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from tools._text import SNIFF_BYTES, decode, looks_binary
from tools._walk import glob_matcher, list_files

MAX_LINE_CHARS = 300
WHOLE_FILE_BYTES = 20 * 1024 * 1024
# Files a folder search never opens (the user can still name one as the path to search).
SECRET_FILES = (".env", ".env.*", "*.pem", "id_rsa*", "id_ed25519*", ".netrc")
SECRET_DIRS = (".ssh", ".aws")


def is_secret(rel: str) -> bool:
    """Whether a path found under a searched folder (relative to it) is a secret file."""
    parts = rel.split("/")
    if any(part in SECRET_DIRS for part in parts[:-1]):
        return True
    return any(fnmatch.fnmatchcase(parts[-1], pattern) for pattern in SECRET_FILES)


def search(
    regex: re.Pattern[str], target: Path, glob: str | None
) -> Iterator[tuple[Path, int, str]]:
    """Every matching line under `target` (a file, or a folder walked as git would)."""
    matcher = glob_matcher(glob)
    files = [target] if target.is_file() else list_files(target)
    for path in files:
        if path != target:
            rel = path.relative_to(target).as_posix()
            if is_secret(rel) or (matcher is not None and not matcher.match(rel)):
                continue
        for number, line in lines(path):
            if regex.search(line):
                yield path, number, line


def lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open("rb") as handle:
            sample = handle.read(SNIFF_BYTES)
            if looks_binary(sample):
                return
            if path.stat().st_size <= WHOLE_FILE_BYTES:
                text = decode(sample + handle.read()).text
                for number, line in enumerate(text.split("\n"), start=1):
                    yield number, line.removesuffix("\r")
                return
            handle.seek(0)
            for number, raw in enumerate(handle, start=1):
                yield number, raw.decode("utf-8", errors="replace").rstrip("\r\n")
    except OSError:
        return


def main(argv: list[str]) -> int:
    """argv: one JSON object {"pattern", "target", "glob"}; rows go to stdout. Exit 0, or 2
    with one line on stderr when the search itself failed (as ripgrep does)."""
    out = sys.stdout.buffer
    try:
        spec = json.loads(argv[0])
        regex = re.compile(spec["pattern"])
        for path, number, line in search(regex, Path(spec["target"]), spec.get("glob")):
            row = f"{number}:{line[: MAX_LINE_CHARS + 1]}".replace("\n", " ")
            out.write(os.fsencode(path) + b"\0" + row.encode("utf-8", errors="replace") + b"\n")
        out.flush()
    except BrokenPipeError:
        return 0
    except Exception as exc:  # reported by the tool as "grep failed: ..."
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        return 2
    return 0
