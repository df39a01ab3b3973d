"""Training data for EAGLE heads: the target's own answers to code prompts and its features
along them (final normed hidden state, plus the layers an EAGLE-3 head reads), generated in
batches by a transformers twin of the engine model or, for targets the twin cannot mirror, by
the engine itself; a little Python source from disk; a cache file for re-runs."""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch

from engine.engine import Engine
from engine.errors import BadRequestError
from engine.model import Transformer


def code_prompt_ids(engine: Engine, text: str) -> list[int]:
    """The prompt as one user turn, or as plain text for a base model without a chat
    template (its answers are then continuations)."""
    try:
        return engine.tokenizer.encode_chat([{"role": "user", "content": text}], None, None)
    except BadRequestError:  # no chat template
        return engine.tokenizer.encode(text)


def generate_data(
    engine: Engine, prompts: list[str], seconds: float, max_tokens: int, seed: int
) -> list[list[int]]:
    """The target's answers to the prompts (greedy first, then sampled) until time's up."""
    seqs: list[list[int]] = []
    deadline = time.monotonic() + seconds
    rounds = [(p, 0.0) for p in prompts] + [(p, 0.7) for p in prompts]
    for i, (prompt, temp) in enumerate(rounds):
        if time.monotonic() > deadline:
            break
        ids = code_prompt_ids(engine, prompt)
        out: list[int] = []
        for tok in engine.generate(ids, max_tokens, temperature=temp, seed=seed + i):
            out.append(tok)
            if time.monotonic() > deadline + 30:
                break
        seqs.append(ids + out)
        print(f"  generated {len(out)} tokens for prompt {i} (t={temp})", flush=True)
    return seqs


