"""The project's flat exception set. Every class says in one line what went wrong.

Messages never contain secret values: they name the check that failed and, where one
exists, the party responsible.
"""

from __future__ import annotations


class TssError(Exception):
    """Base class of every error tssnode raises on purpose."""


class EncodingError(TssError):
    """Bytes that are not the canonical encoding of the expected value."""


class InvalidPoint(EncodingError):
    """A curve point that is off the curve, the identity where none is allowed, or badly encoded."""


class InvalidScalar(EncodingError):
    """A scalar outside [0, q) or zero where zero is not allowed."""


class InvalidParameters(TssError):
    """A parameter tier that does not exist, or one that is refused here."""


class InvalidModulus(TssError):
    """A Paillier or ring-Pedersen modulus that fails a structural check."""


class InvalidCiphertext(TssError):
    """A Paillier ciphertext outside Z*_{N²}."""


class InvalidShare(TssError):
    """A VSS share or commitment that does not verify."""


class PrimePoolExhausted(TssError):
    """The safe-prime pool has no more unused primes of the requested size."""


class ProofError(TssError):
    """A zero-knowledge proof that does not verify; `check` names the failed check."""

    def __init__(self, proof: str, check: str) -> None:
        super().__init__(f"{proof}: {check}")
        self.proof = proof
        self.check = check
