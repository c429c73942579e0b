"""The round engine: envelopes are checked before any maths, misbehaviour is pinned on the
signer, junk from outside is refused without stopping the session."""

from __future__ import annotations

import dataclasses

import pytest

from tssnode.crypto.identity import IdentityKey
from tssnode.crypto.params import INSECURE_TEST, STANDARD, Parameters
from tssnode.errors import InvalidParameters
from tssnode.protocol import keygen
from tssnode.protocol.base import (
    BROADCAST,
    Message,
    MessageRefused,
    ProtocolAbort,
    SessionConfig,
)
from tssnode.protocol.ssid import make_ssid
from tssnode.testing.protocol_faults import resign
from tssnode.testing.protocol_runner import make_configs


@pytest.fixture
def parties():
    ssid = make_ssid("keygen", INSECURE_TEST, [1, 2, 3], 1, b"engine")
    cfgs = make_configs((1, 2, 3), 1, INSECURE_TEST, ssid, seed=5)
    first = {p: keygen.start(c).finalize() for p, c in cfgs.items()}
    return cfgs, first


def _commit_from(first, sender):
    (msg,) = first[sender].messages
    return msg


def test_valid_message_is_accepted(parties):
    _cfgs, first = parties
    rnd = first[1].next
    rnd.deliver(_commit_from(first, 2))
    assert rnd.expected() == [(3, True)]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: dataclasses.replace(m, ssid=b"x" * 32), "another session"),
        (lambda m: dataclasses.replace(m, round=3), "round 3"),
        (lambda m: dataclasses.replace(m, sender=9), "not another party"),
        (lambda m: dataclasses.replace(m, recipient=3), "another party"),
        (lambda m: dataclasses.replace(m, signature=bytes(64)), "signature"),
        (lambda m: dataclasses.replace(m, body=m.body + b"\x00"), "signature"),
    ],
)
def test_envelope_checks_refuse_before_any_maths(parties, change, reason):
    _cfgs, first = parties
    rnd = first[1].next
    with pytest.raises(MessageRefused, match=reason):
        rnd.deliver(change(_commit_from(first, 2)))
    assert len(rnd.expected()) == 2  # nothing stored


def test_own_message_and_outsider_refused(parties):
    _cfgs, first = parties
    rnd = first[1].next
    with pytest.raises(MessageRefused):
        rnd.deliver(_commit_from(first, 1))
    outsider = IdentityKey.generate()
    forged = resign(_commit_from(first, 2), keygen.Commit(bytes(32)), outsider)
    with pytest.raises(MessageRefused, match="signature"):
        rnd.deliver(forged)


def test_duplicate_is_refused_and_conflict_is_blamed(parties):
    cfgs, first = parties
    rnd = first[1].next
    msg = _commit_from(first, 2)
    rnd.deliver(msg)
    with pytest.raises(MessageRefused, match="duplicate"):
        rnd.deliver(msg)
    other = resign(msg, keygen.Commit(bytes(32)), cfgs[2].identity)
    with pytest.raises(ProtocolAbort) as info:
        rnd.deliver(other)
    assert info.value.culprits == (2,)
    assert set(info.value.blame.messages) == {msg, other}


def test_signed_garbage_body_blames_its_signer(parties):
    cfgs, first = parties
    rnd = first[1].next
    msg = _commit_from(first, 2)
    import hashlib

    from tssnode.protocol.base import envelope_digest

    body = b"\xff\x00garbage"
    digest = envelope_digest(msg.ssid, msg.round, 2, BROADCAST, hashlib.sha256(body).digest())
    bad = dataclasses.replace(msg, body=body, signature=cfgs[2].identity.sign(digest))
    with pytest.raises(ProtocolAbort, match="malformed body") as info:
        rnd.deliver(bad)
    assert info.value.culprits == (2,)


def test_wrong_body_type_blames_its_signer(parties):
    cfgs, first = parties
    rnd = first[1].next
    msg = _commit_from(first, 2)
    bad = resign(msg, keygen.ShareMsg(5), cfgs[2].identity)
    with pytest.raises(ProtocolAbort, match="malformed body"):
        rnd.deliver(bad)


def test_direct_message_where_only_broadcast_expected(parties):
    cfgs, first = parties
    rnd = first[1].next
    msg = dataclasses.replace(_commit_from(first, 2), recipient=1)
    msg = resign(msg, keygen.Commit(bytes(32)), cfgs[2].identity)
    with pytest.raises(ProtocolAbort, match="unexpected message kind"):
        rnd.deliver(msg)


def test_session_config_checks():
    keys = {p: IdentityKey.generate() for p in (1, 2)}
    pub = {p: k.public_bytes() for p, k in keys.items()}
    with pytest.raises(ValueError):
        SessionConfig(b"s", 3, (1, 2), 1, INSECURE_TEST, pub, keys[1])
    with pytest.raises(ValueError):
        SessionConfig(b"s", 1, (2, 1), 1, INSECURE_TEST, pub, keys[1])
    with pytest.raises(ValueError):
        SessionConfig(b"s", 1, (1, 2, 3), 1, INSECURE_TEST, pub, keys[1])
    forged = Parameters("standard", 2048, 1024, 256, 1280, 512, 1)
    with pytest.raises(InvalidParameters):
        SessionConfig(b"s", 1, (1, 2), 1, forged, pub, keys[1])
    assert SessionConfig(b"s", 1, (1, 2), 1, STANDARD, pub, keys[1]).others == (2,)


def test_ssid_binds_every_input():
    base = make_ssid("keygen", INSECURE_TEST, [1, 2, 3], 1, b"n")
    assert base == make_ssid("keygen", INSECURE_TEST, [3, 2, 1], 1, b"n")
    for other in (
        make_ssid("aux", INSECURE_TEST, [1, 2, 3], 1, b"n"),
        make_ssid("keygen", STANDARD, [1, 2, 3], 1, b"n"),
        make_ssid("keygen", INSECURE_TEST, [1, 2, 4], 1, b"n"),
        make_ssid("keygen", INSECURE_TEST, [1, 2, 3], 2, b"n"),
        make_ssid("keygen", INSECURE_TEST, [1, 2, 3], 1, b"m"),
        make_ssid("keygen", INSECURE_TEST, [1, 2, 3], 1, b"n", extra=b"key"),
    ):
        assert other != base


def test_message_round_trip(parties):
    _, first = parties
    msg = _commit_from(first, 3)
    assert Message.from_bytes(msg.to_bytes()) == msg
