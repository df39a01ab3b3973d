"""Load and save EAGLE draft heads: HF-style folders (config.json + *.safetensors, names `fc`,
`layers.N.*`, `midlayer.*`, `d2t`) and Mistral-native ones (params.json + consolidated
safetensors, `eagle_linear`, `layers.N.attention.wq`...). The variant is read off the tensors.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from engine.config import config_from_hf, config_from_params, read_json
from engine.eagle import EAGLE1, EAGLE3, EagleHead, HeadSpec, default_target_layers
from engine.errors import ModelNotFoundError, UnsupportedModelError, WeightLoadError
from engine.model import Transformer
from engine.weights import canonical_name, safetensors_files, unpermute_native

_SHARED = ("embed_tokens.weight", "tok_embeddings.weight", "output.weight", "t2d")
_LAYER_RE = re.compile(r"layers\.(\d+)\.(.+)")


def _canonical(name: str, native: bool) -> str:
    name = name.removeprefix("model.")
    if name == "eagle_linear.weight":
        return "fc.weight"
    if name.startswith("midlayer."):
        return "layers.0." + name[len("midlayer.") :]
    if native and (c := canonical_name(name, True)):
        return c.removeprefix("model.")
    return name


def _read_tensors(files: list[Path], native: bool) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    out: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            with safe_open(str(f), framework="pt", device="cpu") as h:
                for key in h.keys():  # noqa: SIM118 (a safetensors handle)
                    out[_canonical(key, native)] = h.get_tensor(key)
        except OSError as exc:
            raise WeightLoadError(f"cannot read {f}: {exc}") from exc
    # Some exports number draft layers after the target's (vLLM's start_layer_id): renumber.
    indices = sorted({int(m.group(1)) for k in out if (m := _LAYER_RE.fullmatch(k))})
    renumber = {old: new for new, old in enumerate(indices)}

    def fix(k: str) -> str:
        m = _LAYER_RE.fullmatch(k)
        return f"layers.{renumber[int(m.group(1))]}.{m.group(2)}" if m else k

    return {fix(k): v for k, v in out.items()}


def _head_config(root: Path) -> tuple[dict[str, Any], bool]:
    if (root / "config.json").is_file():
        return read_json(root / "config.json"), False
    if (root / "params.json").is_file():
        return read_json(root / "params.json"), True
    raise ModelNotFoundError(f"{root} holds no EAGLE head (config.json or params.json)")


def load_head(path: str | Path, target: Transformer) -> EagleHead:
    """Read an EAGLE head folder for `target`; one-line errors for anything wrong."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ModelNotFoundError(f"EAGLE head {root} is not a folder")
    raw, native = _head_config(root)
    files = safetensors_files(root, "consolidated" if native else "model") or sorted(
        root.glob("*.safetensors")
    )
    if not files:
        raise ModelNotFoundError(f"{root} has no .safetensors file")
    if native:
        cfg = config_from_params({"vocab_size": target.cfg.vocab_size, **raw})
    else:
        d = dict(raw)
        if d.get("model_type") not in ("mistral", "ministral3", "llama"):
            d["model_type"] = "llama"  # EAGLE configs reuse Llama's fields under other names
        d.setdefault("vocab_size", target.cfg.vocab_size)
        cfg = config_from_hf(d)
    tensors = _read_tensors(files, native)
    if "fc.weight" not in tensors:
        raise WeightLoadError(f"{root}: no fc / eagle_linear tensor, not an EAGLE head")
    n_layers = len({k.split(".")[1] for k in tensors if k.startswith("layers.")})
    if n_layers == 0:
        raise WeightLoadError(f"{root}: the head has no decoder layer")
    extra = raw.get("eagle") or {}
    fc_in = tensors["fc.weight"].shape[1]
    is3 = "layers.0.hidden_norm.weight" in tensors or fc_in != 2 * cfg.dim
    if is3 and "lm_head.weight" not in tensors:
        raise WeightLoadError(f"{root}: EAGLE-3 head without its lm_head.weight")
    layers = extra.get("target_layers") or raw.get("eagle_aux_hidden_state_layer_ids")
    if cfg.vocab_size != target.cfg.vocab_size:
        raise UnsupportedModelError(
            f"the head's vocabulary ({cfg.vocab_size}) differs from the target's "
            f"({target.cfg.vocab_size})"
        )
    spec = HeadSpec(
        kind=EAGLE3 if is3 else EAGLE1,
        cfg=cfg.__class__(**{**cfg.__dict__, "n_layers": n_layers, "sliding_window": None}),
        first_layer_norm=is3 or "layers.0.input_layernorm.weight" in tensors,
        final_norm=is3 or "norm.weight" in tensors,
        draft_vocab_size=(
            tensors["lm_head.weight"].shape[0]
            if is3
            else (len(tensors["d2t"]) if "d2t" in tensors else None)
        ),
        target_layers=tuple(layers or default_target_layers(target.cfg.n_layers)) if is3 else (),
        target_dim=fc_in // 3 if is3 else target.cfg.dim,
    )
    if is3 and any(not 1 <= j < target.cfg.n_layers for j in spec.target_layers):
        raise UnsupportedModelError(
            f"EAGLE-3 target layers {spec.target_layers} do not fit a {target.cfg.n_layers}-layer model"
        )
    head = EagleHead(spec, target)
    _copy_into(head, tensors, native)
    head.prepare()
    return head


