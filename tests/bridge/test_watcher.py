"""The Bitcoin watcher's scanning: depth, once per output and block, reorgs before and
after depth, an address recorded after its payment was mined.

`FakeChain` is a test double of the read calls of Bitcoin Core's RPC the watcher makes,
with their result shapes (getblock verbosity 2 and getrawtransaction verbose: txid, vout
with value in BTC as Decimal, scriptPubKey hex; getrawmempool: txids); the watcher
against the regtest service (Bitcoin Core's engine behind Bitcoin Core's RPC) is tested
in tests/regtest."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tssnode.bridge.hashes import txid_bytes
from tssnode.bridge.records import p2wpkh_script
from tssnode.bridge.watcher import Scanner, Sighting, p2wpkh_program, rpc_url, sats

KH = b"\x11" * 20  # a watched deposit key hash
G = b"\x22" * 32  # its gHash
OTHER = b"\x33" * 20


def _h(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


class FakeChain:
    """Blocks as (hash, prev, txs); a tx is (txid, [(sats, key hash)])."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, str, list[tuple[str, list[tuple[int, bytes]]]]]] = []
        self.mempool: dict[str, list[tuple[int, bytes]]] = {}
        self.lookups = 0  # getrawtransaction calls
        self.mine()  # genesis

    def mine(self, *txs: tuple[str, list[tuple[int, bytes]]], branch: str = "") -> str:
        prev = self.blocks[-1][0] if self.blocks else ""
        block_hash = _h(len(self.blocks), prev, txs, branch)
        self.blocks.append((block_hash, prev, list(txs)))
        for txid, _ in txs:
            self.mempool.pop(txid, None)
        return block_hash

    def getrawmempool(self) -> list[str]:
        return list(self.mempool)

    def getrawtransaction(self, txid: str, verbose: bool) -> dict[str, Any]:
        assert verbose
        self.lookups += 1
        if txid not in self.mempool:
            raise KeyError(txid)
        return {"txid": txid, "vout": self._vout(self.mempool[txid])}

    @staticmethod
    def _vout(outs: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
        return [
            {
                "n": n,
                "value": Decimal(v) / Decimal(10**8),
                "scriptPubKey": {"hex": p2wpkh_script(kh).hex()},
            }
            for n, (v, kh) in enumerate(outs)
        ]

    def fork(self, height: int) -> None:
        """Drop every block from `height` on (the new branch is mined next)."""
        del self.blocks[height:]

    def getblockcount(self) -> int:
        return len(self.blocks) - 1

    def getblockhash(self, height: int) -> str:
        return self.blocks[height][0]

    def getblock(self, block_hash: str, verbosity: int) -> dict[str, Any]:
        assert verbosity == 2
        for height, (h, prev, txs) in enumerate(self.blocks):
            if h == block_hash:
                out: dict[str, Any] = {"hash": h, "height": height, "tx": []}
                if prev:
                    out["previousblockhash"] = prev
                for txid, outs in txs:
                    out["tx"].append({"txid": txid, "vout": self._vout(outs)})
                return out
        raise KeyError(block_hash)


def test_a_deposit_is_observed_once_at_depth_and_only_if_watched_and_enough():
    chain, scan = FakeChain(), Scanner(confirmations=3)
    watched = {KH: G}
    pay = ("aa" * 32, [(50_000, OTHER), (60_000, KH), (100, KH)])  # change, deposit, too small
    block = chain.mine(pay)
    assert scan.step(chain, watched, min_sats=10_000) == []  # 1 deep
    chain.mine()
    assert scan.step(chain, watched, min_sats=10_000) == []  # 2 deep
    chain.mine()
    (seen,) = scan.step(chain, watched, min_sats=10_000)  # 3 deep
    assert (seen.txid, seen.vout, seen.value) == (txid_bytes("aa" * 32), 1, 60_000)
    assert seen.block_hash == txid_bytes(block) and seen.block_height == 1
    assert seen.script == p2wpkh_script(KH) and seen.g_hash == G
    chain.mine()
    assert scan.step(chain, watched, min_sats=10_000) == []  # once


def test_a_reorg_before_depth_replaces_the_block_and_a_vanished_payment_is_never_seen():
    chain, scan = FakeChain(), Scanner(confirmations=2)
    watched = {KH: G}
    chain.mine(("aa" * 32, [(60_000, KH)]), ("bb" * 32, [(70_000, KH)]))
    assert scan.step(chain, watched, 10_000) == []
    chain.fork(1)  # a longer branch without "bb…", with "aa…" in another block
    new = chain.mine(("aa" * 32, [(60_000, KH)]), branch="b")
    chain.mine(branch="b")
    (seen,) = scan.step(chain, watched, 10_000)
    assert seen.txid == txid_bytes("aa" * 32) and seen.block_hash == txid_bytes(new)
    assert scan.reorgs == 1


def test_a_reorg_after_an_observation_observes_the_output_again_in_its_new_block():
    chain, scan = FakeChain(), Scanner(confirmations=1)
    watched = {KH: G}
    first = chain.mine(("aa" * 32, [(60_000, KH)]))
    (a,) = scan.step(chain, watched, 10_000)
    chain.fork(1)
    chain.mine(branch="b")
    second = chain.mine(("aa" * 32, [(60_000, KH)]), branch="b")
    (b,) = scan.step(chain, watched, 10_000)
    assert a.block_hash == txid_bytes(first) and b.block_hash == txid_bytes(second)
    assert (a.txid, a.vout) == (b.txid, b.vout) and b.block_height == 2


def test_an_address_recorded_after_its_payment_was_mined_is_found():
    chain, scan = FakeChain(), Scanner(confirmations=2)
    chain.mine(("aa" * 32, [(60_000, KH)]))
    chain.mine()
    assert scan.step(chain, {}, 10_000) == []  # not recorded yet: not watched
    (seen,) = scan.step(chain, {KH: G}, 10_000)  # recorded now: the newest blocks again
    assert seen.txid == txid_bytes("aa" * 32)


def test_values_scripts_and_credentials(tmp_path: Path):
    assert (
        sats(Decimal("0.5")) == 50_000_000
        and sats(Decimal("20999999.99999999")) == 2099999999999999
    )
    with pytest.raises(ValueError):
        sats(Decimal("0.000000001"))
    assert p2wpkh_program(p2wpkh_script(KH).hex()) == KH
    assert p2wpkh_program("0020" + "11" * 32) is None  # P2WSH
    cookie = tmp_path / ".cookie"
    cookie.write_text("__cookie__:s3cr/t\n")
    assert rpc_url("http://127.0.0.1:18443", cookie_file=cookie) == (
        "http://__cookie__:s3cr%2Ft@127.0.0.1:18443"
    )
    assert rpc_url("http://127.0.0.1:18443") == "http://127.0.0.1:18443"
    assert rpc_url("http://h:1/w", user="u", password="p") == "http://u:p@h:1/w"


def test_what_the_node_shows_now_from_mempool_to_depth():
    """Sightings: a payment in the mempool (0 deep), then in a block, with its depth; each
    mempool transaction decoded once; the output of another address or below the minimum
    never shown."""
    chain, scan = FakeChain(), Scanner(confirmations=3)
    watched = {KH: G}
    chain.mempool["aa" * 32] = [(50_000, OTHER), (60_000, KH), (100, KH)]
    assert scan.step(chain, watched, 10_000) == []
    (seen,) = scan.sightings(watched, 10_000)
    assert seen == Sighting(txid_bytes("aa" * 32), 1, 60_000, G, None, None, 0)
    scan.step(chain, watched, 10_000)
    assert chain.lookups == 1  # decoded once while it waits
    block = chain.mine(("aa" * 32, chain.mempool["aa" * 32]))
    chain.mine()
    scan.step(chain, watched, 10_000)
    (seen,) = scan.sightings(watched, 10_000)
    assert (seen.block_hash, seen.block_height, seen.confirmations) == (txid_bytes(block), 1, 2)
    assert scan.mempool == {} and scan.depth(txid_bytes(block), 1) == 2
    assert scan.depth(b"\x01" * 32, 1) == 0 and scan.depth(txid_bytes(block), 9) is None


def test_a_block_reorged_out_with_its_output_nowhere_is_orphaned_once_the_branch_is_deep():
    chain, scan = FakeChain(), Scanner(confirmations=2)
    watched = {KH: G}
    pay = ("aa" * 32, [(60_000, KH)])
    block = chain.mine(pay)
    chain.mine()
    (obs,) = scan.step(chain, watched, 10_000)
    args = (obs.txid, obs.vout, obs.block_hash, obs.block_height)
    assert not scan.orphaned(*args)  # on the chain
    chain.fork(1)  # a branch without it: the payment is back in the mempool
    chain.mempool["aa" * 32] = pay[1]
    chain.mine(branch="b")
    scan.step(chain, watched, 10_000)
    assert not scan.orphaned(*args)  # the new branch is not deep enough yet
    chain.mine(branch="b")
    scan.step(chain, watched, 10_000)
    assert scan.orphaned(*args) and scan.depth(txid_bytes(block), 1) == 0
    (seen,) = scan.sightings(watched, 10_000)
    assert seen.confirmations == 0  # in the mempool again
    chain.mine(pay, branch="b")  # mined again: moved, not orphaned
    assert scan.step(chain, watched, 10_000) == [] and not scan.orphaned(*args)
    chain.mine(branch="b")
    (again,) = scan.step(chain, watched, 10_000)  # observed in its new block at depth
    assert again.block_height == 3 and again.block_hash != obs.block_hash
