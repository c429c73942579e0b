"""VIEW-CHANGE and NEW-VIEW checks: backups recompute O and refuse anything else."""

from __future__ import annotations

import pytest

from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.envelope import Signed, sign
from tssnode.ledger.errors import InvalidCertificate, InvalidMessage, InvalidNewView
from tssnode.ledger.genesis import Genesis
from tssnode.ledger.messages import (
    NULL_BATCH,
    Batch,
    Checkpoint,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    ViewChange,
)
from tssnode.ledger.viewchange import (
    check_new_view,
    check_view_change,
    plan_new_view,
)


@pytest.fixture
def world(keys: list[IdentityKey], genesis: Genesis):
    cid = genesis.chain_id
    config = tuple(k.public_bytes() for k in keys)
    batch = Batch((b"\x81\x01",))
    pp = sign(keys[0], cid, PrePrepare(0, 1, batch.digest))
    prepares = tuple(
        sign(k, cid, Prepare(0, 1, batch.digest, pp.signature)) for k in (keys[1], keys[2])
    )
    proof = PreparedProof(pp, batch, prepares)
    return cid, config, batch, proof


def cfg(config):
    return lambda seq: config


def vcs(keys, cid, proof, who=(1, 2, 3), view=1):
    return [sign(keys[i], cid, ViewChange(view, 0, (), (proof,) if i == 1 else ())) for i in who]


def test_new_view_must_repropose_what_was_prepared(keys, genesis, world) -> None:
    cid, config, batch, proof = world
    v = vcs(keys, cid, proof)
    checked = [check_view_change(cid, m, cfg(config), genesis.window) for m in v]
    plan = plan_new_view(checked)
    assert plan.proposals == ((1, batch.digest),)
    assert plan.batches[batch.digest] == batch
    good_pp = sign(keys[1], cid, PrePrepare(1, 1, batch.digest))
    nv = sign(keys[1], cid, NewView(1, tuple(v), (good_pp,)))
    _, got, _ = check_new_view(cid, nv, cfg(config), genesis.window, 0)
    assert got.proposals == plan.proposals
    # a new primary that drops the prepared request (fills with null) is refused
    null_pp = sign(keys[1], cid, PrePrepare(1, 1, NULL_BATCH.digest))
    with pytest.raises(InvalidNewView, match="differ"):
        check_new_view(
            cid,
            sign(keys[1], cid, NewView(1, tuple(v), (null_pp,))),
            cfg(config),
            genesis.window,
            0,
        )
    # ...and so is one that invents an extra sequence
    extra = sign(keys[1], cid, PrePrepare(1, 2, NULL_BATCH.digest))
    with pytest.raises(InvalidNewView, match="differ"):
        check_new_view(
            cid,
            sign(keys[1], cid, NewView(1, tuple(v), (good_pp, extra))),
            cfg(config),
            genesis.window,
            0,
        )


def test_new_view_needs_its_primary_and_a_quorum(keys, genesis, world) -> None:
    cid, config, batch, proof = world
    v = vcs(keys, cid, proof)
    pp = sign(keys[1], cid, PrePrepare(1, 1, batch.digest))
    with pytest.raises(InvalidNewView, match="primary"):
        check_new_view(
            cid, sign(keys[2], cid, NewView(1, tuple(v), (pp,))), cfg(config), genesis.window, 0
        )
    with pytest.raises(InvalidNewView, match="fewer than 2f"):
        check_new_view(
            cid, sign(keys[1], cid, NewView(1, tuple(v[:2]), (pp,))), cfg(config), genesis.window, 0
        )
    twice = [v[0], v[0], v[1]]
    with pytest.raises(InvalidNewView, match="twice"):
        check_new_view(
            cid, sign(keys[1], cid, NewView(1, tuple(twice), (pp,))), cfg(config), genesis.window, 0
        )
    other_view = vcs(keys, cid, proof, view=2)
    with pytest.raises(InvalidNewView, match="another view"):
        check_new_view(
            cid,
            sign(keys[1], cid, NewView(1, (*v[:2], other_view[2]), (pp,))),
            cfg(config),
            genesis.window,
            0,
        )


def test_view_change_checks_its_certificates(keys, genesis, world) -> None:
    cid, config, batch, proof = world
    # a prepared certificate with one prepare only
    thin = PreparedProof(proof.pre_prepare, batch, proof.prepares[:1])
    with pytest.raises(InvalidMessage, match="fewer than 2f"):
        check_view_change(
            cid, sign(keys[1], cid, ViewChange(1, 0, (), (thin,))), cfg(config), genesis.window
        )
    # a pre-prepare not signed by the primary of its view
    fake_pp = sign(keys[3], cid, PrePrepare(0, 1, batch.digest))
    fake = PreparedProof(fake_pp, batch, proof.prepares)
    with pytest.raises(InvalidMessage, match="not from the primary"):
        check_view_change(
            cid, sign(keys[1], cid, ViewChange(1, 0, (), (fake,))), cfg(config), genesis.window
        )
    # a batch that is not the one certified
    swapped = PreparedProof(proof.pre_prepare, NULL_BATCH, proof.prepares)
    with pytest.raises(InvalidMessage, match="batch"):
        check_view_change(
            cid, sign(keys[1], cid, ViewChange(1, 0, (), (swapped,))), cfg(config), genesis.window
        )
    # a claimed stable checkpoint without 2f+1 signatures
    cp = Checkpoint(4, b"s" * 32, b"h" * 32)
    weak = tuple(sign(k, cid, cp) for k in keys[:2])
    with pytest.raises(InvalidCertificate, match="needed"):
        check_view_change(
            cid, sign(keys[1], cid, ViewChange(1, 4, weak, ())), cfg(config), genesis.window
        )
    strong = tuple(sign(k, cid, cp) for k in keys[:3])
    ok = check_view_change(
        cid, sign(keys[1], cid, ViewChange(1, 4, strong, ())), cfg(config), genesis.window
    )
    assert ok.checkpoint is not None and ok.checkpoint.seq == 4
    # a forged signature on the view change itself
    vc = sign(keys[1], cid, ViewChange(1, 0, (), ()))
    with pytest.raises(InvalidMessage, match="signature"):
        check_view_change(
            cid, Signed(vc.body, vc.signer, b"\x00" * 64), cfg(config), genesis.window
        )
