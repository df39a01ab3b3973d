"""Schema export and argument parsing of the tool contract."""

from __future__ import annotations

import json
import re

import pytest

from tools.base import ToolError, parse_args, tool_schema
from tools.registry import builtin_tools

TOOLS = builtin_tools()


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_every_builtin_is_registered_under_the_contract_names():
    assert set(TOOLS) == {"bash", "read_file", "write_file", "edit", "grep", "todo", "web_fetch"}


@pytest.mark.parametrize(
    ("name", "properties", "required"),
    [
        ("bash", {"command", "timeout"}, ["command"]),
        ("read_file", {"path", "offset", "limit"}, ["path"]),
        ("write_file", {"path", "content"}, ["content", "path"]),
        (
            "edit",
            {"path", "old_string", "new_string", "replace_all"},
            ["new_string", "old_string", "path"],
        ),
        ("grep", {"pattern", "path", "glob", "max_matches"}, ["pattern"]),
        ("todo", {"todos"}, ["todos"]),
    ],
)
def test_schema_has_contract_parameters(name, properties, required):
    schema = tool_schema(TOOLS[name])
    assert schema["type"] == "function"
    function = schema["function"]
    assert function["name"] == name
    assert function["description"]
    params = function["parameters"]
    assert params["type"] == "object"
    assert set(params["properties"]) == properties
    assert sorted(params.get("required", [])) == required
    assert params["additionalProperties"] is False
    json.dumps(schema)  # must be plain JSON


def test_schema_is_clean():
    for tool in TOOLS.values():
        schema = tool_schema(tool)["function"]["parameters"]
        for node in _walk(schema):
            assert "title" not in node or isinstance(node.get("title"), dict)
            assert "$ref" not in node and "$defs" not in node
            assert node.get("default", 0) is not None
    bash = tool_schema(TOOLS["bash"])["function"]["parameters"]["properties"]
    assert bash["timeout"]["type"] == "number"  # optional, not anyOf[number, null]
    assert "anyOf" not in bash["timeout"]
    edit = tool_schema(TOOLS["edit"])["function"]["parameters"]["properties"]
    assert edit["replace_all"] == {
        "type": "boolean",
        "default": False,
        "description": edit["replace_all"]["description"],
    }
    todo_items = tool_schema(TOOLS["todo"])["function"]["parameters"]["properties"]["todos"][
        "items"
    ]
    assert todo_items["properties"]["status"]["enum"] == ["pending", "in_progress", "completed"]
    assert sorted(todo_items["required"]) == ["content", "status"]


def test_parse_args_accepts_valid_json_and_mappings():
    args = parse_args(TOOLS["read_file"], '{"path": "a.py", "offset": 3}')
    assert (args.path, args.offset, args.limit) == ("a.py", 3, None)
    assert (
        parse_args(TOOLS["edit"], {"path": "a", "old_string": "x", "new_string": "y"}).replace_all
        is False
    )


def test_parse_args_empty_string_means_no_arguments():
    with pytest.raises(ToolError, match="missing required parameter 'command'"):
        parse_args(TOOLS["bash"], "  ")


@pytest.mark.parametrize(
    ("tool", "raw", "message"),
    [
        (
            "bash",
            '{"command": "ls"',
            r"invalid JSON arguments for bash: .* line 1 column 17 .*ends early",
        ),
        ("bash", "{'command': 'ls'}", r"invalid JSON .*property name enclosed in double quotes"),
        ("bash", '["ls"]', r"must be a JSON object, got an array"),
        ("bash", '"ls"', r"must be a JSON object, got a string"),
        ("read_file", "{}", r"missing required parameter 'path'"),
        (
            "read_file",
            '{"path": "a", "offset": "ten"}',
            r"parameter 'offset': .*integer.*got a string \"ten\"",
        ),
        (
            "read_file",
            '{"path": "a", "offset": 0}',
            r"parameter 'offset': .*greater than or equal to 1",
        ),
        ("read_file", '{"path": "a", "lines": 5}', r"unknown parameter 'lines'"),
        (
            "edit",
            '{"path": 5, "old_string": "a", "new_string": "b"}',
            r"parameter 'path': .*string",
        ),
        ("todo", '{"todos": [{"content": "x", "status": "done"}]}', r"parameter 'todos.0.status'"),
    ],
)
def test_parse_args_errors_are_clear(tool, raw, message):
    with pytest.raises(ToolError, match=message) as info:
        parse_args(TOOLS[tool], raw)
    assert "\n" not in str(info.value)


def test_bad_bash_timeout_setting_is_rejected():
    with pytest.raises(ValueError, match=re.escape("tools.bash.default_timeout")):
        builtin_tools({"bash": {"default_timeout": "soon"}})
    assert builtin_tools({"bash": {"default_timeout": 1200}})["bash"].default_timeout == 1200
