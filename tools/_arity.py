"""The pattern "allow for this session/always" proposes for a bash command, by command arity.

As Claude Code and Mistral Vibe do: `git push *` rather than `git *`, `npm run test *` rather
than `npm *`, `docker compose up *`, `python -m pytest *`. Commands that destroy, escalate or
talk to the network (rm, mv, chmod, dd, curl, sudo, ssh, …) are only ever offered exactly.
"""

from __future__ import annotations

import os

from tools._wrappers import INTERPRETERS

# How many leading words (program included) name the command; the longest prefix listed wins.
ARITY: dict[str, int] = {
    "git": 2,
    "npm": 2,
    "npm run": 3,
    "npm exec": 3,
    "yarn": 2,
    "yarn run": 3,
    "pnpm": 2,
    "pnpm run": 3,
    "bun": 2,
    "bun run": 3,
    "npx": 2,
    "bunx": 2,
    "docker": 2,
    "docker compose": 3,
    "docker container": 3,
    "docker image": 3,
    "docker volume": 3,
    "docker network": 3,
    "podman": 2,
    "kubectl": 2,
    "helm": 2,
    "cargo": 2,
    "go": 2,
    "pip": 2,
    "pip3": 2,
    "uv": 2,
    "uv pip": 3,
    "uv run": 3,
    "poetry": 2,
    "poetry run": 3,
    "pipx": 2,
    "conda": 2,
    "brew": 2,
    "apt": 2,
    "gh": 3,
    "terraform": 2,
    "dotnet": 2,
    "mvn": 2,
    "gradle": 2,
    "./gradlew": 2,
    "python -m": 3,
    "python3 -m": 3,
    "make": 1,
    "cmake": 1,
    "ninja": 1,
    "pytest": 1,
    "ruff": 2,
    "mypy": 1,
    "tox": 1,
    "just": 2,
}
# Only the exact command is ever offered for these.
EXACT_ONLY = frozenset(
    [
        "rm",
        "rmdir",
        "mv",
        "cp",
        "ln",
        "install",
        "chmod",
        "chown",
        "chgrp",
        "chattr",
        "dd",
        "curl",
        "wget",
        "sudo",
        "doas",
        "su",
        "pkexec",
        "runuser",
        "kill",
        "pkill",
        "killall",
        "shutdown",
        "reboot",
        "halt",
        "poweroff",
        "fdisk",
        "parted",
        "sfdisk",
        "wipefs",
        "ssh",
        "scp",
        "sftp",
        "rsync",
        "ftp",
        "nc",
        "ncat",
        "netcat",
        "socat",
        "telnet",
        "truncate",
        "shred",
        "mount",
        "umount",
        "crontab",
        "systemctl",
        "iptables",
        "useradd",
        "userdel",
        "usermod",
        "passwd",
        "eval",
        "exec",
        "source",
        ".",
        "xargs",
        "find",
        "env",
        "tee",
        "sed",
        "awk",
        "perl",
        "git-shell",
        "tar",
        "unzip",
        "nohup",
        "setsid",
        "watch",
        "strace",
        "ltrace",
        "busybox",
        "toybox",
        "chroot",
        "flock",
        "docker-compose",
    ]
)


def _exact_only(name: str) -> bool:
    return name in EXACT_ONLY or name.startswith("mkfs") or name in INTERPRETERS


def arity_pattern(words: tuple[str, ...]) -> str | None:
    """`git push *` for `git push origin main`; None when only the exact command may be offered."""
    if not words:
        return None
    name = os.path.basename(words[0])
    if "/" in words[0] and not words[0].startswith("./"):
        return None
    if name in ("python", "python3") and len(words) >= 3 and words[1] == "-m":
        return " ".join(words[:3]) + " *"
    if _exact_only(name):
        return None
    size = 1
    for length in (3, 2, 1):
        if " ".join(words[:length]) in ARITY and len(words) >= length:
            size = ARITY[" ".join(words[:length])]
            break
    prefix = list(words[:size])
    if name == "git" and len(words) > 1 and words[1].startswith("-"):
        return None  # global options before the subcommand: offer exactly what was asked
    if any(w.startswith("-") for w in prefix[1:]) or any(
        c in w for w in prefix for c in "*?[]{}$`'\"\\;&|<>()\n"
    ):
        return None
    return " ".join(prefix) + " *"
