"""The node's watches of the chains the bridge spans.

`BitcoinWatch`: the bridge's `Scanner` run against this validator's Bitcoin node, what it
saw submitted to the ledger until the ledger has it (deposits at depth, and final deposits
whose block a reorg took away), and what it sees now kept for the API (payments in the
mempool or not yet deep enough, and each final deposit's depth).
`GatewayWatch` (`node/evmwatch.py`): which signed deposits' authorisations the gateway
has used, read through this validator's EVM node.

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
import math
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import trio

from tssnode.bridge.app import BridgeApp
from tssnode.bridge.btctx import Coin as TxCoin
from tssnode.bridge.btctx import ScriptRejected, verify_spends
from tssnode.bridge.records import (
    FEE_REPORT_BLOCKS,
    FINAL,
    ORPHANED,
    R_CONFIRMED,
    R_REPLACED,
    R_SIGNED,
    SIGNED,
    BridgeConfig,
    Deposit,
    Release,
    outpoint,
    release_key,
)
from tssnode.bridge.releases import V_BUMP, V_CONFIRMED
from tssnode.bridge.transactions import (
    BumpRequest,
    DepositObserved,
    DepositOrphaned,
    FeeReport,
    ReleaseConfirmed,
)
from tssnode.bridge.watcher import BitcoinNode, BlockSource, RpcSource, Scanner, Sighting
from tssnode.crypto.encoding import Wire
from tssnode.ledger.errors import InvalidTransaction

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger("tssnode.bridge")

#: seconds before an observation the ledger does not hold yet is sent again
RESEND = 30.0
#: seconds between looks at the fee estimate, and the confirmation target it asks for
FEE_EVERY, FEE_TARGET = 60.0, 6
#: a Bitcoin node's answers that mean "it has the transaction already"
ALREADY = ("txn-already-in-mempool", "txn-already-known", "already in block chain")


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
        #: votes sent and not yet held by the ledger: (outpoint or release, kind) → (it,
        #: when sent)
        self.pending: dict[tuple[bytes, str], tuple[Wire, float]] = {}
        #: payments to deposit addresses this node's Bitcoin node shows, by outpoint
        self.sightings: dict[bytes, Sighting] = {}
        #: each ledger deposit's depth on this node's chain at the last look (0: its block
        #: left the chain; None: too old or not scanned yet)
        self.depths: dict[bytes, int | None] = {}
        self.errors = 0
        self.last_error: str | None = None
        #: the Bitcoin tip when this node first saw each release attempt signed, and when
        #: it last broadcast it (by `release_key`); when it last looked at the fee estimate
        self.signed_at: dict[bytes, int] = {}
        self.broadcast_at: dict[bytes, float] = {}
        self.fee_at = -FEE_EVERY

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
        releases = [r for r in bridge.releases.values() if r.status in (R_SIGNED, R_REPLACED)]
        txids = frozenset(r.txid[::-1].hex() for r in releases)
        due, seen, depths, orphans = await trio.to_thread.run_sync(
            self._scan, scanner, source, watched, cfg, deposits, txids
        )
        self.sightings = {outpoint(s.txid, s.vout): s for s in seen}
        self.depths = depths
        now = time.monotonic()
        entered: dict[bytes, int] = {}
        if bridge.release_config is not None and isinstance(source, BitcoinNode):
            waiting = [r for r in releases if r.status == R_SIGNED]
            entered = await trio.to_thread.run_sync(self._entered, source, waiting)
        release_votes = [
            v
            for v in self._release_votes(bridge, cfg, releases, scanner, entered)
            if not self._held(bridge, b"", v)
        ]
        for vote in (*due, *orphans, *release_votes):
            self._send(vote, now)
        for key, (vote, sent) in list(self.pending.items()):
            if self._held(bridge, key[0], vote):
                del self.pending[key]
            elif now - sent >= RESEND:
                self._send(vote, now)

        if bridge.release_config is not None and isinstance(source, BitcoinNode):
            await self._broadcast(source, bridge, releases, scanner, now)
            await self._report_fee(source, bridge, now)

    # -- releases -------------------------------------------------------------------------------

    @staticmethod
    def _entered(node: BitcoinNode, releases: list[Release]) -> dict[bytes, int]:
        """(In a worker thread.) The height at which each release entered the node's
        mempool (Bitcoin Core's `getmempoolentry` "height"), for those it holds."""
        out: dict[bytes, int] = {}
        for rel in releases:
            try:
                entry = node.getmempoolentry(rel.txid[::-1].hex())
            except KeyError:
                continue
            out[release_key(rel.seq, rel.attempt)] = int(entry["height"])
        return out

    def _release_votes(
        self,
        bridge: BridgeApp,
        cfg: BridgeConfig,
        releases: list[Release],
        scanner: Scanner,
        entered: dict[bytes, int],
    ) -> list[Wire]:
        """A release attempt mined `confirmations` deep: ReleaseConfirmed. The latest
        attempt still unmined `bump_after` blocks after it entered the mempool (or, if
        this node's mempool never had it, after this node saw it signed): BumpRequest.
        The mempool's entry height is what makes the validators count from the same
        block: counted from each one's first sight, a few fast blocks split them, and a
        bump then never gathers 2f+1 votes."""
        rc = bridge.release_config
        out: list[Wire] = []
        for rel in releases:
            key = release_key(rel.seq, rel.attempt)
            block = scanner.located(rel.txid[::-1].hex())
            if block is not None:
                if scanner.tip - block.height + 1 >= cfg.confirmations:
                    out.append(
                        ReleaseConfirmed(
                            rel.seq, rel.attempt, rel.txid, bytes.fromhex(block.hash)[::-1],
                            block.height,
                        )
                    )  # fmt: skip
                continue
            if rel.status != R_SIGNED or rc is None:
                continue
            first = min(self.signed_at.setdefault(key, scanner.tip), entered.get(key, scanner.tip))
            self.signed_at[key] = first
            if scanner.tip - first >= rc.bump_after:
                out.append(BumpRequest(rel.seq, rel.attempt))
        return out

    async def _broadcast(
        self,
        node: BitcoinNode,
        bridge: BridgeApp,
        releases: list[Release],
        scanner: Scanner,
        now: float,
    ) -> None:
        """Broadcast each signed release not mined yet (every `RESEND` seconds: a node that
        restarted, or a mempool that dropped it, gets it again), once Bitcoin Core's engine
        has checked every input script and the node's mempool would take it."""
        for rel in releases:
            key = release_key(rel.seq, rel.attempt)
            if rel.status != R_SIGNED or scanner.located(rel.txid[::-1].hex()) is not None:
                continue
            if now - self.broadcast_at.get(key, -RESEND) < RESEND:
                continue
            self.broadcast_at[key] = now
            coins = [bridge.coins[op] for op in rel.inputs]
            spent = [TxCoin(c.txid, c.vout, c.value, c.key_hash) for c in coins]
            txid = rel.txid[::-1].hex()
            try:
                verify_spends(rel.signed_tx, spent)
            except ScriptRejected as exc:
                log.error("release %s is not broadcast: %s", txid, exc)
                continue
            try:
                said = await trio.to_thread.run_sync(self._send_raw, node, rel.signed_tx.hex())
            except Exception as exc:  # (whatever the Bitcoin node answered or failed with)
                log.warning("release %s not broadcast: %s: %s", txid, type(exc).__name__, exc)
                continue
            log.info("release %d/%d (%s): %s", rel.seq, rel.attempt, txid, said)

    @staticmethod
    def _send_raw(node: BitcoinNode, raw: str) -> str:
        (verdict,) = node.testmempoolaccept([raw])
        reason = str(verdict.get("reject-reason", ""))
        if not verdict.get("allowed") and reason not in ALREADY:
            return f"the mempool refuses it ({reason}): not sent"
        try:
            node.sendrawtransaction(raw)
        except Exception as exc:  # -27 "already in block chain", or the mempool has it
            if not any(a in str(exc) for a in ALREADY):
                raise
        return "broadcast"

    async def _report_fee(self, node: BitcoinNode, bridge: BridgeApp, now: float) -> None:
        """Every `FEE_EVERY` seconds: report this node's fee estimate if it changed, or
        if the ledger's copy of the last report is half way to counting no more."""
        if now - self.fee_at < FEE_EVERY:
            return
        self.fee_at = now
        estimate = await trio.to_thread.run_sync(node.estimatesmartfee, FEE_TARGET)
        if "feerate" not in estimate:
            log.warning("no fee estimate from the Bitcoin node: %s", estimate.get("errors"))
            return
        rate = max(1, math.ceil(Decimal(str(estimate["feerate"])) * 100_000))  # BTC/kvB → sat/vB
        mine = bridge.fees.get(self.me)
        fresh = mine is not None and bridge.ledger.height - mine.height < FEE_REPORT_BLOCKS // 2
        if fresh and mine is not None and mine.sat_per_vb == rate:
            return
        try:
            self.submit(FeeReport(rate))
        except InvalidTransaction as exc:
            log.info("fee rate not reported: %s", exc)
            return
        log.info("fee rate %d sat/vB reported", rate)

    @staticmethod
    def _scan(
        scanner: Scanner,
        source: BlockSource,
        watched: dict[bytes, bytes],
        cfg: BridgeConfig,
        deposits: dict[bytes, Deposit],
        txids: frozenset[str],
    ) -> tuple[list[DepositObserved], list[Sighting], dict[bytes, int | None], list[Wire]]:
        """(In a worker thread: the RPC calls block.) Follow the chain; what is due, what
        is seen, each ledger deposit's depth, and the votes that deposits were orphaned."""
        due = scanner.step(source, watched, cfg.min_deposit_sats, txids)
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
        if isinstance(vote, ReleaseConfirmed | BumpRequest):
            key = release_key(vote.seq, vote.attempt)
            rel = bridge.releases.get(key)
            kind = V_CONFIRMED if isinstance(vote, ReleaseConfirmed) else V_BUMP
            votes = bridge.release_votes.get(kind + key)
            done = R_CONFIRMED if isinstance(vote, ReleaseConfirmed) else R_SIGNED
            settled = rel is None or (
                rel.status == R_CONFIRMED if done == R_CONFIRMED else rel.status != R_SIGNED
            )
            return settled or (votes is not None and self.me in votes.voters(vote.to_bytes()))
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
        if isinstance(vote, ReleaseConfirmed | BumpRequest):
            self._send_release_vote(vote, now)
            return
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

    def _send_release_vote(self, vote: ReleaseConfirmed | BumpRequest, now: float) -> None:
        kind = "confirmed" if isinstance(vote, ReleaseConfirmed) else "bump"
        key = (release_key(vote.seq, vote.attempt), kind)
        sent = self.pending.get(key)
        if sent is not None and sent[0] == vote and now - sent[1] < RESEND:
            return  # sent already: the resend loop sends it again if it is lost
        self.pending[key] = (vote, now)
        try:
            self.submit(vote)
        except InvalidTransaction as exc:
            log.info("release %d/%d: %s not submitted: %s", vote.seq, vote.attempt, kind, exc)
            self.pending.pop(key, None)
            return
        log.info("release %d/%d: %s submitted", vote.seq, vote.attempt, kind)
