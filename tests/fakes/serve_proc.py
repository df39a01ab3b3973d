"""Start `vibe serve` as a real subprocess on a free loopback port (for the serve tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    proc: subprocess.Popen[str]
    base: str  # http://127.0.0.1:PORT

    @property
    def v1(self) -> str:
        return self.base + "/v1"


@contextmanager
def serve(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> Iterator[Served]:
    """`vibe serve ARGS --port FREE`, up when /health answers; terminated afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "vibe", "serve", *args, "--port", str(port), "--device", "cpu",
           "--dtype", "float32"]  # fmt: skip
    with http_process(cmd, port, env, timeout) as served:
        yield served


@contextmanager
def http_process(
    cmd: list[str], port: int, env: dict[str, str] | None = None, timeout: float = 90
) -> Iterator[Served]:
    """Run `cmd` (an HTTP server told to listen on 127.0.0.1:port) until /health answers 200;
    terminated afterwards. Its output goes to a temporary file (a pipe nobody reads would
    block a chatty server) and comes back in the error when it exits early."""
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT, text=True)
        base, shown = f"http://127.0.0.1:{port}", " ".join([Path(cmd[0]).name, *cmd[1:4]])
        deadline = time.monotonic() + timeout
        try:
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"{shown} exited {proc.returncode}: {log.read()[-4000:]}")
                try:
                    if httpx.get(base + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{shown} did not come up in {timeout:g} s")
                time.sleep(0.2)
            yield Served(proc, base)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
