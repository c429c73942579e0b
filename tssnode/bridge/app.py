"""The bridge: the ledger's second application (`tssnode.ledger.app`), beside the registry.

It keeps the bridge's settings, the deposit addresses users asked for, the observations of
deposits the validators submitted, and each final deposit with its mint authorisation.
Every check is deterministic and uses only its own records, the transaction, the height
and the `LedgerView` (through which it reads the registry's key records, never writes
them).

- Settings (`BridgeSetup`) take effect on 2f+1 identical votes, once; the key they name
  must be a registry key made for the bridge (purpose "bridge"), so that no sign request
  could ever have used it to sign a mint of someone's choosing.
- A deposit address (`DepositAddressRequest`) is derived by every node alike from the
  bridge key and gHash (`hashes.deposit_address`).
- A deposit is final on 2f+1 identical observations (`DepositObserved`) of an output that
  pays a recorded address at least the minimum; each validator has one live observation
  per output, so after a reorg moved the output a validator re-submits and its vote
  follows. Its mint digest (sigHash) is fixed then, from ledger state alone.
- A mint signature (`MintSigned`) settles a final deposit if it verifies, low s, against
  the bridge key for that sigHash; the first valid one wins, and none after it.
- A reorg deeper than the confirmations is recorded, not ignored: 2f+1 identical votes that
  a final deposit's block left the chain with the output in no other block
  (`DepositOrphaned`) orphan it, and an orphaned deposit is not signed. 2f+1 identical
  observations of the same output in another block move it there (final or signed again).
  The mint digest never changes (nHash binds the outpoint, not the block), so a deposit
  signed before its block left the chain still mints at most once.
"""

from __future__ import annotations

from dataclasses import replace

from tssnode.bridge.hashes import (
    BridgeHashError,
    deposit_key,
    g_hash,
    n_hash,
    p_hash,
    s_hash,
    sig_hash,
)
from tssnode.bridge.records import (
    FINAL,
    MAX_CONFIRMATIONS,
    MAX_PAYLOAD,
    NETWORKS,
    ORPHANED,
    P2WPKH_DUST,
    R_SIGNING,
    SIGNED,
    T_ADDRESSES,
    T_CONFIG,
    T_DEPOSITS,
    T_VOTES,
    BridgeConfig,
    Deposit,
    DepositAddress,
    Observations,
    orphan_vote_id,
    outpoint,
    p2wpkh_script,
    release_subject,
    setup_vote_id,
)
from tssnode.bridge.releases import RELEASE_TABLES, ReleaseLedger
from tssnode.bridge.transactions import (
    PAYLOAD_TYPES,
    BridgeSetup,
    BurnObserved,
    DepositAddressRequest,
    DepositObserved,
    DepositOrphaned,
    FeeReport,
    InputSigned,
    MintSigned,
    Payload,
    ReleaseConfirmed,
    ReleaseSetup,
)
from tssnode.crypto.addresses import btc_p2wpkh
from tssnode.crypto.derivation import DerivationError
from tssnode.crypto.digests import hash160
from tssnode.crypto.encoding import Wire
from tssnode.crypto.group import Point
from tssnode.crypto.signature import InvalidSignature, recover, verify_low_s
from tssnode.ledger.app import OnePathApplication, SignSubject
from tssnode.ledger.errors import InvalidTransaction
from tssnode.ledger.state import quorum
from tssnode.ledger.transactions import SignedTx

#: a key record's purpose that the bridge's key must have (`registry.transactions`)
BRIDGE_PURPOSE = "bridge"


