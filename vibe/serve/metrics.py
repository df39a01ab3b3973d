"""Server metrics in the Prometheus text format (no client library: a few counters and gauges)."""

from __future__ import annotations

import threading
import time
from collections import deque

TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RATE_WINDOW_S = 10.0


class Metrics:
    """Updated from the engine thread and the request handlers; read by /metrics."""

    def __init__(self, model: str) -> None:
        self.model = model.replace("\\", "\\\\").replace('"', '\\"')
        self._lock = threading.Lock()
        self.generated = 0
        self.prompt_tokens = 0
        self.requests: dict[str, int] = {}
        self.running = self.waiting = 0
        self.kv = (0, 0, 0)
        self.steps = 0
        self.prefilling = 0
        self.queued_prompt_tokens = 0
        self.prefill_chunks = 0
        self.prefill_tokens = 0
        self.prefill_seconds = 0.0
        self.step_seqs = 0
        self.last_batch = 0
        self.ttft_sum = 0.0
        self.ttft_count = 0
        self.ttft_buckets = [0] * len(TTFT_BUCKETS)
        self._recent: deque[tuple[float, int]] = deque()

    def tokens(self, n: int) -> None:
        with self._lock:
            self.generated += n
            now = time.monotonic()
            self._recent.append((now, n))
            while self._recent and self._recent[0][0] < now - RATE_WINDOW_S:
                self._recent.popleft()

    def prompt(self, n: int) -> None:
        with self._lock:
            self.prompt_tokens += n

    def first_token(self, seconds: float) -> None:
        with self._lock:
            self.ttft_sum += seconds
            self.ttft_count += 1
            for i, bound in enumerate(TTFT_BUCKETS):
                if seconds <= bound:
                    self.ttft_buckets[i] += 1

    def step(self, batch: int, seconds: float) -> None:
        with self._lock:
            self.steps += 1
            self.step_seqs += batch
            self.last_batch = batch

    def prefill_chunk(self, tokens: int, seconds: float) -> None:
        with self._lock:
            self.prefill_chunks += 1
            self.prefill_tokens += tokens
            self.prefill_seconds += seconds

    def finished(self, reason: str) -> None:
        with self._lock:
            self.requests[reason] = self.requests.get(reason, 0) + 1

    def gauges(
        self,
        running: int,
        waiting: int,
        kv: tuple[int, int, int],
        prefilling: int = 0,
        queued_prompt_tokens: int = 0,
    ) -> None:
        with self._lock:
            self.running, self.waiting, self.kv = running, waiting, kv
            self.prefilling, self.queued_prompt_tokens = prefilling, queued_prompt_tokens
            if not running:
                self.last_batch = 0

    def tokens_per_second(self) -> float:
        now = time.monotonic()
        with self._lock:
            recent = [n for t, n in self._recent if t >= now - RATE_WINDOW_S]
        return sum(recent) / RATE_WINDOW_S

    def render(self) -> str:
        tps = self.tokens_per_second()
        with self._lock:
            used, capacity, nbytes = self.kv
            lines: list[str] = []

            def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
                lines.append(f"# HELP vibe_serve_{name} {help_}")
                lines.append(f"# TYPE vibe_serve_{name} {kind}")
                for labels, value in samples:
                    lines.append(f"vibe_serve_{name}{labels} {value:g}")

            m = f'{{model="{self.model}"}}'
            avg = self.step_seqs / self.steps if self.steps else 0.0
            single: list[tuple[str, str, str, float]] = [
                ("generation_tokens_total", "counter", "Tokens generated.", self.generated),
                ("prompt_tokens_total", "counter", "Prompt tokens received.", self.prompt_tokens),
                ("generation_tokens_per_second", "gauge",
                 f"Tokens generated per second over the last {RATE_WINDOW_S:g} s.", tps),
                ("num_requests_running", "gauge",
                 "Sequences holding a KV slot (decoding or prefilling).", self.running),
                ("num_requests_waiting", "gauge", "Sequences waiting in the queue.", self.waiting),
                ("num_requests_prefilling", "gauge",
                 "Sequences whose prompt is being prefilled in chunks.", self.prefilling),
                ("queued_prompt_tokens", "gauge",
                 "Prompt tokens waiting or not prefilled yet.", self.queued_prompt_tokens),
                ("batch_size", "gauge", "Sequences in the last decode step.", self.last_batch),
                ("batch_size_mean", "gauge", "Mean sequences per decode step.", avg),
                ("decode_steps_total", "counter", "Decode steps run.", self.steps),
                ("prefill_chunks_total", "counter",
                 "Prefill chunks run between decode steps.", self.prefill_chunks),
                ("prefill_tokens_total", "counter",
                 "Prompt tokens computed (not reused from the prefix cache).", self.prefill_tokens),
                ("prefill_seconds_total", "counter", "Seconds spent prefilling.",
                 self.prefill_seconds),
                ("kv_cache_usage_ratio", "gauge", "Cached tokens over KV slot capacity.",
                 used / capacity if capacity else 0.0),
                ("kv_cache_tokens", "gauge", "Tokens held in KV slots.", used),
                ("kv_cache_bytes", "gauge", "Bytes allocated to KV slots.", nbytes),
            ]  # fmt: skip
            for name, kind, help_, value in single:
                metric(name, kind, help_, [(m, value)])
            reqs = [
                (f'{{model="{self.model}",finish="{k}"}}', v)
                for k, v in sorted(self.requests.items())
            ]
            metric("requests_total", "counter", "Finished sequences by finish reason.", reqs)
            lines.append("# HELP vibe_serve_time_to_first_token_seconds Time to first token.")
            lines.append("# TYPE vibe_serve_time_to_first_token_seconds histogram")
            name = "vibe_serve_time_to_first_token_seconds"
            for bound, count in zip(TTFT_BUCKETS, self.ttft_buckets, strict=True):
                lines.append(f'{name}_bucket{{model="{self.model}",le="{bound:g}"}} {count}')
            lines.append(f'{name}_bucket{{model="{self.model}",le="+Inf"}} {self.ttft_count}')
            lines.append(f"{name}_sum{m} {self.ttft_sum:g}")
            lines.append(f"{name}_count{m} {self.ttft_count}")
        return "\n".join(lines) + "\n"
