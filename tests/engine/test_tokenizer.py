"""Chat encoding against mistral-common's own requests, and the streaming output parser."""

from __future__ import annotations

import json

import pytest
from mistral_common.protocol.instruct.chunk import TextChunk, ThinkChunk
from mistral_common.protocol.instruct.messages import (
    AssistantMessage,
    SystemMessage,
    ToolMessage,
    UserMessage,
)
from mistral_common.protocol.instruct.request import ChatCompletionRequest
from mistral_common.protocol.instruct.tool_calls import Function, FunctionCall, Tool, ToolCall

from engine.errors import BadRequestError
from engine.events import ReasoningDelta, TextDelta, ToolCallEvent
from engine.parser import OutputParser, ToolCallParser
from engine.tokenizer import MistralChatTokenizer
from tests.fakes.tiny_models import mistral_common_tokenizer_file

BASH_SCHEMA = {
    "type": "object",
    "properties": {"command": {"type": "string"}},
    "required": ["command"],
}
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {"name": "bash", "description": "Run a command", "parameters": BASH_SCHEMA},
    }
]
OPENAI_MESSAGES = [
    {"role": "system", "content": "You are vibe."},
    {"role": "user", "content": "list files"},
    {
        "role": "assistant",
        "content": None,
        "reasoning_content": "I should run ls.",
        "tool_calls": [
            {
                "id": "abcdefghi",
                "type": "function",
                "function": {"name": "bash", "arguments": '{"command": "ls"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "abcdefghi", "content": "a.py\nb.py"},
    {"role": "assistant", "content": "There are two files."},
    {"role": "user", "content": "thanks"},
]


def native_request(**extra) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        messages=[
            SystemMessage(content="You are vibe."),
            UserMessage(content="list files"),
            AssistantMessage(
                content=[ThinkChunk(thinking="I should run ls.")],
                tool_calls=[
                    ToolCall(
                        id="abcdefghi",
                        function=FunctionCall(name="bash", arguments='{"command": "ls"}'),
                    )
                ],
            ),
            ToolMessage(tool_call_id="abcdefghi", content="a.py\nb.py"),
            AssistantMessage(content=[TextChunk(text="There are two files.")]),
            UserMessage(content="thanks"),
        ],
        tools=[
            Tool(
                function=Function(name="bash", description="Run a command", parameters=BASH_SCHEMA)
            )
        ],
        **extra,
    )


@pytest.fixture(scope="module")
def tok_v13(tmp_path_factory) -> MistralChatTokenizer:
    return MistralChatTokenizer(
        mistral_common_tokenizer_file(tmp_path_factory.mktemp("v13"), "v13")
    )


@pytest.fixture(scope="module")
def tok_v15(tmp_path_factory) -> MistralChatTokenizer:
    return MistralChatTokenizer(
        mistral_common_tokenizer_file(tmp_path_factory.mktemp("v15"), "v15")
    )


def test_encoding_with_tools_and_reasoning_equals_mistral_common(tok_v13):
    ours = tok_v13.encode_chat(OPENAI_MESSAGES, OPENAI_TOOLS, None)
    theirs = tok_v13.mistral.encode_chat_completion(native_request()).tokens
    assert ours == theirs
    names = [tok_v13.special_name(t) for t in ours]
    assert {"[THINK]", "[/THINK]", "[TOOL_CALLS]", "[ARGS]", "[AVAILABLE_TOOLS]"} <= set(names)


@pytest.mark.parametrize("effort", ["high", "none"])
def test_reasoning_effort_is_encoded_as_mistral_common_does(tok_v15, effort):
    ours = tok_v15.encode_chat(OPENAI_MESSAGES, OPENAI_TOOLS, effort)
    theirs = tok_v15.mistral.encode_chat_completion(native_request(reasoning_effort=effort))
    assert ours == theirs.tokens
    assert f'"reasoning_effort": "{effort}"' in tok_v15.raw.decode(
        ours, special_token_policy="keep"
    )


def test_reasoning_effort_is_dropped_for_tokenizers_without_model_settings(tok_v13):
    assert tok_v13.encode_chat(OPENAI_MESSAGES, OPENAI_TOOLS, "high") == tok_v13.encode_chat(
        OPENAI_MESSAGES, OPENAI_TOOLS, None
    )


def test_invalid_conversation_is_a_one_line_error(tok_v13):
    with pytest.raises(BadRequestError, match="cannot encode"):
        tok_v13.encode_chat(
            [{"role": "tool", "content": "x", "tool_call_id": "abcdefghi"}], None, None
        )


# --- output parsing ---------------------------------------------------------------------

SEGMENTS = [
    ("special", "[THINK]"),
    ("text", "Let me look, héllo 🌍."),
    ("special", "[/THINK]"),
    ("text", "Sure, running it."),
    ("special", "[TOOL_CALLS]"),
    ("text", "bash"),
    ("special", "[ARGS]"),
    ("text", '{"command": "ls -la | grep \\"x\\""}'),
    ("special", "[TOOL_CALLS]"),
    ("text", "read_file"),
    ("special", "[CALL_ID]"),
    ("text", "ignored12"),
    ("special", "[ARGS]"),
    ("text", '{"path": "a.py"}'),
]
EXPECTED = (
    "Let me look, héllo 🌍.",
    "Sure, running it.",
    [("bash", '{"command": "ls -la | grep \\"x\\""}'), ("read_file", '{"path": "a.py"}')],
)


def run_machine(pieces) -> tuple[str, str, list[tuple[str, str]], list[str]]:
    ids = iter(f"call{i}" for i in range(100))
    machine = ToolCallParser(mint=lambda: next(ids))
    events = []
    for kind, value in pieces:
        events += machine.text(value) if kind == "text" else machine.special(value)
    events += machine.finish()
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls = [(e.name, e.arguments_json) for e in events if isinstance(e, ToolCallEvent)]
    return reasoning, text, calls, [e.id for e in events if isinstance(e, ToolCallEvent)]


def test_parser_on_every_split_of_every_text_segment():
    for index, (kind, value) in enumerate(SEGMENTS):
        if kind != "text":
            continue
        for cut in range(len(value) + 1):
            pieces = [
                *SEGMENTS[:index],
                ("text", value[:cut]),
                ("text", value[cut:]),
                *SEGMENTS[index + 1 :],
            ]
            assert run_machine(pieces)[:3] == EXPECTED, (index, cut)
    char_by_char = [
        p
        for kind, v in SEGMENTS
        for p in ([(kind, v)] if kind == "special" else [("text", c) for c in v])
    ]
    reasoning, text, calls, ids = run_machine(char_by_char)
    assert (reasoning, text, calls) == EXPECTED
    assert ids == ["call0", "call1"]  # minted by us, the model's [CALL_ID] text is ignored


def test_parser_reads_legacy_json_tool_calls():
    payload = json.dumps([{"name": "bash", "arguments": {"command": "ls"}}])
    pieces = [
        ("text", "ok"),
        ("special", "[TOOL_CALLS]"),
        ("text", payload[:7]),
        ("text", payload[7:]),
    ]
    assert run_machine(pieces)[1:3] == ("ok", [("bash", '{"command": "ls"}')])


def test_output_parser_on_real_tekken_tokens(tok_v13):
    raw = tok_v13.raw

    def sp(name: str) -> int:
        return raw.get_special_token(name)

    def enc(text: str) -> list[int]:
        return raw.encode(text, bos=False, eos=False)

    ids: list[int] = []
    for kind, value in SEGMENTS:
        ids += [sp(value)] if kind == "special" else enc(value)
    counter = iter(range(10))
    parser = OutputParser(tok_v13, mint=lambda: f"id{next(counter)}")
    events = [e for t in ids for e in parser.feed(t)] + parser.finish()
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    calls = [(e.name, e.arguments_json) for e in events if isinstance(e, ToolCallEvent)]
    assert (reasoning, text, calls) == EXPECTED
    # Streaming: the answer arrives in several deltas, not one blob at the end.
    assert sum(isinstance(e, TextDelta) for e in events) > 1
