"""The Bitcoin watcher's scanning: depth, once per output and block, reorgs before and
after depth, an address recorded after its payment was mined.

`FakeChain` is a test double of the three read calls of Bitcoin Core's RPC the watcher
makes, with their result shapes (getblock verbosity 2: txid, vout with value in BTC as
Decimal, scriptPubKey hex); the watcher against the regtest service (Bitcoin Core's
engine behind Bitcoin Core's RPC) is tested in tests/regtest."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tssnode.bridge.hashes import txid_bytes
from tssnode.bridge.records import p2wpkh_script
from tssnode.bridge.watcher import Scanner, p2wpkh_program, rpc_url, sats

KH = b"\x11" * 20  # a watched deposit key hash
G = b"\x22" * 32  # its gHash
OTHER = b"\x33" * 20


def _h(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


class FakeChain:
    """Blocks as (hash, prev, txs); a tx is (txid, [(sats, key hash)])."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, str, list[tuple[str, list[tuple[int, bytes]]]]]] = []
        self.mine()  # genesis

    def mine(self, *txs: tuple[str, list[tuple[int, bytes]]], branch: str = "") -> str:
        prev = self.blocks[-1][0] if self.blocks else ""
        block_hash = _h(len(self.blocks), prev, txs, branch)
        self.blocks.append((block_hash, prev, list(txs)))
        return block_hash

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
                    vout = [
                        {
                            "n": n,
                            "value": Decimal(v) / Decimal(10**8),
                            "scriptPubKey": {"hex": p2wpkh_script(kh).hex()},
                        }
                        for n, (v, kh) in enumerate(outs)
                    ]
                    out["tx"].append({"txid": txid, "vout": vout})
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
