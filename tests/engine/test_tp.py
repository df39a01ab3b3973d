"""Tensor parallelism on CPU (gloo, 2 processes): TP=2 equals TP=1 on tiny transformers-built
models (one replicated KV head, an odd vocabulary split, native checkpoints, bf16), prefix reuse,
fail-fast when a worker or the parent dies, and a full `vibe run` turn on a TP=2 local provider.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from engine import Engine, Finished, Usage
from engine.checkpoint import resolve
from engine.cli import main as engine_cli
from engine.decoder import Decoder
from engine.eagle import EAGLE1, EAGLE3, head_spec_for, random_head
from engine.engine import load_model
from engine.events import Timings
from engine.parallel.comm import TensorParallelError
from engine.parallel.shard import TPContext
from engine.parallel.workers import draft_target
from engine.sampling import SamplingParams
from engine.spec import EagleDrafter, Speculator
from tests.engine.conftest import CHAT_VOCAB
from tests.fakes import tiny_models

ODD_VOCAB = CHAT_VOCAB + 1  # 2501 = 1251 + 1250 rows: the second shard is padded
REPO = Path(os.path.abspath(__file__)).parents[2]
MESSAGES = [{"role": "user", "content": "Write a haiku about parallel tensors."}]


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (no psutil: /proc)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_gone(pids: list[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def kv1_dir(tmp_path_factory) -> Path:
    """One KV head (replicated on both ranks), an odd vocabulary and a Tekken tokenizer."""
    from transformers import MistralConfig, MistralForCausalLM

    dims = {**tiny_models.DIMS, "vocab_size": ODD_VOCAB, "num_key_value_heads": 1}
    model = tiny_models._peaky(MistralForCausalLM(MistralConfig(**dims)), seed=3)
    path = tmp_path_factory.mktemp("kv1")
    tiny_models.save_hf(model, path)
    tiny_models.mistral_common_tokenizer_file(path, "v13", vocab_size=ODD_VOCAB)
    return path


@pytest.fixture(scope="module")
def engines(kv1_dir):
    one = Engine.load(kv1_dir, device="cpu", dtype="float32", max_context=256)
    two = Engine.load(kv1_dir, tp=2, device="cpu", dtype="float32", max_context=256)
    yield one, two
    one.close()
    two.close()


def _logits(model, ids: list[int], start: int, cache) -> torch.Tensor:
    x = torch.tensor(ids)
    return model.forward(x, torch.arange(start, start + len(ids)), cache, all_logits=True).logits


def test_sharding_plan_keeps_gqa_groups_and_pads_the_vocabulary():
    cfg = resolve_cfg(n_heads=8, n_kv_heads=2, vocab=11)
    plans = [TPContext(r, 4) for r in range(4)]
    # 4 ranks, 2 KV heads: ranks 0,1 share KV head 0; ranks 2,3 share KV head 1.
    assert [p.kv_heads(cfg) for p in plans] == [(0, 1), (0, 1), (1, 2), (1, 2)]
    # Query heads 2r, 2r+1 of rank r belong to KV head (2r) // 4, the one the rank holds.
    for p in plans:
        q = p.shard_for("model.layers.0.self_attn.q_proj.weight", cfg)
        assert (q.start // cfg.head_dim) // 4 == p.kv_heads(cfg)[0] and q.stop - q.start == 32
    assert [p.vocab_range(11) for p in plans] == [(0, 3), (3, 6), (6, 9), (9, 11)]
    with pytest.raises(Exception, match="does not divide 8 attention heads"):
        TPContext(0, 3).check(cfg)


def resolve_cfg(n_heads: int, n_kv_heads: int, vocab: int):
    from engine.config import ModelConfig

    return ModelConfig(
        model_type="mistral", vocab_size=vocab, dim=64, n_layers=1, n_heads=n_heads,
        n_kv_heads=n_kv_heads, head_dim=16, hidden_dim=96, norm_eps=1e-5, rope_theta=1e4,
        max_position_embeddings=64,
    )  # fmt: skip


def test_tp2_logits_equal_tp1_with_one_kv_head_and_an_odd_vocabulary(engines, prompt_ids):
    one, two = engines
    assert two.model.embed.shape[0] == (ODD_VOCAB + 1) // 2  # each rank holds half the rows
    prompt = [p % ODD_VOCAB for p in prompt_ids(40, seed=7)]
    c1, c2 = one.model.new_cache(), two.model.new_cache()
    a, b = _logits(one.model, prompt, 0, c1), _logits(two.model, prompt, 0, c2)
    assert a.shape == b.shape == (40, ODD_VOCAB)
    assert torch.allclose(a, b, atol=1e-5)
    for step in range(6):  # decode steps through the KV cache of each rank
        tok = [int(a[-1].argmax())]
        a = _logits(one.model, tok, 40 + step, c1)
        b = _logits(two.model, tok, 40 + step, c2)
        assert torch.allclose(a, b, atol=1e-5)


def test_tp2_greedy_tokens_equal_tp1_and_transformers(engines, kv1_dir, prompt_ids):
    one, two = engines
    prompt = prompt_ids(24, seed=11)
    ours1 = list(one.generate(prompt, 20, stop_at_eos=False))
    ours2 = list(two.generate(prompt, 20, stop_at_eos=False))
    from transformers import MistralForCausalLM

    ref = MistralForCausalLM.from_pretrained(kv1_dir).eval()
    ref.generation_config.eos_token_id = None
    with torch.no_grad():
        want = ref.generate(torch.tensor([prompt]), max_new_tokens=20, do_sample=False)
    assert ours2 == ours1 == want[0, len(prompt) :].tolist()


def test_prefix_reuse_under_tp_gives_the_cold_tokens(engines):
    one, two = engines
    first = list(two.chat(MESSAGES, max_tokens=8))
    assert isinstance(first[-1], Finished)
    turn2 = [
        *MESSAGES,
        {"role": "assistant", "content": "Shards in a ring."},
        {"role": "user", "content": "And another one, please."},
    ]
    two_events = list(two.chat(turn2, max_tokens=10))
    assert two.last_timings.reused_tokens > 5  # the first turn's tokens were not prefilled again
    one.reset()
    cold = list(one.chat(turn2, max_tokens=10))
    assert one.last_timings.reused_tokens == 0
    same = [e for e in two_events if not isinstance(e, Usage)]
    assert same == [e for e in cold if not isinstance(e, Usage)]


def test_sampling_on_rank0_is_seeded_and_equal_to_tp1(engines, prompt_ids):
    one, two = engines
    prompt = prompt_ids(16, seed=5)
    kw = dict(temperature=0.9, top_p=0.95, seed=1234, stop_at_eos=False)
    assert list(two.generate(prompt, 12, **kw)) == list(one.generate(prompt, 12, **kw))


@pytest.mark.parametrize("kind", [EAGLE1, EAGLE3])
def test_eagle_greedy_under_tp_equals_plain_greedy(engines, prompt_ids, kind):
    one, two = engines
    view = draft_target(two.model, two.checkpoint)  # full vocabulary on rank 0 for the drafter
    head = random_head(head_spec_for(view, kind), view, seed=4)
    spec = Speculator(EagleDrafter(head), 3)
    prompt = prompt_ids(12, seed=9)
    decoder = Decoder(two.model)  # a second cache: the workers keep a twin of each
    params = SamplingParams()
    got = list(decoder.speculate(spec, prompt, params, 16, None, frozenset(), Timings()))
    assert got == list(one.generate(prompt, 16, stop_at_eos=False))
    assert spec.stats.rounds < 16  # some drafts were verified in the same pass
    assert list(two.generate(prompt, 16, stop_at_eos=False)) == got  # the engine's own cache


def test_cli_generate_with_tp2_prints_the_tp1_tokens(kv1_dir, capsys):
    argv = ["generate", "--model", str(kv1_dir), "--prompt-ids", "1,50,60,70", "--max-tokens",
            "8", "--max-context", "64", "--json", "--dtype", "float32", "--device", "cpu"]  # fmt: skip
    assert engine_cli([*argv, "--tp", "2"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert engine_cli(argv) == 0
    assert json.loads(capsys.readouterr().out)["token_ids"] == two["token_ids"]
    assert len(two["token_ids"]) == 8


def test_bf16_native_checkpoint_tp2_close_to_tp1(tiny_dir, prompt_ids):
    ckpt = resolve(tiny_dir("mistral_native")[1])  # wq/wk need the per-head RoPE permutation
    one = load_model(ckpt, "cpu", "bfloat16", 64)
    two = load_model(ckpt, "cpu", "bfloat16", 64, tp=2)
    try:
        prompt = prompt_ids(20, seed=2)
        a = _logits(one, prompt, 0, one.new_cache()).float()
        b = _logits(two, prompt, 0, two.new_cache()).float()
        fp32 = load_model(ckpt, "cpu", "float32", 64)
        ref = _logits(fp32, prompt, 0, fp32.new_cache())
    finally:
        two.shutdown()
    scale = ref.abs().max()
    assert (a - ref).abs().max() < 0.05 * scale  # bf16 itself
    assert (b - ref).abs().max() < 0.05 * scale  # TP adds no more than bf16 rounding
    assert (a.argmax(-1) == b.argmax(-1)).float().mean() >= 0.9


def test_a_killed_worker_fails_generation_within_seconds(kv1_dir, prompt_ids):
    eng = Engine.load(kv1_dir, tp=2, device="cpu", dtype="float32", max_context=256)
    (worker,) = eng.model.pool.pids
    got: list[object] = []
    started = threading.Event()

    def run() -> None:
        try:
            for _ in eng.generate(prompt_ids(8), 200, stop_at_eos=False):
                started.set()
            got.append("finished")
        except Exception as exc:  # the error under test
            got.append(exc)

    th = threading.Thread(target=run)
    th.start()
    assert started.wait(30)
    os.kill(worker, signal.SIGKILL)
    t0 = time.monotonic()
    th.join(15)
    elapsed = time.monotonic() - t0
    try:
        if got == ["finished"]:  # the 200 tokens beat the kill: the next call must fail
            t0 = time.monotonic()
            with pytest.raises(TensorParallelError) as info:
                list(eng.generate(prompt_ids(8), 4))
            got, elapsed = [info.value], time.monotonic() - t0
        assert isinstance(got[0], TensorParallelError), got
        assert "worker 1 was killed by SIGKILL" in str(got[0]) and "\n" not in str(got[0])
        assert elapsed < 5
        assert not _alive(worker)
        with pytest.raises(TensorParallelError):  # the engine stays failed, it never hangs
            list(eng.generate(prompt_ids(4), 2))
    finally:
        eng.close()


_PARENT = """
import json, sys, time
from engine import Engine, Finished, Usage
eng = Engine.load(sys.argv[1], tp=2, device="cpu", dtype="float32", max_context=64)
print(json.dumps(eng.model.pool.pids), flush=True)
time.sleep(120)
"""


def test_killing_the_parent_leaves_no_worker_behind(kv1_dir):
    proc = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(kv1_dir)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        pids = json.loads(proc.stdout.readline())
        assert pids and all(_alive(p) for p in pids)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert _wait_gone(pids, within=5), "worker outlived its killed parent"
    finally:
        proc.kill()
        proc.wait()


def _config(ckpt: Path) -> str:
    return f"""
