"""`vibe --add-dir DIR` in the TUI: the folder reaches the permission policy and the system
prompt, and stays through a mode switch and /clear."""

from __future__ import annotations

from .conftest import approval_open, scripted_app, wait_for


def write_into(folder, name: str) -> dict:
    args = {"path": f"{folder}/{name}", "content": "hello\n"}
    return {"tool_calls": [{"name": "write_file", "arguments": args}]}


async def test_add_dir_reaches_policy_and_prompt_and_survives_switches(home, workdir, tmp_path):
    other = (tmp_path / "other").resolve()
    other.mkdir()
    script = [write_into(other, "a.txt"), {"text": "done"}]
    app, _ = scripted_app(home, workdir, script, add_dirs=(other,))
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)

        def wired() -> bool:
            agent = app.runtime.agent
            return (
                agent.settings.policy.extra_roots == (other,)
                and f"Additional folders you may work in: {other}" in agent.messages[0].content
            )

        assert wired() and app.runtime.add_dirs == (other,)
        await app.submit("write there")
        await wait_for(pilot, lambda: approval_open(app))
        # Inside an --add-dir folder a write asks like one in the working folder, with a preview.
        assert app.screen.preview.summary.startswith(f"write_file creates {other}/a.txt")
        await pilot.press("1")
        await wait_for(pilot, lambda: not app.busy)
        assert (other / "a.txt").read_text() == "hello\n"
        await pilot.press("shift+tab")
        await wait_for(pilot, lambda: app.runtime.mode.name == "plan")
        assert wired()
        await app.submit("/clear")
        await wait_for(pilot, lambda: not app.runtime.agent.messages[1:])
        assert wired() and app.runtime.mode.name == "plan"
