"""The node's bridge requests and views (`NodeCore` includes them): the bridge's settings
proposed and shown, deposit addresses asked for and listed, deposits as the ledger has them
(final, signed, orphaned) and as this validator's own watches see them (seen in the
mempool, confirming, minted on the gateway).

A deposit address is computed here exactly as the ledger will record it (the same
`bridge.hashes` on the same settings), so the answer carries the address at once; the
request is accepted only once it is journalled and on its way to ordering (`_submit`), so
the nonce is never lost.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, cast

from eth_utils.address import to_checksum_address

from tssnode import schema
from tssnode.bridge.app import BridgeApp
from tssnode.bridge.hashes import (
    deposit_address,
    g_hash,
    n_hash,
    p_hash,
    s_hash,
    sig_hash,
)
from tssnode.bridge.records import (
    BURN_FINAL,
    BURN_RELEASED,
    BURN_UNPAYABLE,
    MAX_PAYLOAD,
    R_CONFIRMED,
    R_SIGNED,
    SIGNED,
    BridgeConfig,
    Burn,
    Deposit,
    DepositAddress,
    outpoint,
)
from tssnode.bridge.transactions import (
    BridgeSetup,
    BurnObserved,
    DepositAddressRequest,
    ReleaseSetup,
)
from tssnode.bridge.watcher import Sighting
from tssnode.crypto.addresses import btc_p2wpkh, eth_address
from tssnode.ledger.errors import InvalidTransaction
from tssnode.node.errors import BAD_REQUEST, CONFLICT, NOT_FOUND, RequestRejected
from tssnode.node.parts import CoreParts
from tssnode.registry.transactions import AppSignRequest

if TYPE_CHECKING:
    from tssnode.node.evmwatch import GatewayWatch
    from tssnode.node.watch import BitcoinWatch

log = logging.getLogger("tssnode.bridge")


ReleaseStatus = Literal["seen", "final", "signing", "broadcast", "confirmed", "unpayable"]
AttemptStatus = Literal["signing", "signed", "confirmed", "replaced"]
DepositStatus = Literal["seen", "confirming", "final", "signed", "minted", "orphaned"]
#: a burn's status in the ledger, as the API names it (releasing: by its attempt)
_BURN_STATUS: dict[str, ReleaseStatus] = {
    BURN_FINAL: "final",
    BURN_RELEASED: "confirmed",
    BURN_UNPAYABLE: "unpayable",
}


def _hex(name: str, value: str, size: int | None = None, *, limit: int = 4096) -> bytes:
    """`value` (hex, 0x optional) as bytes of `size` (any size up to `limit` if None)."""
    raw = value.removeprefix("0x")
    try:
        out = bytes.fromhex(raw)
    except ValueError:
        raise RequestRejected(BAD_REQUEST, f"{name} is not hex") from None
    if size is not None and len(out) != size:
        raise RequestRejected(BAD_REQUEST, f"{name} is {size} bytes of hex")
    if len(out) > limit:
        raise RequestRejected(BAD_REQUEST, f"{name} is at most {limit} bytes")
    return out


#: seconds a final deposit waits for its mint request per rank of this validator in the
#: deposit's order (rank 0 asks at once; the next asks if nothing is under way by then)
MINT_FALLBACK = 30.0


def _rank_key(op: bytes, validator: bytes) -> bytes:
    return hashlib.sha256(op + validator).digest()


class NodeBridge(CoreParts):
    """The bridge side of the API facade, and the asking for mint signatures."""

    #: when this node saw each final deposit, and when it last asked for its signature
    _mint_seen: dict[bytes, float]
    _mint_asked: dict[bytes, float]
    bitcoin_watch: BitcoinWatch | None
    gateway_watch: GatewayWatch | None

    def _ask_mints(self) -> None:
        """Ask the registry for each signature the bridge waits for: a final deposit's
        mint authorisation, or a release input (`BridgeApp.wanted_signatures`; the inputs
        of a release are asked for together, so their sessions run side by side).

        One validator asks (the first in an order made from the subject, so the asking
        is spread over the validators); if no request is under way `MINT_FALLBACK`
        seconds later, the next one in the order asks, and so on: a validator that is
        down delays a signature, it does not stop it. A failed request is asked again by
        its asker without the parties that failed it (`_follow`)."""
        try:
            bridge = self.state.app(BridgeApp)
        except KeyError:
            return
        cfg = bridge.config
        if cfg is None:
            return
        now, me = time.monotonic(), self.identity.public_bytes()
        validators = tuple(self.replica.config())
        live: set[bytes] = set()
        for subject, digest, path in bridge.wanted_signatures():
            live.add(subject)
            seen = self._mint_seen.setdefault(subject, now)
            order = sorted(validators, key=partial(_rank_key, subject))
            if me not in order or now - seen < order.index(me) * MINT_FALLBACK:
                continue
            if now - self._mint_asked.get(subject, -MINT_FALLBACK) < MINT_FALLBACK:
                continue
            if self.registry.app_signing("bridge", subject):
                continue
            request = AppSignRequest(cfg.key_id, "bridge", subject, digest, path)
            try:
                tx = self.accept(request)
            except InvalidTransaction as exc:
                log.info("signature for %s not asked for: %s", subject.hex()[:16], exc)
                continue
            self._mint_asked[subject] = now
            log.info("signature for %s asked for (%s)", subject.hex()[:16], tx.hex()[:12])
            self._follow(tx, request)
        for gone in set(self._mint_seen) - live:  # signed (or never ours to ask for)
            self._mint_seen.pop(gone, None)
            self._mint_asked.pop(gone, None)

    @property
    def bridge(self) -> BridgeApp:
        try:
            return self.state.app(BridgeApp)
        except KeyError:
            raise RequestRejected(NOT_FOUND, "this node's ledger runs no bridge") from None

    def _bridge_config(self) -> BridgeConfig:
        cfg = self.bridge.config
        if cfg is None:
            raise RequestRejected(CONFLICT, "the bridge is not set up (POST /bridge/setup)")
        return cfg

    # -- views ----------------------------------------------------------------------------------

    def bridge_info(self) -> schema.BridgeInfo:
        """`GET /bridge`: the settings in force, or that there are none yet."""
        cfg = self.bridge.config
        if cfg is None:
            return schema.BridgeInfo(
                set_up=False, proposals=len(self.bridge.setup_votes), watch=self._watch_view()
            )
        return schema.BridgeInfo(
            set_up=True,
            proposals=0,
            watch=self._watch_view(),
            release=self._release_info(),
            key_id=cfg.key_id,
            mint_authority=eth_address(cfg.public_key),
            chain_name=cfg.chain_name,
            s_hash="0x" + s_hash(cfg.chain_name).hex(),
            chain_id=cfg.chain_id,
            gateway=to_checksum_address(cfg.gateway),
            network=cfg.network,
            confirmations=cfg.confirmations,
            fee_sats=cfg.fee_sats,
            min_deposit_sats=cfg.min_deposit_sats,
            height=cfg.height,
        )

    def _release_info(self) -> schema.ReleaseInfo | None:
        b = self.bridge
        rc = b.release_config
        cfg = b.config
        if rc is None or cfg is None:
            return None
        return schema.ReleaseInfo(
            evm_confirmations=rc.evm_confirmations,
            bump_after=rc.bump_after,
            min_release_sats=rc.min_release_sats,
            max_fee_rate=rc.max_fee_rate,
            sweep_at=rc.sweep_at,
            height=rc.height,
            fee_rate=b.fee_rate(self.state.height),
            holdings_sats=sum(c.value for c in b.coins.values()),
            wrapped_supply=None if self.gateway_watch is None else self.gateway_watch.supply,
            coins=len(b.coins),
            main_address=btc_p2wpkh(b.main_key()[0], cfg.network),
        )

    def _release_view(self, burn: Burn) -> schema.Release:
        b = self.bridge
        attempts = sorted(
            (r for r in b.releases.values() if burn.release and r.seq == burn.release),
            key=lambda r: r.attempt,
        )
        shown = next((r for r in attempts if r.status == R_CONFIRMED), None) or (
            attempts[-1] if attempts else None
        )
        status: ReleaseStatus | None = _BURN_STATUS.get(burn.status)
        if status is None:  # releasing
            status = "broadcast" if shown is not None and shown.status == R_SIGNED else "signing"
        confirmations = None
        watch = self.bitcoin_watch
        if shown is not None and watch is not None and watch.scanner is not None:
            block = watch.scanner.located(shown.txid[::-1].hex())
            if block is not None:
                confirmations = watch.scanner.tip - block.height + 1
        paid = burn.paid or None
        if paid is None and shown is not None and burn.nonce in shown.burns:
            paid = shown.outputs[shown.burns.index(burn.nonce)][1]
        return schema.Release(
            burn_nonce=burn.nonce,
            to=burn.to,
            amount=burn.amount,
            status=status,
            release=burn.release or None,
            txid=None if shown is None else shown.txid[::-1].hex(),
            fee_rate=None if shown is None else shown.fee_rate,
            paid=paid,
            confirmations=confirmations,
            attempts=[
                schema.ReleaseAttempt(
                    attempt=r.attempt,
                    txid=r.txid[::-1].hex(),
                    status=cast(AttemptStatus, r.status),
                    fee_rate=r.fee_rate,
                    fee=r.fee,
                    inputs=len(r.inputs),
                    signed_inputs=sum(x is not None for x in r.signatures),
                    raw=r.signed_tx.hex() or None,
                )
                for r in attempts
            ],
            evm_tx="0x" + burn.evm_tx.hex(),
            evm_block=burn.evm_height,
            height=burn.height,
        )

    def _seen_burn_view(self, obs: BurnObserved) -> schema.Release:
        return schema.Release(
            burn_nonce=obs.nonce, to=obs.to.decode("ascii", "replace"),
            amount=obs.amount, status="seen", release=None, txid=None,
            fee_rate=None, paid=None, confirmations=None, attempts=[],
            evm_tx="0x" + obs.evm_tx.hex(), evm_block=obs.evm_height, height=None,
        )  # fmt: skip

    def releases(self) -> list[schema.Release]:
        """`GET /bridge/releases`: every burn the ledger has, by nonce, then those this
        node's EVM watch saw that are not final yet."""
        self._bridge_config()
        b = self.bridge
        out = [self._release_view(burn) for _, burn in sorted(b.burns.items())]
        watch = self.gateway_watch
        if watch is not None:
            out += [
                self._seen_burn_view(obs)
                for nonce, (obs, _) in sorted(watch.sent.items())
                if nonce not in b.burns
            ]
        return out

    def release(self, burn_nonce: int) -> schema.Release | None:
        """`GET /bridge/releases/{burn_nonce}`."""
        self._bridge_config()
        burn = self.bridge.burns.get(burn_nonce)
        if burn is not None:
            return self._release_view(burn)
        watch = self.gateway_watch
        sent = None if watch is None else watch.sent.get(burn_nonce)
        return None if sent is None else self._seen_burn_view(sent[0])

    def _watch_view(self) -> schema.BridgeWatch:
        """How this validator's watches of the two chains are doing (None: not configured)."""
        btc, evm = self.bitcoin_watch, self.gateway_watch
        return schema.BridgeWatch(
            bitcoin=None
            if btc is None
            else schema.BitcoinWatchInfo(
                tip=None if btc.scanner is None or btc.scanner.tip < 0 else btc.scanner.tip,
                reorgs=0 if btc.scanner is None else btc.scanner.reorgs,
                mempool_payments=sum(s.block_hash is None for s in btc.sightings.values()),
                errors=btc.errors,
                last_error=btc.last_error,
            ),
            evm=None
            if evm is None
            else schema.GatewayWatchInfo(
                minted=len(evm.minted), errors=evm.errors, last_error=evm.last_error
            ),
        )

    def _address_view(
        self, rec: DepositAddress, cfg: BridgeConfig, status: Literal["pending", "recorded"]
    ) -> schema.DepositAddress:
        return schema.DepositAddress(
            address=rec.address,
            gHash="0x" + rec.g_hash.hex(),
            pHash="0x" + rec.p_hash.hex(),
            sHash="0x" + s_hash(cfg.chain_name).hex(),
            nonce="0x" + rec.nonce.hex(),
            to=to_checksum_address(rec.to),
            payload="0x" + rec.payload.hex(),
            key_id=cfg.key_id,
            status=status,
            height=rec.height if status == "recorded" else None,
        )

    def deposit_addresses(self, to: str | None = None) -> list[schema.DepositAddress]:
        """`GET /bridge/addresses[?to=0x…]`: the recorded deposit addresses, oldest first."""
        cfg = self._bridge_config()
        want = _hex("to", to, 20) if to is not None else None
        recs = sorted(self.bridge.addresses.values(), key=lambda r: (r.height, r.g_hash))
        return [
            self._address_view(r, cfg, "recorded") for r in recs if want is None or r.to == want
        ]

    def _deposit_view(self, dep: Deposit) -> schema.Deposit:
        addr = self.bridge.addresses[dep.g_hash]
        sig = dep.signature
        minted = None if self.gateway_watch is None else dep.n_hash in self.gateway_watch.minted
        status = "minted" if minted and dep.status == SIGNED else dep.status
        return schema.Deposit(
            txid=dep.txid[::-1].hex(),  # as Bitcoin Core shows it
            vout=dep.vout,
            status=cast(DepositStatus, status),
            confirmations=None if self.bitcoin_watch is None else self.bitcoin_watch.depth(dep),
            minted=minted,
            value_sats=dep.value,
            amount=dep.amount,
            to=to_checksum_address(addr.to),
            address=addr.address,
            gHash="0x" + dep.g_hash.hex(),
            pHash="0x" + addr.p_hash.hex(),
            nHash="0x" + dep.n_hash.hex(),
            sigHash="0x" + dep.sig_hash.hex(),
            block_hash=dep.block_hash[::-1].hex(),
            block_height=dep.block_height,
            height=dep.height,
            signature=None
            if sig is None
            else schema.MintSignature(r=f"0x{sig.r:064x}", s=f"0x{sig.s:064x}", v=sig.eth_v()),
        )

    def _sighting_view(self, seen: Sighting, cfg: BridgeConfig) -> schema.Deposit | None:
        """A payment this validator's Bitcoin node shows that is not a ledger deposit yet:
        its mint digest as it will be once final (nothing about it is agreed yet)."""
        addr = self.bridge.addresses.get(seen.g_hash)
        if addr is None:
            return None
        amount = seen.value - cfg.fee_sats
        n = n_hash(addr.nonce, seen.txid, seen.vout)
        digest = sig_hash(
            addr.p_hash, amount, s_hash(cfg.chain_name), addr.to, n, cfg.chain_id, cfg.gateway
        )
        return schema.Deposit(
            txid=seen.txid[::-1].hex(),
            vout=seen.vout,
            status="seen" if seen.block_hash is None else "confirming",
            confirmations=seen.confirmations,
            minted=None,
            value_sats=seen.value,
            amount=amount,
            to=to_checksum_address(addr.to),
            address=addr.address,
            gHash="0x" + seen.g_hash.hex(),
            pHash="0x" + addr.p_hash.hex(),
            nHash="0x" + n.hex(),
            sigHash="0x" + digest.hex(),
            block_hash=None if seen.block_hash is None else seen.block_hash[::-1].hex(),
            block_height=seen.block_height,
            height=None,
            signature=None,
        )

    def _sightings(self) -> dict[bytes, Sighting]:
        watch = self.bitcoin_watch
        if watch is None:
            return {}
        return {op: s for op, s in watch.sightings.items() if op not in self.bridge.deposits}

    def deposits(self, to: str | None = None) -> list[schema.Deposit]:
        """`GET /bridge/deposits[?to=0x…]`: the ledger's deposits in the order they became
        final, then the payments this node sees that are not final yet, deepest first."""
        cfg = self._bridge_config()
        want = _hex("to", to, 20) if to is not None else None
        deps = sorted(self.bridge.deposits.values(), key=lambda d: (d.height, d.txid, d.vout))
        out = [
            self._deposit_view(d)
            for d in deps
            if want is None or self.bridge.addresses[d.g_hash].to == want
        ]
        seen = sorted(self._sightings().values(), key=lambda s: (-s.confirmations, s.txid, s.vout))
        for s in seen:
            view = self._sighting_view(s, cfg)
            if view is not None and (want is None or self.bridge.addresses[s.g_hash].to == want):
                out.append(view)
        return out

    def deposit(self, txid: str, vout: int) -> schema.Deposit | None:
        """`GET /bridge/deposits/{txid}:{vout}` (txid as Bitcoin Core shows it)."""
        cfg = self._bridge_config()
        op = outpoint(_hex("txid", txid, 32)[::-1], vout)
        dep = self.bridge.deposits.get(op)
        if dep is not None:
            return self._deposit_view(dep)
        seen = self._sightings().get(op)
        return None if seen is None else self._sighting_view(seen, cfg)

    # -- requests -------------------------------------------------------------------------------

    async def request_bridge_setup(self, settings: dict[str, Any]) -> schema.BridgeSetupAccepted:
        """`POST /bridge/setup`: this validator's vote for the bridge's settings (in force
        once 2f+1 validators voted the same)."""
        payload = BridgeSetup(
            settings["key_id"], settings["chain_name"], settings["chain_id"],
            _hex("gateway", settings["gateway"], 20), settings["network"],
            settings["confirmations"], settings["fee_sats"], settings["min_deposit_sats"],
        )  # fmt: skip
        return schema.BridgeSetupAccepted(tx=self._submit(payload).hex())

    async def request_release_setup(self, settings: dict[str, Any]) -> schema.BridgeSetupAccepted:
        """`POST /bridge/release-setup`: this validator's vote for the release settings."""
        self._bridge_config()
        payload = ReleaseSetup(
            settings["evm_confirmations"], settings["bump_after"], settings["min_release_sats"],
            settings["max_fee_rate"], settings.get("sweep_at", 0),
        )  # fmt: skip
        return schema.BridgeSetupAccepted(tx=self._submit(payload).hex())

    async def request_deposit_address(
        self, to: str, nonce: str | None, payload: str | None
    ) -> tuple[schema.DepositAddress, bool]:
        """`POST /bridge/deposit-address`: the address for (to, nonce, payload), recorded
        in the ledger (a new nonce if none is given). True if it is new (202), False if the
        ledger has it already (200)."""
        cfg = self._bridge_config()
        to_b = _hex("to", to, 20)
        nonce_b = _hex("nonce", nonce, 32) if nonce is not None else secrets.token_bytes(32)
        data = _hex("payload", payload, limit=MAX_PAYLOAD) if payload is not None else b""
        ph = p_hash(data)
        g = g_hash(ph, s_hash(cfg.chain_name), to_b, nonce_b)
        known = self.bridge.addresses.get(g)
        if known is not None:
            return self._address_view(known, cfg, "recorded"), False
        self._submit(DepositAddressRequest(to_b, nonce_b, data))
        address = deposit_address(cfg.public_key, cfg.chain_code, g, cfg.network)
        pending = DepositAddress(g, ph, to_b, nonce_b, data, address, b"", b"", 0)
        return self._address_view(pending, cfg, "pending"), True
