"""Images through a real `vibe run` against the loopback fake server: read_file of a png sends
the pixels in each provider's exact wire format (Mistral: `image_url` as a data-URL string;
OpenAI: `image_url: {"url": …}`) as a user message after the tool results, scaled down by
pillow; a model without `supports_images` gets a one-line notice and no pixels; the images are
saved with the session and sent again on --continue."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.fakes.server import FakeLLMServer
from tests.fakes.vibe_proc import vibe, write_config


@pytest.fixture
def work(work: Path) -> Path:
    d = work
    Image.new("RGB", (3000, 1000), (200, 30, 30)).save(d / "wide.png")
    Image.new("RGB", (40, 30), (0, 0, 255)).save(d / "small.jpg", quality=90)
    return d


def configure(env: dict[str, str], url: str, backend: str, images: bool) -> None:
    write_config(
        env,
        f"""active_model = "pix"
[[providers]]
name = "fake"
api_base = "{url}"
api_key_env_var = ""
backend = "{backend}"
[[models]]
name = "pixtral-fake"
provider = "fake"
alias = "pix"
supports_images = {str(images).lower()}
""",
    )


def vibe_run(env, work, *args: str) -> subprocess.CompletedProcess:
    return vibe(env, work, "run", "--output", "json", *args)


def read_images(*paths: str) -> list[dict]:
    calls = [
        {"id": f"r{i}", "name": "read_file", "arguments": {"path": p}} for i, p in enumerate(paths)
    ]
    return [{"tool_calls": calls}, {"text": "I see a red band."}]


def decode(url: str) -> tuple[str, Image.Image]:
    head, data = url.split(",", 1)
    assert head.startswith("data:") and head.endswith(";base64")
    return head[5:-7], Image.open(io.BytesIO(base64.b64decode(data)))


@pytest.mark.parametrize(("backend", "dialect"), [("mistral", "mistral"), ("generic", "openai")])
def test_read_file_sends_images_in_each_providers_wire_format(env, work, backend, dialect):
    with FakeLLMServer(dialect=dialect) as fake:
        fake.script(read_images("wide.png", "small.jpg"))
        configure(env, fake.url, backend, images=True)
        proc = vibe_run(env, work, "what is in wide.png and small.jpg?")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"] == "I see a red band."
    messages = fake.requests[1].body["messages"]
    tools = [m for m in messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tools] == ["r0", "r1"]
    assert all(isinstance(m["content"], str) for m in tools), "tool results stay text"
    assert (
        "[image wide.png (image/png, 1540x513, scaled down from 3000x1000)]" in tools[0]["content"]
    )
    follow = messages[-1]
    assert messages[-3:-1] == tools, "the images follow the run of tool results"
    assert follow["role"] == "user"
    intro, first, second = follow["content"]
    assert intro == {
        "type": "text",
        "text": "Images returned by the tool calls above: read_file: wide.png, read_file: small.jpg",
    }
    assert first["type"] == "image_url" and second["type"] == "image_url"
    if backend == "mistral":
        assert isinstance(first["image_url"], str), "Mistral takes the data URL as a string"
        urls = [first["image_url"], second["image_url"]]
    else:
        assert set(first["image_url"]) == {"url"}, "OpenAI takes {'url': ...}"
        urls = [first["image_url"]["url"], second["image_url"]["url"]]
    mime, wide = decode(urls[0])
    assert mime == "image/png" and wide.size == (1540, 513), "scaled to the provider limit"
    mime, small = decode(urls[1])
    assert mime == "image/jpeg" and small.size == (40, 30)
    sent = base64.b64decode(urls[1].split(",", 1)[1])
    assert sent == (work / "small.jpg").read_bytes(), "a small image is sent as it is"


def test_model_without_images_gets_a_notice_not_pixels(env, work):
    with FakeLLMServer(dialect="openai") as fake:
        fake.script(read_images("wide.png"))
        configure(env, fake.url, "generic", images=False)
        proc = vibe_run(env, work, "look at wide.png")
    assert proc.returncode == 0, proc.stderr
    body = json.dumps(fake.requests[1].body)
    assert "image_url" not in body and "base64" not in body
    tool = next(m for m in fake.requests[1].body["messages"] if m["role"] == "tool")
    assert "does not take images (supports_images = false" in tool["content"]


def test_images_are_saved_with_the_session_and_sent_on_continue(env, work):
    with FakeLLMServer(dialect="mistral") as fake:
        fake.script([*read_images("small.jpg"), {"text": "still blue"}])
        configure(env, fake.url, "mistral", images=True)
        assert vibe_run(env, work, "look").returncode == 0
        proc = vibe_run(env, work, "--continue", "and now?")
    assert proc.returncode == 0, proc.stderr
    again = fake.requests[2].body["messages"]
    parts = [p for m in again if isinstance(m["content"], list) for p in m["content"]]
    assert any(
        p["type"] == "image_url" and p["image_url"].startswith("data:image/jpeg") for p in parts
    )
    assert again[-1] == {"role": "user", "content": "and now?"}
