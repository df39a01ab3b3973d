"""Start `vibe serve` as a real subprocess on a free loopback port (for the serve tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vibe", "serve", *args, "--port", str(port), "--device", "cpu",
         "--dtype", "float32"],
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vibe serve exited {proc.returncode}: {proc.stdout.read()}")
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("vibe serve did not come up")
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
