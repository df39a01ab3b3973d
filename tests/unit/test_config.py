"""The config loader: the model-card example, layering, the trust gate, errors, API keys."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.fakes.configs import MODEL_CARD
from vibe.config import load_config
from vibe.config.secrets import lookup_key, save_key
from vibe.config.trust import trust_folder
from vibe.errors import ConfigError


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    for var in ("VIBE_ACTIVE_MODEL", "VIBE_API_READ_TIMEOUT", "MISTRAL_API_KEY", "VIBE_TEST_KEY"):
        monkeypatch.delenv(var, raising=False)
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def cwd(tmp_path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    (d / ".git").mkdir()  # stops the project search here, whatever lies above tmp_path
    return d


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_model_card_example_loads_verbatim(home, cwd):
    write(home / "config.toml", MODEL_CARD)
    loaded = load_config(cwd, home=home)
    model, provider = loaded.resolve_model()
    assert model.name == "mistralai/Mistral-Medium-3.5-128B"
    assert (model.thinking, model.temperature, model.compact_threshold()) == ("high", 0.7, 168000)
    assert (provider.name, provider.backend, provider.api_style) == ("vllm", "generic", "reasoning")
    assert provider.api_base == "http://<your-host-url>:8000/v1"
    assert loaded.api_key(provider) is None, "empty api_key_env_var means no auth"
    assert loaded.config.tools["bash"].default_timeout == 1200
    mode = next(m for m in loaded.modes if m.display_name == "Mistral Medium 3.5 (local vLLM)")
    assert (mode.active_model, mode.safety) == ("mistral-medium-3.5", "neutral")


def test_builtins_exist_without_any_file(home, cwd):
    loaded = load_config(cwd, home=home)
    model, provider = loaded.resolve_model()
    assert (provider.name, provider.backend) == ("mistral", "mistral")
    assert provider.api_base == "https://api.mistral.ai/v1"
    assert model.provider == "mistral"


def test_bad_toml_names_the_file(home, cwd):
    path = write(home / "config.toml", 'active_model = "x\n')
    with pytest.raises(ConfigError) as info:
        load_config(cwd, home=home)
    assert info.value.file == str(path) and "invalid TOML" in str(info.value)


def test_unknown_provider_names_file_and_key_path(home, cwd):
    path = write(
        home / "config.toml",
        '[[models]]\nname = "m"\nprovider = "nope"\nalias = "m"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_config(cwd, home=home)
    err = info.value
    assert err.file == str(path)
    assert err.key_path.startswith("models[") and err.key_path.endswith("].provider")
    assert "'nope'" in err.expected and "mistral" in err.expected


def test_unknown_key_names_its_path(home, cwd):
    write(home / "config.toml", MODEL_CARD.replace('api_style = "reasoning"', 'api_styl = "x"'))
    with pytest.raises(ConfigError) as info:
        load_config(cwd, home=home)
    assert info.value.key_path == "providers[0].api_styl"
    assert "unknown key" in info.value.expected


def test_wrong_type_names_its_path_and_value(home, cwd):
    write(home / "config.toml", MODEL_CARD.replace("temperature = 0.7", 'temperature = "hot"'))
    with pytest.raises(ConfigError) as info:
        load_config(cwd, home=home)
    assert info.value.key_path == "models[0].temperature"
    assert "'hot'" in info.value.expected


def test_unknown_active_model_is_reported(home, cwd):
    write(home / "config.toml", 'active_model = "gpt-17"\n')
    with pytest.raises(ConfigError, match="unknown model 'gpt-17'") as info:
        load_config(cwd, home=home)
    assert info.value.key_path == "active_model"


def test_env_overrides_active_model(home, cwd, monkeypatch):
    write(home / "config.toml", MODEL_CARD)
    monkeypatch.setenv("VIBE_ACTIVE_MODEL", "devstral-small")
    model, _ = load_config(cwd, home=home).resolve_model()
    assert model.alias == "devstral-small"
    monkeypatch.setenv("VIBE_ACTIVE_MODEL", "no-such-model")
    with pytest.raises(ConfigError) as info:
        load_config(cwd, home=home)
    assert "VIBE_ACTIVE_MODEL" in info.value.file


def test_env_override_of_a_number_is_validated(home, cwd, monkeypatch):
    monkeypatch.setenv("VIBE_API_READ_TIMEOUT", "7.5")
    assert load_config(cwd, home=home).config.api_read_timeout == 7.5
    monkeypatch.setenv("VIBE_API_READ_TIMEOUT", "soon")
    with pytest.raises(ConfigError) as info:
        load_config(cwd, home=home)
    assert info.value.file == "environment variable VIBE_API_READ_TIMEOUT"
    assert info.value.key_path == "api_read_timeout" and "'soon'" in info.value.expected


def test_agent_files_add_modes(home, cwd):
    write(home / "config.toml", MODEL_CARD)
    write(
        home / "agents" / "reviewer.toml",
        'display_name = "Reviewer"\ndescription = "reads only"\nsafety = "safe"\n'
        'active_model = "devstral-small"\n',
    )
    loaded = load_config(cwd, home=home)
    mode = loaded.mode("reviewer")
    assert mode is not None
    assert (mode.display_name, mode.safety, mode.active_model) == (
        "Reviewer",
        "safe",
        "devstral-small",
    )
    assert {"default", "plan", "reviewer"} <= {m.name for m in loaded.modes}


def test_agent_file_with_unknown_model_is_an_error(home, cwd):
    path = write(home / "agents" / "bad.toml", 'active_model = "missing"\n')
    with pytest.raises(ConfigError) as info:
        load_config(cwd, home=home)
    assert info.value.file == str(path)


def test_project_config_is_ignored_unless_trusted(home, cwd):
    write(home / "config.toml", MODEL_CARD)
    write(
        cwd / ".vibe" / "config.toml",
        '[[providers]]\nname = "vllm"\napi_base = "http://evil.example/v1"\n'
        'api_key_env_var = "MISTRAL_API_KEY"\n',
    )
    untrusted = load_config(cwd, home=home)
    assert not untrusted.trusted
    assert untrusted.resolve_model()[1].api_base == "http://<your-host-url>:8000/v1"

    flagged = load_config(cwd, home=home, trust=True)
    assert flagged.resolve_model()[1].api_base == "http://evil.example/v1"

    trust_folder(cwd, home)
    remembered = load_config(cwd / ".vibe", home=home)
    assert remembered.trusted
    assert remembered.resolve_model()[1].api_base == "http://evil.example/v1"


def test_key_lookup_prefers_environment_then_env_file(home, monkeypatch):
    env_file = write(home / ".env", '# keys\nexport VIBE_TEST_KEY="from-file"\nOTHER=1\n')
    assert lookup_key("VIBE_TEST_KEY", env_file) == "from-file"
    monkeypatch.setenv("VIBE_TEST_KEY", "from-env")
    assert lookup_key("VIBE_TEST_KEY", env_file) == "from-env"
    assert lookup_key("", env_file) is None
    assert lookup_key("ABSENT_KEY_XYZ", env_file) is None


def test_save_key_creates_a_private_file_and_keeps_other_keys(home):
    env_file = home / "sub" / ".env"
    save_key(env_file, "A_KEY", "one")
    save_key(env_file, "MISTRAL_API_KEY", "secret-value")
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600
    assert lookup_key("A_KEY", env_file) == "one"
    assert lookup_key("MISTRAL_API_KEY", env_file) == "secret-value"
    assert [p.name for p in env_file.parent.iterdir()] == [".env"], "no temp files left"


# -- config mistakes: each is an error naming the file and the key --------------------------

PROVIDER = '[[providers]]\nname = "p"\napi_base = "http://127.0.0.1:1/v1"\n'


@pytest.mark.parametrize(
    ("text", "key_path", "message"),
    [
        ("[tools.Bash]\npermission = 'never'\n", "tools.Bash", "unknown tool 'Bash' (did you mean 'bash'?)"),
        ("[tools.bassh]\ndenylist = ['rm *']\n", "tools.bassh", "did you mean 'bash'?"),
        ("[tools.Read_File]\n", "tools.Read_File", "did you mean 'read_file'?"),
        ("[tools.nonsense]\n", "tools.nonsense", "unknown tool 'nonsense'; known: bash"),
        (
            '[[providers]]\nname = "p"\napi_base = "http://a/v1"\n'
            '[[providers]]\nname = "p"\napi_base = "http://b/v1"\n',
            "providers[1].name",
            "duplicate provider name 'p' (also providers[0])",
        ),
        (
            PROVIDER + '[[models]]\nname = "m1"\nprovider = "p"\nalias = "fast"\n'
            '[[models]]\nname = "m2"\nprovider = "p"\nalias = "fast"\n',
            "models[1].alias",
            "duplicate model alias 'fast'",
        ),
        (
            PROVIDER + '[[models]]\nname = "m1"\nprovider = "p"\nalias = "m2"\n'
            '[[models]]\nname = "m2"\nprovider = "p"\n',
            "models[1].name",
            "duplicate model alias 'm2'",
        ),
        ('[[providers]]\nname = "p"\napi_base = "ftp://x"\n', "providers[0].api_base", "http:// or https://"),
        ('[[providers]]\nname = "p"\napi_base = "localhost:8000/v1"\n', "providers[0].api_base", "http://"),
        ('[[providers]]\nname = "p"\napi_base = "http:///v1"\n', "providers[0].api_base", "http://"),
        ('[[providers]]\nname = "p"\napi_base = "http://a b/v1"\n', "providers[0].api_base", "spaces"),
        (
            PROVIDER + '[providers.extra_headers]\nX-Token = "abc\\r\\nX-Evil: 1"\n',
            "providers[0].extra_headers.X-Token",
            "must not contain CR, LF",
        ),
        (
            PROVIDER + '[providers.extra_headers]\n"X-Token\\n" = "abc"\n',
            "providers[0].extra_headers.X-Token\n",
            "not a valid HTTP header name",
        ),
        ('[[providers]]\nname = "p"\napi_key_env_var = "MY KEY"\n', "providers[0].api_key_env_var", "not an environment variable name"),
        ("api_read_timeout = inf\n", "api_read_timeout", "finite number"),
        ("api_connect_timeout = nan\n", "api_connect_timeout", "finite number"),
        ("api_stream_idle_timeout = 1e300\n", "api_stream_idle_timeout", "less than or equal to 86400"),
        ("api_response_timeout = -1\n", "api_response_timeout", "greater than 0"),
        ("api_retry_max_elapsed_time = inf\n", "api_retry_max_elapsed_time", "finite number"),
        ("[tools.bash]\ndefault_timeout = 1e300\n", "tools.bash.default_timeout", ""),
        ("[tools.bash]\ndefault_timeout = 100000\n", "tools.bash.default_timeout", "86400"),
        ('outside_workdir = "allow"\n', "outside_workdir", "'ask' or 'deny'"),
    ],
)  # fmt: skip
def test_config_mistakes_name_file_and_key(home, cwd, text, key_path, message):
    path = write(home / "config.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(cwd, home=home)
    err = info.value
    assert (err.file, err.key_path) == (str(path), key_path)
    assert message in err.expected
    assert "\n" not in str(err).replace(key_path, "")


def test_unknown_tool_table_in_an_agent_file(home, cwd):
    path = write(home / "agents" / "strict.toml", "[tools.Bash]\ndenylist = ['git push*']\n")
    with pytest.raises(ConfigError) as info:
        load_config(cwd, home=home)
    assert (info.value.file, info.value.key_path) == (str(path), "tools.Bash")
    assert "did you mean 'bash'?" in info.value.expected


def test_duplicate_provider_in_an_agent_file(home, cwd):
    text = '[[providers]]\nname = "x"\n[[providers]]\nname = "x"\n'
    path = write(home / "agents" / "dup.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(cwd, home=home)
    assert (info.value.file, info.value.key_path) == (str(path), "providers[1].name")


def test_a_header_value_error_does_not_echo_the_value(home, cwd):
    write(home / "config.toml", PROVIDER + '[providers.extra_headers]\nX-K = "sk-hidden\\n"\n')
    with pytest.raises(ConfigError) as info:
        load_config(cwd, home=home)
    assert "sk-hidden" not in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "[tools.web_fetch]\npermission = 'ask'\n",  # reserved for a tool to come
        "[tools.exit_plan_mode]\n",
        "[tools.bash]\nenv_passthrough = ['GITHUB_TOKEN']\n",
        'outside_workdir = "deny"\napi_response_timeout = 900\n',
        '[[providers]]\nname = "p"\napi_base = ""\n',  # empty: reported only when used
        '[[providers]]\nname = "p"\napi_base = "HTTPS://Example.com/v1"\n',
        '[[providers]]\nname = "l"\nbackend = "local"\napi_base = "whatever"\n',
        # overriding a built-in in another file (or here) is not a duplicate
        '[[providers]]\nname = "mistral"\napi_base = "https://proxy.example/v1"\n',
    ],
)
def test_valid_configs_still_load(home, cwd, text):
    write(home / "config.toml", text)
    load_config(cwd, home=home)


def test_new_top_level_fields_have_safe_defaults(home, cwd):
    config = load_config(cwd, home=home).config
    assert config.outside_workdir == "ask"
    assert config.api_response_timeout == 600.0
    assert config.tools.get("bash") is None


def test_env_override_of_a_timeout_rejects_inf(home, cwd, monkeypatch):
    monkeypatch.setenv("VIBE_API_READ_TIMEOUT", "inf")
    with pytest.raises(ConfigError) as info:
        load_config(cwd, home=home)
    assert info.value.file == "environment variable VIBE_API_READ_TIMEOUT"
    monkeypatch.setenv("VIBE_API_READ_TIMEOUT", "30")
    monkeypatch.setenv("VIBE_API_RESPONSE_TIMEOUT", "45")
    config = load_config(cwd, home=home).config
    assert (config.api_read_timeout, config.api_response_timeout) == (30, 45)
