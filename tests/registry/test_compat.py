"""The key registry became an application of the ledger engine (issue 15) without changing
one byte of what the ledger computes: a chain that exercises every registry transaction
and the engine's own (membership scheduling, misbehaviour) yields the block hashes (which
carry the state digest) that the ledger computed before the split, recorded here."""

from __future__ import annotations

import hashlib

from tests.ledger.conftest import APPS, Tx, key, key_public, real_signature
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.blocks import execute
from tssnode.ledger.envelope import sign
from tssnode.ledger.evidence import make_evidence
from tssnode.ledger.genesis import Validator, make_genesis
from tssnode.ledger.messages import Batch, Commit
from tssnode.ledger.state import LedgerState
from tssnode.ledger.transactions import Misbehaviour, SignedTx
from tssnode.protocol.base import Blame
from tssnode.protocol.hashing import message_digest
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import (
    BlameReport,
    KeygenRequest,
    KeygenResult,
    PresignReady,
    PresignRequest,
    RefreshRequest,
    RefreshResult,
    SignRequest,
    SignResult,
    ValidatorLeave,
    Withdrawal,
    join_payload,
)

#: SHA-256 over the block hashes and rejection reasons of `scenario`, as computed by the
#: ledger before the registry was split out of it (commit 97efe10).
GOLDEN = "14918d4e9080848326cb53ca827f3d3350a4bcb83fc79c5216a35aaec99ff9e4"


def scenario() -> tuple[list[tuple[bytes, tuple[tuple[int, str], ...]]], LedgerState, bytes]:
    keys: list[IdentityKey] = sorted((key(i) for i in range(4)), key=lambda k: k.public_bytes())
    pks = tuple(k.public_bytes() for k in keys)
    genesis = make_genesis(
        [Validator(pk, f"v{i}", "") for i, pk in enumerate(pks)],
        chain_name="compat",
        checkpoint_interval=4,
        window=8,
    )
    tx = Tx(genesis)
    st = LedgerState.from_genesis(genesis, APPS)
    reg = st.app(KeyRegistry)
    out: list[tuple[bytes, tuple[tuple[int, str], ...]]] = []
    prev = genesis.chain_id

    def block(*txs: SignedTx) -> None:
        nonlocal prev
        b, _ = execute(st, prev, Batch(tuple(t.to_bytes() for t in txs)))
        prev = b.hash
        out.append((b.hash, b.rejected))

    kg = tx(keys[0], KeygenRequest(1, pks, "insecure-test"))
    block(kg, tx(keys[1], KeygenRequest(9, pks, "insecure-test")))  # one refused
    kp = key_public(4, 1)
    block(*(tx(k, KeygenResult(kg.hash, kp)) for k in keys[:3]))
    block(tx(keys[3], KeygenResult(kg.hash, kp)))  # a late party confirms it holds it
    key_id = kp.key_id
    pre = tx(keys[0], PresignRequest(key_id, 2))
    block(pre)
    signers = [
        keys[pks.index(reg.keys[key_id].parties[j - 1])] for j in reg.requests[pre.hash].signers
    ]
    R = b"\x02" + b"\x07" * 32
    block(*(tx(k, PresignReady(pre.hash, 0, R)) for k in signers))
    msg = b"compat"
    digest = message_digest(msg, "sha256")
    s1 = tx(keys[2], SignRequest(key_id, digest, (), message=msg, hash_name="sha256"))
    s2 = tx(keys[3], SignRequest(key_id, b"\x22" * 32, (0, 5)))
    block(s1, s2)
    block(tx(signers[0], SignResult(s1.hash, real_signature(digest))))
    req2 = reg.requests[s2.hash]
    culprit = req2.signers[0]
    accuser = next(
        k
        for k in keys
        if k.public_bytes() in [req2.parties[j - 1] for j in req2.signers]
        and k.public_bytes() != req2.parties[culprit - 1]
    )
    block(tx(accuser, BlameReport(s2.hash, Blame(b"", 2, (culprit,), "enc", ()))))
    block(tx(signers[1], Withdrawal(pre.hash, "restarted")))
    rf = tx(keys[1], RefreshRequest(key_id))
    block(rf)
    new = key_public(4, 1, epoch=1)
    block(*(tx(k, RefreshResult(rf.hash, new)) for k in keys[:3]))
    joiner = key(50)
    join = join_payload(joiner, genesis.chain_id, "v-new", "/ip4/127.0.0.1/tcp/1")
    block(*(tx(k, join) for k in keys[:3]))
    block(tx(keys[3], ValidatorLeave(pks[3])))
    c1 = Commit(0, 3, b"\x01" * 32)
    c2 = Commit(0, 3, b"\x02" * 32)
    ev = make_evidence(sign(keys[1], genesis.chain_id, c1), sign(keys[1], genesis.chain_id, c2))
    block(tx(keys[0], Misbehaviour(ev)))
    for _ in range(12):  # past the scheduled change's activation
        block()
    return out, st, joiner.public_bytes()


def _fingerprint(blocks: list[tuple[bytes, tuple[tuple[int, str], ...]]]) -> str:
    h = hashlib.sha256()
    for block_hash, rejected in blocks:
        h.update(block_hash + repr(rejected).encode())
    return h.hexdigest()


def test_the_split_ledger_computes_the_same_chain_as_before() -> None:
    blocks, st, joiner = scenario()
    reg = st.app(KeyRegistry)
    assert len(blocks) == 26 and all(r == () for _, r in blocks[1:])
    # what the scenario did, so a change to it cannot pass vacuously
    assert joiner in st.validators and len(st.misbehaviour) == 1
    assert sum(r.status == "done" for r in reg.requests.values()) == 4
    assert sum(r.status == "failed" for r in reg.requests.values()) == 1
    assert _fingerprint(blocks) == GOLDEN
