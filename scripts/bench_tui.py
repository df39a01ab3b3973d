"""Benchmark the TUI against the loopback fake LLM server.

    .venv/bin/python scripts/bench_tui.py [--quick] [--mistral-vibe /tmp/mvibe/bin/vibe]

Measures: time to first frame of `vibe` in a pty (wall and the process's own CPU time; and of
Mistral Vibe when given), keystroke-to-screen latency with a resumed 10,000-message session,
streaming 20,000 tokens at 2,000 tokens/s, idle CPU over 10 s, and RSS after 1,000 turns.
The fake server always runs in its own process (`python -m tests.fakes.server`), so its threads
never compete with the app for the GIL. Everything runs in temporary $VIBE_HOME folders.
`--only ttff,keys,stream,idle,rss` picks measurements.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pexpect  # noqa: E402
import pyte  # noqa: E402

COLS, ROWS = 120, 40
CONFIG = """\
active_model = "fake"

[[providers]]
name = "fakeprov"
api_base = "{url}"
api_key_env_var = ""
backend = "generic"

[[models]]
name = "fake-model"
provider = "fakeprov"
alias = "fake"
"""


class Pty:
    """A process on a pseudo-terminal, its output decoded by pyte."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.started = time.perf_counter()
        self.child = pexpect.spawn(
            argv[0], argv[1:], cwd=str(cwd), env=env, dimensions=(ROWS, COLS)
        )
        # pexpect sleeps 50 ms before every send by default: that would be measured as latency.
        self.child.delaybeforesend = None

    def pump(self, timeout: float = 0.005) -> None:
        try:
            while True:
                self.stream.feed(self.child.read_nonblocking(1 << 16, timeout=timeout))
                timeout = 0
        except (pexpect.TIMEOUT, pexpect.EOF):
            pass

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait(self, check, timeout: float = 30.0) -> float:
        deadline = time.perf_counter() + timeout
        while not check(self):
            if time.perf_counter() > deadline or not self.child.isalive():
                raise RuntimeError(f"timed out; screen:\n{self.text()}")
            self.pump(0.001)
        return time.perf_counter()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.child.terminate(force=True)


class ServerProcess:
    """The fake LLM server in its own process, replaying one scripted turn forever."""

    def __init__(self, turn: dict | None = None) -> None:
        fd, self._script = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump([turn or {"text": "Hello!"}], fh)
        argv = [sys.executable, "-m", "tests.fakes.server", "--script", self._script, "--loop"]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.close()
            raise RuntimeError("the fake server did not start")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        os.unlink(self._script)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def first_frame(term: Pty) -> bool:
    """A full frame: at least three non-blank rows (same rule for both programs)."""
    return sum(1 for row in term.screen.display if row.strip()) >= 3


