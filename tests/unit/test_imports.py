"""Import hygiene: the fast CLI paths never load heavy packages, and the package dependency
directions of DESIGN.md hold (checked by walking every module's AST)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "textual", "transformers", "triton", "safetensors", "engine", "yaml", "mcp", "mcp_types",
         "PIL", "markdownify", "bs4", "acp", "starlette", "uvicorn", "openai")


def imported_modules(*argv: str) -> set[str]:
    """Every module a `python -m vibe ARGV` process imports, from -X importtime."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vibe", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "vibe.cli" in names, "importtime output was not parsed"
    return names


@pytest.mark.parametrize(
    "argv", [("--version",), ("run", "--help"), ("--help",), ("mcp", "--help"), ("acp", "--help"),
             ("serve", "--help")]
)
def test_fast_paths_do_not_import_heavy_packages(argv):
    loaded = imported_modules(*argv)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == [], f"`vibe {' '.join(argv)}` imported {heavy[:10]}"


def _package_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, lazy) for every import in the file; lazy = inside a function or TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _package_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            child_lazy = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                child_lazy = True
            if isinstance(child, ast.Import):
                found.extend((alias.name, child_lazy) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.append((base, child_lazy))
                found.extend((f"{base}.{alias.name}", child_lazy) for alias in child.names)
            visit(child, child_lazy)

    visit(tree, False)
    return found


def _violations(top: str, rule) -> list[str]:
    out = []
    for path in sorted((ROOT / top).rglob("*.py")):
        for name, lazy in _imports(path):
            why = rule(_package_of(path), name, lazy)
            if why:
                out.append(f"{path.relative_to(ROOT)}: imports {name} ({why})")
    return out


def _under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_tools_import_neither_vibe_nor_engine_nor_ui_nor_http():
    def rule(mod, name, lazy):
        if mod == "tools.web_fetch" and lazy and _under(name, "httpx"):
            return ""  # the one tool that speaks HTTP, importing it only when it runs
        return (
            "tools stay independent" if _under(name, "vibe", "engine", "textual", "httpx") else ""
        )

    assert _violations("tools", rule) == []


def test_engine_never_imports_vibe_or_tools():
    def rule(mod, name, lazy):
        return "engine stays independent" if _under(name, "vibe", "tools") else ""

    assert _violations("engine", rule) == []


def test_vibe_directions():
    def rule(mod, name, lazy):
        if _under(name, "engine"):
            # Only the local provider (and `vibe engine`'s dispatch) load the engine, lazily.
            if mod not in ("vibe.providers.local", "vibe.cli") and not _under(mod, "vibe.serve"):
                return "only vibe.providers.local may import engine"
            return "" if lazy else "engine must be imported inside a function"
        if _under(mod, "vibe.agent") and _under(
            name, "textual", "httpx", "vibe.tui", "vibe.headless", "vibe.providers.http"
        ):
            return "the agent core is UI- and transport-free"
        if _under(mod, "vibe.providers") and _under(name, "vibe.agent", "vibe.tui", "tools"):
            return "providers know nothing of the agent, UI or tools"
        if _under(mod, "vibe.headless") and _under(name, "textual", "vibe.tui"):
            return "headless never loads the TUI"
        if _under(mod, "vibe.tui") and _under(name, "httpx", "vibe.providers.http"):
            return "the TUI never talks HTTP itself"
        return ""

    assert _violations("vibe", rule) == []


def test_the_checker_sees_lazy_and_relative_imports():
    # Guard against a checker that silently finds nothing.
    pkg = ROOT / "vibe" / "providers" / "factory.py"
    names = dict(_imports(pkg))
    assert names.get("vibe.providers.mistral.MistralProvider") is True
    assert names.get("vibe.errors.ConfigError") is False


def test_the_mcp_sdk_is_imported_only_lazily():
    """The SDK (about a second to import) loads when servers start, never at module level."""

    def rule(mod: str, name: str, lazy: bool) -> str:
        return "import it inside the function" if _under(name, "mcp", "mcp_types") and not lazy else ""

    assert _violations("vibe", rule) == []


def test_the_acp_server_loads_neither_textual_nor_torch():
    """`vibe acp` builds sessions with the shared Runtime (vibe.runtime), never the TUI."""
    code = (
        "import sys, vibe.acp.agent, vibe.acp.session, vibe.runtime; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'torch')"
        " or m.startswith('vibe.tui')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_tui_commands_and_app_do_not_import_each_other():
    """Commands act through vibe.tui.controller; the App only lays out and binds keys."""
    tui = ROOT / "vibe" / "tui"
    app_imports = {name for name, _ in _imports(tui / "app.py")}
    command_imports = {name for name, _ in _imports(tui / "commands.py")}
    assert not any(_under(n, "vibe.tui.commands") for n in app_imports)
    assert not any(_under(n, "vibe.tui.app") for n in command_imports)
    # The controller names the App only for type hints.
    controller = _imports(tui / "controller.py")
    assert all(lazy for name, lazy in controller if _under(name, "vibe.tui.app"))
