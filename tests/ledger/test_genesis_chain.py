"""Genesis loading, the persistent chain, and verifying a chain from genesis."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ledger.conftest import Tx
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.blocks import BlockRecord, CommitCertificate
from tssnode.ledger.chain import Chain, verify_chain
from tssnode.ledger.envelope import sign
from tssnode.ledger.errors import InvalidBlock, InvalidCertificate, InvalidGenesis
from tssnode.ledger.genesis import Genesis, genesis_toml, load_genesis, parse_genesis
from tssnode.ledger.messages import Batch, Commit
from tssnode.ledger.state import quorum
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import KeygenRequest
from tssnode.store import LevelStore
from tssnode.testing.memstore import MemoryStore

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "genesis.example.toml"


def test_example_genesis_loads() -> None:
    g = load_genesis(EXAMPLE)
    assert len(g.validators) == 4 and g.checkpoint_interval == 8 and g.window == 16
    assert [v.public_key for v in g.validators] == sorted(v.public_key for v in g.validators)
    assert len(g.chain_id) == 32


def test_genesis_round_trips_through_toml(tmp_path: Path, genesis: Genesis) -> None:
    (tmp_path / "g.toml").write_text(genesis_toml(genesis))
    assert load_genesis(tmp_path / "g.toml") == genesis


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"chain_name": "x", "validators": []}, "no validators"),
        ({"chain_name": "x", "validators": [{"name": "a", "public_key": "00"}]}, "32 bytes"),
        ({"validators": [{"name": "a", "public_key": "00" * 32}]}, "malformed"),
        (
            {
                "chain_name": "x",
                "window": 12,
                "checkpoint_interval": 8,
                "validators": [{"name": "a", "public_key": "00" * 32}],
            },
            "multiple",
        ),
        (
            {
                "chain_name": "x",
                "validators": [{"name": "a", "public_key": "00" * 32}] * 2,
            },
            "twice",
        ),
    ],
)
def test_bad_genesis(data: dict, reason: str) -> None:
    with pytest.raises(InvalidGenesis, match=reason):
        parse_genesis(data)


def test_unreadable_genesis_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("chain_name = [")
    with pytest.raises(InvalidGenesis, match=r"bad\.toml"):
        load_genesis(tmp_path / "bad.toml")


def certify(genesis: Genesis, keys: list[IdentityKey], seq: int, batch: Batch, signers=None):
    body = Commit(0, seq, batch.digest)
    chosen = keys[: quorum(len(keys))] if signers is None else signers
    votes = tuple(
        sorted((k.public_bytes(), sign(k, genesis.chain_id, body).signature) for k in chosen)
    )
    return CommitCertificate(0, seq, batch.digest, votes)


def build_chain(store, genesis: Genesis, keys: list[IdentityKey], blocks: int) -> Chain:
    chain = Chain(store, genesis, apps=(KeyRegistry,))
    tx = Tx(genesis)
    for h in range(1, blocks + 1):
        t = tx(
            keys[h % 4], KeygenRequest(1, tuple(k.public_bytes() for k in keys), "insecure-test")
        )
        batch = Batch((t.to_bytes(),))
        chain.execute(0, batch, certify(genesis, keys, h, batch))
    return chain


def test_chain_persists_and_reopens(tmp_path: Path, genesis: Genesis, keys) -> None:
    with LevelStore(tmp_path / "db") as store:
        chain = build_chain(store, genesis, keys, 5)
        tip, digest = chain.tip, chain.state.digest()
        rec = chain.record(3)
        assert rec is not None and chain.block_height(rec.block.hash) == 3
        assert chain.tx_location(
            rec.block.batch.txs and __import__("hashlib").sha256(rec.block.batch.txs[0]).digest()
        ) == (3, 0)
    with LevelStore(tmp_path / "db") as store:
        again = Chain(store, genesis, apps=(KeyRegistry,))
        assert again.tip == tip and again.state.digest() == digest
        records = list(again.records(1, 100))
        assert [r.block.height for r in records] == [1, 2, 3, 4, 5]
        assert verify_chain(genesis, records, apps=(KeyRegistry,)).digest() == digest


def test_a_store_of_another_chain_is_refused(genesis: Genesis, keys) -> None:
    store = MemoryStore()
    Chain(store, genesis, apps=(KeyRegistry,))
    other = parse_genesis(
        {
            "chain_name": "other",
            "validators": [{"name": "a", "public_key": keys[0].public_bytes().hex()}],
        }
    )
    with pytest.raises(InvalidGenesis, match="different chain"):
        Chain(store, other, apps=(KeyRegistry,))


def test_verification_catches_bad_certificates_and_blocks(genesis: Genesis, keys) -> None:
    chain = build_chain(MemoryStore(), genesis, keys, 3)
    records = list(chain.records(1, 10))
    r2 = records[1]
    # too few signers
    weak = certify(genesis, keys, 2, r2.block.batch, signers=keys[:2])
    with pytest.raises(InvalidCertificate, match="needed"):
        verify_chain(
            genesis,
            [records[0], BlockRecord(r2.block, weak, r2.proposer), records[2]],
            apps=(KeyRegistry,),
        )
    # a signer outside the validator set
    outsider = IdentityKey.generate()
    bad = certify(genesis, [*keys[:2], outsider], 2, r2.block.batch)
    with pytest.raises(InvalidCertificate, match="not a validator"):
        verify_chain(
            genesis, [records[0], BlockRecord(r2.block, bad, r2.proposer)], apps=(KeyRegistry,)
        )
    # a block whose batch differs from the certified one
    other = Batch(())
    forged = BlockRecord(
        type(r2.block)(
            *[
                other if f == "batch" else getattr(r2.block, f)
                for f in ("chain_id", "height", "prev_hash", "batch", "rejected", "state_digest")
            ]
        ),
        r2.certificate,
        r2.proposer,
    )
    with pytest.raises(InvalidBlock, match="another batch"):
        verify_chain(genesis, [records[0], forged], apps=(KeyRegistry,))
    # gaps and wrong parents
    with pytest.raises(InvalidBlock):
        verify_chain(genesis, [records[0], records[2]], apps=(KeyRegistry,))
    # adopt is all or nothing
    fresh = Chain(MemoryStore(), genesis, apps=(KeyRegistry,))
    with pytest.raises(InvalidCertificate):
        fresh.adopt([records[0], BlockRecord(r2.block, weak, r2.proposer)])
    assert fresh.height == 0 and fresh.record(1) is None
    assert [b.height for b in fresh.adopt(records)] == [1, 2, 3]
    assert fresh.state.digest() == chain.state.digest()
