"""Ledger errors: one class per thing that can be wrong, each with a one-line docstring."""

from __future__ import annotations

from tssnode.errors import TssError


class LedgerError(TssError):
    """Base class of the ledger's errors."""


class InvalidTransaction(LedgerError):
    """A transaction refused before it enters a block; the message is the reason."""


class InvalidBlock(LedgerError):
    """A block that does not follow from its parent, its batch or its certificate."""


class InvalidCertificate(LedgerError):
    """A commit or checkpoint certificate without 2f+1 valid, distinct validator signatures."""


class InvalidGenesis(LedgerError):
    """A genesis file that is malformed or describes an impossible validator set."""


class InvalidMessage(LedgerError):
    """A PBFT message dropped before it changes anything: bad signature, sender or shape."""


class InvalidNewView(InvalidMessage):
    """A NEW-VIEW whose view changes or pre-prepares do not match what the backups compute."""


class StateTransferFailed(LedgerError):
    """Blocks or a checkpoint fetched from a peer that do not verify."""


class ForkDetected(LedgerError):
    """Two certified, conflicting values for one height: more than f validators are faulty."""


class Equivocation(LedgerError):
    """This replica was asked to sign a message that conflicts with one it already signed."""
