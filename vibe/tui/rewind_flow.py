"""/rewind (and Esc twice on an empty input): pick an earlier message of yours; the conversation
goes back to just before it, the message returns to the input, and the files write_file and edit
changed since can be restored (vibe.rewind). The session log keeps everything and records the
rewind, so a resumed session opens at the rewound point."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vibe.runtime import Runtime
    from vibe.tui.controller import Controller

NOTE = (
    "The conversation goes back to just before the message you pick, and the message returns "
    "to the input. Files changed by write_file and edit can be restored; changes made by bash "
    "(or outside vibe) are not tracked."
)
_FILE_MARK = "\n\n<file path="


def rewind_points(rt: Runtime) -> list[tuple[int, str]]:
    """(index in the session's messages, what the user typed) of each earlier user message."""
    from vibe.agent.continuation import is_continuation

    typed = rt.checkpoints.turns() if rt.checkpoints is not None else {}
    out = []
    for index, message in enumerate(rt.session.messages):
        if message.role != "user" or is_continuation(message):
            continue
        turn = typed.get(index)
        out.append((index, turn.text if turn else message.content.split(_FILE_MARK, 1)[0]))
    return out


def _label(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 80 else line[:79] + "…"


async def rewind_flow(ctl: Controller) -> None:
    from vibe.tui.screens.picker import PickerScreen
    from vibe.tui.widgets.footer import short_path

    rt = ctl.runtime
    if rt is None:
        return
    if ctl.busy:
        await ctl.say("/rewind waits for the current turn to end (Esc interrupts it).", "error")
        return
    points = rewind_points(rt)
    if not points:
        await ctl.say("Nothing to rewind to yet: no message of yours in this session.")
        return
    items = [(str(i), _label(text)) for i, text in reversed(points)]
    chosen = await ctl.app.push_screen_wait(
        PickerScreen("Rewind to before…", items, filter=True, note=NOTE)
    )
    if chosen is None:
        return
    index = int(chosen)
    text = dict(points)[index]
    restore = False
    changed = rt.checkpoints.changed_since(index) if rt.checkpoints is not None else []
    if changed:
        names = [short_path(p.path) for p in changed[:8]]
        more = f"\n  … and {len(changed) - 8} more" if len(changed) > 8 else ""
        note = "Changed by write_file/edit since that message:\n  " + "\n  ".join(names) + more
        note += "\n(Changes made by bash are not tracked and stay as they are.)"
        n = len(changed)
        files = f"{n} file" + ("s" if n != 1 else "")
        answer = await ctl.app.push_screen_wait(
            PickerScreen(
                "Restore the files too?",
                [
                    ("both", f"Rewind the conversation and restore {files}"),
                    ("conversation", "Rewind the conversation only (files stay as they are)"),
                ],
                note=note,
            )
        )
        if answer is None:
            return
        restore = answer == "both"
    await rewind_to(ctl, index, text, restore=restore)


async def rewind_to(ctl: Controller, index: int, text: str, *, restore: bool) -> None:
    """Rewind the live session to just before message `index`, and restore files if asked."""
    rt = ctl.runtime
    assert rt is not None
    restored: list = []
    problems: list[str] = []
    if rt.checkpoints is not None:
        if restore:
            restored, problems = rt.checkpoints.restore(index)
        rt.checkpoints.drop_from(index)
    rt.session.rewind(index)
    await ctl.replace_runtime(rt.session)
    ctl.app.prompt.set_value(text)
    ctl.app.prompt.focus()
    summary = f"Rewound to before: {_label(text)}"
    if restored:
        summary += f"\nRestored {len(restored)} file" + ("s." if len(restored) != 1 else ".")
    await ctl.say(summary)
    for problem in problems:
        await ctl.say(f"not restored: {problem}", "error")
