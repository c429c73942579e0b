"""A key's whole life in one process: each phase for every party through the in-memory
runner (`protocol_runner`), with optional fault rules (`protocol_faults`).

Used by `tssnode simulate`, the benchmarks and the tests. Party identity keys are made
once per `LocalGroup` and reused by every phase, as a node reuses its identity.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from gmpy2 import mpz

from tssnode.crypto.identity import IdentityKey
from tssnode.crypto.params import Parameters
from tssnode.crypto.primes import PrimePool
from tssnode.protocol import auxinfo, keygen, presign, sign
from tssnode.protocol.base import SERIAL, SessionConfig, Workers
from tssnode.protocol.material import KeyShare, Presignature
from tssnode.protocol.ssid import aux_ssid, keygen_ssid, presign_ssid, sign_ssid
from tssnode.testing.protocol_faults import Fault
from tssnode.testing.protocol_runner import RunResult, make_configs, run_phase

PrimeSourceFactory = Callable[[int], auxinfo.PrimeSource]


def pool_primes(params: Parameters, rng: random.Random | None = None) -> PrimeSourceFactory:
    """Prime sources drawing distinct pairs from the committed pool."""
    pool = PrimePool.load(params.prime_bits)
    if rng is not None:
        rng.shuffle(pool.primes)

    def factory(_party: int) -> auxinfo.PrimeSource:
        def take() -> tuple[mpz, mpz]:
            p, q = pool.take(2)
            return p, q

        return take

    return factory


def fresh_primes(params: Parameters) -> PrimeSourceFactory:
    return lambda _party: auxinfo.fresh_primes(params.prime_bits)


@dataclass
class LocalGroup:
    """n parties with identity keys, running phases with one seed each."""

    parties: tuple[int, ...]
    threshold: int
    params: Parameters
    seed: int | None = None
    #: threads the runner runs the parties' steps on (the parties of one machine)
    workers: int = 2
    #: where each party runs its per-peer work inside a step (a node's `[node] workers`)
    party_workers: Workers = SERIAL
    identities: dict[int, IdentityKey] = field(default_factory=dict)
    _counter: int = 0

    def __post_init__(self) -> None:
        self.parties = tuple(sorted(self.parties))
        if not self.identities:
            self.identities = {p: IdentityKey.generate() for p in self.parties}

    def _nonce(self, label: str) -> bytes:
        self._counter += 1
        return hashlib.sha256(f"{label}/{self.seed}/{self._counter}".encode()).digest()

    def _seed(self) -> int | None:
        return None if self.seed is None else self.seed * 1000 + self._counter

    def _configs(self, ssid: bytes, parties: tuple[int, ...]) -> dict[int, SessionConfig]:
        ids = {p: self.identities[p] for p in parties}
        seed = self._seed()
        return make_configs(
            parties, self.threshold, self.params, ssid, seed, ids, self.party_workers
        )

    def keygen(self, faults: Iterable[Fault] = ()) -> RunResult:
        ssid = keygen_ssid(self.params, self.parties, self.threshold, self._nonce("keygen"))
        cfgs = self._configs(ssid, self.parties)
        return run_phase(
            {p: keygen.start(c) for p, c in cfgs.items()}, workers=self.workers, faults=faults
        )

    def aux(
        self,
        shares: dict[int, KeyShare],
        primes: PrimeSourceFactory,
        faults: Iterable[Fault] = (),
    ) -> RunResult:
        key = next(iter(shares.values())).key
        ssid = aux_ssid(self.params, self.parties, self.threshold, self._nonce("aux"), key)
        cfgs = self._configs(ssid, self.parties)
        rounds = {p: auxinfo.start(c, shares[p], primes(p)) for p, c in cfgs.items()}
        return run_phase(rounds, workers=self.workers, faults=faults)

    def reshare(
        self,
        old_shares: Mapping[int, KeyShare],
        primes: PrimeSourceFactory,
        faults: Iterable[Fault] = (),
    ) -> RunResult:
        """Move a key to this group's parties and threshold (aux-info included).

        `old_shares` maps a party of this group that deals (holds a share of the old key)
        to that share; the dealer mapping (new id → old id) follows from the shares. The
        other parties of this group start without a share. Raises ValueError before
        anything is sent when the inputs do not fit (fewer than t+1 dealers)."""
        if not old_shares:
            raise ValueError("resharing needs dealers")
        plan = auxinfo.Reshare(
            next(iter(old_shares.values())).key,
            {p: s.self_id for p, s in sorted(old_shares.items())},
        )
        nonce = self._nonce("reshare")
        ssid = aux_ssid(self.params, self.parties, self.threshold, nonce, plan)
        cfgs = self._configs(ssid, self.parties)
        rounds = {
            p: auxinfo.start(c, old_shares.get(p), primes(p), reshare=plan) for p, c in cfgs.items()
        }
        return run_phase(rounds, workers=self.workers, faults=faults)

    def presign(
        self,
        shares: dict[int, KeyShare],
        signers: Iterable[int],
        *,
        shift: int = 0,
        digest: bytes | None = None,
        faults: Iterable[Fault] = (),
    ) -> RunResult:
        signers = tuple(sorted(signers))
        any_share = shares[signers[0]]
        ssid = presign_ssid(any_share, signers, shift, digest, self._nonce("presign"))
        cfgs = self._configs(ssid, signers)
        rounds = {
            p: presign.start(c, shares[p], shift=shift, digest=digest) for p, c in cfgs.items()
        }
        return run_phase(rounds, workers=self.workers, faults=faults)

    def sign(
        self,
        shares: dict[int, KeyShare],
        presigs: dict[int, Presignature],
        digest: bytes,
        faults: Iterable[Fault] = (),
    ) -> RunResult:
        first = next(iter(presigs.values()))
        signers = first.signers
        ssid = sign_ssid(first, digest)
        cfgs = self._configs(ssid, signers)
        rounds = {p: sign.start(c, shares[p], presigs[p], digest) for p, c in cfgs.items()}
        return run_phase(rounds, workers=self.workers, faults=faults)
