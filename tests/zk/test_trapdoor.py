"""The verifier's trapdoor (`zk.common.Trapdoor`, issue 16): the checks on the verifier's
own ring-Pedersen parameters (and in Π^aff-g its own Paillier key) computed by CRT must
give exactly the public answer: every honest proof accepted, every single-field tamper
refused at the same check, and a trapdoor for other parameters ignored."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

import pytest
from gmpy2 import mpz

from tests.conftest import TEST, KeyFactory
from tests.zk.helpers import tampered_variants
from tssnode.crypto.arith import randbelow, sample_pm, sample_unit
from tssnode.crypto.group import Q, base_mul
from tssnode.crypto.pedersen import PedersenParams
from tssnode.errors import ProofError
from tssnode.zk import affg, dec, enc, fac, logstar, mulstar
from tssnode.zk.common import ProofContext, Trapdoor, ring_of

# -- the arithmetic, against the plain version on random inputs --------------------------------


def test_owner_commitments_and_powers_equal_the_public_ones(keys: KeyFactory, rng):
    mine = keys.pedersen()
    pub = mine.public
    n = mpz(pub.n)
    for _ in range(40):
        x, y = sample_pm(TEST.ell + TEST.eps, rng), sample_pm(TEST.ell + TEST.eps + 2048, rng)
        assert mine.commit(x, y) == pub.commit(x, y)
        base = sample_unit(n, rng)
        exp = sample_pm(3000, rng)
        assert mine.pow(base, exp) == pub.pow(base, exp)
        e = sample_pm(256, rng)
        a = pub.commit(x, y) * pub.pow(base, -e) % n  # makes the relation true
        assert mine.verify(x, y, a, base, e) and pub.verify(x, y, a, base, e)
        assert not mine.verify(x, y + 1, a, base, e) and not pub.verify(x, y + 1, a, base, e)
        b = sample_unit(n, rng)  # a random relation: both say no
        assert mine.verify(x, y, a, b, e) == pub.verify(x, y, a, b, e)


def test_a_trapdoor_applies_only_to_its_own_parameters(keys: KeyFactory):
    mine, theirs = keys.pedersen(), keys.pedersen()
    sk, other = keys.paillier(), keys.paillier()
    own = Trapdoor(pedersen=mine, paillier=sk)
    assert ring_of(mine.public, own) is mine
    assert ring_of(theirs.public, own) is theirs.public
    assert ring_of(mine.public, None) is mine.public
    assert own.paillier_for(sk.public) is sk and own.paillier_for(other.public) is None
    assert Trapdoor().ring(mine.public) is mine.public
    assert "secret" in repr(own) and str(int(mine.lam)) not in repr(own)


# -- each proof that checks on the verifier's parameters, both ways -----------------------------

Case = tuple[Any, Any, Any, Trapdoor]  # (module, statement, proof, the verifier's trapdoor)


def _enc(ctx: ProofContext, keys: KeyFactory, rng: random.Random) -> Case:
    prover, mine = keys.paillier(), keys.pedersen()
    k = sample_pm(TEST.ell, rng)
    K, rho = prover.public.encrypt(k, rng)
    stmt = enc.EncStatement(prover.public, K, mine.public)
    return enc, stmt, enc.prove(ctx, stmt, enc.EncWitness(k, rho, prover), rng), Trapdoor(mine)


def _affg(ctx: ProofContext, keys: KeyFactory, rng: random.Random) -> Case:
    sk0, sk1, mine = keys.paillier(), keys.paillier(), keys.pedersen()  # sk0: the verifier's
    x, y = randbelow(Q, rng), sample_pm(TEST.ell_prime, rng)
    C, _ = sk0.public.encrypt(randbelow(Q, rng), rng)
    masked, rho = sk0.public.encrypt(y, rng)
    D = sk0.public.add(sk0.public.mul(C, x), masked)
    Y, rho_y = sk1.public.encrypt(y, rng)
    stmt = affg.AffgStatement(sk0.public, sk1.public, C, D, Y, base_mul(int(x)), mine.public)
    wit = affg.AffgWitness(mpz(x), mpz(y), rho, rho_y, sk1)
    return affg, stmt, affg.prove(ctx, stmt, wit, rng), Trapdoor(mine, sk0)


def _logstar(ctx: ProofContext, keys: KeyFactory, rng: random.Random) -> Case:
    prover, mine = keys.paillier(), keys.pedersen()
    g = base_mul(randbelow(Q - 1, rng) + 1)
    x = sample_pm(TEST.ell, rng)
    C, rho = prover.public.encrypt(x, rng)
    stmt = logstar.LogStarStatement(prover.public, C, g * int(x), g, mine.public)
    wit = logstar.LogStarWitness(x, rho, prover)
    return logstar, stmt, logstar.prove(ctx, stmt, wit, rng), Trapdoor(mine)


def _dec(ctx: ProofContext, keys: KeyFactory, rng: random.Random) -> Case:
    prover, mine = keys.paillier(), keys.pedersen()
    bits = TEST.ell + TEST.eps
    y = sample_pm(bits, rng)
    C, rho = prover.public.encrypt(y, rng)
    stmt = dec.DecStatement.single(prover.public, C, int(y % Q), bits, mine.public)
    wit = dec.DecWitness((y,), (rho,), prover)
    return dec, stmt, dec.prove(ctx, stmt, wit, rng), Trapdoor(mine)


def _mulstar(ctx: ProofContext, keys: KeyFactory, rng: random.Random) -> Case:
    prover, mine = keys.paillier(), keys.pedersen()
    x = randbelow(Q, rng)
    C, _ = prover.public.encrypt(randbelow(Q, rng), rng)
    rho = sample_unit(prover.n, rng)
    D = prover.public.mul(C, x) * prover.public.encrypt_with(0, rho) % prover.public.n2
    stmt = mulstar.MulStarStatement(prover.public, C, D, base_mul(int(x)), mine.public)
    wit = mulstar.MulStarWitness(mpz(x), rho, prover)
    return mulstar, stmt, mulstar.prove(ctx, stmt, wit, rng), Trapdoor(mine)


def _fac(ctx: ProofContext, keys: KeyFactory, rng: random.Random) -> Case:
    prover, mine = keys.paillier(), keys.pedersen()
    stmt = fac.FacStatement(prover.public, mine.public)
    proof = fac.prove(ctx, stmt, fac.FacWitness(prover.p, prover.q), rng)
    return fac, stmt, proof, Trapdoor(mine)


CASES: dict[str, Callable[[ProofContext, KeyFactory, random.Random], Case]] = {
    "enc": _enc,
    "affg": _affg,
    "logstar": _logstar,
    "dec": _dec,
    "mulstar": _mulstar,
    "fac": _fac,
}


def _verdict(module: Any, ctx: ProofContext, stmt: Any, proof: Any, own: Any) -> str | None:
    """None if accepted, else the check that refused it."""
    try:
        module.verify(ctx, stmt, proof, own)
    except ProofError as exc:
        return exc.check
    return None


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_trapdoor_accepts_and_refuses_exactly_what_the_public_check_does(
    name: str, ctx: ProofContext, keys: KeyFactory, rng: random.Random
):
    module, stmt, proof, own = CASES[name](ctx, keys, rng)
    assert _verdict(module, ctx, stmt, proof, own) is None
    assert _verdict(module, ctx, stmt, proof, None) is None
    tried = 0
    for field, bad in tampered_variants(proof):
        tried += 1
        with_trapdoor = _verdict(module, ctx, stmt, bad, own)
        assert with_trapdoor is not None, f"{name}: tampered {field} accepted with the trapdoor"
        assert with_trapdoor == _verdict(module, ctx, stmt, bad, None), field
    assert tried > 5
    # a statement on someone else's parameters: the trapdoor is not used, nothing changes
    other = keys.pedersen().public
    assert isinstance(other, PedersenParams)
    moved = dataclasses.replace(stmt, aux=other)
    assert _verdict(module, ctx, moved, proof, own) == _verdict(module, ctx, moved, proof, None)
    assert _verdict(module, ctx, moved, proof, own) is not None
