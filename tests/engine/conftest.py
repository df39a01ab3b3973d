"""Engine test fixtures: tiny random checkpoints on disk (built once per session)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.fakes import tiny_models

CHAT_VOCAB = 1000 + 1500  # Tekken's 1000 control tokens + bytes and the first merges


def _prompt(n: int, seed: int = 1) -> list[int]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(3, tiny_models.VOCAB, (n,), generator=gen).tolist()


@pytest.fixture(autouse=True)
def exact_kv_cache(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Engine tests compare against fp32 oracles (transformers, tensor parallelism, the torch
    path), so their caches keep fp32. The fp16 cache a CPU model keeps by default is tested
    where a test is marked `kv_fp16` (test_kv_fp16.py, test_cpu_decode.py)."""
    if request.node.get_closest_marker("kv_fp16") is None:
        monkeypatch.setenv("VIBE_KV_FP16", "0")


@pytest.fixture(scope="session")
def prompt_ids() -> Callable[..., list[int]]:
    """prompt_ids(n, seed) -> n random token ids of the tiny vocabulary."""
    return _prompt


@pytest.fixture(scope="session")
def tiny_dir(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], tuple[torch.nn.Module, Path]]:
    """tiny_dir(kind) -> (transformers model, checkpoint folder), cached per kind.

    Kinds: mistral, mistral_sw (sliding window 8), llama (tied head), ministral3, mistral3,
    mistral_native, ministral3_native, mistral_chat (tekken tokenizer, full vocabulary).
    """
    cache: dict[str, tuple[torch.nn.Module, Path]] = {}
    native_extra = {
        "rope_theta": 1e6,
        "yarn": {
            "factor": 16.0,
            "original_max_position_embeddings": 16,
            "beta": 32.0,
            "alpha": 1.0,
        },
        "llama_4_scaling": {"original_max_position_embeddings": 16, "beta": 0.1},
    }

    def build(kind: str) -> tuple[torch.nn.Module, Path]:
        if kind in cache:
            return cache[kind]
        path = tmp_path_factory.mktemp(kind)
        if kind == "mistral_native":
            model = build("mistral")[0]
            tiny_models.save_native(model, path)
        elif kind == "ministral3_native":
            model = build("ministral3")[0]
            tiny_models.save_native(model, path, native_extra)
        elif kind == "mistral_chat":
            model = tiny_models.mistral(vocab_size=CHAT_VOCAB)
            tiny_models.save_hf(model, path)
            tiny_models.mistral_common_tokenizer_file(path, "v13", vocab_size=CHAT_VOCAB)
        else:
            model = {
                "mistral": tiny_models.mistral,
                "mistral_sw": lambda: tiny_models.mistral(sliding_window=8),
                "llama": tiny_models.llama,
                "ministral3": tiny_models.ministral3,
                "mistral3": tiny_models.mistral3,
            }[kind]()
            tiny_models.save_hf(model, path)
        cache[kind] = (model, path)
        return cache[kind]

    return build
