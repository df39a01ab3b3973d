"""Engine exceptions: one root, one class per way a user's input can be wrong.

EngineError
├── ModelNotFoundError     the checkpoint path / alias does not exist or lacks files
├── UnsupportedModelError  the architecture or a config option is not implemented
├── WeightLoadError        a tensor is missing or has the wrong shape
├── ContextLengthError     the prompt does not fit in the context window
├── EngineOutOfMemory      the device ran out of memory
├── BadRequestError        a chat request or prompt cannot be encoded
└── EngineBusyError        a generation is already running on this engine
"""

from __future__ import annotations


class EngineError(Exception):
    """Root of every error the engine raises on purpose; the message is one line for users."""


class ModelNotFoundError(EngineError):
    """Raised when a model path or alias cannot be resolved to a checkpoint on disk."""


class UnsupportedModelError(EngineError):
    """Raised when a checkpoint's architecture or config option is not implemented."""


class WeightLoadError(EngineError):
    """Raised when a checkpoint tensor is missing, unexpected or misshaped."""


class ContextLengthError(EngineError):
    """Raised when a prompt is longer than the context window."""


class EngineOutOfMemory(EngineError):
    """Raised when the device runs out of memory while loading or running the model."""


class BadRequestError(EngineError, ValueError):
    """Raised when a request is invalid: bad roles, empty prompt, sampling values out of range."""


class EngineBusyError(EngineError):
    """Raised when a second generation starts while one is still running on the same engine."""


def first_line(exc: BaseException) -> str:
    """An exception as one line for users: its message's first line, or its class name."""
    text = str(exc)
    return text.splitlines()[0] if text.strip() else type(exc).__name__
