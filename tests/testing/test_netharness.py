"""`tssnode.testing.netharness` without starting a process: its generated payloads, the
latency stamp, and the line protocol of `Harness` (one JSON answer per request, errors by
type name) against a stand-in node. The process side is covered by the process-cluster
tests of `netcluster` (tests/testing/test_netcluster.py)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
import trio
import trio.testing

from tssnode.net.errors import NetError
from tssnode.net.identity import NodeIdentity
from tssnode.net.store import Delivery
from tssnode.net.wire import Envelope
from tssnode.testing.netharness import Harness, describe, latency_of, payload, stamped

SENDER = NodeIdentity.from_seed(b"n" * 32)


def _delivery(data: bytes, received_mono: float) -> Delivery:
    env = Envelope("test-net", b"s" * 32, 3, SENDER.peer_id, b"", 9, data)
    return Delivery(env, "gossip", time.time(), received_mono)


def test_payloads_are_generated_from_their_seed():
    assert payload(0, "x") == b""
    assert payload(100, "x") == hashlib.shake_256(b"x").digest(100)
    assert payload(100, "x") == payload(100, "x") != payload(100, "y")
    assert payload(10, "x") == payload(100, "x")[:10]


def test_a_stamped_payload_carries_its_send_time():
    before = time.monotonic()
    data = stamped(64, "s")
    assert len(data) == 64 and data[8:] == payload(64, "s")[8:]
    latency = latency_of(_delivery(data, before + 5.0))
    assert latency is not None and 4.0 < latency <= 5.0
    assert latency_of(_delivery(b"short", 1.0)) is None
    assert len(stamped(2, "s")) == 8  # room for the stamp at least


def test_describe_names_a_delivery_without_its_payload():
    data = payload(300, "d")
    assert describe(_delivery(data, 0.0)) == {
        "sender": SENDER.peer_id_text,
        "seq": 9,
        "round": 3,
        "broadcast": True,
        "via": "gossip",
        "size": 300,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


class _Node:
    """What the commands below use of a `NetNode`."""

    def status(self) -> dict[str, Any]:
        return {"peer_id": "me"}

    def set_allowed(self, peers: list[str] | None) -> None:
        raise NetError("refused")


async def _answers(lines: list[bytes]) -> list[dict[str, Any]]:
    send, receive = trio.testing.memory_stream_one_way_pair()
    harness = Harness(_Node(), send)  # type: ignore[arg-type]
    for line in lines:
        await harness.handle(line)
    await send.aclose()
    out = b""
    while chunk := await receive.receive_some():
        out += chunk
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.trio
async def test_each_request_gets_one_answer_with_its_id() -> None:
    answers = await _answers(
        [
            b'{"id": 1, "cmd": "status"}',
            b'{"id": 2, "cmd": "set_allowed", "peers": null}',
            b'{"id": 3, "cmd": "no_such_command"}',
            b"not json",
            b'{"id": 5, "cmd": "shutdown"}',
        ]
    )
    assert answers[0] == {"id": 1, "ok": True, "result": {"peer_id": "me"}}
    assert answers[1] == {"id": 2, "ok": False, "error": "NetError", "message": "refused"}
    assert answers[2]["id"] == 3 and answers[2]["error"] == "BadRequest"
    assert answers[3]["id"] is None and answers[3]["error"] == "BadRequest"
    assert answers[4] == {"id": 5, "ok": True, "result": True}
    assert len(answers) == 5
