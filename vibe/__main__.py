"""`python -m vibe`: drop the current directory from sys.path first, so a project's own
`tools/` or `engine/` folder cannot shadow ours (unless cwd is vibe's own source tree)."""

import os
import sys

import vibe

_cwd = os.path.realpath(os.getcwd())
_ours = os.path.dirname(os.path.dirname(os.path.realpath(vibe.__file__)))
if _cwd != _ours:
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.realpath(p) != _cwd]

from vibe.cli import main  # noqa: E402

sys.exit(main())
