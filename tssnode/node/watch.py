"""The node's watches of the chains the bridge spans.

`BitcoinWatch`: the bridge's `Scanner` run against this validator's Bitcoin node, what it
saw submitted to the ledger until the ledger has it (deposits at depth, and final deposits
whose block a reorg took away), and what it sees now kept for the API (payments in the
mempool or not yet deep enough, and each final deposit's depth).
`GatewayWatch`: which signed deposits' authorisations the gateway has used, read through
this validator's EVM node.

The RPC calls block, so each look at the chain runs in a worker thread. A Bitcoin node
that is down, slow or answering nonsense is logged and asked again at the next poll; the
node keeps running. An observation is sent again (every `RESEND` seconds) until the
ledger holds this validator's vote for it, or the deposit is final: a transaction dropped
before it was ordered (a view change, a restart) must not leave a deposit one vote short.
What each node shows as seen, confirming or minted is its own view of the chains; final,
signed and orphaned are the ledger's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import trio

from tssnode.bridge.app import BridgeApp
from tssnode.bridge.records import FINAL, ORPHANED, SIGNED, BridgeConfig, Deposit, outpoint
from tssnode.bridge.transactions import DepositObserved, DepositOrphaned
from tssnode.bridge.watcher import BlockSource, RpcSource, Scanner, Sighting
from tssnode.crypto.encoding import Wire
from tssnode.ledger.errors import InvalidTransaction

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger("tssnode.bridge")

#: seconds before an observation the ledger does not hold yet is sent again
RESEND = 30.0


class MintView(Protocol):
    """The gateway's read the `GatewayWatch` makes (`bridge.gateway.Gateway`)."""

    def minted(self, n_hash: bytes) -> bool: ...


