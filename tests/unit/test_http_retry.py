"""Pure parts of the HTTP layer: Retry-After parsing, backoff bounds, error-body shapes."""

from __future__ import annotations

import email.utils
import time

import pytest

from vibe.providers.http import HttpSettings, _backoff, _retry_after
from vibe.providers.sse import error_message


def test_retry_after_seconds_and_http_date():
    assert _retry_after("3") == 3.0
    assert _retry_after("0.5") == 0.5
    assert _retry_after(None) is None and _retry_after("soon") is None
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= _retry_after(in_ten) <= 10
    past = email.utils.formatdate(time.time() - 100, usegmt=True)
    assert _retry_after(past) == 0.0


def test_backoff_grows_with_jitter_and_is_capped():
    s = HttpSettings(backoff_base=0.5, backoff_cap=4.0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 4.0)]:
        delays = {_backoff(attempt, s, None) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1, "jitter spreads clients apart"
    assert _backoff(5, s, retry_after=7.0) == 7.0, "the server's Retry-After wins"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": {"message": "rate limited", "type": "x"}}, "rate limited"),
        ({"object": "error", "message": "bad", "type": "invalid_request_error"}, "bad"),
        ({"detail": "Not Found"}, "Not Found"),
        ({"message": {"detail": [{"msg": "field required"}]}}, "field required"),
        ({"id": "x", "choices": []}, None),
    ],
)
def test_error_message_shapes(body, message):
    found = error_message(body)
    if message is None:
        assert found is None
    else:
        assert message in found
