"""Aux-info checks on a peer's Paillier modulus, each with a malicious party that gets past
every proof and is still named (issue 11).

The malicious parties here prove everything honestly (Π^prm, Π^mod, Π^fac all verify for
their moduli): what catches them is auxinfo.py's own check on the modulus, and only that.

- A copied modulus: `Round3.verify` blames a peer whose N equals the verifier's own
  ("Paillier modulus copies ours"); `Output.finalize` blames every party of a pair of
  peers that share one N ("shared Paillier modulus"). The second check skips the
  verifier's own modulus, so each needs its own test.
- A modulus of the wrong length: `Round3.verify` runs `validate_modulus` (exact bit
  length, odd, not prime) on a peer's N and again on its ring-Pedersen N̂, which must be
  the same number. None of Π^prm, Π^mod or Π^fac looks at the length. An honest party
  also refuses wrong-size primes from its own prime source (`Round1.finalize`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache

import pytest
from gmpy2 import mpz

from tssnode.crypto import pedersen as ped
from tssnode.crypto.paillier import PaillierSecretKey
from tssnode.crypto.polynomial import Polynomial
from tssnode.crypto.primes import PrimePool, safe_prime
from tssnode.errors import InvalidModulus
from tssnode.protocol import auxinfo
from tssnode.protocol.base import BROADCAST, Echo, Outcome, ProtocolAbort
from tssnode.protocol.evidence import verify_blame
from tssnode.testing.localgroup import PrimeSourceFactory
from tssnode.testing.protocol_runner import RunResult
from tssnode.zk import prm

from ..conftest import TEST
from .test_faults import BAD, SEEDS, assert_blames_only_bad, fresh_group

Pair = tuple[mpz, mpz]


def pool_pairs(seed: int, n: int) -> dict[int, Pair]:
    """A distinct pair of test-tier pool primes for each party 1..n."""
    primes = random.Random(seed).sample(PrimePool.load(TEST.prime_bits).primes, 2 * n)
    return {p: (primes[2 * p - 2], primes[2 * p - 1]) for p in range(1, n + 1)}


def sources(pairs: dict[int, Pair]) -> PrimeSourceFactory:
    """Each party's prime source hands out its own pair from `pairs`."""
    return lambda party: lambda: pairs[party]


def run_aux(seed: int, n: int, pairs: dict[int, Pair]):
    group = fresh_group(seed, n)
    shares = group.keygen().only_result()
    return group.aux(shares, sources(pairs)), group


def honest_aborts(res: RunResult, bad: tuple[int, ...]) -> dict[int, ProtocolAbort]:
    return {p: a for p, a in res.aborts.items() if p not in bad}


# -- a copied modulus ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_modulus_copied_from_a_peer_is_blamed_by_that_peer(seed):
    """BAD uses party 1's primes (leaked to it, say) and proves everything honestly with
    them. Party 1 recognises its own N in BAD's opening and names BAD; party 3, which
    sees nothing wrong in round 3, stops on party 1's abort. No honest party ends with a
    key."""
    pairs = pool_pairs(seed, 3)
    pairs[BAD] = pairs[1]
    res, group = run_aux(seed, 3, pairs)
    assert_blames_only_bad(res, group)
    blame = res.aborts[1].blame
    assert (blame.round, blame.culprits, blame.check) == (3, (BAD,), "Paillier modulus copies ours")
    assert set(res.results) <= {BAD}


COLLUDERS = (2, 4)


def collude(monkeypatch: pytest.MonkeyPatch) -> None:
    """The colluders accept each other's modulus (their own copy check would stop them)."""
    original = auxinfo.Round3.verify

    def verify(self, msg, body):
        try:
            original(self, msg, body)
        except ProtocolAbort as abort:
            if not (
                self.cfg.self_id in COLLUDERS
                and msg.sender in COLLUDERS
                and abort.blame.check == "Paillier modulus copies ours"
            ):
                raise

    monkeypatch.setattr(auxinfo.Round3, "verify", verify)