class BitcoinWatch:
    """Watches Bitcoin for deposits to the bridge's recorded addresses."""

    def __init__(
        self,
        bridge: Callable[[], BridgeApp],
        submit: Callable[[Wire], bytes],
        me: bytes,
        source: Callable[[], BlockSource],
        poll: float = 5.0,
    ) -> None:
        self.bridge, self.submit, self.me = bridge, submit, me
        self.make_source, self.poll = source, poll
        self.scanner: Scanner | None = None
        #: votes sent and not yet held by the ledger: (outpoint, kind) → (it, when sent)
        self.pending: dict[tuple[bytes, str], tuple[DepositObserved | DepositOrphaned, float]] = {}
        #: payments to deposit addresses this node's Bitcoin node shows, by outpoint
        self.sightings: dict[bytes, Sighting] = {}
        #: each ledger deposit's depth on this node's chain at the last look (0: its block
        #: left the chain; None: too old or not scanned yet)
        self.depths: dict[bytes, int | None] = {}
        self.errors = 0
        self.last_error: str | None = None

    @classmethod
    def over_rpc(
        cls,
        bridge: Callable[[], BridgeApp],
        submit: Callable[[Wire], bytes],
        me: bytes,
        url: str,
        *,
        poll: float,
        timeout: float,
    ) -> BitcoinWatch:
        return cls(bridge, submit, me, lambda: RpcSource(url, timeout), poll)

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        source: BlockSource | None = None
        while True:
            try:
                # (before the settings are agreed there is nothing to watch for, and maybe
                # no Bitcoin node yet: it is not asked)
                if self.bridge().config is not None:
                    if source is None:
                        source = self.make_source()
                    await self.look(source)
            except Exception as exc:  # (whatever the other node or the network did)
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.warning(
                    "bitcoin watch: %s (asking again in %.0f s)", self.last_error, self.poll
                )
                source = None  # a fresh connection next time
            await trio.sleep(self.poll)

    async def look(self, source: BlockSource) -> None:
        """One look at the chain: submit what is due, and send again what was lost."""
        bridge = self.bridge()
        cfg = bridge.config
        if cfg is None:
            return  # nothing to watch for until the settings are agreed
        if self.scanner is None or self.scanner.confirmations != cfg.confirmations:
            self.scanner = Scanner(cfg.confirmations)
        watched = {a.key_hash: g for g, a in bridge.addresses.items()}
        scanner = self.scanner
        deposits = dict(bridge.deposits)
        due, seen, depths, orphans = await trio.to_thread.run_sync(
            self._scan, scanner, source, watched, cfg, deposits
        )
        self.sightings = {outpoint(s.txid, s.vout): s for s in seen}
        self.depths = depths
        now = time.monotonic()
        for vote in (*due, *orphans):
            self._send(vote, now)
        for key, (vote, sent) in list(self.pending.items()):
            if self._held(bridge, key[0], vote):
                del self.pending[key]
            elif now - sent >= RESEND:
                self._send(vote, now)

    @staticmethod
    def _scan(
        scanner: Scanner,
        source: BlockSource,
        watched: dict[bytes, bytes],
        cfg: BridgeConfig,
        deposits: dict[bytes, Deposit],
    ) -> tuple[list[DepositObserved], list[Sighting], dict[bytes, int | None], list[Wire]]:
        """(In a worker thread: the RPC calls block.) Follow the chain; what is due, what
        is seen, each ledger deposit's depth, and the votes that deposits were orphaned."""
        due = scanner.step(source, watched, cfg.min_deposit_sats)
        seen = scanner.sightings(watched, cfg.min_deposit_sats)
        depths = {op: scanner.depth(d.block_hash, d.block_height) for op, d in deposits.items()}
        orphans: list[Wire] = [
            DepositOrphaned(d.txid, d.vout, d.block_hash)
            for d in deposits.values()
            if d.status in (FINAL, SIGNED)
            and scanner.orphaned(d.txid, d.vout, d.block_hash, d.block_height)
        ]
        return due, seen, depths, orphans

    def depth(self, dep: Deposit) -> int | None:
        """A ledger deposit's depth on this node's chain, as of the last look (None: not
        known here)."""
        op = outpoint(dep.txid, dep.vout)
        if op in self.depths:
            return self.depths[op]
        seen = self.sightings.get(op)  # final since the last look
        return seen.confirmations if seen and seen.block_hash == dep.block_hash else None

    def _held(self, bridge: BridgeApp, op: bytes, vote: Wire) -> bool:
        """Whether the ledger holds `vote` (or no longer needs it)."""
        dep = bridge.deposits.get(op)
        if isinstance(vote, DepositOrphaned):
            votes = bridge.orphan_votes.get(op)
            return (
                dep is None
                or dep.status == ORPHANED
                or dep.block_hash != vote.block_hash
                or (votes is not None and self.me in votes.voters(vote.to_bytes()))
            )
        assert isinstance(vote, DepositObserved)
        votes = bridge.observations.get(op)
        return (dep is not None and dep.block_hash == vote.block_hash) or (
            votes is not None and self.me in votes.voters(vote.to_bytes())
        )

    def _send(self, vote: Wire, now: float) -> None:
        assert isinstance(vote, DepositObserved | DepositOrphaned)
        op = outpoint(vote.txid, vote.vout)
        where = f"{vote.txid[::-1].hex()}:{vote.vout}"
        key = (op, "orphaned" if isinstance(vote, DepositOrphaned) else "observed")
        self.pending[key] = (vote, now)  # (a later vote of the kind replaces it)
        try:
            self.submit(vote)
        except InvalidTransaction as exc:  # the ledger's answer now, and at every resend
            log.info("deposit %s: %s not submitted: %s", where, key[1], exc)
            self.pending.pop(key, None)
            return
        if isinstance(vote, DepositOrphaned):
            log.warning(
                "deposit %s: its block %s left the chain and the output is in no other "
                "block: submitted as orphaned", where, vote.block_hash[::-1].hex(),
            )  # fmt: skip
            return
        log.info(
            "deposit %s of %d sats seen in block %d: submitted",
            where, vote.value, vote.block_height,
        )  # fmt: skip


class GatewayWatch:
    """Reads, every `poll` seconds, whether the gateway has used each signed deposit's
    authorisation (`nHashSpent`), through this validator's EVM node ([bridge.evm]). An EVM
    node that is down or on another chain is logged and asked again; once seen used, an
    authorisation is taken as used (an EVM reorg that undid a mint is not followed here)."""

    def __init__(
        self,
        bridge: Callable[[], BridgeApp],
        connect: Callable[[BridgeConfig], MintView],
        poll: float = 5.0,
    ) -> None:
        self.bridge, self.connect, self.poll = bridge, connect, poll
        #: nHashes the gateway has used
        self.minted: set[bytes] = set()
        self.errors = 0
        self.last_error: str | None = None

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        view: MintView | None = None
        while True:
            try:
                cfg = self.bridge().config
                if cfg is not None:
                    if view is None:
                        view = await trio.to_thread.run_sync(self.connect, cfg)
                    await self.look(view)
            except Exception as exc:  # (whatever the EVM node or the network did)
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.warning(
                    "gateway watch: %s (asking again in %.0f s)", self.last_error, self.poll
                )
                view = None
            await trio.sleep(self.poll)

    async def look(self, view: MintView) -> None:
        ask = [
            d.n_hash
            for d in self.bridge().deposits.values()
            if d.signature is not None and d.n_hash not in self.minted
        ]
        if not ask:
            return
        used = await trio.to_thread.run_sync(lambda: [n for n in ask if view.minted(n)])
        for n in used:
            log.info("mint authorisation %s used on the gateway", n.hex()[:16])
        self.minted.update(used)
