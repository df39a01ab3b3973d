"""EAGLE heads and speculative greedy decoding on tiny random models: lossless output for any
drafter, KV rollback, prefix reuse, the training path, and loading Mistral/HF head formats."""

from __future__ import annotations

import json
import math

import pytest
import torch

from engine.eagle import EAGLE1, EAGLE3, head_spec_for, random_head
from engine.eagle_io import load_head, save_head
from engine.errors import ModelNotFoundError, WeightLoadError
from engine.sampling import SamplingParams
from engine.spec import EagleDrafter
from scripts.eagle_losses import DraftChain
from tests.engine.spec_helpers import (
    TargetDrafter,
    deep_mistral,
    load_target,
    plain_greedy,
    run_spec,
)
from tests.fakes.tiny_models import _permute_to_native


@pytest.fixture(scope="module")
def targets(tiny_dir, tmp_path_factory):
    """kind -> target model: a 2-layer Mistral for EAGLE-1, an 8-layer one for EAGLE-3."""
    deep = deep_mistral(tmp_path_factory.mktemp("deep"))
    return {EAGLE1: load_target(tiny_dir("mistral")[1]), EAGLE3: load_target(deep)}


def _head(target, kind, seed=0, vocab=None):
    spec = head_spec_for(target, kind, n_layers=2, draft_vocab_size=vocab)
    return random_head(spec, target, seed=seed, scale=2.0)


def _drafter(name, kind, target, k):
    if name == "perfect":
        return TargetDrafter(target)
    if name == "wrong":
        return TargetDrafter(target, wrong_at=range(k))
    return EagleDrafter(_head(target, kind, vocab=200 if kind == EAGLE3 else None))


@pytest.mark.parametrize("kind", [EAGLE1, EAGLE3])
@pytest.mark.parametrize("name", ["perfect", "wrong", "random"])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_greedy_speculative_equals_plain_greedy(targets, prompt_ids, kind, name, k):
    target = targets[kind]
    prompt = prompt_ids(12, seed=k)
    want = plain_greedy(target, prompt, 20)
    got, dec, _ = run_spec(target, _drafter(name, kind, target, k), k, prompt, 20)
    assert got == want
    stats = dec.stats
    if name == "perfect":
        assert stats.accepted == stats.drafted > 0
        assert stats.rounds == math.ceil(19 / (k + 1))  # k + 1 tokens per verification
    if name == "wrong":
        assert stats.accepted == 0 and stats.rounds == 19


def test_drafter_copies_what_followed_the_last_tokens_before(targets, prompt_ids):
    target = targets[EAGLE1]
    pattern = prompt_ids(8, seed=30)
    ids = pattern * 2 + pattern[:3]  # the last 3 tokens were followed by pattern[3] before
    out = target.forward(torch.tensor(ids), torch.arange(len(ids)), target.new_cache())
    drafter = EagleDrafter(_head(target, EAGLE1, seed=6), lookup_ngram=3)
    drafts, q = drafter.propose(ids, out.hidden[:-1], 0, 4, SamplingParams(), None)
    assert drafts.tolist() == pattern[3:7] and drafter.last_copied == [True] * 4
    sampled = SamplingParams(temperature=0.8)
    drafts, q = drafter.propose(ids, out.hidden[:-1], 0, 4, sampled, torch.Generator())
    assert drafts.tolist() == pattern[3:7]
    assert q is not None and torch.equal(q.argmax(-1), drafts) and (q.sum(-1) == 1).all()
    off = EagleDrafter(drafter.head, lookup_ngram=0)
    off.propose(ids, out.hidden[:-1], 0, 4, SamplingParams(), None)
    assert off.last_copied == [False] * 4


def repeated_trigrams(ids: list[int]) -> int:
    grams = [tuple(ids[i : i + 3]) for i in range(len(ids) - 2)]
    return len(grams) - len(set(grams))


@pytest.mark.parametrize("kind", [EAGLE1, EAGLE3])
@pytest.mark.parametrize("k", [1, 4])
def test_prompt_lookup_is_accepted_when_the_target_repeats_itself(targets, prompt_ids, kind, k):
    """Tiny random targets fall into loops; copies of the loop are accepted, the output stays
    the plain greedy one, greedy and (deterministic) sampled, and the head alone copies nothing."""
    target = targets[kind]
    prompts = [prompt_ids(6, seed=s) * 3 for s in range(20, 40)]
    prompt, want = next(
        (p, out) for p in prompts if repeated_trigrams(out := plain_greedy(target, p, 24)) >= 3
    )
    head = _head(target, kind, seed=5, vocab=200 if kind == EAGLE3 else None)
    got, dec, _ = run_spec(target, EagleDrafter(head, lookup_ngram=3), k, prompt, 24)
    assert got == want
    assert dec.stats.copied_accepted > 0
    assert dec.stats.as_dict()["lookup_drafts"] == dec.stats.copied >= dec.stats.copied_accepted
    top1 = SamplingParams(temperature=1.0, top_k=1)  # sampled path, one-hot draft distributions
    got, dec, _ = run_spec(target, EagleDrafter(head, lookup_ngram=3), k, prompt, 24, top1, seed=2)
    assert got == want and dec.stats.copied_accepted > 0
    got, dec, _ = run_spec(target, EagleDrafter(head, lookup_ngram=0), k, prompt, 24)
    assert got == want and dec.stats.copied == 0


