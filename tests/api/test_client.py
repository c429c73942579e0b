"""The blocking API client: a kept-alive connection the server closed just as a request
went out on it (hypercorn closes one after 1000 requests) costs a read one more try and
nothing else; a write is never sent twice."""

from __future__ import annotations

import httpx
import pytest

from tssnode.api.client import ApiClient, ApiUnavailable


def _client(fail: int) -> tuple[ApiClient, list[str]]:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if len(seen) <= fail:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(200, json={"ok": True})

    return ApiClient("http://node", "t", transport=httpx.MockTransport(handle)), seen


def test_a_read_on_a_connection_the_server_closed_is_asked_once_more() -> None:
    api, seen = _client(fail=1)
    assert api.get("/status") == {"ok": True} and seen == ["GET", "GET"]


def test_a_read_that_fails_twice_says_the_node_is_unreachable() -> None:
    api, seen = _client(fail=2)
    with pytest.raises(ApiUnavailable, match="cannot reach"):
        api.get("/status")
    assert seen == ["GET", "GET"]


def test_a_write_is_never_sent_twice() -> None:
    api, seen = _client(fail=1)
    with pytest.raises(ApiUnavailable):
        api.post("/sign", {"key_id": "k", "message": "m"})
    assert seen == ["POST"]