class BridgeApp(ReleaseLedger, OnePathApplication):
    """The bridge's records after the ledger's last block: the deposit and mint side here,
    the release side in `ReleaseLedger` (`tssnode.bridge.releases`)."""

    name = "bridge"
    tables = frozenset({T_CONFIG, T_ADDRESSES, T_DEPOSITS, T_VOTES, *RELEASE_TABLES})
    payload_types = PAYLOAD_TYPES

    def __init__(self) -> None:
        super().__init__()
        self._init_releases()
        self.config: BridgeConfig | None = None
        self.addresses: dict[bytes, DepositAddress] = {}  # by gHash
        self.deposits: dict[bytes, Deposit] = {}  # by outpoint
        self.observations: dict[bytes, Observations] = {}  # by outpoint
        self.orphan_votes: dict[bytes, Observations] = {}  # by outpoint
        self.setup_votes: dict[bytes, Observations] = {}  # by `setup_vote_id`

    # -- storage ------------------------------------------------------------------------------

    def _restore(self, table: int, ident: bytes, raw: bytes) -> None:
        if table in RELEASE_TABLES:
            self._restore_release(table, ident, raw)
        elif table == T_CONFIG:
            self.config = BridgeConfig.from_bytes(raw)
        elif table == T_ADDRESSES:
            self.addresses[ident] = DepositAddress.from_bytes(raw)
        elif table == T_DEPOSITS:
            self.deposits[ident] = Deposit.from_bytes(raw)
        elif len(ident) == 32:
            self.setup_votes[ident] = Observations.from_bytes(raw)
        elif len(ident) == 37:
            self.orphan_votes[ident[:36]] = Observations.from_bytes(raw)
        else:
            self.observations[ident] = Observations.from_bytes(raw)

    def _lookup(self, key: bytes) -> bytes | None:
        table, ident = key[1], key[2:]
        value: Wire | None
        if table in RELEASE_TABLES:
            value = self._lookup_release(table, ident)
        elif table == T_CONFIG:
            value = self.config
        elif table == T_ADDRESSES:
            value = self.addresses.get(ident)
        elif table == T_DEPOSITS:
            value = self.deposits.get(ident)
        elif len(ident) == 32:
            value = self.setup_votes.get(ident)
        elif len(ident) == 37:
            value = self.orphan_votes.get(ident[:36])
        else:
            value = self.observations.get(ident)
        return None if value is None else bytes(value.to_bytes())

    def query(self, path: str) -> Wire | None:
        """`config`, `address/<gHash hex>` or `deposit/<outpoint hex>`: that record;
        `sign/<outpoint hex>`: the mint authorisation a final deposit asks the bridge key to
        sign (the registry's check of an `AppSignRequest`), None once it is signed."""
        kind, _, ident = path.partition("/")
        try:
            if kind == "config":
                return self.config
            if kind == "sign" and ident.startswith("72") and len(ident) == 34:  # b"r" ‖ …
                found = self.release_sign_subject(bytes.fromhex(ident))
                if found is None or self.config is None:
                    return None
                return SignSubject(self.config.key_id, found[0], found[1])
            if kind == "sign":
                dep = self.deposits.get(bytes.fromhex(ident))
                if dep is None or dep.status != FINAL or self.config is None:
                    return None
                return SignSubject(self.config.key_id, dep.sig_hash)
            if kind == "address":
                return self.addresses.get(bytes.fromhex(ident))
            if kind == "deposit":
                return self.deposits.get(bytes.fromhex(ident))
        except ValueError:
            return None
        return None

    def wanted_signatures(self) -> list[tuple[bytes, bytes, tuple[int, ...]]]:
        """What the bridge waits to have signed: (subject, digest, path) of each final
        deposit's mint authorisation and each unsigned input of a release being signed
        (`query("sign/<subject>")` answers the same for each)."""
        if self.config is None:
            return []
        out: list[tuple[bytes, bytes, tuple[int, ...]]] = [
            (op, dep.sig_hash, ())
            for op, dep in sorted(self.deposits.items())
            if dep.status == FINAL
        ]
        for rel in sorted(self.releases.values(), key=lambda r: (r.seq, r.attempt)):
            if rel.status != R_SIGNING:
                continue
            for i, sig in enumerate(rel.signatures):
                if sig is None:
                    subject = release_subject(rel.seq, rel.attempt, i)
                    out.append((subject, rel.sighashes[i], self.coins[rel.inputs[i]].path))
        return out

    # -- the application interface --------------------------------------------------------------

    def execute(self, tx: SignedTx, p: Payload, height: int, *, apply: bool) -> None:
        if isinstance(p, BridgeSetup):
            self._setup(tx, p, height, apply)
        elif isinstance(p, DepositAddressRequest):
            self._address(tx, p, height, apply)
        elif isinstance(p, DepositObserved):
            self._observed(tx, p, height, apply)
        elif isinstance(p, DepositOrphaned):
            self._orphaned(tx, p, apply)
        elif isinstance(p, MintSigned):
            self._mint_signed(p, apply)
        elif isinstance(p, ReleaseSetup):
            self._release_setup(tx, p, height, apply)
        elif isinstance(p, FeeReport):
            self._fee_report(tx, p, height, apply)
        elif isinstance(p, BurnObserved):
            self._burn_observed(tx, p, height, apply)
        elif isinstance(p, InputSigned):
            self._input_signed(p, apply)
        elif isinstance(p, ReleaseConfirmed):
            self._release_confirmed(tx, p, height, apply)
        else:
            self._bump(tx, p, height, apply)

    def _configured(self) -> BridgeConfig:
        if self.config is None:
            raise InvalidTransaction("the bridge is not set up")
        return self.config

    # -- settings -----------------------------------------------------------------------------

    def _setup(self, tx: SignedTx, p: BridgeSetup, height: int, apply: bool) -> None:
        if self.config is not None:
            raise InvalidTransaction("the bridge is already set up")
        public_key, chain_code = self._bridge_key(p.key_id)
        try:
            s_hash(p.chain_name)
        except BridgeHashError as exc:
            raise InvalidTransaction(str(exc)) from None
        if len(p.chain_name) > 32:
            raise InvalidTransaction("a chain name is at most 32 characters")
        if not 0 < p.chain_id < 2**64:
            raise InvalidTransaction("a chain id is in [1, 2^64)")
        if len(p.gateway) != 20 or p.gateway == bytes(20):
            raise InvalidTransaction("the gateway is a 20-byte non-zero address")
        if p.network not in NETWORKS:
            raise InvalidTransaction(f"unknown Bitcoin network {p.network[:16]!r}")
        if not 1 <= p.confirmations <= MAX_CONFIRMATIONS:
            raise InvalidTransaction(f"confirmations must be in [1, {MAX_CONFIRMATIONS}]")
        if p.fee_sats < 0 or p.min_deposit_sats < max(P2WPKH_DUST, p.fee_sats + 1):
            # (every final deposit must leave something to mint, and none may be dust)
            raise InvalidTransaction(
                f"the minimum deposit must exceed the fee and be at least {P2WPKH_DUST} sats"
            )
        if p.min_deposit_sats > 21_000_000 * 10**8:
            raise InvalidTransaction("the minimum deposit exceeds all bitcoin")
        vid = setup_vote_id(p.to_bytes())
        votes = self.setup_votes.get(vid, Observations(()))
        if tx.sender in votes.voters(p.to_bytes()):
            raise InvalidTransaction("this validator already voted for these settings")
        if not apply:
            return
        votes = votes.voting(tx.sender, p.to_bytes())
        self._set(T_VOTES, vid)
        voters = [v for v in votes.voters(p.to_bytes()) if v in self.ledger.validators]
        if len(voters) < quorum(len(self.ledger.validators)):
            self.setup_votes[vid] = votes
            return
        for other in list(self.setup_votes):  # decided: the other proposals are moot
            del self.setup_votes[other]
            self._set(T_VOTES, other)
        self.setup_votes.pop(vid, None)
        self.config = BridgeConfig(
            p.key_id, public_key, chain_code, p.chain_name, p.chain_id, p.gateway, p.network,
            p.confirmations, p.fee_sats, p.min_deposit_sats, height,
        )  # fmt: skip
        self._set(T_CONFIG)

    def _bridge_key(self, key_id: str) -> tuple[Point, bytes]:
        """The public key and chain code of the registry's key `key_id`, which must have
        been made for the bridge: a key that could ever sign a requested digest could
        have signed a mint of someone's choosing. (Read through the ledger: the registry
        is a sibling application, not imported.)"""
        rec = self.ledger.query("registry", f"key/{key_id}")
        if rec is None:
            raise InvalidTransaction(f"no key {key_id[:16]}")
        if getattr(rec, "purpose", None) != BRIDGE_PURPOSE:
            raise InvalidTransaction("the bridge's key must be made with purpose 'bridge'")
        key = getattr(rec, "key", None)
        public_key, chain_code = getattr(key, "public_key", None), getattr(key, "chain_code", None)
        if not isinstance(public_key, Point) or not isinstance(chain_code, bytes):
            raise InvalidTransaction(f"key {key_id[:16]} is not a threshold key record")
        return public_key, chain_code

    # -- deposit addresses --------------------------------------------------------------------

    def _address(self, tx: SignedTx, p: DepositAddressRequest, height: int, apply: bool) -> None:
        cfg = self._configured()
        if len(p.to) != 20 or p.to == bytes(20):
            raise InvalidTransaction("to is a 20-byte non-zero EVM address")
        if len(p.nonce) != 32:
            raise InvalidTransaction("a nonce is 32 bytes")
        if len(p.payload) > MAX_PAYLOAD:
            raise InvalidTransaction(f"a payload is at most {MAX_PAYLOAD} bytes")
        ph = p_hash(p.payload)
        g = g_hash(ph, s_hash(cfg.chain_name), p.to, p.nonce)
        if g in self.addresses:
            raise InvalidTransaction("this deposit address is already recorded")
        if not apply:
            return
        try:
            child = deposit_key(cfg.public_key, cfg.chain_code, g).public_key
        except DerivationError as exc:  # (IL ≥ q at some level: about 2^-127 per level)
            raise InvalidTransaction(f"no deposit key for this gHash: {exc}") from None
        key_hash = hash160(child.to_bytes())
        self.addresses[g] = DepositAddress(
            g, ph, p.to, p.nonce, p.payload, btc_p2wpkh(child, cfg.network), key_hash,
            tx.sender, height,
        )  # fmt: skip
        self._set(T_ADDRESSES, g)

    # -- deposits -----------------------------------------------------------------------------

    def _observed(self, tx: SignedTx, p: DepositObserved, height: int, apply: bool) -> None:
        cfg = self._configured()
        if len(p.txid) != 32 or len(p.block_hash) != 32 or not 0 <= p.vout < 2**32:
            raise InvalidTransaction("a txid and block hash are 32 bytes, vout a u32")
        if not 0 <= p.block_height < 2**32:
            raise InvalidTransaction("a block height is a u32")
        op = outpoint(p.txid, p.vout)
        known = self.deposits.get(op)
        if known is not None and known.block_hash == p.block_hash:
            raise InvalidTransaction("this deposit is already final")
        if known is not None and (known.value, known.g_hash) != (p.value, p.g_hash):
            raise InvalidTransaction("this output is recorded with another value or address")
        addr = self.addresses.get(p.g_hash)
        if addr is None:
            raise InvalidTransaction("no deposit address with this gHash")
        if p.script != p2wpkh_script(addr.key_hash):
            raise InvalidTransaction("the output does not pay the deposit address")
        if not cfg.min_deposit_sats <= p.value <= 21_000_000 * 10**8:
            raise InvalidTransaction(
                f"a deposit is at least {cfg.min_deposit_sats} sats (and no more than all BTC)"
            )
        raw = p.to_bytes()
        votes = self.observations.get(op, Observations(()))
        if tx.sender in votes.voters(raw):
            raise InvalidTransaction("this validator already submitted this observation")
        if not apply:
            return
        votes = votes.voting(tx.sender, raw)
        self._set(T_VOTES, op)
        voters = [v for v in votes.voters(raw) if v in self.ledger.validators]
        if len(voters) < quorum(len(self.ledger.validators)):
            self.observations[op] = votes
            return
        self.observations.pop(op, None)
        if known is not None:  # moved to another block by a reorg
            self._drop_orphan_votes(op)
            status = known.status
            if status == ORPHANED:
                status = FINAL if known.signature is None else SIGNED
            self.deposits[op] = replace(
                known, block_hash=p.block_hash, block_height=p.block_height, status=status
            )
            self._set(T_DEPOSITS, op)
            self._deposit_final(self.deposits[op], addr.key_hash)
            return
        amount = p.value - cfg.fee_sats
        n = n_hash(addr.nonce, p.txid, p.vout)
        digest = sig_hash(
            addr.p_hash, amount, s_hash(cfg.chain_name), addr.to, n, cfg.chain_id, cfg.gateway
        )
        self.deposits[op] = Deposit(
            p.txid, p.vout, p.value, p.g_hash, p.block_hash, p.block_height, height, amount,
            n, digest, FINAL,
        )  # fmt: skip
        self._set(T_DEPOSITS, op)
        self._deposit_final(self.deposits[op], addr.key_hash)
        self._build(height)

    def _orphaned(self, tx: SignedTx, p: DepositOrphaned, apply: bool) -> None:
        self._configured()
        if len(p.txid) != 32 or len(p.block_hash) != 32 or not 0 <= p.vout < 2**32:
            raise InvalidTransaction("a txid and block hash are 32 bytes, vout a u32")
        op = outpoint(p.txid, p.vout)
        dep = self.deposits.get(op)
        if dep is None:
            raise InvalidTransaction("no final deposit at this outpoint")
        if dep.status == ORPHANED:
            raise InvalidTransaction("the deposit is already orphaned")
        if dep.block_hash != p.block_hash:
            raise InvalidTransaction("the deposit is recorded in another block")
        raw = p.to_bytes()
        votes = self.orphan_votes.get(op, Observations(()))
        if tx.sender in votes.voters(raw):
            raise InvalidTransaction("this validator already voted this deposit orphaned")
        if not apply:
            return
        votes = votes.voting(tx.sender, raw)
        voters = [v for v in votes.voters(raw) if v in self.ledger.validators]
        if len(voters) < quorum(len(self.ledger.validators)):
            self.orphan_votes[op] = votes
            self._set(T_VOTES, orphan_vote_id(op))
            return
        self._drop_orphan_votes(op)
        self.deposits[op] = replace(dep, status=ORPHANED)
        self._set(T_DEPOSITS, op)
        self._deposit_orphaned(dep)

    def _drop_orphan_votes(self, op: bytes) -> None:
        if self.orphan_votes.pop(op, None) is not None:
            self._set(T_VOTES, orphan_vote_id(op))

    def _mint_signed(self, p: MintSigned, apply: bool) -> None:
        cfg = self._configured()
        if len(p.txid) != 32 or not 0 <= p.vout < 2**32:
            raise InvalidTransaction("a txid is 32 bytes, vout a u32")
        op = outpoint(p.txid, p.vout)
        dep = self.deposits.get(op)
        if dep is None:
            raise InvalidTransaction("no final deposit at this outpoint")
        if dep.status != FINAL:
            raise InvalidTransaction(f"the deposit is already {dep.status}")
        try:
            verify_low_s(cfg.public_key, dep.sig_hash, p.signature.r, p.signature.s)
            if recover(dep.sig_hash, p.signature) != cfg.public_key:
                raise InvalidSignature("the recovery id does not recover the bridge key")
        except InvalidSignature as exc:
            raise InvalidTransaction(f"the mint signature does not verify: {exc}") from None
        if apply:
            self.deposits[op] = replace(dep, status=SIGNED, signature=p.signature)
            self._set(T_DEPOSITS, op)
