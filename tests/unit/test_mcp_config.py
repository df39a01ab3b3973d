"""`[[mcp_servers]]` config (Mistral Vibe's format), `[tools.<server>_<tool>]` tables, the trust
gate, tool naming, glob selection, and `vibe mcp add/remove` keeping the user's file."""

from __future__ import annotations

from pathlib import Path

import pytest

from vibe.agent.policy import select_tools
from vibe.config import ModeConfig, load_config
from vibe.config.trust import trust_folder
from vibe.errors import ConfigError, UsageError
from vibe.mcp.cli import add_server, main, remove_server
from vibe.mcp.config import McpHttp, McpStdio
from vibe.mcp.tools import tool_name

MISTRAL_VIBE_BLOCKS = """
[[mcp_servers]]
name = "fetch server"
transport = "stdio"
command = "uvx mcp-server-fetch --ignore-robots-txt"
env = { "DEBUG" = "1" }
prompt = "Use for web pages."

[[mcp_servers]]
name = "github"
transport = "http"
url = "https://api.githubcopilot.com/mcp/"
api_key_env = "GITHUB_TOKEN"
startup_timeout_sec = 20
tool_timeout_sec = 120
disabled_tools = ["delete_*"]

[[mcp_servers]]
name = "jira"
transport = "streamable-http"
url = "http://127.0.0.1:9999/mcp"
headers = { "X-Team" = "core" }
api_key_header = "X-Api-Key"
api_key_format = "{token}"
api_key_env = "JIRA_KEY"
disabled = true

[tools.github_create_issue]
permission = "always"
"""


def write(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text)
    return path


def test_mistral_vibe_blocks_load_as_written(tmp_path):
    write(tmp_path / "home", MISTRAL_VIBE_BLOCKS)
    loaded = load_config(tmp_path, home=tmp_path / "home")
    fetch, github, jira = loaded.config.mcp_servers
    assert isinstance(fetch, McpStdio) and fetch.name == "fetch_server"
    assert fetch.argv == ["uvx", "mcp-server-fetch", "--ignore-robots-txt"]
    assert fetch.startup_timeout_sec == 10 and fetch.tool_timeout_sec == 60
    assert isinstance(github, McpHttp) and github.api_key_format == "Bearer {token}"
    assert github.api_key_header == "Authorization" and github.tool_timeout_sec == 120
    assert jira.transport == "streamable-http" and jira.disabled
    assert loaded.config.tools["github_create_issue"].permission == "always"


@pytest.mark.parametrize(
    ("entry", "where", "expected"),
    [
        ('name = "w"\ntransport = "http"\nurl = "ftp://x"', "mcp_servers[1].url", "http"),
        (
            'name = "w"\ntransport = "carrier-pigeon"\nurl = "http://x"',
            "mcp_servers[1].transport",
            "'http'",
        ),
        ('name = "w"\ncommand = []', "mcp_servers[1].command", "empty"),
        (
            'name = "w"\ncommand = "x"\nstartup_timeout_sec = -1',
            "mcp_servers[1].startup_timeout_sec",
            "greater",
        ),
        ('name = "w"\ncommand = "x"\nbogus = 1', "mcp_servers[1].bogus", "unknown key"),
        (
            'name = "a"\ncommand = "y"',
            "mcp_servers[1].name",
            "duplicate MCP server name 'a' (also mcp_servers[0])",
        ),
    ],
)
def test_bad_entries_name_the_file_and_key(tmp_path, entry, where, expected):
    path = write(
        tmp_path / "home", f'[[mcp_servers]]\nname = "a"\ncommand = "x"\n[[mcp_servers]]\n{entry}\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, home=tmp_path / "home")
    assert info.value.key_path == where
    assert expected in info.value.expected and str(path) in str(info.value)


def test_tool_tables_need_a_configured_server(tmp_path):
    write(tmp_path / "home", '[tools.github_create_issue]\npermission = "always"\n')
    with pytest.raises(ConfigError, match="unknown tool 'github_create_issue'"):
        load_config(tmp_path, home=tmp_path / "home")


def test_project_servers_only_when_trusted(tmp_path):
    home, project = tmp_path / "home", tmp_path / "repo"
    write(home, '[[mcp_servers]]\nname = "mine"\ncommand = "x"\n')
    (project / ".vibe").mkdir(parents=True)
    (project / ".git").mkdir()
    (project / ".vibe" / "config.toml").write_text(
        '[[mcp_servers]]\nname = "evil"\ncommand = "curl evil"\n'
        '[tools.mine_tool]\npermission = "always"\n'
    )
    untrusted = load_config(project, home=home)
    assert [s.name for s in untrusted.config.mcp_servers] == ["mine"]
    trust_folder(project, home)
    trusted = load_config(project, home=home)
    assert [s.name for s in trusted.config.mcp_servers] == ["mine", "evil"]
    assert trusted.config.tools["mine_tool"].permission == "always"


def test_tool_names_are_capped_with_a_stable_hash():
    assert tool_name("github", "create_issue") == "github_create_issue"
    assert tool_name("srv", "a.b c") == "srv_a_b_c"
    long = tool_name("server", "x" * 80)
    assert len(long) == 64 and long == tool_name("server", "x" * 80)
    assert long != tool_name("server", "x" * 79 + "y")


def test_enabled_and_disabled_tools_take_globs():
    tools = {n: object() for n in ("bash", "read_file", "github_a", "github_b", "jira_c")}
    mode = ModeConfig(name="m")
    assert set(select_tools(tools, mode, ["github_*", "bash"])) == {"github_a", "github_b", "bash"}
    assert set(select_tools(tools, mode, None, ["github_*"])) == {"bash", "read_file", "jira_c"}
    # an MCP tool named before its server started is fine; a typo of a built-in is not
    select_tools({"bash": object()}, mode, ["bash", "github_a"], later=["github_"])
    with pytest.raises(UsageError, match="unknown tool 'bsh'"):
        select_tools({"bash": object()}, mode, ["bsh"], later=["github_"])


def test_add_and_remove_keep_comments(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    path = write(
        home,
        '# mine\nactive_model = "devstral-medium"  # keep this\n\n[tools.bash]\ndefault_timeout = 100\n',
    )
    monkeypatch.setenv("VIBE_HOME", str(home))
    assert (
        main(["add", "time", "--env", "TZ=UTC", "--", "mcp-server-time", "--local-timezone", "UTC"])
        == 0
    )
    assert (
        main(
            [
                "add",
                "gh",
                "--url",
                "https://x.test/mcp",
                "--api-key-env",
                "GH_TOKEN",
                "--header",
                "X-A=b",
            ]
        )
        == 0
    )
    text = path.read_text()
    assert "# mine" in text and "# keep this" in text
    loaded = load_config(tmp_path, home=home)
    time, gh = loaded.config.mcp_servers
    assert time.argv == ["mcp-server-time", "--local-timezone", "UTC"] and time.env == {"TZ": "UTC"}
    assert gh.url == "https://x.test/mcp" and gh.headers == {"X-A": "b"}
    with pytest.raises(UsageError, match="exists"):
        add_server(path, {"name": "time", "command": "y"})
    with pytest.raises(UsageError, match="url"):
        add_server(path, {"name": "z", "transport": "http", "url": "nope"})
    assert remove_server(path, "time") == "time"
    assert remove_server(path, "gh") == "gh"
    assert "mcp_servers" not in path.read_text() and "# keep this" in path.read_text()
    with pytest.raises(UsageError, match="no MCP server named 'gh'"):
        remove_server(path, "gh")