def make_home(base: Path, url: str) -> tuple[Path, Path, dict[str, str]]:
    home, work = base / "home", base / "work"
    home.mkdir(parents=True)
    work.mkdir()
    (home / "config.toml").write_text(CONFIG.format(url=url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
    env.update(VIBE_HOME=str(home), HOME=str(base), TERM="xterm-256color", MISTRAL_API_KEY="x")
    return home, work, env


def ttff(argv: list[str], runs: int, url: str) -> tuple[list[float], list[float]]:
    """Wall seconds to the first frame, and the CPU seconds the process had used by then."""
    wall, cpu = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            _, work, env = make_home(Path(tmp), url)
            term = Pty(argv, work, env)
            try:
                wall.append(term.wait(first_frame) - term.started)
                cpu.append(term.cpu_seconds())
            finally:
                term.close()
    return wall, cpu


def big_session(home: Path, work: Path, n: int) -> str:
    from vibe.messages import Message
    from vibe.session import Session

    session = Session.create(home, work, model="fake")
    with session.log_file.open("w") as fh:
        for i in range(n // 2):
            fh.write(json.dumps(Message("user", f"question {i}").to_dict()) + "\n")
            fh.write(json.dumps(Message("assistant", f"answer **{i}**\n\nline").to_dict()) + "\n")
    return session.id


def keystrokes(url: str, n_keys: int) -> tuple[float, list[float]]:
    """Resume a 10,000-message session, type keys one at a time, time each until it shows."""
    with tempfile.TemporaryDirectory() as tmp:
        home, work, env = make_home(Path(tmp), url)
        sid = big_session(home, work, 10_000)
        term = Pty([str(Path(sys.executable).with_name("vibe")), "--resume", sid], work, env)
        try:
            opened = term.wait(lambda t: "answer 4999" in t.text()) - term.started
            lat, typed = [], ""
            for i in range(n_keys):
                char = "abcdefghij"[i % 10]
                typed += char
                t0 = time.perf_counter()
                term.child.send(char)
                lat.append(term.wait(lambda t, s=typed[-12:]: s in t.text()) - t0)
            return opened, lat
        finally:
            term.close()


def idle_cpu(url: str, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        _, work, env = make_home(Path(tmp), url)
        term = Pty([str(Path(sys.executable).with_name("vibe"))], work, env)
        try:
            term.wait(lambda t: "Default" in t.text())
            end = time.perf_counter() + 1.0
            while time.perf_counter() < end:  # let startup work finish
                term.pump(0.05)
            cpu0, t0 = term.cpu_seconds(), time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                term.pump(0.05)
            return 100 * (term.cpu_seconds() - cpu0) / (time.perf_counter() - t0)
        finally:
            term.close()


async def _headless_app(url: str, base: Path):
    from vibe.config import load_config
    from vibe.tui.app import AppOptions, VibeApp

    home, work, _ = make_home(base, url)
    os.environ["VIBE_HOME"] = str(home)
    return VibeApp(load_config(work, home=home), AppOptions(cwd=work))


async def wait_until(pilot, cond, timeout: float = 600) -> None:
    deadline = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > deadline:
            raise RuntimeError("timed out")
        # asyncio.sleep, not pilot.pause: pause forces a layout refresh on every call.
        await asyncio.sleep(0.002)


def raw_stream_seconds(server: ServerProcess) -> float:
    """The fake server's own pace for this turn, read by a bare httpx client."""
    import httpx

    body = {"model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    t0 = time.perf_counter()
    with httpx.stream("POST", server.url + "/chat/completions", json=body, timeout=120) as resp:
        for _ in resp.iter_bytes():
            pass
    return time.perf_counter() - t0


async def streaming(tokens: int, rate: float) -> tuple[float, float, float, float]:
    """(nominal s, bare-client s, TUI wall s, TUI-process CPU s) for one streamed answer."""
    text = "".join(f"tok{i % 97} " if i % 50 else f"tok{i}\n\n" for i in range(tokens))
    turn = {
        "text": text,
        "slow": 1 / rate,
        "usage": {"prompt_tokens": 10, "completion_tokens": tokens},
    }
    with ServerProcess(turn) as server:
        baseline = raw_stream_seconds(server)
        took, cpu = await _stream_in_app(server.url)
    return tokens / rate, baseline, took, cpu


async def _stream_in_app(url: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        app = await _headless_app(url, Path(tmp))
        async with app.run_test(headless=True, size=(COLS, ROWS)) as pilot:
            await wait_until(pilot, lambda: app.runtime is not None)
            t0, c0 = time.perf_counter(), time.process_time()
            await app.submit("stream please")
            await wait_until(pilot, lambda: app.router.last_answer and not app.busy)
            return time.perf_counter() - t0, time.process_time() - c0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def many_turns(turns: int) -> tuple[float, float, float]:
    turn = {
        "text": "Short **answer** with `code`.\n\n- a\n- b",
        "usage": {"prompt_tokens": 100, "completion_tokens": 10},
    }
    with ServerProcess(turn) as server, tempfile.TemporaryDirectory() as tmp:
        app = await _headless_app(server.url, Path(tmp))
        async with app.run_test(headless=True, size=(COLS, ROWS)) as pilot:
            await wait_until(pilot, lambda: app.runtime is not None)
            before, t0 = rss_mb(), time.perf_counter()
            for i in range(turns):
                await app.submit(f"turn {i}")
                await wait_until(pilot, lambda: not app.busy and not app.pending)
            return before, rss_mb(), time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def runs_text(values: list[float]) -> str:
    return ", ".join(f"{1000 * v:.0f}" for v in values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, shorter measurements")
    parser.add_argument("--mistral-vibe", default="/tmp/mvibe/bin/vibe", help="Mistral Vibe binary")
    parser.add_argument("--only", default="ttff,keys,stream,idle,rss", help="comma-separated")
    args = parser.parse_args()
    only = set(args.only.split(","))
    runs = 3 if args.quick else 7
    vibe = str(Path(sys.executable).with_name("vibe"))
    results: dict[str, object] = {"load_avg_1m_start": os.getloadavg()[0]}
    with ServerProcess() as server:
        if "ttff" in only:
            frames, cpu = ttff([vibe], runs, server.url)
            results["ttff_ms_median"] = 1000 * statistics.median(frames)
            results["ttff_cpu_ms_median"] = 1000 * statistics.median(cpu)
            print(
                f"time to first frame (vibe):          median {results['ttff_ms_median']:.0f} ms "
                f"wall, {results['ttff_cpu_ms_median']:.0f} ms CPU  (wall runs: "
                f"{runs_text(frames)})  goal < 400 ms"
            )
            if Path(args.mistral_vibe).exists():
                theirs, theirs_cpu = ttff([args.mistral_vibe], runs, server.url)
                results["mistral_vibe_ttff_ms_median"] = 1000 * statistics.median(theirs)
                results["mistral_vibe_ttff_cpu_ms_median"] = 1000 * statistics.median(theirs_cpu)
                print(
                    f"time to first frame (Mistral Vibe):  median "
                    f"{results['mistral_vibe_ttff_ms_median']:.0f} ms wall, "
                    f"{results['mistral_vibe_ttff_cpu_ms_median']:.0f} ms CPU  "
                    f"(wall runs: {runs_text(theirs)})"
                )
        if "keys" in only:
            opened, lat = keystrokes(server.url, 40 if args.quick else 100)
            results.update(
                resume_10k_ms=1000 * opened,
                key_p50_ms=1000 * pct(lat, 0.5),
                key_p95_ms=1000 * pct(lat, 0.95),
            )
            print(f"resume 10,000 messages to screen:    {1000 * opened:.0f} ms")
            print(
                f"keystroke to screen (10k history):   p50 {results['key_p50_ms']:.1f} ms  "
                f"p95 {results['key_p95_ms']:.1f} ms  goal p95 < 30 ms"
            )
        if "idle" in only:
            idle = idle_cpu(server.url, 3 if args.quick else 10)
            results["idle_cpu_pct"] = idle
            print(f"idle CPU:                            {idle:.2f} %  goal < 1 %")
    if "stream" in only:
        tokens = 4000 if args.quick else 20_000
        nominal, baseline, took, cpu_s = asyncio.run(streaming(tokens, 2000))
        results.update(
            stream_nominal_s=nominal,
            stream_server_s=baseline,
            stream_tui_s=took,
            stream_cpu_s=cpu_s,
        )
        print(
            f"stream {tokens} tokens at 2,000/s:      TUI {took:.2f} s wall ({cpu_s:.2f} s CPU); "
            f"bare client {baseline:.2f} s (nominal {nominal:.1f} s); ratio {took / baseline:.3f}"
            "  goal <= 1.1"
        )
    if "rss" in only:
        turns = 100 if args.quick else 1000
        before, after, secs = asyncio.run(many_turns(turns))
        results.update(rss_before_mb=before, rss_after_mb=after, turns=turns, turns_s=secs)
        print(
            f"RSS after {turns} turns:                {after:.0f} MB (before {before:.0f} MB; "
            f"{secs:.1f} s, {1000 * secs / turns:.0f} ms/turn)"
        )
    results["load_avg_1m_end"] = os.getloadavg()[0]
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