@pytest.mark.parametrize("seed", SEEDS)
def test_modulus_shared_by_two_peers_blames_both(monkeypatch, seed):
    """Parties 2 and 4 run with one modulus between them, each proving it honestly. The
    honest parties 1 and 3 see the same N from both at the end of the session and name
    both (either could have made it: both know its factors)."""
    collude(monkeypatch)
    pairs = pool_pairs(seed, 4)
    pairs[4] = pairs[2]
    res, group = run_aux(seed, 4, pairs)
    identities = {p: k.public_bytes() for p, k in group.identities.items()}
    honest = honest_aborts(res, COLLUDERS)
    assert sorted(honest) == [1, 3], res
    for abort in honest.values():
        blame = abort.blame
        assert (blame.round, blame.culprits, blame.check) == (
            4,
            COLLUDERS,
            "shared Paillier modulus",
        )
        verify_blame(blame, identities)  # carries no messages: nothing to contradict it
    assert set(res.results) <= set(COLLUDERS)


# -- a modulus of the wrong length ----------------------------------------------------------------


def lenient_round1(monkeypatch: pytest.MonkeyPatch) -> None:
    """BAD runs aux round 1 without its own length check on the prime source (the rest is
    `auxinfo.Round1.finalize` as is): its Π^prm, and later Π^mod and Π^fac, are honest."""
    original = auxinfo.Round1.finalize

    def finalize(self):
        cfg = self.cfg
        if cfg.self_id != BAD:
            return original(self)
        p, q = self.primes()
        sk = PaillierSecretKey(p, q)
        rp = ped.generate(p, q, cfg.rng)
        psi = prm.prove(auxinfo.proof_context(cfg, cfg.self_id), rp.public, rp, cfg.rng)
        f = Polynomial.random(cfg.threshold, self.plan.constant, cfg.rng)
        rid, u = cfg.rng.randbytes(32), cfg.rng.randbytes(32)
        opening = auxinfo.Open(sk.public, rp.public, psi, f.commitments(), rid, u, Echo({}))
        commit = auxinfo.Commit(auxinfo.commitment(cfg.ssid, cfg.self_id, opening))
        msg = cfg.sign(2, BROADCAST, commit)
        mine = auxinfo._Secrets(sk, rp, f, opening)
        return Outcome([msg], auxinfo.Round2(cfg, self.plan, mine, msg))

    monkeypatch.setattr(auxinfo.Round1, "finalize", finalize)


@cache
def _fresh(bits: int) -> mpz:
    return safe_prime(bits, random.Random(f"aux-checks/{bits}"))


def _pool(bits: int, index: int = 0) -> mpz:
    return PrimePool.load(bits).primes[index]


#: Two safe primes whose product is not 1536 bits long (primes have their top two bits
#: set, so the product of a and b bits has exactly a + b bits).
WRONG_SIZE: dict[str, Callable[[], Pair]] = {
    "1528 bits": lambda: (_pool(768), _fresh(760)),
    "1544 bits": lambda: (_pool(768), _fresh(776)),
    "1280 bits": lambda: (_pool(512), _pool(768)),
    "1792 bits": lambda: (_pool(768), _pool(1024)),
}


@pytest.mark.parametrize("size", sorted(WRONG_SIZE))
def test_modulus_of_wrong_length_is_blamed(monkeypatch, size):
    lenient_round1(monkeypatch)
    seed = 1
    pairs = pool_pairs(seed, 3)
    bad_p, bad_q = pairs[BAD] = WRONG_SIZE[size]()
    bits = (bad_p * bad_q).bit_length()
    assert f"{bits} bits" == size and bits != TEST.paillier_bits
    assert bad_p not in pairs[1] + pairs[3] and bad_q not in pairs[1] + pairs[3]
    res, group = run_aux(seed, 3, pairs)
    assert_blames_only_bad(res, group)
    honest = honest_aborts(res, (BAD,))
    assert sorted(honest) == [1, 3], res
    for abort in honest.values():
        blame = abort.blame
        assert (blame.round, blame.culprits) == (3, (BAD,))
        assert blame.check == f"modulus has {bits} bits, expected {TEST.paillier_bits}"


def test_own_primes_of_wrong_size_are_refused_before_sending():
    """The prover-side check: a prime source giving the wrong size stops the party in
    round 1, before it commits to anything."""
    pairs = pool_pairs(1, 3)
    pairs[BAD] = WRONG_SIZE["1528 bits"]()
    with pytest.raises(InvalidModulus, match="prime source gave primes of the wrong size"):
        run_aux(1, 3, pairs)
