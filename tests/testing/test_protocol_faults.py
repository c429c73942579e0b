"""`tssnode.testing.protocol_faults`: a rule picks the copies it names, `Drop` loses them,
`Tamper` changes the body and re-signs it with the sender's key, so the receiver's
envelope check passes and only the protocol's own checks can catch the change."""

from __future__ import annotations

from tssnode.crypto.encoding import decode_any
from tssnode.crypto.identity import IdentityKey, verify_signature
from tssnode.crypto.params import INSECURE_TEST, Parameters
from tssnode.protocol.base import BROADCAST, Message
from tssnode.testing.protocol_faults import Drop, Tamper, replace_field, resign

SENDER = IdentityKey.from_seed(b"s" * 32)


def _message(recipient: int = BROADCAST, rnd: int = 2, sender: int = 1) -> Message:
    unsigned = Message(b"ssid" * 8, rnd, sender, recipient, INSECURE_TEST.to_bytes(), b"")
    return resign(unsigned, INSECURE_TEST, SENDER)


def _signed_by_sender(msg: Message) -> bool:
    return verify_signature(SENDER.public_bytes(), msg.digest(), msg.signature)


def test_resign_signs_the_envelope_with_the_senders_key():
    msg = _message()
    assert _signed_by_sender(msg)
    other = Parameters("x", 1, 1, 1, 1, 1, 1)
    changed = resign(msg, other, SENDER)
    assert decode_any(changed.body) == other and _signed_by_sender(changed)
    assert changed.ssid == msg.ssid and changed.round == msg.round


def test_a_rule_matches_sender_round_recipient_and_kind():
    rule = Drop(sender=1, round=2, recipient=3)
    assert rule.matches(_message(), 3)
    assert not rule.matches(_message(), 2)  # another recipient's copy
    assert not rule.matches(_message(rnd=3), 3)  # another round
    assert not rule.matches(_message(sender=2), 3)  # another sender
    only_direct = Drop(sender=1, round=2, broadcast=False)
    assert not only_direct.matches(_message(), 3)
    assert only_direct.matches(_message(recipient=3), 3)
    only_broadcast = Drop(sender=1, round=2, broadcast=True)
    assert only_broadcast.matches(_message(), 3)
    assert not only_broadcast.matches(_message(recipient=3), 3)


def test_drop_loses_the_copy():
    assert Drop(sender=1, round=2).apply(_message(), 2, SENDER) is None


def test_tamper_changes_one_field_and_re_signs():
    rule = Tamper(sender=1, round=2, mutate=replace_field("m", lambda m: m + 1))
    msg = _message()
    tampered = rule.apply(msg, 2, SENDER)
    assert tampered is not None and tampered.body != msg.body
    body = decode_any(tampered.body)
    assert body.m == INSECURE_TEST.m + 1
    assert body.paillier_bits == INSECURE_TEST.paillier_bits  # nothing else changed
    assert _signed_by_sender(tampered)
    assert not verify_signature(SENDER.public_bytes(), tampered.digest(), msg.signature)


def test_replace_field_follows_a_dotted_path():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Inner:
        z1: int

    @dataclass(frozen=True)
    class Outer:
        proof: Inner
        other: int

    mutate = replace_field("proof.z1", lambda z: z * 10)
    assert mutate(Outer(Inner(3), 7)) == Outer(Inner(30), 7)