active_model = "tiny-tp"

[[providers]]
name = "local-tp"
backend = "local"
tensor_parallel_size = 2
device = "cpu"
dtype = "float32"

[[models]]
name = "{ckpt}"
provider = "local-tp"
alias = "tiny-tp"
max_context_length = 2048
"""


def test_vibe_run_turn_on_a_tp2_local_provider(tmp_path):
    from transformers import MistralConfig, MistralForCausalLM

    ckpt = tmp_path / "ckpt"
    dims = {**tiny_models.DIMS, "vocab_size": CHAT_VOCAB, "max_position_embeddings": 4096}
    model = tiny_models._peaky(MistralForCausalLM(MistralConfig(**dims)), seed=0)
    with torch.no_grad():  # text tokens push hidden[0] up and </s> (id 2) reads it: short answers
        model.model.embed_tokens.weight[1000:, 0] = 5.0
        model.lm_head.weight[2, 0] = 50.0
    tiny_models.save_hf(model, ckpt)
    tiny_models.mistral_common_tokenizer_file(ckpt, "v13", vocab_size=CHAT_VOCAB)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(_config(ckpt))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
    env.update(VIBE_HOME=str(home), NO_COLOR="1", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "vibe", "run", "--output", "json", "--max-turns", "1",
         "--disabled-tools", "bash,read_file,write_file,edit,grep,todo", "Say hi."],
        cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and result["result"].strip()
    assert result["usage"]["prompt_tokens"] > 100 and result["usage"]["completion_tokens"] >= 2
    leftovers = [
        p.name
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and str(ckpt) in _cmdline(p) and _alive(int(p.name))
    ]
    assert not leftovers, f"workers left behind: {leftovers}"


def _cmdline(p: Path) -> str:
    try:
        return (p / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.parametrize("scheme", ["int8", "int4"])
def test_quantized_shards_equal_the_quantized_model_on_one_rank(tmp_path, prompt_ids, scheme):
    """`--quantize` under TP (GPU kinds; each rank quantizes its own shard), run on CPU ranks:
    int4 groups never cross a shard boundary, so TP=2 equals TP=1 up to the all-reduce's
    float order; int8's per-row scales of a row-parallel shard cover half a row."""
    from transformers import MistralConfig, MistralForCausalLM

    from engine import gpu_quant
    from engine.model import Transformer
    from engine.parallel.workers import load_parallel
    from engine.weights import load_into

    path = tmp_path / "wide"  # an FFN of 128: each rank's half of down_proj is whole int4 groups
    dims = {**tiny_models.DIMS, "intermediate_size": 128}
    tiny_models.save_hf(tiny_models._peaky(MistralForCausalLM(MistralConfig(**dims)), 5), path)
    ckpt = resolve(path)
    plan = gpu_quant.quant_plan(ckpt.config, scheme)
    one = Transformer(ckpt.config, 64, torch.float32, torch.device("cpu"), quant=plan)
    load_into(one, ckpt.tensors(set(one.weight_targets())))
    two = load_parallel(ckpt, 2, torch.device("cpu"), torch.float32, 64, plan)
    try:
        assert isinstance(two.layers[0].w2, gpu_quant.GPU_KINDS[scheme])
        prompt = prompt_ids(16, seed=4)
        a = _logits(one, prompt, 0, one.new_cache())
        b = _logits(two, prompt, 0, two.new_cache())
    finally:
        two.shutdown()
    tol = 1e-4 if scheme == "int4" else 2e-2
    assert (a - b).abs().max() <= tol * a.abs().max()


def test_quantize_with_tp_on_cpu_is_a_one_line_error(tiny_dir):
    from engine.errors import BadRequestError

    with pytest.raises(BadRequestError, match="--quantize with --tp runs on GPUs"):
        load_model(resolve(tiny_dir("mistral")[1]), "cpu", "float32", 64, tp=2, quantize="int4")


def test_a_shard_that_splits_int4_groups_is_a_one_line_error(tiny_dir):
    from engine import gpu_quant
    from engine.errors import BadRequestError

    cfg = resolve(tiny_dir("mistral")[1]).config
    with pytest.raises(BadRequestError, match="would split quantization groups"):
        gpu_quant.check_shards(cfg, gpu_quant.quant_plan(cfg, "int4", group=128), 2)
