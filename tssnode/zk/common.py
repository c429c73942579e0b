"""What every proof shares: the context a proof is bound to, and the failure helper."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from tssnode.crypto.params import Parameters
from tssnode.crypto.transcript import Transcript
from tssnode.errors import ProofError


@dataclass(frozen=True)
class ProofContext:
    """Binds a proof to one session, one prover and one parameter tier.

    `ssid` is the session id (which already hashes the parameters, the parties and, where
    the paper asks, values such as rid); `prover` is the prover's party index.
    """

    ssid: bytes
    prover: int
    params: Parameters

    def transcript(self, proof: str, statement: Any) -> Transcript:
        """A transcript for proof `proof` that has absorbed the whole statement."""
        t = Transcript(f"tssnode.zk.{proof}", self.ssid, self.prover)
        t.append("params", self.params)
        t.append("statement", statement)
        return t


def fail(proof: str, check: str) -> NoReturn:
    raise ProofError(proof, check)


def require(ok: bool, proof: str, check: str) -> None:
    if not ok:
        fail(proof, check)