def _copy_into(head: EagleHead, tensors: dict[str, torch.Tensor], native: bool) -> None:
    cfg = head.cfg
    for name, dest in head.tensors().items():
        if name not in tensors:
            if name == "d2t":
                continue  # absent: the draft vocabulary is the target's first ids
            raise WeightLoadError(f"missing tensor {name} with shape {tuple(dest.shape)}")
        t = tensors[name]
        if native and name.endswith(("q_proj.weight", "k_proj.weight")):
            heads = cfg.n_heads if name.endswith("q_proj.weight") else cfg.n_kv_heads
            t = unpermute_native(t, heads)
        if tuple(t.shape) != tuple(dest.shape):
            raise WeightLoadError(
                f"tensor {name} has shape {tuple(t.shape)}, expected {tuple(dest.shape)}"
            )
        dest.copy_(t)
    unknown = sorted(set(tensors) - set(head.tensors()) - set(_SHARED) - {"lm_head.weight"})
    if unknown:
        raise WeightLoadError(f"unexpected tensor {unknown[0]} in the EAGLE head")


def head_config(head: EagleHead) -> dict[str, Any]:
    """The config.json written next to a saved head (Llama-style fields plus an `eagle` block)."""
    c, s = head.cfg, head.spec
    d: dict[str, Any] = {
        "architectures": [
            "Eagle3LlamaForCausalLM" if s.kind == EAGLE3 else "EagleLlamaForCausalLM"
        ],
        "model_type": "llama",
        "hidden_size": c.dim,
        "intermediate_size": c.hidden_dim,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "head_dim": c.head_dim,
        "rms_norm_eps": c.norm_eps,
        "rope_theta": c.rope_theta,
        "max_position_embeddings": c.max_position_embeddings,
        "vocab_size": c.vocab_size,
        "tie_word_embeddings": False,
        "eagle": {"kind": s.kind, "target_layers": list(s.target_layers)},
    }
    if c.yarn is not None:
        d["rope_scaling"] = {"rope_type": "yarn", **c.yarn.__dict__, "rope_theta": c.rope_theta}
    if head.reduced_vocab:
        d["draft_vocab_size"] = int(head.d2t.shape[0])
    return d


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_head(head: EagleHead, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write config.json + model.safetensors (HF-style names) into folder `path`."""
    from safetensors.torch import save_file

    root = Path(path).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in head.tensors().items()}
    _atomic_write(root / "model.safetensors", lambda p: save_file(tensors, str(p)))
    cfg = {**head_config(head), **({"training": meta} if meta else {})}
    text = json.dumps(cfg, indent=2)
    _atomic_write(root / "config.json", lambda p: p.write_text(text, encoding="utf-8"))
    return root
