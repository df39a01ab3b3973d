"""Benchmark of the headless agent against the loopback fake server (no model latency).

1. Agent overhead: a 20-turn session (19 tool calls, then an answer) run in-process through the
   real HTTP provider; the time not spent in the provider's stream or in tools, per turn.
2. End to end: the "fix the failing test" task as a `vibe run` process, beside Mistral Vibe
   2.18.4 (`vibe -p`, from MVIBE=/tmp/mvibe/bin/vibe when installed) on the same fake server.

Usage: python scripts/bench_headless.py [--runs N] [--mvibe PATH] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.server import FakeLLMServer  # noqa: E402
from tools.permissions import PermissionPolicy  # noqa: E402
from tools.registry import builtin_tools  # noqa: E402
from vibe.agent.approval import HeadlessApprover  # noqa: E402
from vibe.agent.loop import Agent, AgentSettings  # noqa: E402
from vibe.config import load_config  # noqa: E402
from vibe.events import TurnFinished  # noqa: E402
from vibe.providers.factory import make_provider  # noqa: E402
from vibe.providers.scripted import ScriptedProvider  # noqa: E402
from vibe.session import Session  # noqa: E402

TURNS = 20
CONFIG = """active_model = "fake"
[[providers]]
name = "fake"
api_base = "{url}"
api_key_env_var = "FAKE_KEY"
backend = "generic"
[[models]]
name = "fake-model"
provider = "fake"
alias = "fake"
"""


class _Timed:
    """Wraps a provider or a tool and adds up the time spent inside it."""

    def __init__(self, inner: Any, clock: dict[str, float], key: str) -> None:
        self.inner, self.clock, self.key = inner, clock, key
        for attr in ("name", "description", "Args"):
            if hasattr(inner, attr):
                setattr(self, attr, getattr(inner, attr))

    async def stream(self, request: Any) -> Any:
        started = time.perf_counter()
        try:
            async for chunk in self.inner.stream(request):
                self.clock[self.key] += time.perf_counter() - started
                yield chunk
                started = time.perf_counter()
        finally:
            self.clock[self.key] += time.perf_counter() - started

    async def run(self, args: Any, ctx: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self.inner.run(args, ctx)
        finally:
            self.clock[self.key] += time.perf_counter() - started

    async def aclose(self) -> None:
        await self.inner.aclose()


def _session_script() -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for i in range(TURNS - 1):
        call = (
            {"name": "read_file", "arguments": {"path": "notes.txt"}}
            if i % 2
            else {
                "name": "todo",
                "arguments": {"todos": [{"content": f"step {i}", "status": "in_progress"}]},
            }
        )
        turns.append({"text": f"Step {i}.", "tool_calls": [call]})
    turns.append({"text": "All done."})
    return turns


async def _one_session(provider: Any, work: Path, home: Path) -> dict[str, float]:
    clock = {"provider": 0.0, "tools": 0.0}
    config = load_config(work, home=home)
    model, _ = config.resolve_model("fake")
    tools = {n: _Timed(t, clock, "tools") for n, t in builtin_tools().items()}
    settings = AgentSettings(
        model=model, policy=PermissionPolicy(auto_approve=True), cwd=work, system_prompt="bench"
    )
    session = Session.create(home, work, model="fake")
    agent = Agent(
        _Timed(provider, clock, "provider"), tools, HeadlessApprover(True), settings, session
    )  # type: ignore[arg-type]
    started = time.perf_counter()
    async for event in agent.run("do twenty steps"):
        if isinstance(event, TurnFinished):
            assert event.status == "completed" and event.num_turns == TURNS, event
    total = time.perf_counter() - started
    await provider.aclose()
    return {"total": total, **clock}


def bench_overhead(runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeLLMServer() as server:
        home, work = Path(tmp) / "home", Path(tmp) / "work"
        home.mkdir()
        work.mkdir()
        (work / "notes.txt").write_text("line\n" * 50)
        (home / "config.toml").write_text(CONFIG.format(url=server.url))
        os.environ["FAKE_KEY"] = "bench-key-0000"
        loaded = load_config(work, home=home)
        for label in ("http", "scripted"):
            samples = []
            for _ in range(runs):
                if label == "http":
                    server.script(_session_script())
                    model, prov = loaded.resolve_model("fake")
                    provider = make_provider(model, prov, loaded)
                else:
                    provider = ScriptedProvider(_session_script())
                samples.append(asyncio.run(_one_session(provider, work, home)))
            best = min(samples, key=lambda s: s["total"] - s["provider"] - s["tools"])
            med = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
            agent_ms = lambda s: (s["total"] - s["provider"] - s["tools"]) / TURNS * 1000  # noqa: E731
            out[label] = {
                "turn_total_ms": round(med["total"] / TURNS * 1000, 2),
                "turn_provider_ms": round(med["provider"] / TURNS * 1000, 2),
                "turn_tools_ms": round(med["tools"] / TURNS * 1000, 2),
                "agent_overhead_ms_median": round(
                    statistics.median(agent_ms(s) for s in samples), 2
                ),
                "agent_overhead_ms_best": round(agent_ms(best), 2),
            }
    return out


def _fix_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (repo / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    for args in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "calc"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return repo


def _fix_script(repo: Path, ours: bool) -> list[dict[str, Any]]:
    pytest = f"{sys.executable} -m pytest -q -p no:cacheprovider test_calc.py"
    path = "calc.py" if ours else str(repo / "calc.py")
    key = "path" if ours else "file_path"
    return [
        {
            "text": "Running the tests.",
            "tool_calls": [{"name": "bash", "arguments": {"command": pytest}}],
        },
        {"tool_calls": [{"name": "read_file" if ours else "read", "arguments": {key: path}}]},
        {
            "tool_calls": [
                {
                    "name": "edit",
                    "arguments": {
                        key: path,
                        "old_string": "return a - b",
                        "new_string": "return a + b",
                    },
                }
            ]
        },
        {"tool_calls": [{"name": "bash", "arguments": {"command": pytest}}]},
        {"text": "Fixed add(); the test passes."},
    ]


def bench_fix_task(runs: int, mvibe: str | None) -> dict[str, Any]:
    agents = {"vibe (ours)": [sys.executable, "-m", "vibe", "run", "--auto-approve"]}
    if mvibe:
        agents["Mistral Vibe 2.18.4"] = [mvibe, "--auto-approve", "--trust", "-p"]
    out: dict[str, Any] = {}
    for label, cmd in agents.items():
        times: list[float] = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp, FakeLLMServer() as server:
                root = Path(tmp)
                repo = _fix_repo(root)
                (root / "home").mkdir()
                (root / "home" / "config.toml").write_text(CONFIG.format(url=server.url))
                server.script(_fix_script(repo, ours=label.startswith("vibe")))
                env = {
                    **os.environ,
                    "VIBE_HOME": str(root / "home"),
                    "FAKE_KEY": "k" * 20,
                    "MISTRAL_API_KEY": "unused-" + "x" * 20,
                }
                started = time.perf_counter()
                proc = subprocess.run(
                    [*cmd, "make the failing test pass"],
                    cwd=repo,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                elapsed = time.perf_counter() - started
                fixed = (repo / "calc.py").read_text().endswith("return a + b\n")
                if proc.returncode != 0 or not fixed or len(server.requests) != 5:
                    raise SystemExit(
                        f"{label} failed the task (rc {proc.returncode}, "
                        f"{len(server.requests)} requests):\n{proc.stderr[-2000:]}"
                    )
                times.append(elapsed)
        out[label] = {
            "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3),
            "runs": runs,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    default = "/tmp/mvibe/bin/vibe"
    parser.add_argument(
        "--mvibe", default=os.environ.get("MVIBE") or (default if Path(default).exists() else None)
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = {
        "overhead_per_turn": bench_overhead(args.runs),
        "fix_the_test": bench_fix_task(max(1, args.runs // 2 + 1), args.mvibe),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for label, row in report["overhead_per_turn"].items():
        print(
            f"[{label} provider] per turn: total {row['turn_total_ms']} ms, provider "
            f"{row['turn_provider_ms']} ms, tools {row['turn_tools_ms']} ms, agent overhead "
            f"{row['agent_overhead_ms_median']} ms (best run {row['agent_overhead_ms_best']} ms)"
        )
    for label, row in report["fix_the_test"].items():
        print(
            f"[fix the test] {label}: median {row['median_s']} s, min {row['min_s']} s "
            f"over {row['runs']} runs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
