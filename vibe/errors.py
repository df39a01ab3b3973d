"""Exceptions of the application, each carrying the exit code it maps to.

VibeError (exit 1)
├── ConfigError          bad or missing configuration (file, key path, expectation)
├── UsageError           bad command-line usage
├── ProviderError (2)    the model or its API failed after retries
│   ├── ContextTooLongError   the request exceeded the model's context window
│   ├── ProviderConfigError (1) the request cannot be built (bad URL or header): fix config
│   └── CompactionError       compaction failed twice (circuit breaker) or gave no summary
├── LimitReached (3)     a --max-* or --time-limit budget was exhausted
└── Interrupted (130)    SIGINT / SIGTERM / Esc
"""

from __future__ import annotations


class VibeError(Exception):
    """Root of every error vibe reports to the user as one line."""

    exit_code = 1


class ConfigError(VibeError):
    """Raised when a config file cannot be read or does not validate."""

    def __init__(self, file: str, key_path: str, expected: str) -> None:
        self.file, self.key_path, self.expected = file, key_path, expected
        where = f"{file}: {key_path}" if key_path else file
        super().__init__(f"{where}: {expected}")


class UsageError(VibeError):
    """Raised for invalid command-line usage (unknown model alias, bad flag value)."""


class ProviderError(VibeError):
    """Raised when the model API fails for good (after retries)."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        request_id: str | None = None,
        retryable: bool = False,
    ) -> None:
        self.provider, self.model, self.status = provider, model, status
        self.request_id, self.retryable, self.detail = request_id, retryable, message
        super().__init__(self._one_line())

    def _one_line(self) -> str:
        head = " ".join(p for p in (self.provider, self.model) if p)
        parts = [f"{head}:" if head else ""]
        if self.status is not None:
            parts.append(f"HTTP {self.status}:")
        parts.append(self.detail)
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(p for p in parts if p)


class ProviderConfigError(ProviderError):
    """Raised, without retrying, when a request cannot even be built: a bad api_base, a key
    or header value with a line break. The message names the config key, never the key."""

    exit_code = 1


class ContextTooLongError(ProviderError):
    """Raised when the provider rejects a request for exceeding the context window."""


class CompactionError(ProviderError):
    """Raised when the summary request fails twice (circuit breaker) or returns no summary."""


class LimitReached(VibeError):
    """Raised when a run budget (turns, tokens, price, time) is exhausted."""

    exit_code = 3


class Interrupted(VibeError):
    """Raised when the user or a signal interrupts the run."""

    exit_code = 130
