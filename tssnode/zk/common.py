"""What every proof shares: the context a proof is bound to, the failure helper, and the
verifier's own trapdoor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from tssnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from tssnode.crypto.params import Parameters
from tssnode.crypto.pedersen import PedersenParams, PedersenSecret
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


@dataclass(frozen=True, repr=False)
class Trapdoor:
    """The verifier's own secrets: its ring-Pedersen trapdoor (p, q, λ with s = t^λ) and
    its Paillier key. Most checks of a range proof run on the *verifier's* parameters
    (s^z1·t^z3 on its N̂; in Π^aff-g also C^z1·enc(z2; w) on its N0), where it can
    compute by CRT on half-size moduli instead of full-size exponentiations.

    Used only where a statement names exactly these parameters (`ring`, `paillier_for`);
    every other statement, and every third party checking blame evidence, uses the public
    maths. A proof is accepted or refused the same either way: the tests run each proof
    both ways, tampered and not."""

    pedersen: PedersenSecret | None = None
    paillier: PaillierSecretKey | None = None

    def __repr__(self) -> str:
        return "Trapdoor(secret hidden)"

    def ring(self, aux: PedersenParams) -> PedersenParams | PedersenSecret:
        """What checks commitments on `aux`: the trapdoor if `aux` is ours, else `aux`."""
        if self.pedersen is not None and self.pedersen.public == aux:
            return self.pedersen
        return aux

    def paillier_for(self, pk: PaillierPublicKey) -> PaillierSecretKey | None:
        """Our Paillier key if `pk` is ours, else None."""
        if self.paillier is not None and self.paillier.public == pk:
            return self.paillier
        return None


def ring_of(aux: PedersenParams, own: Trapdoor | None) -> PedersenParams | PedersenSecret:
    """`own.ring(aux)`, or `aux` when the verifier has no trapdoor."""
    return aux if own is None else own.ring(aux)
