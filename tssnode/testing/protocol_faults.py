"""Fault rules for the in-memory protocol runner (`protocol_runner`): what a malicious
party sends instead of its honest messages.

A rule acts on one sender's outgoing messages (narrowed by round, recipient and
broadcast/direct) and either drops a copy (`Drop`) or changes its body and re-signs it
with the sender's own identity key (`Tamper`), so what arrives is what a real malicious
party could send: the receivers' signature checks pass and only the protocol's own
checks can catch it. `replace_field` builds a `Tamper.mutate` that changes one field.
"""

from __future__ import annotations

import dataclasses
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tssnode.crypto.encoding import Wire, decode_any
from tssnode.crypto.identity import IdentityKey
from tssnode.protocol.base import Message, envelope_digest


@dataclass(frozen=True)
class Fault(ABC):
    """A rule applied to every message a party sends. `round` is the message's number;
    `recipient` narrows a rule to one copy (broadcasts are copied per recipient first)."""

    sender: int
    round: int
    recipient: int | None = None
    #: True: only the broadcast; False: only direct messages; None: both.
    broadcast: bool | None = None

    def matches(self, msg: Message, to: int) -> bool:
        return (
            msg.sender == self.sender
            and msg.round == self.round
            and (self.recipient is None or self.recipient == to)
            and (self.broadcast is None or self.broadcast == msg.is_broadcast)
        )

    @abstractmethod
    def apply(self, msg: Message, to: int, key: IdentityKey) -> Message | None:
        """The copy `to` receives instead of `msg`, or None to drop it."""


@dataclass(frozen=True)
class Drop(Fault):
    """The message never arrives."""

    def apply(self, msg: Message, to: int, key: IdentityKey) -> Message | None:
        return None


@dataclass(frozen=True)
class Tamper(Fault):
    """The sender changes the body (`mutate` gets and returns the decoded body) and signs
    the result. Applied to a broadcast for some recipients only, this is equivocation."""

    mutate: Callable[[Any], Any] = field(default=lambda body: body)

    def apply(self, msg: Message, to: int, key: IdentityKey) -> Message | None:
        body = self.mutate(decode_any(msg.body))
        return resign(msg, body, key)


def resign(msg: Message, body: Wire, key: IdentityKey) -> Message:
    raw = body.to_bytes()
    digest = envelope_digest(
        msg.ssid, msg.round, msg.sender, msg.recipient, hashlib.sha256(raw).digest()
    )
    return dataclasses.replace(msg, body=raw, signature=key.sign(digest))


def replace_field(path: str, change: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A `Tamper.mutate` that changes one (dotted) field of the body, e.g. 'proof.z1'."""

    def mutate(body: Any) -> Any:
        head, _, rest = path.partition(".")
        value = getattr(body, head)
        new = replace_field(rest, change)(value) if rest else change(value)
        return dataclasses.replace(body, **{head: new})

    return mutate
