"""Units of the daily-driver items: web_fetch's domain rules (allowlist, denylist, plan mode,
session patterns), the one wire serialiser (images per dialect, tool-result images after the
tool messages, notes where images cannot go), the one head-and-tail clipper, the budget's
run and life totals and the answer cap, typed run options, the local provider's engine error
mapping, @image mentions and MCP image results."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image as PILImage

from tools._urlcheck import host_matches
from tools.permissions import (
    PermissionPolicy,
    ToolPolicy,
    default_policy,
    evaluate,
    session_pattern,
)
from vibe.agent.budget import Budget, Limits, answer_cap
from vibe.agent.clip import clip_middle
from vibe.agent.policy import build_policy
from vibe.config import ModeConfig, ModelConfig, VibeConfig
from vibe.errors import ContextTooLongError, ProviderError
from vibe.messages import Image, Message, ToolCall, Usage, parse_arguments
from vibe.options import RunOptions
from vibe.providers.wire import TOOL_IMAGES_INTRO, to_wire_list
from vibe.tui.mentions import attach_mentions, expand_mentions

CWD = Path("/tmp")


def policy(**tools: ToolPolicy) -> PermissionPolicy:
    return PermissionPolicy(tools={**default_policy(), **tools})


@pytest.mark.parametrize(
    ("pattern", "host", "hit"),
    [
        ("docs.python.org", "docs.python.org", True),
        ("DOCS.python.org", "docs.python.org", True),
        ("*.python.org", "docs.python.org", True),
        ("*.python.org", "python.org", True),
        ("*.python.org", "evilpython.org", False),
        ("domain:example.com", "example.com", True),
        ("domain:example.com", "a.example.com", False),
        ("https://example.com/path", "example.com", True),
        ("*", "anything.io", True),
        ("", "example.com", False),
    ],
)
def test_domain_patterns(pattern, host, hit):
    assert host_matches(pattern, host) is hit


def test_web_fetch_asks_by_default_and_allowlist_denylist_decide():
    url = {"url": "https://docs.python.org/3/"}
    assert evaluate("web_fetch", url, policy(), CWD).action == "ask"
    allowed = policy(web_fetch=ToolPolicy("ask", allowlist=("*.python.org",)))
    assert evaluate("web_fetch", url, allowed, CWD).action == "allow"
    denied = policy(web_fetch=ToolPolicy("always", denylist=("docs.python.org",)))
    assert evaluate("web_fetch", url, denied, CWD).action == "deny"
    never = policy(web_fetch=ToolPolicy("never"))
    assert evaluate("web_fetch", url, never, CWD).action == "deny"
    bad = evaluate("web_fetch", {"url": "file:///etc/passwd"}, policy(), CWD)
    assert bad.action == "deny" and "http" in bad.reason
    # The session pattern is the host: "allow for this session" allows that host only.
    rule = session_pattern("web_fetch", url)
    assert rule == "docs.python.org"
    other = {"url": "https://evil.example/"}
    assert evaluate("web_fetch", url, policy(), CWD, [("web_fetch", rule)]).action == "allow"
    assert evaluate("web_fetch", other, policy(), CWD, [("web_fetch", rule)]).action == "ask"


def test_hosts_are_compared_as_the_connection_resolves_them():
    """A denylist entry holds for every spelling of its host: IDNA dots, numeric IPv4 forms,
    punycode; "allow for this session" on a host with a wildcard character allows only it."""
    meta = policy(web_fetch=ToolPolicy("always", denylist=("169.254.169.254", "evil.com")))
    for url in ("http://2852039166/", "http://0xa9fea9fe/latest", "http://evil\u3002com/"):
        assert evaluate("web_fetch", {"url": url}, meta, CWD).action == "deny", url
    idn = policy(
        web_fetch=ToolPolicy(
            "always", denylist=("\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444",)
        )
    )
    assert (
        evaluate("web_fetch", {"url": "http://xn--e1afmkfd.xn--p1ai/"}, idn, CWD).action == "deny"
    )
    for url in ("http://*/", "http://*.com/"):
        rule = session_pattern("web_fetch", {"url": url})
        other = {"url": "https://anything.com/"}
        assert evaluate("web_fetch", other, policy(), CWD, [("web_fetch", rule)]).action == "ask"


def test_plan_mode_lets_web_fetch_ask_but_not_write():
    plan = build_policy(VibeConfig(), ModeConfig(name="plan", safety="safe"))
    assert evaluate("web_fetch", {"url": "https://a.io"}, plan, CWD).action == "ask"
    assert evaluate("write_file", {"path": "x", "content": ""}, plan, CWD).action == "deny"


def _image(name: str = "a.png") -> Image:
    return Image("image/png", "QUJD", name, 2, 2)


def _conversation() -> list[Message]:
    call = ToolCall("c1", "read_file", '{"path": "a.png"}')
    return [
        Message("user", "look", images=[_image("shot.png")]),
        Message("assistant", "", tool_calls=[call]),
        Message("tool", "[image a.png]", tool_call_id="c1", name="read_file", images=[_image()]),
        Message("assistant", "red"),
    ]


def test_wire_formats_per_dialect():
    mistral = to_wire_list(_conversation(), images="mistral")
    assert mistral[0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": "data:image/png;base64,QUJD"},
    ]
    assert mistral[2] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": "[image a.png]",
        "name": "read_file",
    }
    assert mistral[3] == {
        "role": "user",
        "content": [
            {"type": "text", "text": f"{TOOL_IMAGES_INTRO} read_file: a.png"},
            {"type": "image_url", "image_url": "data:image/png;base64,QUJD"},
        ],
    }
    assert mistral[4]["role"] == "assistant"
    openai = to_wire_list(_conversation(), images="openai")
    assert openai[0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,QUJD"},
    }
    plain = to_wire_list(_conversation(), images="none")
    assert plain[0]["content"].startswith("look\n[shot.png: an image this model cannot see")
    assert all("base64" not in str(m) for m in plain)


def test_messages_with_images_round_trip():
    message = _conversation()[0]
    assert Message.from_dict(message.to_dict()) == message
    assert "images" not in Message("user", "x").to_dict()


def test_one_argument_parser():
    assert parse_arguments('{"a": 1}') == {"a": 1}
    assert parse_arguments("") == {}
    assert parse_arguments("[1]") is None and parse_arguments("{bad") is None
    assert ToolCall("i", "n", '{"x": true}').parsed() == {"x": True}


def test_clip_middle_keeps_head_and_tail():
    assert clip_middle("short", 10) == "short"
    out = clip_middle("a" * 50 + "b" * 50, 20, head=0.75)
    assert out.startswith("a" * 15) and out.endswith("b" * 5)
    assert "[... 80 characters omitted ...]" in out
    data = "é" * 100  # 200 bytes
    clipped = clip_middle(data, 50, unit="bytes")
    assert "bytes omitted" in clipped and len(clipped.split("\n")[0].encode()) <= 25


def test_budget_owns_run_and_life_totals():
    budget = Budget(Limits(max_turns=2), Usage(1000, 100), 0.5)
    budget.add(Usage(10, 1), 0.01)
    budget.spend(Usage(5, 5), 0.02)  # compaction: not a turn
    assert budget.turns == 1 and budget.usage == Usage(15, 6)
    assert budget.life_usage == Usage(1015, 106) and budget.life_cost_usd == pytest.approx(0.53)
    budget.start()  # the next run
    assert budget.usage == Usage() and budget.life_usage == Usage(1015, 106)


def test_answer_cap_shrinks_near_a_full_window():
    model = ModelConfig(name="m", provider="p", max_output_tokens=8000, max_context_length=32000)
    assert answer_cap(model, 1000) == 8000
    assert answer_cap(model, 30000) == 2000
    assert answer_cap(model, 31900) == 1024
    assert answer_cap(ModelConfig(name="m", provider="p"), 10**6) == 32768


def test_run_options_from_a_namespace():
    ns = SimpleNamespace(prompt="p", add_dir=["a", "b"], auto_approve=True, max_turns=None)
    opts = RunOptions.of(ns)
    assert opts.prompt == "p" and opts.add_dir == ("a", "b") and opts.auto_approve
    assert opts.output == "text" and opts.max_turns is None and RunOptions.of(opts) is opts


def test_local_provider_maps_engine_errors_by_type():
    pytest.importorskip("torch")
    from engine.errors import ContextLengthError, EngineOutOfMemory
    from vibe.providers.local import LocalProvider

    provider = LocalProvider.__new__(LocalProvider)
    provider.name, provider.model = "local", ModelConfig(name="m", provider="local")

    class ContextLengthErrorLookalike(Exception):  # the old name check would have matched
        pass

    assert isinstance(provider._translate(ContextLengthError("too long")), ContextTooLongError)
    oom = provider._translate(EngineOutOfMemory("oom"))
    assert type(oom) is ProviderError and "oom" in str(oom)
    other = provider._translate(ContextLengthErrorLookalike("x"))
    assert type(other) is ProviderError


class _Agent:
    """What attach_mentions reads of an Agent: its model, provider and attach()."""

    def __init__(self, images: bool, local: bool = False) -> None:
        self.settings = SimpleNamespace(
            model=ModelConfig(name="m", provider="p", supports_images=images)
        )
        self.provider = SimpleNamespace(takes_images=not local)
        self.attached: list[Image] = []

    def attach(self, images: list[Image]) -> None:
        self.attached = images


@pytest.fixture
def files(tmp_path) -> Path:
    PILImage.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "shot.png")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    (tmp_path / "notes.txt").write_text("hello notes")
    return tmp_path


def test_image_mentions_attach_or_explain(files):
    agent = _Agent(images=True)
    prompt, notes = attach_mentions("see @shot.png and @notes.txt and @blob.bin", files, agent)
    assert [i.name for i in agent.attached] == ["shot.png"] and agent.attached[0].width == 8
    assert '<file path="notes.txt">\nhello notes' in prompt
    assert "blob.bin" not in prompt.split("\n", 1)[1], "binary files are never inlined"
    assert notes == ["@blob.bin not attached: it is a binary file (only text and images can be)"]
    blind = _Agent(images=False)
    _, notes = attach_mentions("see @shot.png", files, blind)
    assert blind.attached == [] and "supports_images = false" in notes[0]
    local = _Agent(images=True, local=True)
    _, notes = attach_mentions("see @shot.png", files, local)
    assert local.attached == [] and "local engine" in notes[0]
    assert expand_mentions("see @shot.png", files) == "see @shot.png"


def test_mcp_image_results_take_the_image_path():
    from vibe.mcp.tools import result_images, result_text

    buf = io.BytesIO()
    PILImage.new("RGB", (3, 2)).save(buf, "PNG")
    block = SimpleNamespace(
        type="image", data=base64.b64encode(buf.getvalue()).decode(), mime_type="image/png"
    )
    result = SimpleNamespace(content=[block], is_error=False, structured_content=None)
    images = result_images(result, "srv_shot")
    assert images[0]["mime_type"] == "image/png" and (images[0]["width"], images[0]["height"]) == (
        3,
        2,
    )
    assert "not shown" not in result_text(result)
