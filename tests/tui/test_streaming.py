"""Streaming internals: O(1) appends, long answers split into segments at paragraph breaks
outside code fences, and reasoning that repaints only once unfolded."""

from __future__ import annotations

from vibe.tui.widgets.messages import AssistantText, TextBuffer, ThoughtBlock

from .conftest import scripted_app, texts, wait_for


def test_text_buffer_joins_lazily_and_sees_suffixes_across_fragments():
    buf = TextBuffer("ab")
    for fragment in ["c\n", "", "\n", "d", "\n", "\n"]:
        buf.append(fragment)
    assert len(buf) == 8 and buf.endswith("d\n\n") and not buf.endswith("x\n\n")
    assert buf.value == "abc\n\nd\n\n"
    buf.append("e")
    assert buf.value == "abc\n\nd\n\ne" and not buf.endswith("\n\n")
    assert TextBuffer().value == "" and not TextBuffer().endswith("\n")


async def test_long_answer_is_split_at_paragraphs_but_never_inside_a_code_fence(home, workdir):
    para = "word " * 100 + "\n\n"  # 502 characters
    fence = "```\n" + "code\n\n" * 200 + "```\n\n"  # blank lines inside: not a split point
    answer = para * 7 + fence + para * 3
    app, _ = scripted_app(home, workdir, [{"text": answer}], chunk_size=7)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("long")
        await wait_for(pilot, lambda: not app.busy and app.router.last_answer)
        segments = texts(app, AssistantText)
        assert "".join(segments) == answer
        assert len(segments) >= 2
        assert all(s.count("```") % 2 == 0 for s in segments)
        assert all(len(s) <= AssistantText.SEGMENT_CHARS + 2000 for s in segments[:-1])


async def test_folded_reasoning_paints_only_when_opened(home, workdir):
    reasoning = "step " * 300
    app, _ = scripted_app(home, workdir, [{"reasoning": reasoning, "text": "ok"}], chunk_size=5)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("think")
        await wait_for(pilot, lambda: not app.busy and app.router.last_answer)
        thought = next(w for w in app.chat.entries if isinstance(w, ThoughtBlock))
        assert thought.collapsed and thought.body.text == reasoning
        assert str(thought.body.render()) == ""  # nothing was painted while folded
        thought.collapsed = False
        await wait_for(pilot, lambda: str(thought.body.render()) == reasoning)
