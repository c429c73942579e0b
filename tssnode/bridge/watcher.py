"""Watching Bitcoin for deposits: what one validator saw, submitted as `DepositObserved`.

Each validator watches through its own Bitcoin node (Bitcoin Core's JSON-RPC), as
THORChain's Bifrost does: a record per height with the block's hash and its parent's, so
that a reorg is seen when a height's hash changes or a new block's parent is not the
recorded one; the records above the fork are dropped and the new branch scanned. Mempool
transactions never count. An output counts when it pays a recorded deposit address
(matched by address, not by an announced txid, so a fee-bumped payment still counts), is
at least the bridge's minimum, and its block is `confirmations` deep; then the validator
submits what it saw, once per (output, block). After a reorg that moved the output to
another block it submits again (its vote in the ledger follows, `BridgeApp`); an output
that vanished is simply never observed again, and one the ledger already holds as final
is orphaned by 2f+1 votes (`DepositOrphaned`, which `Scanner.orphaned` decides for this
validator) and, if mined again, moved to its new block by 2f+1 observations.

Besides what it submits, the scanner keeps what this validator sees now (`Sighting`):
payments in its node's mempool (new mempool transactions are decoded once each) and in
blocks not yet deep enough, which the API shows as "seen" and "confirming".

`Scanner` is the logic, over anything with Bitcoin Core's three read calls
(`BlockSource`); `rpc_source` is such a thing for a real node (python-bitcoinlib's
`RawProxy`, a well-kept client of Bitcoin Core's RPC).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit, urlunsplit

from tssnode.bridge.btcrpc import Rpc
from tssnode.bridge.hashes import txid_bytes
from tssnode.bridge.records import outpoint
from tssnode.bridge.transactions import DepositObserved

#: block records kept below the tip: reorgs deeper than this are not followed
KEEP_BLOCKS = 288
#: blocks scanned again when a deposit address is recorded (see `Scanner.step`)
RESCAN_BLOCKS = 12
#: mempool transactions decoded per step at most (the rest at the next steps)
MEMPOOL_BATCH = 1000
SATS_PER_BTC = Decimal(100_000_000)


class BlockSource(Protocol):
    """The read calls of Bitcoin Core's RPC the watcher uses (its result shapes).
    `getrawtransaction` raises KeyError for a transaction the node does not have (Bitcoin
    Core's error -5: it left the mempool since `getrawmempool`)."""

    def getblockcount(self) -> int: ...
    def getblockhash(self, height: int) -> str: ...
    def getblock(self, block_hash: str, verbosity: int) -> dict[str, Any]: ...
    def getrawmempool(self) -> list[str]: ...
    def getrawtransaction(self, txid: str, verbose: bool) -> dict[str, Any]: ...


@runtime_checkable
class BitcoinNode(BlockSource, Protocol):
    """The calls a validator makes for releases too: a fee estimate, a mempool check and
    a broadcast (Bitcoin Core's result shapes)."""

    def estimatesmartfee(self, conf_target: int) -> dict[str, Any]: ...
    def testmempoolaccept(self, rawtxs: list[str]) -> list[dict[str, Any]]: ...
    def sendrawtransaction(self, hexstring: str) -> str: ...
    def getmempoolentry(self, txid: str) -> dict[str, Any]: ...  # KeyError if not there


@dataclass(frozen=True)
class Sighting:
    """A payment to a watched address as this validator's Bitcoin node shows it now: in a
    block (`confirmations` ≥ 1 deep) or in its mempool (`block_hash` None, 0)."""

    txid: bytes  # outpoint byte order
    vout: int
    value: int
    g_hash: bytes
    block_hash: bytes | None  # internal byte order
    block_height: int | None
    confirmations: int


@dataclass
class SeenBlock:
    """A block as scanned: its hash and parent (display hex), and the outputs in it that
    pay a watched key hash: (txid display hex, vout, value in sats, script)."""

    height: int
    hash: str
    prev: str
    outputs: list[tuple[str, int, int, bytes]] = field(default_factory=list)
    #: the watched transactions (display txids) it holds
    txids: list[str] = field(default_factory=list)


def sats(btc: Decimal | int | float | str) -> int:
    """A value as Bitcoin Core's RPC gives it (BTC, 8 decimals) → satoshis, exactly."""
    value = Decimal(str(btc)) * SATS_PER_BTC
    if value != value.to_integral_value():
        raise ValueError(f"{btc} BTC is not a whole number of satoshis")
    return int(value)


def p2wpkh_program(script_hex: str) -> bytes | None:
    """The 20-byte key hash of a P2WPKH output script (OP_0 PUSH20), else None."""
    raw = bytes.fromhex(script_hex)
    if len(raw) == 22 and raw[:2] == b"\x00\x14":
        return raw[2:]
    return None


class Scanner:
    """The chain as this validator's Bitcoin node shows it, scanned for deposits."""

    def __init__(self, confirmations: int, start_height: int = 0) -> None:
        self.confirmations = confirmations
        self.start_height = start_height
        self.blocks: dict[int, SeenBlock] = {}
        #: (outpoint, block hash) already submitted
        self.submitted: set[tuple[bytes, str]] = set()
        #: key hashes and txids the retained blocks were scanned for
        self._watched: frozenset[bytes] = frozenset()
        self._txids: frozenset[str] = frozenset()
        #: steps that found the chain had moved to another branch
        self.reorgs = 0
        self.tip = -1
        #: the node's mempool as last read: txid (display hex) → its P2WPKH outputs
        #: (vout, sats, key hash), decoded once per transaction
        self.mempool: dict[str, list[tuple[int, int, bytes]]] = {}

    def step(
        self,
        source: BlockSource,
        watched: Mapping[bytes, bytes],
        min_sats: int,
        txids: frozenset[str] = frozenset(),
    ) -> list[DepositObserved]:
        """Follow the chain to its tip and return the observations now due.

        `watched` maps each recorded deposit address's key hash to its gHash; `txids` are
        transactions (display hex: the group's releases) whose blocks are recorded too
        (`located`). A key hash or txid the retained blocks were not scanned for (an
        address recorded after a payment to it was mined) makes them be scanned again."""
        if not set(watched) <= self._watched or not txids <= self._txids:
            # a new address: its payment may be in a block scanned before it was recorded
            # (the API gives the address before the ledger has it): scan the newest again
            top = max(self.blocks, default=-1)
            for height in [h for h in self.blocks if h > top - RESCAN_BLOCKS]:
                del self.blocks[height]
            self._watched = frozenset(watched)
            self._txids = frozenset(txids)
        self.tip = source.getblockcount()
        self._unwind(source)
        self._extend(source, watched)
        self._read_mempool(source)
        return self._due(watched, min_sats)

    def _read_mempool(self, source: BlockSource) -> None:
        now = source.getrawmempool()
        current = set(now)
        for gone in set(self.mempool) - current:
            del self.mempool[gone]
        new = [t for t in now if t not in self.mempool][:MEMPOOL_BATCH]
        for txid in new:
            try:
                tx = source.getrawtransaction(txid, True)
            except KeyError:  # mined or replaced since getrawmempool
                continue
            outs: list[tuple[int, int, bytes]] = []
            for out in tx["vout"]:
                program = p2wpkh_program(out["scriptPubKey"]["hex"])
                if program is not None:
                    outs.append((int(out["n"]), sats(out["value"]), program))
            self.mempool[txid] = outs

    def sightings(self, watched: Mapping[bytes, bytes], min_sats: int) -> list[Sighting]:
        """Every payment of at least `min_sats` to a watched key hash this node shows now,
        in a retained block or in the mempool (a transaction in both counts in its block)."""
        out: dict[bytes, Sighting] = {}
        for height in sorted(self.blocks):
            block = self.blocks[height]
            for txid, vout, value, script in block.outputs:
                kh = script[2:]
                if value >= min_sats and kh in watched:
                    op = outpoint(txid_bytes(txid), vout)
                    out[op] = Sighting(
                        txid_bytes(txid), vout, value, watched[kh], txid_bytes(block.hash),
                        height, self.tip - height + 1,
                    )  # fmt: skip
        for txid, outs in self.mempool.items():
            for vout, value, kh in outs:
                op = outpoint(txid_bytes(txid), vout)
                if value >= min_sats and kh in watched and op not in out:
                    out[op] = Sighting(txid_bytes(txid), vout, value, watched[kh], None, None, 0)
        return list(out.values())

    def located(self, txid: str) -> SeenBlock | None:
        """The retained block that holds watched transaction `txid` (display hex), if any."""
        return next((b for b in self.blocks.values() if txid in b.txids), None)

    def depth(self, block_hash: bytes, block_height: int) -> int | None:
        """How deep the block (internal byte order) is on this node's chain: 0 if another
        block is at its height now, None if its height is not among the retained records."""
        seen = self.blocks.get(block_height)
        if seen is None:
            return None
        return self.tip - block_height + 1 if txid_bytes(seen.hash) == block_hash else 0

    def orphaned(self, txid: bytes, vout: int, block_hash: bytes, block_height: int) -> bool:
        """Whether this validator holds that the output recorded in `block_hash` at
        `block_height` was reorged out: another block is at that height, the chain is
        `confirmations` past it (the new branch is as deep as a deposit must be), and the
        output is in none of the retained blocks (moved, it is observed again instead)."""
        if self.depth(block_hash, block_height) != 0:
            return False
        if self.tip - block_height + 1 < self.confirmations:
            return False
        display = txid[::-1].hex()
        return not any(
            (t, v) == (display, vout) for b in self.blocks.values() for t, v, _, _ in b.outputs
        )

    def _unwind(self, source: BlockSource) -> None:
        """Drop the records above the last height whose hash the node still shows."""
        replaced = False
        for height in sorted(self.blocks, reverse=True):
            if height <= self.tip and source.getblockhash(height) == self.blocks[height].hash:
                break
            del self.blocks[height]
            replaced = True
        self.reorgs += replaced

    def _extend(self, source: BlockSource, watched: Mapping[bytes, bytes]) -> None:
        top = max(self.blocks, default=None)
        first = self.start_height if top is None else top + 1
        first = max(first, self.tip - KEEP_BLOCKS + 1, 0) if top is None else first
        for height in range(first, self.tip + 1):
            block = source.getblock(source.getblockhash(height), 2)
            parent = self.blocks.get(height - 1)
            prev = str(block.get("previousblockhash", ""))
            if parent is not None and prev != parent.hash:
                return  # the chain moved under us: the next step unwinds it
            seen = SeenBlock(height, str(block["hash"]), prev)
            for tx in block["tx"]:
                if tx["txid"] in self._txids:
                    seen.txids.append(str(tx["txid"]))
                for out in tx["vout"]:
                    program = p2wpkh_program(out["scriptPubKey"]["hex"])
                    if program is not None and program in watched:
                        script = bytes.fromhex(out["scriptPubKey"]["hex"])
                        seen.outputs.append((tx["txid"], int(out["n"]), sats(out["value"]), script))
            self.blocks[height] = seen
        for height in [h for h in self.blocks if h <= self.tip - KEEP_BLOCKS]:
            del self.blocks[height]

    def _due(self, watched: Mapping[bytes, bytes], min_sats: int) -> list[DepositObserved]:
        out: list[DepositObserved] = []
        for height in sorted(self.blocks):
            block = self.blocks[height]
            if self.tip - height + 1 < self.confirmations:
                break
            for txid, vout, value, script in block.outputs:
                op = outpoint(txid_bytes(txid), vout)
                if value < min_sats or (op, block.hash) in self.submitted:
                    continue
                self.submitted.add((op, block.hash))
                out.append(
                    DepositObserved(
                        txid_bytes(txid), vout, value, script, txid_bytes(block.hash), height,
                        watched[script[2:]],
                    )
                )  # fmt: skip
        return out


def rpc_url(
    url: str, *, user: str = "", password: str = "", cookie_file: Path | None = None
) -> str:
    """Bitcoin Core's RPC URL with credentials: a cookie file (`<datadir>/.cookie`, as
    bitcoind writes it: `__cookie__:<password>`) or a user and password."""
    if cookie_file is not None:
        user, _, password = cookie_file.read_text().strip().partition(":")
    parts = urlsplit(url)
    if not user:
        return url
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class RpcSource:
    """`BlockSource` over a Bitcoin Core RPC server (python-bitcoinlib's `RawProxy`,
    reconnected when the server closed the connection while it was idle: `btcrpc.Rpc`;
    one connection, used from one thread at a time)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self._proxy: Any = Rpc(url, timeout)

    def getblockcount(self) -> int:
        return int(self._proxy.getblockcount())

    def getblockhash(self, height: int) -> str:
        return str(self._proxy.getblockhash(height))

    def getblock(self, block_hash: str, verbosity: int) -> dict[str, Any]:
        block: dict[str, Any] = self._proxy.getblock(block_hash, verbosity)
        return block

    def getrawmempool(self) -> list[str]:
        return [str(t) for t in self._proxy.getrawmempool()]

    def estimatesmartfee(self, conf_target: int) -> dict[str, Any]:
        estimate: dict[str, Any] = self._proxy.estimatesmartfee(conf_target)
        return estimate

    def testmempoolaccept(self, rawtxs: list[str]) -> list[dict[str, Any]]:
        verdicts: list[dict[str, Any]] = self._proxy.testmempoolaccept(rawtxs)
        return verdicts

    def sendrawtransaction(self, hexstring: str) -> str:
        return str(self._proxy.sendrawtransaction(hexstring))

    def getmempoolentry(self, txid: str) -> dict[str, Any]:
        from bitcoin.rpc import InvalidAddressOrKeyError

        try:
            entry: dict[str, Any] = self._proxy.getmempoolentry(txid)
        except InvalidAddressOrKeyError:  # -5: not in the mempool
            raise KeyError(txid) from None
        return entry

    def getrawtransaction(self, txid: str, verbose: bool) -> dict[str, Any]:
        from bitcoin.rpc import InvalidAddressOrKeyError

        try:
            tx: dict[str, Any] = self._proxy.getrawtransaction(txid, verbose)
        except InvalidAddressOrKeyError:  # -5: not in the mempool (or any block we index)
            raise KeyError(txid) from None
        return tx

    def close(self) -> None:
        self._proxy.close()
