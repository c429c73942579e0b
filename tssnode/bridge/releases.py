"""The bridge's release side (part 2): the group's coins, burns, agreed fee rates and the
release transactions that pay burns out, as ledger state (`BridgeApp` includes it).

Every rule is deterministic and uses ledger state alone, so every validator builds the
same release byte for byte:

- **Coins.** Each final deposit is a coin of the group (its key: the deposit path), and
  each confirmed release's change another (the main key, `MAIN_PATH`). A coin is spent by
  one release family at most (`Coin.spender`).
- **Burns.** A `LogBurn` is final at 2f+1 identical observations (`BurnObserved`), keyed by
  its nonce: releasable once, forever. An address that is not a standard output script on
  the bridge's network makes the burn `unpayable` (recorded; nothing is sent).
- **Fee rate.** The median of the validators' current reports (`FeeReport`, at least 2f+1
  of them no older than `FEE_REPORT_BLOCKS`), capped at the settings' maximum.
- **Building.** When no release is in flight and burns wait, a release is built: the
  oldest burns (up to `MAX_BURNS`), coins largest first until they cover the burnt amounts,
  an output per burn paying its amount less an equal share of the fee, the change (if
  above dust) to the main key; every input signals replace-by-fee. With no burn waiting
  and `sweep_at` deposit coins, the deposits are swept into the main key the same way.
- **Signing.** Each input is signed by its own threshold session over its BIP-143 sighash
  with its coin's key (`AppSignRequest` for `records.release_subject`); a signature is
  accepted if it verifies, low s, against that key. With every input signed, the signed
  transaction is in the ledger and the nodes broadcast it.
- **Confirmation and bumps.** 2f+1 identical `ReleaseConfirmed` settle it: inputs spent,
  change a coin, burns released. 2f+1 `BumpRequest`s on a signed attempt build the next
  attempt over the same inputs at a higher fee rate (BIP 125: every attempt spends the
  same coins, so at most one of them ever confirms, and the ledger records which).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING

from tssnode.bridge.btctx import (
    BtcTxError,
    Payout,
    address_script,
    dust_limit,
    release_vsize,
    sighashes,
    signed_release,
    txid,
    unsigned_release,
)
from tssnode.bridge.btctx import Coin as TxCoin
from tssnode.bridge.hashes import deposit_path
from tssnode.bridge.records import (
    BURN_FINAL,
    BURN_RELEASED,
    BURN_RELEASING,
    BURN_UNPAYABLE,
    FEE_REPORT_BLOCKS,
    MAIN_PATH,
    P2WPKH_DUST,
    R_CONFIRMED,
    R_REPLACED,
    R_SIGNED,
    R_SIGNING,
    T_BURNS,
    T_COINS,
    T_FEES,
    T_RCONFIG,
    T_RELEASES,
    T_RVOTES,
    Burn,
    Coin,
    Deposit,
    Fee,
    Observations,
    Release,
    ReleaseConfig,
    outpoint,
    p2wpkh_script,
    release_key,
)
from tssnode.bridge.transactions import (
    BumpRequest,
    BurnObserved,
    FeeReport,
    InputSigned,
    ReleaseConfirmed,
    ReleaseSetup,
)
from tssnode.crypto.derivation import derive
from tssnode.crypto.digests import hash160
from tssnode.crypto.encoding import Wire
from tssnode.crypto.group import Point
from tssnode.crypto.signature import InvalidSignature, verify_low_s
from tssnode.ledger.errors import InvalidTransaction
from tssnode.ledger.state import quorum
from tssnode.ledger.transactions import SignedTx

if TYPE_CHECKING:
    from tssnode.bridge.records import BridgeConfig
    from tssnode.ledger.app import LedgerView

#: burns one release pays at most, and coins it spends at most
MAX_BURNS, MAX_INPUTS = 20, 50
#: the highest fee rate a validator may report (sat/vB)
MAX_REPORTED_RATE = 100_000
#: the most bitcoin there is, in satoshis
MAX_SATS = 21_000_000 * 10**8
RELEASE_TABLES = frozenset({T_RCONFIG, T_COINS, T_BURNS, T_RELEASES, T_FEES, T_RVOTES})
#: vote kinds in `T_RVOTES`: settings, a burn, a confirmation, a bump
V_SETUP, V_BURN, V_CONFIRMED, V_BUMP = b"S", b"B", b"C", b"U"


def median(rates: list[int]) -> int:
    """The lower median: with at least 2f+1 reports of which f may lie, it lies between two
    honest ones."""
    ordered = sorted(rates)
    return ordered[(len(ordered) - 1) // 2]


def fee_shares(fee: int, n: int) -> list[int]:
    """`fee` split over `n` burns as equally as whole satoshis allow (the first get one
    more)."""
    base, extra = divmod(fee, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


class ReleaseLedger:
    """The release side of `BridgeApp` (see the module docstring)."""

    # (provided by BridgeApp: declared here for the type checker only, never defined, so
    # that they cannot shadow BridgeApp's own in the method resolution order)
    config: BridgeConfig | None
    deposits: dict[bytes, Deposit]
    ledger: LedgerView
    if TYPE_CHECKING:

        def _set(self, table: int, ident: bytes = b"") -> None: ...
        def _configured(self) -> BridgeConfig: ...

    def _init_releases(self) -> None:
        self.release_config: ReleaseConfig | None = None
        self.coins: dict[bytes, Coin] = {}  # by outpoint
        self.burns: dict[int, Burn] = {}  # by nonce
        self.releases: dict[bytes, Release] = {}  # by `release_key`
        self.fees: dict[bytes, Fee] = {}  # by validator
        self.release_votes: dict[bytes, Observations] = {}  # by kind ‖ id
        self._main: tuple[Point, bytes] | None = None

    # -- storage --------------------------------------------------------------------------------

    def _restore_release(self, table: int, ident: bytes, raw: bytes) -> None:
        if table == T_RCONFIG:
            self.release_config = ReleaseConfig.from_bytes(raw)
        elif table == T_COINS:
            self.coins[ident] = Coin.from_bytes(raw)
        elif table == T_BURNS:
            self.burns[int.from_bytes(ident, "big")] = Burn.from_bytes(raw)
        elif table == T_RELEASES:
            self.releases[ident] = Release.from_bytes(raw)
        elif table == T_FEES:
            self.fees[ident] = Fee.from_bytes(raw)
        else:
            self.release_votes[ident] = Observations.from_bytes(raw)

    def _lookup_release(self, table: int, ident: bytes) -> Wire | None:
        if table == T_RCONFIG:
            return self.release_config
        if table == T_COINS:
            return self.coins.get(ident)
        if table == T_BURNS:
            return self.burns.get(int.from_bytes(ident, "big"))
        if table == T_RELEASES:
            return self.releases.get(ident)
        if table == T_FEES:
            return self.fees.get(ident)
        return self.release_votes.get(ident)

    # -- reads ----------------------------------------------------------------------------------

    def main_key(self) -> tuple[Point, bytes]:
        """The main key (change and sweeps go to it): its public key and HASH160."""
        if self._main is None:
            cfg = self._configured()
            public = derive(cfg.public_key, cfg.chain_code, MAIN_PATH).public_key
            self._main = (public, hash160(public.to_bytes()))
        return self._main

    def fee_rate(self, height: int) -> int | None:
        """The agreed fee rate at `height` (None: fewer than 2f+1 current reports)."""
        rc = self.release_config
        validators = self.ledger.validators
        rates = [
            f.sat_per_vb
            for v, f in self.fees.items()
            if v in validators and height - f.height <= FEE_REPORT_BLOCKS
        ]
        if rc is None or len(rates) < quorum(len(validators)):
            return None
        return min(median(rates), rc.max_fee_rate)

    def in_flight(self) -> Release | None:
        """The release being signed or waiting to confirm, if any (one at a time)."""
        return next((r for r in self.releases.values() if r.status in (R_SIGNING, R_SIGNED)), None)

    def _release(self, seq: int, attempt: int) -> tuple[bytes, Release | None]:
        """The key and record of attempt `attempt` of release `seq` (None: no such one)."""
        if not (0 <= seq < 2**64 and 0 <= attempt < 2**32):
            return b"", None
        key = release_key(seq, attempt)
        return key, self.releases.get(key)

    def release_sign_subject(self, subject: bytes) -> tuple[bytes, tuple[int, ...]] | None:
        """A release input's sighash and its coin's path, while it waits for a signature."""
        rel = self.releases.get(subject[1:13])
        index = int.from_bytes(subject[13:17], "big")
        if rel is None or rel.status != R_SIGNING or index >= len(rel.inputs):
            return None
        if rel.signatures[index] is not None:
            return None
        return rel.sighashes[index], self.coins[rel.inputs[index]].path

    # -- coins from deposits --------------------------------------------------------------------

    def _deposit_final(self, dep: Deposit, key_hash: bytes) -> None:
        """A final deposit (new, or back in a block after a reorg) is a coin of the group."""
        op = outpoint(dep.txid, dep.vout)
        if op not in self.coins:
            self.coins[op] = Coin(dep.txid, dep.vout, dep.value, deposit_path(dep.g_hash), key_hash)
            self._set(T_COINS, op)

    def _deposit_orphaned(self, dep: Deposit) -> None:
        """An orphaned deposit's coin is gone, unless a release already spends it (that
        release then never confirms: operators see it `signed` and unconfirmed)."""
        op = outpoint(dep.txid, dep.vout)
        coin = self.coins.get(op)
        if coin is not None and coin.spender == 0:
            del self.coins[op]
            self._set(T_COINS, op)

    # -- votes ----------------------------------------------------------------------------------

    def _vote(self, tx: SignedTx, kind: bytes, ident: bytes, raw: bytes, apply: bool) -> bool:
        """Count `tx.sender`'s vote for `raw` under kind ‖ ident (its earlier vote there
        withdrawn); True once 2f+1 current validators voted the same (the votes are then
        dropped)."""
        key = kind + ident
        votes = self.release_votes.get(key, Observations(()))
        if tx.sender in votes.voters(raw):
            raise InvalidTransaction("this validator already voted for this")
        if tx.sender not in self.ledger.validators:
            raise InvalidTransaction("only validators vote")
        if not apply:
            return False
        votes = votes.voting(tx.sender, raw)
        self._set(T_RVOTES, key)
        voters = [v for v in votes.voters(raw) if v in self.ledger.validators]
        if len(voters) < quorum(len(self.ledger.validators)):
            self.release_votes[key] = votes
            return False
        self.release_votes.pop(key, None)
        return True

    # -- transactions ---------------------------------------------------------------------------

    def _release_setup(self, tx: SignedTx, p: ReleaseSetup, height: int, apply: bool) -> None:
        self._configured()
        if self.release_config is not None:
            raise InvalidTransaction("the release settings are already in force")
        if not 1 <= p.evm_confirmations <= 1000:
            raise InvalidTransaction("evm_confirmations must be in [1, 1000]")
        if not 1 <= p.bump_after <= 1008:
            raise InvalidTransaction("bump_after must be in [1, 1008] blocks")
        if not 1 <= p.max_fee_rate <= MAX_REPORTED_RATE:
            raise InvalidTransaction(f"max_fee_rate must be in [1, {MAX_REPORTED_RATE}]")
        if not 2 * P2WPKH_DUST <= p.min_release_sats <= MAX_SATS:
            raise InvalidTransaction(f"min_release_sats must be at least {2 * P2WPKH_DUST}")
        if not 0 <= p.sweep_at <= MAX_INPUTS:
            raise InvalidTransaction(f"sweep_at must be in [0, {MAX_INPUTS}]")
        raw = p.to_bytes()
        if not self._vote(tx, V_SETUP, hashlib.sha256(raw).digest(), raw, apply):
            return
        for other in [k for k in self.release_votes if k[:1] == V_SETUP]:
            del self.release_votes[other]  # decided: the other proposals are moot
            self._set(T_RVOTES, other)
        self.release_config = ReleaseConfig(
            p.evm_confirmations, p.bump_after, p.min_release_sats, p.max_fee_rate, p.sweep_at,
            height,
        )  # fmt: skip
        self._set(T_RCONFIG)

    def _fee_report(self, tx: SignedTx, p: FeeReport, height: int, apply: bool) -> None:
        if self.release_config is None:
            raise InvalidTransaction("the release settings are not in force")
        if tx.sender not in self.ledger.validators:
            raise InvalidTransaction("only validators report fee rates")
        if not 1 <= p.sat_per_vb <= MAX_REPORTED_RATE:
            raise InvalidTransaction(f"a fee rate is in [1, {MAX_REPORTED_RATE}] sat/vB")
        if apply:
            self.fees[tx.sender] = Fee(p.sat_per_vb, height)
            self._set(T_FEES, tx.sender)
            self._build(height)

    def _burn_observed(self, tx: SignedTx, p: BurnObserved, height: int, apply: bool) -> None:
        rc = self.release_config
        if rc is None:
            raise InvalidTransaction("the release settings are not in force")
        if not 0 <= p.nonce < 2**64:
            raise InvalidTransaction("a burn nonce is a u64")
        if p.nonce in self.burns:
            raise InvalidTransaction("this burn is already final")
        if not 1 <= len(p.to) <= 90:
            raise InvalidTransaction("a Bitcoin address is 1 to 90 characters")
        if not rc.min_release_sats <= p.amount <= MAX_SATS:
            raise InvalidTransaction(f"a burn is at least {rc.min_release_sats} sats")
        if len(p.evm_tx) != 32 or len(p.evm_block) != 32 or not 0 <= p.evm_height < 2**64:
            raise InvalidTransaction("EVM hashes are 32 bytes, a block number a u64")
        if not self._vote(tx, V_BURN, p.nonce.to_bytes(8, "big"), p.to_bytes(), apply):
            return
        cfg = self._configured()
        to, script, status = p.to.decode("ascii", "replace"), b"", BURN_FINAL
        try:
            script = address_script(to, cfg.network)
        except BtcTxError:
            status = BURN_UNPAYABLE
        self.burns[p.nonce] = Burn(
            p.nonce, to, script, p.amount, p.evm_tx, p.evm_block, p.evm_height, height, status
        )
        self._set(T_BURNS, p.nonce.to_bytes(8, "big"))
        self._build(height)

    def _input_signed(self, p: InputSigned, apply: bool) -> None:
        cfg = self._configured()
        key, rel = self._release(p.seq, p.attempt)
        if rel is None:
            raise InvalidTransaction("no such release")
        if rel.status != R_SIGNING:
            raise InvalidTransaction(f"the release is {rel.status}")
        if not 0 <= p.index < len(rel.inputs):
            raise InvalidTransaction("no such input")
        if rel.signatures[p.index] is not None:
            raise InvalidTransaction("this input is signed already")
        coin = self.coins[rel.inputs[p.index]]
        public = derive(cfg.public_key, cfg.chain_code, coin.path).public_key
        try:
            verify_low_s(public, rel.sighashes[p.index], p.signature.r, p.signature.s)
        except InvalidSignature as exc:
            raise InvalidTransaction(f"the input signature does not verify: {exc}") from None
        if not apply:
            return
        sigs = list(rel.signatures)
        sigs[p.index] = p.signature
        rel = replace(rel, signatures=tuple(sigs))
        if all(s is not None for s in sigs):
            keys = [
                derive(cfg.public_key, cfg.chain_code, self.coins[op].path).public_key.to_bytes()
                for op in rel.inputs
            ]
            pairs = [(s.r, s.s) for s in sigs if s is not None]
            rel = replace(rel, status=R_SIGNED, signed_tx=signed_release(rel.tx, pairs, keys))
        self.releases[key] = rel
        self._set(T_RELEASES, key)

    def _release_confirmed(
        self, tx: SignedTx, p: ReleaseConfirmed, height: int, apply: bool
    ) -> None:
        key, rel = self._release(p.seq, p.attempt)
        if rel is None:
            raise InvalidTransaction("no such release")
        if rel.status not in (R_SIGNED, R_REPLACED):
            raise InvalidTransaction(f"the release is {rel.status}")
        if p.txid != rel.txid or len(p.block_hash) != 32 or not 0 <= p.block_height < 2**32:
            raise InvalidTransaction("not this release's txid, or a bad block")
        if not self._vote(tx, V_CONFIRMED, key, p.to_bytes(), apply):
            return
        for other_key, other in list(self.releases.items()):
            if other.seq == rel.seq and other_key != key and other.status != R_REPLACED:
                self.releases[other_key] = replace(other, status=R_REPLACED)
                self._set(T_RELEASES, other_key)
            if other.seq == rel.seq:  # (the votes on the family's other attempts are moot)
                for kind in (V_CONFIRMED, V_BUMP):
                    if self.release_votes.pop(kind + other_key, None) is not None:
                        self._set(T_RVOTES, kind + other_key)
        self.releases[key] = replace(
            rel, status=R_CONFIRMED, block_hash=p.block_hash, block_height=p.block_height
        )
        self._set(T_RELEASES, key)
        for op in rel.inputs:
            self.coins.pop(op, None)
            self._set(T_COINS, op)
        if rel.change:
            vout = len(rel.outputs) - 1
            op = outpoint(rel.txid, vout)
            self.coins[op] = Coin(rel.txid, vout, rel.change, MAIN_PATH, self.main_key()[1])
            self._set(T_COINS, op)
        for i, nonce in enumerate(rel.burns):
            self.burns[nonce] = replace(
                self.burns[nonce], status=BURN_RELEASED, release=rel.seq, paid=rel.outputs[i][1]
            )
            self._set(T_BURNS, nonce.to_bytes(8, "big"))
        self._build(height)

    def _bump(self, tx: SignedTx, p: BumpRequest, height: int, apply: bool) -> None:
        rc = self.release_config
        key, rel = self._release(p.seq, p.attempt)
        if rel is None or rc is None:
            raise InvalidTransaction("no such release")
        if rel.status != R_SIGNED:
            raise InvalidTransaction(f"the release is {rel.status}, not signed and waiting")
        new_rate = min(
            rc.max_fee_rate,
            max(self.fee_rate(height) or 0, rel.fee_rate + max(1, rel.fee_rate // 4)),
        )
        if new_rate <= rel.fee_rate:
            raise InvalidTransaction("the fee rate is at its maximum already")
        if not self._vote(tx, V_BUMP, key, p.to_bytes(), apply):
            return
        coins = [self.coins[op] for op in rel.inputs]
        burns = [self.burns[n] for n in rel.burns]
        built = self._assemble(rel.seq, rel.attempt + 1, burns, coins, new_rate, height)
        if built is None:  # (the burns' outputs would fall below dust at that rate)
            return
        self.releases[key] = replace(rel, status=R_REPLACED)
        self._set(T_RELEASES, key)
        self._store(built)

    # -- building -------------------------------------------------------------------------------

    def _build(self, height: int) -> None:
        """Build the next release if none is in flight and something waits for one."""
        rc = self.release_config
        if rc is None or self.config is None or self.in_flight() is not None:
            return
        rate = self.fee_rate(height)
        if rate is None:
            return
        seq = 1 + max((r.seq for r in self.releases.values()), default=0)
        free = sorted(
            (c for c in self.coins.values() if c.spender == 0),
            key=lambda c: (-c.value, c.txid, c.vout),
        )
        waiting = sorted(
            (b for b in self.burns.values() if b.status == BURN_FINAL), key=lambda b: b.nonce
        )[:MAX_BURNS]
        while waiting:
            coins = self._select(free, sum(b.amount for b in waiting))
            if coins is None:
                return  # not enough bitcoin yet: wait for deposits or change
            built = self._assemble(seq, 0, waiting, coins, rate, height)
            if built is not None:
                self._store(built)
                return
            waiting = waiting[:-1]  # (a burn too small for its fee share waits for lower fees)
        deposits = [c for c in free if len(c.path) > len(MAIN_PATH)][:MAX_INPUTS]
        if rc.sweep_at and len(deposits) >= rc.sweep_at:
            built = self._assemble(seq, 0, [], deposits, rate, height)
            if built is not None:
                self._store(built)

    @staticmethod
    def _select(free: list[Coin], amount: int) -> list[Coin] | None:
        chosen, total = [], 0
        for coin in free[:MAX_INPUTS]:
            chosen.append(coin)
            total += coin.value
            if total >= amount:
                return chosen
        return None

    def _assemble(
        self,
        seq: int,
        attempt: int,
        burns: list[Burn],
        coins: list[Coin],
        rate: int,
        height: int,
    ) -> Release | None:
        """The release paying `burns` from `coins` at `rate`, or None if an output would be
        dust (a burn's amount less its fee share, or a sweep's whole)."""
        main_script = p2wpkh_script(self.main_key()[1])
        total = sum(c.value for c in coins)
        owed = sum(b.amount for b in burns)
        change = total - owed
        keep_change = change >= P2WPKH_DUST or not burns
        scripts = [b.script for b in burns] + ([main_script] if keep_change else [])
        fee = rate * release_vsize(len(coins), scripts)
        outputs: list[tuple[bytes, int]] = []
        for burn, share in zip(burns, fee_shares(fee, len(burns)) if burns else [], strict=True):
            if burn.amount - share < dust_limit(burn.script):
                return None
            outputs.append((burn.script, burn.amount - share))
        if not burns:  # a sweep: everything, less the fee, to the main key
            change -= fee
            if change < P2WPKH_DUST:
                return None
        if keep_change:
            outputs.append((main_script, change))
        tx_coins = [TxCoin(c.txid, c.vout, c.value, c.key_hash) for c in coins]
        tx = unsigned_release(tx_coins, [Payout(s, v) for s, v in outputs])
        inputs = tuple(outpoint(c.txid, c.vout) for c in coins)
        return Release(
            seq, attempt, tuple(b.nonce for b in burns), inputs, tuple(outputs),
            change if keep_change else 0, rate,
            total - sum(v for _, v in outputs), tx, txid(tx), tuple(sighashes(tx, tx_coins)),
            (None,) * len(coins), R_SIGNING, height,
        )  # fmt: skip

    def _store(self, rel: Release) -> None:
        key = release_key(rel.seq, rel.attempt)
        self.releases[key] = rel
        self._set(T_RELEASES, key)
        for op in rel.inputs:
            coin = self.coins[op]
            if coin.spender != rel.seq:
                self.coins[op] = replace(coin, spender=rel.seq)
                self._set(T_COINS, op)
        for nonce in rel.burns:
            self.burns[nonce] = replace(self.burns[nonce], status=BURN_RELEASING, release=rel.seq)
            self._set(T_BURNS, nonce.to_bytes(8, "big"))