def test_partial_acceptance_rolls_both_caches_back(targets, prompt_ids):
    """A drafter wrong at draft 2 of 4 forces rollbacks every round; the target cache and the
    EAGLE head's cache must then equal a cold run over the same tokens."""
    target = targets[EAGLE1]
    prompt = prompt_ids(10, seed=7)
    got, dec, state = run_spec(target, TargetDrafter(target, wrong_at=[2]), 4, prompt, 23)
    assert got == plain_greedy(target, prompt, 23)
    st = dec.stats
    assert st.accepted_at[:2] == st.drafted_at[:2] and st.accepted_at[2] == 0 < st.drafted_at[2]
    cache, cached = state.cache, state.ids
    assert cached == (prompt + got)[: cache.length]
    cold = target.new_cache()
    target.forward(torch.tensor(cached), torch.arange(len(cached)), cold)
    n = cache.length
    torch.testing.assert_close(cache.k[:, :, :n], cold.k[:, :, :n], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cache.v[:, :, :n], cold.v[:, :, :n], atol=1e-5, rtol=1e-5)

    # The EAGLE head's cache after a run with rejections: its validated rows vs a cold catch-up.
    head = _head(target, EAGLE1, seed=3)
    drafter = EagleDrafter(head)
    got, dec, _ = run_spec(target, drafter, 3, prompt, 17)
    assert dec.stats.rounds > 1 and dec.stats.accepted < dec.stats.drafted
    ids = prompt + got
    valid = len(dec.draft_ids) - 1
    cold = target.new_cache()
    feats = target.forward(torch.tensor(ids), torch.arange(len(ids)), cold).hidden
    cold_draft = head.new_cache()
    head.forward(
        torch.tensor(ids[1 : valid + 1]), feats[:valid], torch.arange(valid), cold_draft, True
    )
    for a, b in ((drafter.cache.k, cold_draft.k), (drafter.cache.v, cold_draft.v)):
        torch.testing.assert_close(a[:, :, :valid], b[:, :, :valid], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", [EAGLE1, EAGLE3])
def test_prefix_reuse_across_calls_keeps_output_lossless(targets, prompt_ids, kind):
    target = targets[kind]
    drafter = EagleDrafter(_head(target, kind, seed=1))
    first = prompt_ids(9, seed=11)
    out1, dec, state = run_spec(target, drafter, 3, first, 12)
    second = first + out1 + prompt_ids(5, seed=12)
    out2, _, state = run_spec(target, drafter, 3, second, 15, decoder=dec, state=state)
    assert out2 == plain_greedy(target, second, 15)


@pytest.mark.parametrize("kind", [EAGLE1, EAGLE3])
def test_incremental_draft_steps_match_the_batched_training_path(targets, prompt_ids, kind):
    target = targets[kind]
    head = _head(target, kind, seed=2)
    ids = prompt_ids(14, seed=3)
    out = target.forward(
        torch.tensor(ids), torch.arange(14), target.new_cache(), capture_layers=head.capture_layers
    )
    feats = head.target_features(out)
    toks, pos = torch.tensor(ids[1:]), torch.arange(13)
    batched = head.run(toks[None], feats[None, :13], pos[None], None, from_target=True)[0]
    cache = head.new_cache()
    head.forward(toks[:5], feats[:5], pos[:5], cache, True)
    steps = [
        head.forward(toks[i : i + 1], feats[i : i + 1], pos[i : i + 1], cache, True).hidden
        for i in range(5, 13)
    ]
    torch.testing.assert_close(torch.cat(steps), batched[5:], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", [EAGLE1, EAGLE3])
def test_training_time_test_passes_are_the_drafters_chain_steps(targets, prompt_ids, kind):
    """Pass d of a DraftChain, at every position p at once, computes the state the drafter
    reaches d-1 own steps into a round whose first step reads the target's feature at p-d+1
    (teacher tokens along the chain, as when every draft is accepted)."""
    target = targets[kind]
    head = _head(target, kind, seed=4)
    ids = prompt_ids(14, seed=5)
    out = target.forward(
        torch.tensor(ids), torch.arange(14), target.new_cache(), capture_layers=head.capture_layers
    )
    feats = head.target_features(out)[:13]
    toks, pos = torch.tensor(ids[1:]), torch.arange(13)
    chain = DraftChain(len(head.layers), 13, toks.device)
    hidden, passes = feats, []
    for d in range(1, 4):
        chain.next_pass()
        state = head.run(toks[None], hidden[None], pos[None], None, d == 1, chain=chain)[0]
        passes.append(state)
        hidden = torch.nn.functional.pad(state[:-1], (0, 0, 1, 0))  # row 0: never read
    torch.testing.assert_close(
        passes[0], head.run(toks[None], feats[None], pos[None], None, True)[0]
    )  # pass 1 is plain causal teacher forcing
    for start in (0, 4, 9):  # the round's first draft position
        cache = head.new_cache()
        h = head.forward(toks[: start + 1], feats[: start + 1], pos[: start + 1], cache, True)
        h = h.hidden[-1:]
        for d in (2, 3):
            p = start + d - 1
            h = head.forward(toks[p : p + 1], h, pos[p : p + 1], cache, False).hidden
            torch.testing.assert_close(h[0], passes[d - 1][p], atol=1e-4, rtol=1e-4)


def test_a_chain_pass_may_run_on_fewer_windows(targets, prompt_ids):
    """Later training passes may run on the first windows of a batch only (train_eagle's
    --deep-batch): those windows' states are what a chain over them alone computes."""
    target = targets[EAGLE1]
    head = _head(target, EAGLE1, seed=6)
    ids = [prompt_ids(12, seed=7), prompt_ids(12, seed=8)]
    x = torch.tensor(ids)
    feats = target.forward(x[0], torch.arange(12), target.new_cache()).hidden[None]
    feats = torch.cat(
        (feats, target.forward(x[1], torch.arange(12), target.new_cache()).hidden[None])
    )
    toks, pos = x[:, 1:], torch.arange(11).expand(2, 11)
    feats = feats[:, :11]

    def passes(n_windows_late: int) -> torch.Tensor:
        chain = DraftChain(len(head.layers), 11, toks.device)
        t, p, hidden = toks, pos, feats
        for d in range(1, 4):
            if d == 3:
                t, p, hidden = t[:n_windows_late], p[:n_windows_late], hidden[:n_windows_late]
            chain.next_pass()
            state = head.run(t, hidden, p, None, d == 1, chain=chain)
            hidden = torch.nn.functional.pad(state[:, :-1], (0, 0, 1, 0))
        return state

    torch.testing.assert_close(passes(1)[0], passes(2)[0])


def test_reduced_vocabulary_drafts_only_inside_it(targets):
    target = targets[EAGLE3]
    head = _head(target, EAGLE3, vocab=50)
    logits = head.draft_logits(torch.randn(4, target.cfg.dim))
    allowed = torch.zeros(target.cfg.vocab_size, dtype=torch.bool)
    allowed[head.draft_to_target] = True
    assert torch.isinf(logits[:, ~allowed]).all() and torch.isfinite(logits[:, allowed]).all()
    assert allowed[logits.argmax(-1)].all()


@pytest.mark.parametrize(("kind", "vocab"), [(EAGLE1, None), (EAGLE1, 64), (EAGLE3, 50)])
def test_greedy_draft_token_is_the_argmax_of_the_target_vocabulary_logits(targets, kind, vocab):
    """Greedy drafting skips building full-vocabulary logits; it must pick the same token."""
    target = targets[kind]
    head = _head(target, kind, seed=3, vocab=vocab)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        state = torch.randn(1, target.cfg.dim, generator=gen)
        assert int(head.greedy_token(state)) == int(head.draft_logits(state).argmax(-1))


def _outputs(head, target, ids):
    out = target.forward(
        torch.tensor(ids),
        torch.arange(len(ids)),
        target.new_cache(),
        capture_layers=head.capture_layers,
    )
    feats = head.target_features(out)
    return head.forward(
        torch.tensor(ids[1:]), feats[:-1], torch.arange(len(ids) - 1), head.new_cache(), True
    )


@pytest.mark.parametrize("kind", [EAGLE1, EAGLE3])
def test_save_load_roundtrip(targets, tmp_path, prompt_ids, kind):
    target = targets[kind]
    head = _head(target, kind, vocab=100)
    loaded = load_head(save_head(head, tmp_path / "head"), target)
    assert loaded.kind == kind and loaded.spec.target_layers == head.spec.target_layers
    a, b = _outputs(head, target, prompt_ids(8)), _outputs(loaded, target, prompt_ids(8))
    torch.testing.assert_close(a.logits, b.logits)


def test_mistral_native_head_loads_to_the_same_outputs(targets, tmp_path, prompt_ids):
    """params.json + consolidated.safetensors with `eagle_linear` and interleaved wq/wk rows."""
    from safetensors.torch import save_file

    target = targets[EAGLE1]
    head = _head(target, EAGLE1, seed=4)
    cfg = head.cfg
    names = {"self_attn.q_proj": "attention.wq", "self_attn.k_proj": "attention.wk",
             "self_attn.v_proj": "attention.wv", "self_attn.o_proj": "attention.wo",
             "input_layernorm": "attention_norm", "post_attention_layernorm": "ffn_norm",
             "mlp.gate_proj": "feed_forward.w1", "mlp.down_proj": "feed_forward.w2",
             "mlp.up_proj": "feed_forward.w3"}  # fmt: skip
    out = {"eagle_linear.weight": head.fc, "norm.weight": head.norm}
    for name, t in head.tensors().items():
        if name.startswith("layers."):
            i, rest = name.split(".", 2)[1:]
            hf = rest.removesuffix(".weight")
            if hf == "self_attn.q_proj":
                t = _permute_to_native(t, cfg.n_heads)
            elif hf == "self_attn.k_proj":
                t = _permute_to_native(t, cfg.n_kv_heads)
            out[f"layers.{i}.{names[hf]}.weight"] = t
    root = tmp_path / "native"
    root.mkdir()
    save_file({k: v.contiguous() for k, v in out.items()}, str(root / "consolidated.safetensors"))
    params = {"dim": cfg.dim, "n_layers": cfg.n_layers, "head_dim": cfg.head_dim, "hidden_dim": cfg.hidden_dim,
              "n_heads": cfg.n_heads, "n_kv_heads": cfg.n_kv_heads, "norm_eps": cfg.norm_eps,
              "rope_theta": cfg.rope_theta}  # fmt: skip
    (root / "params.json").write_text(json.dumps(params))
    loaded = load_head(root, target)
    assert loaded.kind == EAGLE1 and loaded.spec.final_norm and loaded.spec.first_layer_norm
    ids = prompt_ids(8)
    torch.testing.assert_close(
        _outputs(head, target, ids).logits, _outputs(loaded, target, ids).logits
    )


def test_hf_eagle3_names_with_midlayer_and_model_prefix(targets, tmp_path, prompt_ids):
    from safetensors.torch import save_file

    target = targets[EAGLE3]
    head = _head(target, EAGLE3, vocab=64)
    renamed = {("midlayer." + k[len("layers.0.") :]) if k.startswith("layers.0.") else ("model." + k if k.startswith("layers.") else k): v
               for k, v in head.tensors().items()}  # fmt: skip
    root = tmp_path / "e3"
    root.mkdir()
    save_file({k: v.contiguous() for k, v in renamed.items()}, str(root / "model.safetensors"))
    cfg = json.loads(json.dumps({"model_type": "llama", "hidden_size": 64, "intermediate_size": 96,
                                 "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                                 "head_dim": 16, "vocab_size": 512, "draft_vocab_size": 64,
                                 "eagle_aux_hidden_state_layer_ids": list(head.spec.target_layers)}))  # fmt: skip
    (root / "config.json").write_text(json.dumps(cfg))
    loaded = load_head(root, target)
    assert loaded.kind == EAGLE3
    ids = prompt_ids(8)
    torch.testing.assert_close(
        _outputs(head, target, ids).logits, _outputs(loaded, target, ids).logits
    )


def test_bad_heads_give_one_line_errors(targets, tmp_path):
    target = targets[EAGLE1]
    with pytest.raises(ModelNotFoundError, match="not a folder"):
        load_head(tmp_path / "nope", target)
    root = save_head(_head(target, EAGLE1), tmp_path / "h")
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(root / "model.safetensors"))
    del tensors["layers.1.mlp.down_proj.weight"]
    save_file(tensors, str(root / "model.safetensors"))
    with pytest.raises(
        WeightLoadError, match=r"missing tensor layers.1.mlp.down_proj.weight with shape \(64, 96\)"
    ):
        load_head(root, target)
    tensors["layers.1.mlp.down_proj.weight"] = torch.zeros(3, 3)
    save_file(tensors, str(root / "model.safetensors"))
    with pytest.raises(WeightLoadError, match=r"has shape \(3, 3\), expected \(64, 96\)"):
        load_head(root, target)


def test_heads_share_the_target_embedding(targets):
    target = targets[EAGLE1]
    head = _head(target, EAGLE1)
    assert head.embed.data_ptr() == target.embed.data_ptr()
    assert head.lm_head.data_ptr() == target.lm_head.data_ptr()
