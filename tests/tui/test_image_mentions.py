"""Pilot tests of @image mentions: a png is attached to the prompt of a model that takes images
(the message carries the scaled pixels, and the session keeps them); for a model without
`supports_images` the user gets a one-line notice and nothing is sent; a binary file is
refused with a notice, never inlined as bytes."""

from __future__ import annotations

from PIL import Image

from .conftest import CONFIG, scripted_app, wait_for


def _setup(home, workdir, images: bool) -> None:
    text = CONFIG.format(url="http://127.0.0.1:9/v1")
    flag = f"supports_images = {str(images).lower()}\n"
    (home / "config.toml").write_text(
        text.replace('alias = "fake"\n', 'alias = "fake"\n' + flag, 1)
    )
    Image.new("RGB", (2400, 1200), (10, 200, 10)).save(workdir / "shot.png")
    (workdir / "dump.bin").write_bytes(b"\x00\xff" * 500)


def _warnings(app) -> list[str]:
    return [str(n.message) for n in app._notifications if n.severity == "warning"]


async def test_image_mention_is_attached_for_an_image_model(home, workdir):
    _setup(home, workdir, images=True)
    app, provider = scripted_app(home, workdir, [{"text": "a green square"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("what is in @shot.png?")
        await wait_for(pilot, lambda: provider.requests and not app.busy)
        sent = provider.requests[0].messages[-1]
        assert sent.content == "what is in @shot.png?"
        assert [(i.name, i.mime_type, i.width, i.height) for i in sent.images] == [
            ("shot.png", "image/png", 1540, 770)
        ]
        saved = [m for m in app.runtime.session.messages if m.role == "user"]
        assert saved[-1].images == sent.images
        assert not _warnings(app)


async def test_notice_for_a_model_without_images_and_for_binary_files(home, workdir):
    _setup(home, workdir, images=False)
    app, provider = scripted_app(home, workdir, [{"text": "ok"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("look at @shot.png and @dump.bin")
        await wait_for(pilot, lambda: provider.requests and not app.busy)
        sent = provider.requests[0].messages[-1]
        assert sent.images == [] and sent.content == "look at @shot.png and @dump.bin"
        warnings = _warnings(app)
        assert any(
            "@shot.png not attached" in w and "supports_images = false" in w for w in warnings
        )
        assert any("@dump.bin not attached: it is a binary file" in w for w in warnings)
