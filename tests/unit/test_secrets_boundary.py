"""The secrets boundary, table by table: which variables commands see, every form of a key that
redaction hides, and keys stripped of the whitespace they were pasted with."""

from __future__ import annotations

import json
import time

import pytest

from tools._proc import shell_env
from tools.base import ToolContext, parse_args
from tools.registry import builtin_tools
from vibe.config.schema import BUILTIN_TOOL_NAMES, KNOWN_TOOL_NAMES
from vibe.config.secrets import lookup_key, read_env_file, redact, save_key, secret_forms

# name, hidden (provider key variables), passthrough, kept?
ENV_CASES = [
    ("GITHUB_TOKEN", (), (), False),
    ("GH_TOKEN", (), (), False),
    ("github_token", (), (), False),
    ("NPM_AUTH_TOKEN", (), (), False),
    ("OPENAI_API_KEY", (), (), False),
    ("MISTRAL_API_KEY", (), (), False),
    ("ANTHROPIC_APIKEY", (), (), False),
    ("my_private_key_pem", (), (), False),
    ("DB_PASSWORD", (), (), False),
    ("MYSQL_PWD_PASSWD", (), (), False),
    ("Stripe_Secret", (), (), False),
    ("CLIENT_SECRET_ID", (), (), False),
    ("GOOGLE_APPLICATION_CREDENTIALS", (), (), False),
    ("DOCKER_CREDENTIAL_HELPER", (), (), False),
    ("AWS_ACCESS_KEY_ID", (), (), False),
    ("AWS_SECRET_ACCESS_KEY", (), (), False),
    ("AWS_SESSION_TOKEN", (), (), False),
    ("AWS_SECURITY_TOKEN", (), (), False),
    ("AWS_CONTAINER_CREDENTIALS_FULL_URI", (), (), False),
    ("AWS_WEB_IDENTITY_TOKEN_FILE", (), (), False),
    ("AWS_REGION", (), (), True),
    ("AWS_PROFILE", (), (), True),
    ("MY_LLM_AUTH", ("MY_LLM_AUTH",), (), False),  # a provider's api_key_env_var
    ("VLLM_BEARER", ("VLLM_BEARER", "OTHER"), (), False),
    ("VLLM_BEARER", ("vllm_bearer",), (), True),  # variable names are case-sensitive
    ("GITHUB_TOKEN", (), ("GITHUB_TOKEN",), True),  # env_passthrough lets it through
    ("MY_LLM_AUTH", ("MY_LLM_AUTH",), ("MY_LLM_AUTH",), True),
    ("GITHUB_TOKEN", (), ("GH_TOKEN",), False),
    ("GITHUB_TOKEN", (), ("github_token",), False),
    ("HOME", (), (), True),
    ("PATH", (), (), True),
    ("LANG", (), (), True),
    ("SSH_AUTH_SOCK", (), (), True),
    ("HARMLESS_VAR", (), (), True),
    ("VIRTUAL_ENV", (), (), True),
]


@pytest.mark.parametrize(("name", "hidden", "passthrough", "kept"), ENV_CASES)
def test_shell_env_scrubs_credentials(monkeypatch, name, hidden, passthrough, kept):
    monkeypatch.setenv(name, "marker-value-1234")
    env = shell_env(frozenset(hidden), frozenset(passthrough))
    assert (name in env) is kept
    assert env["CI"] == "1" and env["PAGER"] == "cat", "non-interactive settings stay"


