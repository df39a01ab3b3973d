"""Chat tokenizers: mistral-common for Mistral checkpoints, the model's own chat template otherwise.

Both expose the same small surface: encode a chat request (OpenAI message/tool format) to ids,
decode ids, name the control tokens the output parser reacts to, and list the stop ids.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Protocol

from engine.errors import BadRequestError, ModelNotFoundError

# Control tokens the output parser reacts to (Mistral's tool-call and reasoning markers).
PARSER_SPECIALS = frozenset({"[THINK]", "[/THINK]", "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"})


class ChatTokenizer(Protocol):
    """What the engine needs from a tokenizer."""

    eos_ids: frozenset[int]
    bos_id: int | None

    def encode_chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        reasoning_effort: str | None,
    ) -> list[int]: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def special_name(self, token_id: int) -> str | None: ...


class MistralChatTokenizer:
    """mistral-common (Tekken or SentencePiece) tokenizer; requests encoded exactly as it does."""

    def __init__(self, path: Path) -> None:
        from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

        self.path = path
        self.mistral = MistralTokenizer.from_file(str(path))
        self.raw = self.mistral.instruct_tokenizer.tokenizer
        self.eos_ids = frozenset({self.raw.eos_id})
        self.bos_id = self.raw.bos_id
        self._special = {i: self.raw.id_to_piece(i) for i in self.raw.special_ids}

    @property
    def supports_reasoning_effort(self) -> bool:
        return self.raw.version.supports_model_settings

    def encode_chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        reasoning_effort: str | None,
    ) -> list[int]:
        from mistral_common.exceptions import MistralCommonException
        from mistral_common.protocol.instruct.request import ChatCompletionRequest

        extra: dict[str, Any] = {}
        # Older tokenizers have no slot for the effort; the model cannot take it, so drop it.
        if reasoning_effort is not None and self.supports_reasoning_effort:
            extra["reasoning_effort"] = reasoning_effort
        try:
            request = ChatCompletionRequest.from_openai(messages, tools=tools or None, **extra)
            return list(self.mistral.encode_chat_completion(request).tokens)
        except (MistralCommonException, ValueError, AssertionError) as exc:
            raise BadRequestError(f"cannot encode the chat request: {_one_line(exc)}") from exc

    def encode(self, text: str) -> list[int]:
        return list(self.raw.encode(text, bos=True, eos=False))

    def decode(self, ids: list[int]) -> str:
        return self.raw.decode(ids)

    def special_name(self, token_id: int) -> str | None:
        return self._special.get(token_id)


class HFChatTokenizer:
    """A transformers tokenizer with the model's own chat template (non-Mistral models)."""

    def __init__(self, tokenizer: Any, extra_eos: tuple[int, ...] = ()) -> None:
        self.tok = tokenizer
        eos = {i for i in (tokenizer.eos_token_id, *extra_eos) if i is not None}
        self.eos_ids = frozenset(eos)
        self.bos_id = tokenizer.bos_token_id
        self._special = set(tokenizer.all_special_ids)

    def encode_chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        reasoning_effort: str | None,
    ) -> list[int]:
        if not self.tok.chat_template:
            raise BadRequestError("this model's tokenizer has no chat template")
        # Templates index message["content"] directly; assistant tool-call turns may carry None.
        clean = [{**m, "content": m.get("content") or ""} for m in messages]
        try:
            text = self.tok.apply_chat_template(
                clean, tools=tools or None, add_generation_prompt=True, tokenize=False
            )
        except Exception as exc:  # jinja errors have many types
            raise BadRequestError(f"cannot apply the chat template: {_one_line(exc)}") from exc
        return list(self.tok.encode(text, add_special_tokens=False))

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=True))

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True)

    def special_name(self, token_id: int) -> str | None:
        # Chat-template models have no [TOOL_CALLS]/[THINK] protocol; specials are just skipped.
        return "<special>" if token_id in self._special else None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def cache_dir() -> Path:
    """Where converted artefacts are kept: $VIBE_ENGINE_CACHE, else ~/.cache/vibe/engine."""
    env = os.environ.get("VIBE_ENGINE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "vibe" / "engine"


def _gguf_tokenizer(gguf: Path) -> Any:
    """transformers' tokenizer for a GGUF file; its conversion takes seconds, so the result is
    cached as tokenizer.json keyed by the file's name, size and mtime."""
    from transformers import AutoTokenizer

    st = gguf.stat()
    key = f"{gguf.stem}-{st.st_size}-{int(st.st_mtime)}"
    cached = cache_dir() / "tokenizers" / key
    if (cached / "tokenizer_config.json").is_file():
        try:
            return AutoTokenizer.from_pretrained(str(cached))
        except (OSError, ValueError):
            pass  # a damaged cache entry is rebuilt below
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tmp = cached.parent / f".{key}.{os.getpid()}.tmp"
    try:
        tok.save_pretrained(str(tmp))
        os.replace(tmp, cached)  # publish atomically; a concurrent writer may win, that's fine
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # the cache is an optimisation only
    return tok


def find_mistral_tokenizer(root: Path) -> Path | None:
    """tekken.json or tokenizer.model.v* in a checkpoint folder, if any."""
    for name in ("tekken.json",):
        if (root / name).is_file():
            return root / name
    candidates = sorted(root.glob("tokenizer.model.v*")) + sorted(root.glob("*tekken*.json"))
    return candidates[-1] if candidates else None


def load_tokenizer(root: Path, gguf: Path | None, eos_ids: tuple[int, ...]) -> ChatTokenizer:
    """The right tokenizer for a checkpoint folder (or GGUF file)."""
    if gguf is not None:
        return HFChatTokenizer(_gguf_tokenizer(gguf), eos_ids)
    if (path := find_mistral_tokenizer(root)) is not None:
        return MistralChatTokenizer(path)
    if (root / "tokenizer.json").is_file() or (root / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        return HFChatTokenizer(AutoTokenizer.from_pretrained(str(root)), eos_ids)
    raise ModelNotFoundError(
        f"no tokenizer (tekken.json, tokenizer.model.v*, tokenizer.json) in {root}"
    )