def hf_twin(model: Transformer):
    """A transformers LlamaForCausalLM sharing the engine model's weights (for batched
    generation; the engine decodes one sequence at a time)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    c = model.cfg
    hf_cfg = LlamaConfig(
        vocab_size=c.vocab_size, hidden_size=c.dim, intermediate_size=c.hidden_dim,
        num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads,
        num_key_value_heads=c.n_kv_heads, head_dim=c.head_dim, rms_norm_eps=c.norm_eps,
        rope_theta=c.rope_theta, max_position_embeddings=c.max_position_embeddings,
        tie_word_embeddings=c.tie_embeddings,
    )  # fmt: skip
    hf = LlamaForCausalLM(hf_cfg).to(dtype=model.dtype, device=model.device).eval()
    q, kv, hid = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim, c.hidden_dim
    with torch.no_grad():
        hf.model.embed_tokens.weight.copy_(model.embed)
        hf.model.norm.weight.copy_(model.norm)
        hf.lm_head.weight.copy_(model.lm_head)
        for lay, src in zip(hf.model.layers, model.layers, strict=True):
            lay.input_layernorm.weight.copy_(src.attn_norm)
            lay.self_attn.q_proj.weight.copy_(src.wqkv[:q])
            lay.self_attn.k_proj.weight.copy_(src.wqkv[q : q + kv])
            lay.self_attn.v_proj.weight.copy_(src.wqkv[q + kv :])
            lay.self_attn.o_proj.weight.copy_(src.wo)
            lay.post_attention_layernorm.weight.copy_(src.ffn_norm)
            lay.mlp.gate_proj.weight.copy_(src.w13[:hid])
            lay.mlp.up_proj.weight.copy_(src.w13[hid:])
            lay.mlp.down_proj.weight.copy_(src.w2)
    return hf


def generate_batched(
    engine: Engine,
    prompts: list[str],
    seconds: float,
    max_tokens: int,
    batch: int,
    seed: int,
    dtype: torch.dtype,
    capture: tuple[int, ...] = (),
) -> tuple[list[list[int]], list[torch.Tensor]]:
    """The target's answers, `batch` prompts at a time (greedy first: what greedy decoding will
    meet; then sampled passes) until time's up, with the final normed hidden state the target
    computed at each position on the way, then the outputs of the `capture` layers:
    (token ids, features [len(ids), H * (1 + len(capture))]) per answer, as `featurize`.

    `dtype` bfloat16 is ~2.5x faster on CPUs with AMX; the features then carry bf16 rounding,
    far below the training noise."""
    hf = hf_twin(engine.model).to(dtype)
    captured: list[list[torch.Tensor]] = [[] for _ in range(1 + len(capture))]
    hooks = [
        mod.register_forward_hook(lambda _m, _i, out, into=into: into.append(out))
        for mod, into in zip(
            [hf.model.norm] + [hf.model.layers[i] for i in capture], captured, strict=True
        )
    ]
    torch.manual_seed(seed)
    deadline = time.monotonic() + seconds
    jobs = [(p, 0.0) for p in prompts] + [(p, t) for t in (0.7, 1.0, 0.7) for p in prompts]
    seqs: list[list[int]] = []
    feats: list[torch.Tensor] = []
    pad = (engine.tokenizer.eos_ids and min(engine.tokenizer.eos_ids)) or 0
    for lo in range(0, len(jobs), batch):
        if time.monotonic() > deadline:
            break
        group = jobs[lo : lo + batch]
        chats = [code_prompt_ids(engine, p) for p, _ in group]
        width = max(len(c) for c in chats)
        ids = torch.tensor([[pad] * (width - len(c)) + c for c in chats])
        mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in chats])
        temp = group[0][1]
        for c in captured:
            c.clear()
        with torch.no_grad():  # max_time: the last batch stops at the deadline, answers cut
            out = hf.generate(
                input_ids=ids.to(hf.device), attention_mask=mask.to(hf.device),
                max_new_tokens=max_tokens, do_sample=temp > 0, temperature=temp or None,
                top_p=None, top_k=None, pad_token_id=pad,
                max_time=max(1.0, deadline - time.monotonic()),
            )  # fmt: skip
        # captured[0]: the prompts [B, width, H] (left-padded); then one [B, 1, H] per fed
        # token. The last sampled token is never fed, so it has no feature and is dropped.
        hidden = torch.cat([torch.cat(c, dim=1) for c in captured], dim=-1).cpu()
        for b, (chat, row) in enumerate(zip(chats, out[:, width:].tolist(), strict=True)):
            stop = next(
                (i + 1 for i, t in enumerate(row) if t in engine.tokenizer.eos_ids), len(row)
            )
            first = width - len(chat)  # the chat's first column (after the left padding)
            n = min(len(chat) + stop, hidden.shape[1] - first)
            seqs.append((chat + row[:stop])[:n])
            feats.append(hidden[b, first : first + n].clone())
        print(f"  generated batch {lo // batch} (t={temp}): {sum(len(s) for s in seqs)} tokens "
              f"so far", flush=True)  # fmt: skip
    for hook in hooks:
        hook.remove()
    return seqs, feats


def corpus_data(engine: Engine, root: Path, n_tokens: int, seq: int, seed: int) -> list[list[int]]:
    """Chunks of `seq` tokens of Python source under root, until n_tokens."""
    files = sorted(root.rglob("*.py"))
    random.Random(seed).shuffle(files)
    seqs: list[list[int]] = []
    total = 0
    for f in files:
        if total >= n_tokens:
            break
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        ids = engine.tokenizer.encode(text)[: max(0, n_tokens - total)]
        for lo in range(0, len(ids) - 32, seq):
            seqs.append(ids[lo : lo + seq])
            total += len(seqs[-1])
    return seqs


DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def featurize(
    model: Transformer, seqs: list[list[int]], capture: tuple[int, ...] = ()
) -> list[torch.Tensor]:
    """The target's final normed hidden state at each position of each sequence, then the
    outputs of the `capture` layers: [len, H * (1 + len(capture))], through the engine (the
    path for targets the transformers twin cannot mirror)."""
    cache = model.new_cache()
    out = []
    for ids in seqs:
        cache.truncate(0)
        t = torch.tensor(ids, device=model.device)
        res = model.forward(
            t, torch.arange(len(ids), device=model.device), cache, capture_layers=capture
        )
        out.append(torch.cat([res.hidden, *(res.layer_hidden[i] for i in capture)], -1).cpu())
    return out


def match_prompts(
    engine: Engine, prompts: list[str], seqs: list[list[int]]
) -> list[tuple[int, int]]:
    """For each generated sequence, (index of the prompt it answers, that chat prompt's length
    in tokens: where the answer starts); (-1, 0) when it starts with none of them."""
    by_ids = {tuple(code_prompt_ids(engine, p)): i for i, p in enumerate(prompts)}
    lengths = sorted({len(ids) for ids in by_ids})
    found = []
    for s in seqs:
        hit = next(((by_ids[tuple(s[:n])], n) for n in lengths if tuple(s[:n]) in by_ids), None)
        found.append(hit or (-1, 0))
    return found


def collect_answers(
    engine: Engine, prompts: list[str], args: argparse.Namespace, capture: tuple[int, ...]
) -> tuple[list[list[int]], list[torch.Tensor]]:
    """The target's answers and its features along them (the final hidden state, then the
    `capture` layers' outputs): from `--data-cache` when that file exists, else generated (and
    then cached)."""
    cache_file = Path(args.data_cache) if args.data_cache else None
    target, width = engine.model, engine.model.cfg.dim * (1 + len(capture))
    if cache_file and cache_file.exists():
        data = torch.load(cache_file)
        print(f"data: {len(data['seqs'])} answers from {cache_file}", flush=True)
        if data["feats"] and data["feats"][0].shape[-1] != width:  # cached for the other kind
            print("  recomputing their features for this head kind", flush=True)
            data["feats"] = featurize(target, data["seqs"], capture)
        return data["seqs"], data["feats"]
    seconds = args.gen_minutes * 60
    if args.gen_batch > 1 and target.cfg.yarn is None and target.cfg.llama4_beta is None:
        seqs, feats = generate_batched(
            engine, prompts, seconds, args.gen_tokens, args.gen_batch, args.seed,
            DTYPES[args.gen_dtype], capture,
        )  # fmt: skip
    else:
        seqs = generate_data(engine, prompts, seconds, args.gen_tokens, args.seed)
        feats = featurize(target, seqs, capture)
    if cache_file:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(cache_file.name + ".tmp")
        torch.save({"seqs": seqs, "feats": feats}, tmp)
        tmp.replace(cache_file)
    return seqs, feats