async def test_bash_commands_see_only_what_is_allowed(tmp_path, monkeypatch):
    for name in ("GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "MY_LLM_AUTH", "NPM_TOKEN"):
        monkeypatch.setenv(name, f"marker-{name}")
    monkeypatch.setenv("HARMLESS_VAR", "visible")
    settings = {"bash": {"env_passthrough": ["NPM_TOKEN"]}}
    bash = builtin_tools(settings, hidden_env=["MY_LLM_AUTH"])["bash"]
    args = parse_args(bash, {"command": "printenv; echo ${MY_LLM_AUTH:-unset}"})
    result = await bash.run(args, ToolContext(cwd=tmp_path))
    assert "marker-GITHUB_TOKEN" not in result.text
    assert "marker-AWS_SECRET_ACCESS_KEY" not in result.text
    assert "marker-MY_LLM_AUTH" not in result.text and "unset" in result.text
    assert "NPM_TOKEN=marker-NPM_TOKEN" in result.text
    assert "HARMLESS_VAR=visible" in result.text


@pytest.mark.parametrize("bad", ["GITHUB_TOKEN", [1], ["A B"]])
def test_env_passthrough_must_be_a_list_of_names(bad):
    with pytest.raises(ValueError, match="env_passthrough"):
        builtin_tools({"bash": {"env_passthrough": bad}})


def test_every_builtin_tool_name_is_a_known_config_table():
    assert set(builtin_tools()) == set(BUILTIN_TOOL_NAMES)
    assert set(BUILTIN_TOOL_NAMES) < set(KNOWN_TOOL_NAMES)


# -- redaction ------------------------------------------------------------------------------

KEY = "sk-Abc123/def+ghi"
ODD = 'sk-"quoted"\\back\'tick\u00e9'


def forms_of(key: str) -> list[str]:
    return [
        key,
        json.dumps(key)[1:-1],
        json.dumps(key, ensure_ascii=False)[1:-1],
        repr(key)[1:-1],
        key.strip(),
    ]


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (KEY, f"Authorization: Bearer {KEY}"),
        (KEY, json.dumps({"msg": f"bad key {KEY}"})),
        (KEY + "\n", json.dumps({"msg": f"bad key {KEY}\n"})),  # JSON: \n escaped
        (KEY + "\n", repr(f"bad key {KEY}\n")),  # repr: \n escaped
        (KEY + "\n", f"printed without its newline: {KEY}."),  # stripped
        ("  " + KEY + "\r\n", f"x{KEY}y"),
        (ODD, json.dumps({"m": ODD})),
        (ODD, json.dumps({"m": ODD}, ensure_ascii=False)),
        (ODD, repr(ODD)),
        (ODD, str([ODD])),
        (ODD, f"{ODD} and again {ODD}"),
    ],
)
def test_redact_hides_every_form_of_a_key(key, text):
    out = redact(text, [key])
    for form in forms_of(key):
        if len(form) >= 4:
            assert form not in out, (form, out)
    assert "***" in out


def test_redact_keeps_other_text_and_ignores_short_or_empty_secrets():
    text = "nothing secret here: abc, sk-, 123"
    assert redact(text, []) == text
    assert redact(text, ["", "abc"]) == text, "a 3-character secret would redact words"
    assert redact("key=abcd!", ["abcd"]) == "key=***!"


def test_redact_prefers_the_longest_form():
    key = "sk-key\n"
    out = redact(json.dumps({"k": key}), [key])
    assert out == '{"k": "***"}', "the escaped newline goes with the key, not left behind"


def test_redact_many_secrets_and_large_text_is_fast():
    secrets = [f"sk-secret-{i:04d}-{'x' * 20}" for i in range(20)]
    text = ("ordinary tool output line\n" * 200_000) + secrets[7]
    start = time.perf_counter()
    for _ in range(5):
        out = redact(text, secrets)
    assert time.perf_counter() - start < 5
    assert out.endswith("***") and secrets[7] not in out


def test_secret_forms_has_no_duplicates_or_short_forms():
    forms = secret_forms("abcd\n")
    assert len(forms) == len(set(forms))
    assert "abcd" in forms and "abcd\\n" in forms
    assert secret_forms("ab\n") == [], "every form of a 2-character key is too short"


# -- keys are stripped when read ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("K=abc123\n", "abc123"),
        ("K= abc123 \n", "abc123"),
        ('K="abc123 "\n', "abc123"),
        ("export K='  abc123'\n", "abc123"),
        ("K=abc123\r\n", "abc123"),
        ("K=\n", ""),
    ],
)
def test_env_file_values_are_stripped(tmp_path, line, value):
    env_file = tmp_path / ".env"
    env_file.write_text(line)
    assert read_env_file(env_file)["K"] == value


@pytest.mark.parametrize(
    ("env_value", "expected"),
    [("sk-abc\n", "sk-abc"), ("  sk-abc  ", "sk-abc"), ("\tsk-abc\r\n", "sk-abc"), (" \n", None)],
)
def test_lookup_key_strips_the_environment_value(tmp_path, monkeypatch, env_value, expected):
    monkeypatch.setenv("VIBE_STRIP_TEST_KEY", env_value)
    assert lookup_key("VIBE_STRIP_TEST_KEY", tmp_path / "no.env") == expected


def test_a_blank_environment_value_falls_back_to_the_env_file(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    save_key(env_file, "VIBE_STRIP_TEST_KEY", "  from-file\n")
    monkeypatch.setenv("VIBE_STRIP_TEST_KEY", "   ")
    assert lookup_key("VIBE_STRIP_TEST_KEY", env_file) == "from-file"
