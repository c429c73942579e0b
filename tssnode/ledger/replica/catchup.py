"""Catching up: status polls, fetching certified blocks and adopting them (state transfer)."""

from __future__ import annotations

import contextlib
import logging

from tssnode.ledger.blocks import (
    BlockRecord,
    verify_checkpoint_certificate,
)
from tssnode.ledger.errors import (
    InvalidBlock,
    InvalidCertificate,
    InvalidMessage,
    LedgerError,
)
from tssnode.ledger.messages import (
    BlocksFrame,
    FetchBlocks,
    Status,
    StatusRequest,
)
from tssnode.ledger.replica.base import MAX_BLOCKS_FRAME_BYTES, MAX_FETCH, ReplicaBase

log = logging.getLogger(__name__)


class CatchUp(ReplicaBase):
    """Catching up: status polls, fetching certified blocks and adopting them (state transfer)."""

    # -- catching up --------------------------------------------------------------------------

    def _peers(self) -> list[bytes]:
        return [p for p in self.config() if p != self.me]

    def _next_peer(self) -> bytes | None:
        peers = self._peers()
        if not peers:
            return None
        self._peer_turn += 1
        return peers[self._peer_turn % len(peers)]

    def _ask_status(self, peer: bytes | None = None, *, once: bool = False) -> None:
        if once:
            if self._status_asked:
                return
            self._status_asked = True
        peer = peer or self._next_peer()
        if peer is not None and peer != self.me:
            self.out.send(peer, StatusRequest(self.height).to_bytes())

    def _catch_up(self) -> None:
        """Fetch certified blocks when someone is known to be ahead."""
        behind = self.transfer_target is not None and self.transfer_target.seq > self.height
        if not (behind or self._fetch_peer is not None) or self._fetching:
            return
        peer = self._fetch_peer
        if peer is None and self.transfer_target is not None:
            signers = [s for s, _ in self.transfer_target.votes if s != self.me]
            self._peer_turn += 1
            peer = signers[self._peer_turn % len(signers)] if signers else self._next_peer()
        if peer is None:
            return
        self._fetching = True
        self._set_timer("fetch", self.opt.view_timeout)
        self.out.send(peer, FetchBlocks(self.height + 1, self.opt.fetch_count).to_bytes())

    def _on_status_request(self, sender: bytes) -> None:
        status = Status(
            self._genesis_bytes,
            self.height,
            self.view,
            self.stable_cert,
            self.journal.view.new_view,
        )
        self.out.send(sender, status.to_bytes())

    def _on_status(self, sender: bytes, status: Status) -> None:
        if status.genesis != self._genesis_bytes:
            raise InvalidMessage("status from another chain")
        if status.checkpoint is not None and status.checkpoint.seq > self.low:
            cert = status.checkpoint
            try:
                verify_checkpoint_certificate(self.chain_id, cert, self.config(cert.seq))
            except InvalidCertificate:
                pass  # a set we cannot check yet; blocks are verified one by one anyway
            else:
                self._certified_checkpoint(cert)
        if status.height > self.height and not self._fetching:
            self._fetch_peer = sender
            self._catch_up()
        behind = status.view > self.view or (status.view == self.view and not self.active)
        if status.new_view is not None and behind and not self.halted:
            with contextlib.suppress(InvalidMessage, InvalidCertificate):
                self._on_new_view(status.new_view)

    def _on_fetch(self, sender: bytes, req: FetchBlocks) -> None:
        if not 0 <= req.start < 2**64:  # (a height beyond the store's 64-bit keys raised
            raise InvalidMessage("block request out of range")  # struct.error: issue 13)
        count = max(0, min(req.count, MAX_FETCH))
        records: list[bytes] = []
        size = 0
        for rec in self.chain.records(req.start, count):
            raw = rec.to_bytes()
            if records and size + len(raw) > MAX_BLOCKS_FRAME_BYTES:
                break
            records.append(raw)
            size += len(raw)
        self.out.send(sender, BlocksFrame(tuple(records)).to_bytes())

    def _on_blocks(self, sender: bytes, frame: BlocksFrame) -> None:
        self._fetching = False
        self._cancel_timer("fetch")
        records = [BlockRecord.from_bytes(r) for r in frame.records[:MAX_FETCH]]
        records = [r for r in records if r.block.height > self.height]
        if not records:
            self._fetch_peer = None
            return
        if records[0].block.height != self.height + 1:
            raise InvalidBlock("fetched blocks do not start at the next height")
        try:
            blocks = self.chain.adopt(records, at_ms=int(self.clock() * 1000))
        except (InvalidBlock, InvalidCertificate, LedgerError) as exc:
            self._fetch_peer = None
            raise InvalidBlock(f"state transfer from {sender.hex()[:8]}: {exc}") from exc
        self.stats.transferred += len(blocks)
        log.info(
            "state transfer: %d blocks from %s, now at height %d",
            len(blocks), sender.hex()[:8], blocks[-1].height if blocks else self.height,
        )  # fmt: skip
        self._after_blocks(blocks)
        self._execute_ready()
        target = self.transfer_target
        if target is not None and self.height >= target.seq:
            self.transfer_target = None
            self._certified_checkpoint(target)
        # more to fetch: a full frame by count, or one cut short by its byte bound
        cut_short = sum(len(r) for r in frame.records) > MAX_BLOCKS_FRAME_BYTES // 2
        if (
            len(records) >= min(self.opt.fetch_count, MAX_FETCH)
            or cut_short
            or (self.transfer_target is not None)
        ):
            self._fetch_peer = sender
            self._catch_up()
        else:
            self._fetch_peer = None
