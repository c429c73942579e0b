"""Every message the console passes around, as dataclasses (Textual messages).

The link to the node posts the first group from its worker; widgets post the second.
Snapshots and the event doorbell coalesce (`can_replace`): under a burst of events the
app handles one doorbell and drains everything that arrived, and a newer snapshot of
the same resource replaces an older one that was not drawn yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

# -- from the link to the node --------------------------------------------------------------


@dataclass
class LinkUp(Message):
    """The node answered; snapshots follow."""

    url: str


@dataclass
class LinkDown(Message):
    """The node cannot be reached (or refused the token); retrying in `retry_in` s."""

    reason: str
    retry_in: float | None


@dataclass
class StreamDown(Message):
    """The event stream failed but the node still answers: reopening in `retry_in` s."""

    reason: str
    retry_in: float


@dataclass
class StreamUp(Message):
    """Events flow (again)."""


@dataclass
class Snapshot(Message):
    """The answer to a GET: `kind` is a list route ("peers", …) or one item ("key",
    "signature", "block") with `ident` naming it."""

    kind: str
    data: Any
    ident: str = ""

    def can_replace(self, message: Message) -> bool:
        return (
            isinstance(message, Snapshot)
            and message.kind == self.kind
            and message.ident == self.ident
        )


@dataclass
class Synced(Message):
    """Every snapshot has been loaded once since connecting."""


@dataclass
class FetchFailed(Message):
    """A GET the node refused (an error status, not a lost connection): a warning, or
    for GET /bridge a 404 that says the node runs no bridge. `status`: the HTTP status."""

    kind: str
    reason: str
    status: int | None = None


@dataclass
class EventsWaiting(Message):
    """Events arrived in the link's buffer: drain it (a doorbell; rings coalesce)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EventsWaiting)


# -- results of the operator's actions ------------------------------------------------------


@dataclass
class ActionDone(Message):
    """The node accepted an action: `result` is its JSON answer, `request` what was asked
    (with anything the console computed, such as the digest it expects)."""

    action: str
    result: Any
    request: dict[str, Any]


@dataclass
class ActionFailed(Message):
    """The node refused an action or could not be reached."""

    action: str
    reason: str


# -- from widgets ---------------------------------------------------------------------------


@dataclass
class KeySelected(Message):
    key_id: str


@dataclass
class SignatureSelected(Message):
    signature_id: str


@dataclass
class BlockSelected(Message):
    height: int
