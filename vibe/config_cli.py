"""`vibe config check`: load every layer and print the effective config, secrets redacted."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import tomli_w

from vibe.config import load_config

_SECRET_HINTS = ("key", "token", "secret", "auth", "password")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vibe config", description="Inspect the configuration.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate and print the effective config")
    check.add_argument("--workdir", help="project folder (default: cwd)")
    check.add_argument(
        "--trust", action="store_true", help="include the project's .vibe/config.toml"
    )
    sub.add_parser("path", help="print the config file path")
    args = parser.parse_args(argv)
    if args.command == "path":
        print(load_config(Path.cwd()).config_file)
        return 0
    loaded = load_config(Path(args.workdir or Path.cwd()), trust=args.trust)
    data = loaded.config.model_dump(mode="json", exclude_none=True)
    for provider in data.get("providers", []):
        provider["extra_headers"] = {
            k: ("***" if any(h in k.lower() for h in _SECRET_HINTS) else v)
            for k, v in provider.get("extra_headers", {}).items()
        }
    status = []
    for p in loaded.config.providers:
        if p.api_key_env_var:
            state = "set" if loaded.api_key(p) else "MISSING"
            status.append(f"#   {p.name}: {p.api_key_env_var} is {state}")
    print("# files read: " + (", ".join(str(f) for f in loaded.files) or "none (built-ins only)"))
    print(f"# project folder: {loaded.project_dir or '-'} (trusted: {loaded.trusted})")
    print("# modes: " + ", ".join(m.name for m in loaded.modes))
    if status:
        print("# API keys (values never shown):", *status, sep="\n")
    sys.stdout.write(tomli_w.dumps(data))
    return 0
