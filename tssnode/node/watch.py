"""The node's Bitcoin watch: the bridge's `Scanner` run against this validator's Bitcoin
node, and what it saw submitted to the ledger until the ledger has it.

The RPC calls block, so each look at the chain runs in a worker thread. A Bitcoin node
that is down, slow or answering nonsense is logged and asked again at the next poll; the
node keeps running. An observation is sent again (every `RESEND` seconds) until the
ledger holds this validator's vote for it, or the deposit is final: a transaction dropped
before it was ordered (a view change, a restart) must not leave a deposit one vote short.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from tssnode.bridge.app import BridgeApp
from tssnode.bridge.records import outpoint
from tssnode.bridge.transactions import DepositObserved
from tssnode.bridge.watcher import BlockSource, RpcSource, Scanner
from tssnode.crypto.encoding import Wire
from tssnode.ledger.errors import InvalidTransaction

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger("tssnode.bridge")

#: seconds before an observation the ledger does not hold yet is sent again
RESEND = 30.0


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
        #: observations sent and not yet held by the ledger: outpoint → (it, when sent)
        self.pending: dict[bytes, tuple[DepositObserved, float]] = {}
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
        due = await trio.to_thread.run_sync(scanner.step, source, watched, cfg.min_deposit_sats)
        now = time.monotonic()
        for obs in due:
            self._send(obs, now)
        for op, (obs, sent) in list(self.pending.items()):
            if self._held(bridge, op, obs):
                del self.pending[op]
            elif now - sent >= RESEND:
                self._send(obs, now)

    def _held(self, bridge: BridgeApp, op: bytes, obs: DepositObserved) -> bool:
        votes = bridge.observations.get(op)
        return op in bridge.deposits or (
            votes is not None and self.me in votes.voters(obs.to_bytes())
        )

    def _send(self, obs: DepositObserved, now: float) -> None:
        op = outpoint(obs.txid, obs.vout)
        self.pending[op] = (obs, now)  # (a later observation of the output replaces it)
        try:
            self.submit(obs)
        except InvalidTransaction as exc:  # the ledger's answer now, and at every resend
            log.info("deposit %s:%d not submitted: %s", obs.txid[::-1].hex(), obs.vout, exc)
            self.pending.pop(op, None)
            return
        log.info(
            "deposit %s:%d of %d sats seen in block %d: submitted",
            obs.txid[::-1].hex(), obs.vout, obs.value, obs.block_height,
        )  # fmt: skip
