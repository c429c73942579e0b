"""Fault injection: every fault names exactly the faulty party, never an honest one.

Faults come in two kinds: message rules of the runner (drop, tamper a field, equivocate a
broadcast), which re-sign what party 2 sends with party 2's own key; and a corrupted
prover, which makes party 2 compute one proof type wrongly before it commits to or sends
it (what a message rule cannot do for a proof inside a commitment).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from tssnode.crypto.encoding import decode_any
from tssnode.crypto.group import G, Q
from tssnode.protocol import presign, sign
from tssnode.protocol.evidence import verify_blame
from tssnode.testing.localgroup import LocalGroup, pool_primes
from tssnode.testing.protocol_faults import Drop, Tamper, replace_field, resign
from tssnode.testing.protocol_runner import RunResult
from tssnode.zk import affg, dec, enc, fac, logstar, mod, mul, mulstar, prm, sch

from ..conftest import TEST
from .helpers import key

BAD = 2  # the faulty party in every test
SEEDS = [1, 2, 3]


def assert_blames_only_bad(res: RunResult, group: LocalGroup, proven: bool = False) -> None:
    """At least one honest party blames BAD; no honest party blames anyone else; an honest
    party that stopped without blaming was stopped by aborts that blame BAD. Every honest
    blame survives `verify_blame` with nothing but the identity keys (and, with `proven`,
    is fully re-checked by it)."""
    identities = {p: k.public_bytes() for p, k in group.identities.items()}
    honest_aborts = {p: a for p, a in res.aborts.items() if p != BAD}
    assert honest_aborts, f"no honest party noticed the fault (results for {sorted(res.results)})"
    for party, abort in honest_aborts.items():
        assert abort.culprits == (BAD,), f"party {party} blamed {abort.culprits}: {abort}"
        # the evidence is the culprit's own signed messages (or none, for a timeout); for an
        # equivocation, the culprit's broadcast and another party's echo of its second one
        if "equivocation" not in abort.blame.check:
            assert all(msg.sender == BAD for msg in abort.blame.messages), abort.blame.messages
        verdict = verify_blame(abort.blame, identities)
        assert verdict.proven or not proven, verdict
    for party, stop in res.stopped.items():
        if party != BAD:
            assert stop.aborts and all(
                a.culprits == (BAD,) for p, a in stop.aborts.items() if p != BAD
            ), stop


def bump(value: Any) -> Any:
    if isinstance(value, tuple):
        return (bump(value[0]), *value[1:])
    if isinstance(value, bool):
        return not value
    return value + 1


def corrupt_prover(monkeypatch: pytest.MonkeyPatch, module: Any, party: int = BAD) -> None:
    """Party `party` produces proofs of `module` with their first numeric field off by one."""
    original = module.prove

    def bad_prove(ctx, stmt, wit, rng=None, **kw):
        proof = original(ctx, stmt, wit, rng, **kw)
        if ctx.prover != party:
            return proof
        for f in dataclasses.fields(proof):
            value = getattr(proof, f.name)
            if isinstance(value, int | tuple) or type(value).__name__ == "mpz":
                new = bump(value)
                if f.name == "z" and module is sch:
                    new = new % Q
                return dataclasses.replace(proof, **{f.name: new})
        raise AssertionError("no numeric field to corrupt")

    monkeypatch.setattr(module, "prove", bad_prove)


def fresh_group(seed: int, n: int = 3, t: int = 1) -> LocalGroup:
    return LocalGroup(tuple(range(1, n + 1)), t, TEST, seed=seed)


# -- keygen -------------------------------------------------------------------------------------

KEYGEN_RULES = {
    "drop commitment": [Drop(BAD, 2)],
    "equivocate commitment": [
        Tamper(BAD, 2, recipient=1, mutate=replace_field("V", lambda v: bytes(32)))
    ],
    "opening differs from commitment": [
        Tamper(BAD, 3, mutate=replace_field("rid", lambda r: bytes(32)))
    ],
    "equivocate opening": [
        Tamper(BAD, 3, recipient=3, mutate=replace_field("u", lambda u: bytes(32)))
    ],
    "forged echo": [
        Tamper(
            BAD,
            3,
            mutate=replace_field(
                "echo",
                lambda e: dataclasses.replace(
                    e,
                    entries={
                        **e.entries,
                        1: dataclasses.replace(e.entries[1], body_hash=bytes(32)),
                    },
                ),
            ),
        )
    ],
    "wrong share": [
        Tamper(
            BAD,
            4,
            recipient=1,
            broadcast=False,
            mutate=replace_field("share", lambda s: (s + 1) % Q),
        )
    ],
    "drop share": [Drop(BAD, 4, recipient=3, broadcast=False)],
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("rule", sorted(KEYGEN_RULES))
def test_keygen_message_faults(rule, seed):
    group = fresh_group(seed)
    assert_blames_only_bad(
        group.keygen(KEYGEN_RULES[rule]), group, proven=rule.startswith("equivocate")
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_keygen_wrong_schnorr_proof(monkeypatch, seed):
    corrupt_prover(monkeypatch, sch)
    group = fresh_group(seed)
    res = group.keygen()
    assert_blames_only_bad(res, group, proven=True)
    assert all("Π^sch" in str(a) or "sch" in str(a) for p, a in res.aborts.items() if p != BAD)


# -- aux-info / refresh -------------------------------------------------------------------------


def _aux(seed: int, rules=(), n: int = 3) -> tuple[RunResult, LocalGroup]:
    group = fresh_group(seed, n)
    shares = group.keygen().only_result()
    return group.aux(shares, pool_primes(TEST, random.Random(seed)), rules), group


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("module", [prm, mod, fac], ids=["prm", "mod", "fac"])
def test_aux_wrong_proofs(monkeypatch, module, seed):
    corrupt_prover(monkeypatch, module)
    res, group = _aux(seed)
    assert_blames_only_bad(res, group, proven=True)
    assert all(module.NAME in str(a) for p, a in res.aborts.items() if p != BAD)


AUX_RULES = {
    "wrong encrypted share": [
        Tamper(BAD, 4, recipient=1, broadcast=False, mutate=replace_field("C", lambda c: c + 1))
    ],
    "opening differs from commitment": [
        Tamper(BAD, 3, mutate=replace_field("u", lambda u: bytes(32)))
    ],
    "equivocate commitment": [
        Tamper(BAD, 2, recipient=3, mutate=replace_field("V", lambda v: bytes(32)))
    ],
    "drop Π^mod": [Drop(BAD, 4, recipient=1, broadcast=True)],
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("rule", sorted(AUX_RULES))
def test_aux_message_faults(rule, seed):
    res, group = _aux(seed, AUX_RULES[rule])
    assert_blames_only_bad(res, group, proven=rule.startswith("equivocate"))


# -- presign ------------------------------------------------------------------------------------

SIGNERS = (1, 2, 3)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("module", [enc, affg, logstar], ids=["enc", "aff-g", "log*"])
def test_presign_wrong_proofs(monkeypatch, module, seed):
    group, shares = key(4, 2, seed)
    corrupt_prover(monkeypatch, module)
    res = group.presign(shares, SIGNERS)
    assert_blames_only_bad(res, group, proven=True)
    assert all(module.NAME in str(a) for p, a in res.aborts.items() if p != BAD)


PRESIGN_RULES = {
    "replaced MtA ciphertext D": [
        Tamper(
            BAD,
            3,
            broadcast=True,
            mutate=replace_field("D", lambda d: {**d, 1: d[3]} if 3 in d else d),
        )
    ],
    "equivocate Γ": [
        Tamper(BAD, 3, recipient=1, broadcast=True, mutate=replace_field("Gamma", lambda g: g + G))
    ],
    "wrong Δ": [Tamper(BAD, 4, broadcast=True, mutate=replace_field("Delta", lambda d: d + G))],
    "drop direct proofs": [Drop(BAD, 3, recipient=3, broadcast=False)],
    "drop K": [Drop(BAD, 2)],
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("rule", sorted(PRESIGN_RULES))
def test_presign_message_faults(rule, seed):
    group, shares = key(4, 2, seed)
    res = group.presign(shares, SIGNERS, faults=PRESIGN_RULES[rule])
    # a swapped D may fail the ciphertext range check (not re-checkable from signatures
    # alone) or Π^aff-g (re-checkable): which depends on the moduli drawn
    assert_blames_only_bad(res, group, proven=rule.startswith(("equivocate", "wrong")))


WRONG_DELTA = [Tamper(BAD, 4, broadcast=True, mutate=replace_field("delta", lambda d: (d + 1) % Q))]


def lie_consistently(monkeypatch, round_cls, field: str, change, state_attr: str) -> None:
    """Party BAD computes a wrong value and uses it everywhere (its broadcast, its own
    record, its later proofs), as a dishonest party that is careful not to equivocate."""
    original = round_cls.finalize

    def finalize(self):
        outcome = original(self)
        if self.cfg.self_id != BAD:
            return outcome
        msgs = []
        for msg in outcome.messages:
            if msg.is_broadcast:
                body = decode_any(msg.body)
                lie = change(getattr(body, field))
                msg = resign(msg, dataclasses.replace(body, **{field: lie}), self.cfg.identity)
                nxt = outcome.next
                nxt.sent = msg
                if state_attr == "st":
                    nxt.st = dataclasses.replace(nxt.st, **{field: lie})
                else:
                    setattr(nxt, state_attr, lie)
            msgs.append(msg)
        outcome.messages = msgs
        return outcome

    monkeypatch.setattr(round_cls, "finalize", finalize)


@pytest.mark.parametrize("seed", SEEDS)
def test_presign_wrong_delta_sent_to_others_is_caught(seed):
    """δ_i altered on the way out: the identification round's echo convicts the sender."""
    group, shares = key(4, 2, seed)
    assert_blames_only_bad(group.presign(shares, SIGNERS, faults=WRONG_DELTA), group, proven=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_presign_wrong_delta_is_identified(monkeypatch, seed):
    """δ·G ≠ ΣΔ: the identification step (Π^mul, Π^dec) names the party with the wrong δ_i."""
    group, shares = key(4, 2, seed)
    lie_consistently(monkeypatch, presign.Round3, "delta", lambda d: (d + 1) % Q, "delta")
    res = group.presign(shares, SIGNERS)
    assert_blames_only_bad(res, group, proven=True)
    for p, a in res.aborts.items():
        if p != BAD:
            assert "presign identification" in str(a) and "δ" in str(a)
            assert a.blame.round == 5


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("module", [mul, dec], ids=["mul", "dec"])
def test_presign_identification_with_wrong_proofs(monkeypatch, module, seed):
    """The culprit also lies in the identification round: still named, honest ones clear."""
    group, shares = key(4, 2, seed)
    lie_consistently(monkeypatch, presign.Round3, "delta", lambda d: (d + 1) % Q, "delta")
    corrupt_prover(monkeypatch, module)
    res = group.presign(shares, SIGNERS)
    assert_blames_only_bad(res, group, proven=True)
    assert all(module.NAME in str(a) for p, a in res.aborts.items() if p != BAD)


# -- sign ---------------------------------------------------------------------------------------

WRONG_SIGMA = [Tamper(BAD, 2, mutate=replace_field("sigma", lambda s: (s + 1) % Q))]


def _presigned(seed: int):
    group, shares = key(4, 2, seed)
    presigs = group.presign(shares, SIGNERS).only_result()
    from tssnode.protocol.hashing import message_digest

    return group, shares, presigs, message_digest(b"fault", "sha256")


@pytest.mark.parametrize("seed", SEEDS)
def test_sign_wrong_sigma_sent_to_others_is_caught(seed):
    group, shares, presigs, digest = _presigned(seed)
    assert_blames_only_bad(group.sign(shares, presigs, digest, WRONG_SIGMA), group, proven=True)


def _lie_sigma(monkeypatch):
    lie_consistently(monkeypatch, sign.Round1, "sigma", lambda s: (s + 1) % Q, "st")


@pytest.mark.parametrize("seed", SEEDS)
def test_sign_wrong_sigma_is_identified(monkeypatch, seed):
    group, shares, presigs, digest = _presigned(seed)
    _lie_sigma(monkeypatch)
    res = group.sign(shares, presigs, digest)
    assert_blames_only_bad(res, group, proven=True)
    for p, a in res.aborts.items():
        if p != BAD:
            assert "sign identification" in str(a)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("module", [mulstar, dec], ids=["mul*", "dec"])
def test_sign_identification_with_wrong_proofs(monkeypatch, module, seed):
    group, shares, presigs, digest = _presigned(seed)
    _lie_sigma(monkeypatch)
    corrupt_prover(monkeypatch, module)
    res = group.sign(shares, presigs, digest)
    assert_blames_only_bad(res, group, proven=True)
    assert all(module.NAME in str(a) for p, a in res.aborts.items() if p != BAD)


@pytest.mark.parametrize("seed", SEEDS)
def test_sign_drop_sigma(seed):
    group, shares, presigs, digest = _presigned(seed)
    res = group.sign(shares, presigs, digest, [Drop(BAD, 2, recipient=3)])
    assert_blames_only_bad(res, group)


def test_no_fault_no_blame():
    """The control: the same set-up with no rule finishes everywhere."""
    group, shares, presigs, digest = _presigned(1)
    res = group.sign(shares, presigs, digest)
    assert not res.aborts and len(res.results) == 3
