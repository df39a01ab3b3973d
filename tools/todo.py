"""The `todo` tool: the model's task list for the session, replaced whole on every call."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.base import Tool, ToolContext, ToolError, ToolResult

TodoStatus = Literal["pending", "in_progress", "completed"]
_MARKS = {"pending": "[ ]", "in_progress": "[~]", "completed": "[x]"}


class TodoItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="Stable id; assigned when omitted.")
    content: str = Field(min_length=1, description="What to do, as a short imperative.")
    status: TodoStatus = Field(description="pending, in_progress or completed.")


class TodoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    todos: list[TodoItem] = Field(description="The complete, updated task list.")


class TodoTool(Tool):
    name: ClassVar[str] = "todo"
    description: ClassVar[str] = (
        "Keep a task list for multi-step work. Send the complete list every time (it replaces "
        "the previous one); mark one task in_progress while working on it and completed when done."
    )
    Args: ClassVar[type[BaseModel]] = TodoArgs

    def __init__(self) -> None:
        self.todos: list[dict[str, str]] = []

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        assert isinstance(args, TodoArgs)
        todos: list[dict[str, str]] = []
        for number, item in enumerate(args.todos, start=1):
            todo_id = (item.id or "").strip() or str(number)
            if any(t["id"] == todo_id for t in todos):
                raise ToolError(f"duplicate todo id {todo_id!r}; ids must be unique")
            todos.append({"id": todo_id, "content": item.content.strip(), "status": item.status})
        self.todos = todos
        return ToolResult(text=render(todos), data={"todos": [dict(t) for t in todos]})


def render(todos: list[dict[str, str]]) -> str:
    """The list as the model and plain-text UIs see it."""
    if not todos:
        return "Todo list is empty."
    done = sum(t["status"] == "completed" for t in todos)
    lines = [f"Todos ({done}/{len(todos)} completed):"]
    lines += [f"{_MARKS[t['status']]} {t['id']}. {t['content']}" for t in todos]
    return "\n".join(lines)
