"""The net layer's exceptions: one small tree under `NetError`, one line of docstring each.

Every message that cannot be delivered ends in one of the `DeliveryError` subclasses,
raised to the caller that asked for the delivery; frame problems on an inbound stream are
`FrameError`s that close that stream and are counted by admission, never raised past the
stream handler.
"""

from __future__ import annotations

from tssnode.errors import TssError


class NetError(TssError):
    """Base class of every error the net layer raises on purpose."""


class IdentityError(NetError):
    """The node key file is missing, unreadable, malformed or readable by others."""


class InvalidPeerId(NetError):
    """A peer id that is not the base58 identity-multihash form of an Ed25519 key."""


class HostStartError(NetError):
    """The libp2p host could not start (typically: the listen port cannot be bound)."""


class NotRunning(NetError):
    """The operation needs a running node and this one has not started or has stopped."""


class FrameError(NetError):
    """A frame on a stream that is not acceptable; the stream is closed."""


class FrameTooLarge(FrameError):
    """A frame whose length prefix exceeds the limit for its protocol."""


class TruncatedFrame(FrameError):
    """A stream that ended before a whole frame arrived."""


class MalformedFrame(FrameError):
    """A frame whose body is not the canonical encoding of the expected message."""


class PeerBusy(FrameError):
    """A stream or frame refused because what this node holds for that peer is at its
    bound (streams, bytes being read); the sender retries."""


class StreamTimeout(FrameError):
    """A stream operation (open, read, write) that did not finish within its timeout."""


class BroadcastTooLarge(NetError):
    """A broadcast payload that does not fit in one gossipsub message (1 MiB cap)."""


class DeliveryError(NetError):
    """A message that could not be delivered; `recipient` and `seq` say which."""

    def __init__(self, message: str, *, recipient: str = "", seq: int = 0) -> None:
        super().__init__(message)
        self.recipient = recipient
        self.seq = seq


class DeliveryTimeout(DeliveryError):
    """No acknowledgement arrived before the delivery deadline (peer down, frozen or slow)."""


class DeliveryRefused(DeliveryError):
    """The recipient answered and refused the envelope (not allowed, wrong network, ...)."""


class UnknownPeer(DeliveryError):
    """The recipient is not in the allow-list, so nothing is sent to it."""


class MissingBroadcasts(NetError):
    """Broadcasts of a round that could not be obtained from any peer before the deadline."""

    def __init__(self, message: str, *, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing
