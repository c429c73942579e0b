"""The node's watch of the EVM chain the bridge mints on (`GatewayWatch`): which signed
deposits' authorisations the gateway has used, and the gateway's burns, read through this
validator's EVM node.

What it shares with the Bitcoin watch (`node/watch.py`: the RPC calls in worker threads,
an observation sent again every `RESEND` seconds until the ledger holds this validator's
vote) is described and set there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import trio

from tssnode.bridge.app import BridgeApp
from tssnode.bridge.evmlogs import BurnLog
from tssnode.bridge.records import BridgeConfig
from tssnode.bridge.releases import V_BURN
from tssnode.bridge.transactions import BurnObserved
from tssnode.crypto.encoding import Wire
from tssnode.ledger.errors import InvalidTransaction
from tssnode.node.watch import RESEND

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger("tssnode.bridge")

#: EVM blocks below the confirmed tip scanned again at every look (a burn whose block a
#: reorg replaced is observed again in its new block), and the most asked for at once
EVM_REORG_WINDOW, EVM_CHUNK = 64, 5000


class MintView(Protocol):
    """The gateway's reads the `GatewayWatch` makes (`bridge.gateway.Gateway`)."""

    def minted(self, n_hash: bytes) -> bool: ...
    def supply(self) -> int: ...
    def block_number(self) -> int: ...
    def burns(self, from_block: int, to_block: int) -> list[BurnLog]: ...


class GatewayWatch:
    """Reads, every `poll` seconds, through this validator's EVM node ([bridge.evm]):
    whether the gateway has used each signed deposit's authorisation (`nHashSpent`; once
    seen used, taken as used: an EVM reorg that undid a mint is not followed here); and,
    once the release settings are in force, the gateway's burns `evm_confirmations` deep,
    each submitted (`BurnObserved`) until the ledger holds this validator's vote. The
    last `EVM_REORG_WINDOW` blocks are read again at every look, so a burn a reorg moved
    is observed in its new block (the vote follows it, as for deposits). An EVM node that
    is down or on another chain is logged and asked again."""

    def __init__(
        self,
        bridge: Callable[[], BridgeApp],
        connect: Callable[[BridgeConfig], MintView],
        poll: float = 5.0,
        *,
        submit: Callable[[Wire], bytes] | None = None,
        me: bytes = b"",
    ) -> None:
        self.bridge, self.connect, self.poll = bridge, connect, poll
        #: how burns seen are submitted, and this validator (None: burns are not watched)
        self.submit, self.me = submit, me
        #: nHashes the gateway has used, and the wrapped token's supply at the last look
        self.minted: set[bytes] = set()
        self.supply: int | None = None
        #: the last EVM block scanned for burns, and burn observations sent: nonce → (it,
        #: when)
        self.scanned_to = -1
        self.sent: dict[int, tuple[BurnObserved, float]] = {}
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
        await self._mints(view)
        self.supply = await trio.to_thread.run_sync(view.supply)
        if self.submit is not None and self.bridge().release_config is not None:
            await self._burns(view)

    async def _burns(self, view: MintView) -> None:
        """Observe the gateway's burns `evm_confirmations` deep, and submit each until the
        ledger holds this validator's vote for it or the burn is final."""
        bridge = self.bridge()
        rc = bridge.release_config
        assert rc is not None and self.submit is not None
        latest = await trio.to_thread.run_sync(view.block_number)
        safe = latest - rc.evm_confirmations + 1
        start = max(0, min(self.scanned_to + 1, safe - EVM_REORG_WINDOW))
        logs: list[BurnLog] = []
        for first in range(start, safe + 1, EVM_CHUNK):
            last = min(safe, first + EVM_CHUNK - 1)
            logs += await trio.to_thread.run_sync(view.burns, first, last)
        self.scanned_to = max(self.scanned_to, safe)
        now = time.monotonic()
        for log_ in logs:
            obs = BurnObserved(
                log_.nonce, log_.to, log_.amount, log_.tx_hash, log_.block_hash,
                log_.block_number,
            )  # fmt: skip
            if log_.nonce in bridge.burns:
                continue
            votes = bridge.release_votes.get(V_BURN + log_.nonce.to_bytes(8, "big"))
            if votes is not None and self.me in votes.voters(obs.to_bytes()):
                continue
            sent = self.sent.get(log_.nonce)
            if sent is not None and sent[0] == obs and now - sent[1] < RESEND:
                continue
            self.sent[log_.nonce] = (obs, now)
            try:
                self.submit(obs)
            except InvalidTransaction as exc:
                log.info("burn %d not submitted: %s", log_.nonce, exc)
                continue
            log.info(
                "burn %d of %d sats to %r seen in EVM block %d: submitted",
                log_.nonce, log_.amount, log_.to[:90].decode("ascii", "replace"),
                log_.block_number,
            )  # fmt: skip
        for nonce in [n for n in self.sent if n in bridge.burns]:
            del self.sent[nonce]

    async def _mints(self, view: MintView) -> None:
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
