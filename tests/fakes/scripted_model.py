"""A tiny Mistral checkpoint whose greedy output is a fixed script (a bigram model).

Attention and MLP outputs are zeroed, so the logits depend on the last token only; each script
token's embedding is an orthonormal direction and the LM head maps it to the next script token.
The model is still a real checkpoint run by the real engine: this lets tests see `[THINK]`
reasoning and `[TOOL_CALLS]` tool calls come out of `vibe serve` deterministically.

Script (Tekken v13 control tokens in brackets):
- after `[/INST]`:          [THINK]plan[/THINK][TOOL_CALLS]todo[ARGS]{"todos"\n:[]}</s>
- after `[/TOOL_RESULTS]`:  Done.</s>
- after `~`:                ~~~~... (until max_tokens)
Every script token must be distinct, so text is spelled with pieces not used elsewhere.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import torch

from tests.fakes import tiny_models

VOCAB = 1000 + 1500
ARGS = '{"todos"\n:[]}'
ANSWER = "Done."
REASONING = "plan"
CONTEXT = 32768
LOOP = "~"


def _spell(text: str, pieces: dict[str, int], used: set[int]) -> list[int]:
    """Token ids spelling `text` with pieces not in `used` (depth-first, longest first)."""
    if not text:
        return []
    options = sorted(
        (p for p in pieces if text.startswith(p) and pieces[p] not in used), key=len, reverse=True
    )
    for p in options:
        used.add(pieces[p])
        try:
            return [pieces[p], *_spell(text[len(p) :], pieces, used)]
        except ValueError:
            used.discard(pieces[p])
    raise ValueError(f"cannot spell {text!r} with unused pieces")


def build(path: Path) -> Path:
    """Write the checkpoint and its tekken.json to `path`; returns `path`."""
    tiny_models.mistral_common_tokenizer_file(path, "v13", vocab_size=VOCAB)
    from engine.tokenizer import MistralChatTokenizer

    tok = MistralChatTokenizer(path / "tekken.json")
    special = {name: i for i, name in tok._special.items()}
    pieces: dict[str, int] = {}
    for i in range(1000, VOCAB):
        piece = tok.raw.decode([i])
        if piece and "\ufffd" not in piece:
            pieces.setdefault(piece, i)
    used = {special[n] for n in ("[THINK]", "[/THINK]", "[TOOL_CALLS]", "[ARGS]", "</s>")}
    used |= {special["[/INST]"], special["[/TOOL_RESULTS]"]}
    first = [
        special["[/INST]"], special["[THINK]"], *_spell(REASONING, pieces, used),
        special["[/THINK]"], special["[TOOL_CALLS]"], *_spell("todo", pieces, used),
        special["[ARGS]"], *_spell(ARGS, pieces, used), special["</s>"],
    ]  # fmt: skip
    second = [special["[/TOOL_RESULTS]"], *_spell(ANSWER, pieces, used), special["</s>"]]
    loop = pieces[LOOP]  # "~" repeats itself forever: a long generation on demand
    assert loop not in used
    pairs = list(pairwise(first)) + list(pairwise(second)) + [(loop, loop)]
    sources = [a for a, _ in pairs]
    assert len(set(sources)) == len(sources), "script tokens must be distinct"

    model = tiny_models.mistral(vocab_size=VOCAB)
    model.config.max_position_embeddings = CONTEXT  # room for vibe's own system prompt
    dim = model.config.hidden_size
    basis, _ = torch.linalg.qr(torch.randn(dim, dim, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1.0)
        model.lm_head.weight.zero_()
        for n, (a, b) in enumerate(pairs):
            model.model.embed_tokens.weight[a] = basis[:, n]
            model.lm_head.weight[b] += 10.0 * basis[:, n]
    tiny_models.save_hf(model, path)
    return path
