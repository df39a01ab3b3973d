"""How a final answer ended: a plain success, a warning (empty, reasoning-only, no choices, an
unusual finish reason) or a truncation that ends the run as a limit (finish_reason=length)."""

from __future__ import annotations

from vibe.messages import Message

# Finish reasons of a normal end; "" means the server sent none.
PLAIN = frozenset({"stop", "tool_calls", "end_turn", "stop_sequence", "eos", ""})
TRUNCATED = "the model's answer was cut off at its output token limit (finish_reason=length)"
TRUNCATED_CALLS = (
    "the model's tool call was cut off at its output token limit (finish_reason=length; "
    "max_output_tokens of the model); the call was not run"
)


def judge_answer(message: Message, reason: str) -> tuple[str | None, list[str]]:
    """(error, warnings) for a final answer (one without tool calls) and its finish reason:
    an error means the run ends as a limit (exit 3); warnings still end it as completed."""
    if reason == "length":
        return TRUNCATED, []
    if reason == "no_choices":
        return None, ["the model's reply had no choices (finish_reason=no_choices): no answer"]
    warnings: list[str] = []
    if not message.content.strip():
        if message.reasoning and message.reasoning.strip():
            warnings.append("the model's answer had only reasoning and no text")
        else:
            warnings.append("the model returned an empty answer")
    if reason not in PLAIN:
        warnings.append(f"the model's answer ended with finish_reason={reason}")
    return None, warnings
