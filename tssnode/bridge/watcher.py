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
stays final (a reorg that deep is past what the confirmations guard against).

`Scanner` is the logic, over anything with Bitcoin Core's three read calls
(`BlockSource`); `rpc_source` is such a thing for a real node (python-bitcoinlib's
`RawProxy`, a well-kept client of Bitcoin Core's RPC).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from tssnode.bridge.hashes import txid_bytes
from tssnode.bridge.records import outpoint
from tssnode.bridge.transactions import DepositObserved

#: block records kept below the tip: reorgs deeper than this are not followed
KEEP_BLOCKS = 288
#: blocks scanned again when a deposit address is recorded (see `Scanner.step`)
RESCAN_BLOCKS = 12
SATS_PER_BTC = Decimal(100_000_000)


class BlockSource(Protocol):
    """The read calls of Bitcoin Core's RPC the watcher uses (its result shapes)."""

    def getblockcount(self) -> int: ...
    def getblockhash(self, height: int) -> str: ...
    def getblock(self, block_hash: str, verbosity: int) -> dict[str, Any]: ...


@dataclass
class SeenBlock:
    """A block as scanned: its hash and parent (display hex), and the outputs in it that
    pay a watched key hash: (txid display hex, vout, value in sats, script)."""

    height: int
    hash: str
    prev: str
    outputs: list[tuple[str, int, int, bytes]] = field(default_factory=list)


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
        #: key hashes the retained blocks were scanned for
        self._watched: frozenset[bytes] = frozenset()
        #: steps that found the chain had moved to another branch
        self.reorgs = 0
        self.tip = -1

    def step(
        self, source: BlockSource, watched: Mapping[bytes, bytes], min_sats: int
    ) -> list[DepositObserved]:
        """Follow the chain to its tip and return the observations now due.

        `watched` maps each recorded deposit address's key hash to its gHash. A key hash
        the retained blocks were not scanned for (an address recorded after a payment to
        it was mined) makes them be scanned again."""
        if not set(watched) <= self._watched:
            # a new address: its payment may be in a block scanned before it was recorded
            # (the API gives the address before the ledger has it): scan the newest again
            top = max(self.blocks, default=-1)
            for height in [h for h in self.blocks if h > top - RESCAN_BLOCKS]:
                del self.blocks[height]
            self._watched = frozenset(watched)
        self.tip = source.getblockcount()
        self._unwind(source)
        self._extend(source, watched)
        return self._due(watched, min_sats)

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
    """`BlockSource` over a Bitcoin Core RPC server (python-bitcoinlib's `RawProxy`; one
    connection, used from one thread at a time)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        from bitcoin.rpc import RawProxy  # (imported here: it reads no config at import)

        self._proxy: Any = RawProxy(service_url=url, timeout=timeout)

    def getblockcount(self) -> int:
        return int(self._proxy.getblockcount())

    def getblockhash(self, height: int) -> str:
        return str(self._proxy.getblockhash(height))

    def getblock(self, block_hash: str, verbosity: int) -> dict[str, Any]:
        block: dict[str, Any] = self._proxy.getblock(block_hash, verbosity)
        return block

    def close(self) -> None:
        self._proxy.close()
