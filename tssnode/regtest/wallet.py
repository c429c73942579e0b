"""A demo wallet held by the service: bech32 P2WPKH keys, balances and `sendtoaddress`.

Enough of bitcoind's wallet for tests and demos: fund a test from mined coinbases, pay an
address with change back to the wallet. It follows Core where a client can see it: a
coinbase is spendable at 101 confirmations (Core's wallet waits one block more than
consensus), `getbalance` counts confirmed coins and the wallet's own unconfirmed change
("trusted"), transactions signal RBF (nSequence 0xfffffffd), set nLockTime to the tip
(anti fee sniping), and put the change at a random position. Inputs are signed with
BIP-143 sighashes (python-bitcoinlib) and low-S ECDSA (coincurve, libsecp256k1), then go
through the mempool like any `sendrawtransaction`.

Keys are plain text in `wallet.json` of the data directory: regtest coins only.
"""

from __future__ import annotations

import json
import os
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coincurve
from bitcoin.core import (
    CMutableTransaction,
    COutPoint,
    CTxIn,
    CTxInWitness,
    CTxOut,
    CTxWitness,
)
from bitcoin.core.script import (
    SIGHASH_ALL,
    SIGVERSION_WITNESS_V0,
    CScript,
    CScriptWitness,
    SignatureHash,
)

from tssnode.regtest import addresses, scripts
from tssnode.regtest.blocks import COINBASE_MATURITY
from tssnode.regtest.chain import Chain
from tssnode.regtest.consensus import hash160
from tssnode.regtest.errors import (
    RPC_WALLET_ERROR,
    RPC_WALLET_INSUFFICIENT_FUNDS,
    RPCError,
)
from tssnode.regtest.mempool import Mempool
from tssnode.regtest.txs import OutPoint, Tx
from tssnode.regtest.units import fee_for

#: a P2WPKH input at most: 41 bytes × 4 + witness (items count, 73-byte signature, key)
INPUT_WEIGHT = 41 * 4 + 1 + 1 + 73 + 1 + 33
#: version, locktime, input and output counts (× 4) + segwit marker and flag
OVERHEAD_WEIGHT = (4 + 4 + 1 + 1) * 4 + 2
RBF_SEQUENCE = 0xFFFFFFFD


def p2wpkh_script(pubkey: bytes) -> bytes:
    return b"\x00\x14" + hash160(pubkey)


def sign_p2wpkh(tx: Any, spends: Sequence[tuple[bytes, int]]) -> Tx:
    """Sign every input of a python-bitcoinlib (mutable) transaction that spends P2WPKH
    outputs: `spends[i]` is (secret key, amount in satoshis) of input i."""
    witnesses = []
    for index, (secret, amount) in enumerate(spends):
        key = coincurve.PrivateKey(secret)
        pubkey = key.public_key.format(compressed=True)
        script_code = CScript(b"\x76\xa9\x14" + hash160(pubkey) + b"\x88\xac")
        digest = SignatureHash(script_code, tx, index, SIGHASH_ALL, amount, SIGVERSION_WITNESS_V0)
        signature = key.sign(bytes(digest), hasher=None) + bytes([SIGHASH_ALL])
        witnesses.append(CTxInWitness(CScriptWitness([signature, pubkey])))
    tx.wit = CTxWitness(witnesses)
    return Tx.from_obj(tx)


@dataclass(frozen=True)
class WalletKey:
    secret: bytes
    pubkey: bytes
    script: bytes
    address: str
    label: str
    change: bool


@dataclass(frozen=True)
class WalletCoin:
    """An unspent output of the wallet; `depth` 0 is unconfirmed (in the mempool)."""

    op: OutPoint
    value: int
    script: bytes
    depth: int
    coinbase: bool
    trusted: bool  # confirmed, or an unconfirmed transaction spending only our coins

    @property
    def mature(self) -> bool:
        return not self.coinbase or self.depth >= COINBASE_MATURITY + 1


class Wallet:
    """Keys in memory, and in `path` (JSON) when there is a data directory."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.keys: dict[bytes, WalletKey] = {}
        if path is not None and path.exists():
            for item in json.loads(path.read_text())["keys"]:
                self._add(bytes.fromhex(item["secret"]), item["label"], item["change"])

    def _add(self, secret: bytes, label: str, change: bool) -> WalletKey:
        pubkey = coincurve.PrivateKey(secret).public_key.format(compressed=True)
        script = p2wpkh_script(pubkey)
        key = WalletKey(
            secret, pubkey, script, addresses.encode_segwit(0, script[2:]), label, change
        )
        self.keys[script] = key
        return key

    def _save(self) -> None:
        if self.path is None:
            return
        keys = [
            {"secret": k.secret.hex(), "label": k.label, "change": k.change}
            for k in self.keys.values()
        ]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": keys}, indent=1))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def new_key(self, label: str = "", change: bool = False) -> WalletKey:
        key = self._add(secrets.token_bytes(32), label, change)
        self._save()
        return key

    # -- coins ---------------------------------------------------------------------------------

    def coins(self, chain: Chain, mempool: Mempool) -> list[WalletCoin]:
        """Every unspent output paying the wallet (spent by the mempool counts as spent)."""
        out: list[WalletCoin] = []
        for script in self.keys:
            for op in chain.by_script.get(script, ()):
                if op in mempool.spenders:
                    continue
                coin = chain.utxo[op]
                depth = chain.height - coin.height + 1
                out.append(WalletCoin(op, coin.value, script, depth, coin.coinbase, True))
        for txid, entry in mempool.entries.items():
            mine = [entry.tx.vout[n].script in self.keys for n in range(len(entry.tx.vout))]
            if not any(mine):
                continue
            from_me = all(
                (spent := mempool.coin(txin.prevout)) is not None and spent.script in self.keys
                for txin in entry.tx.vin
            )
            for n, out_n in enumerate(entry.tx.vout):
                if mine[n] and (txid, n) not in mempool.spenders:
                    out.append(WalletCoin((txid, n), out_n.value, out_n.script, 0, False, from_me))
        return out

    def balances(self, chain: Chain, mempool: Mempool) -> dict[str, int]:
        """Core's `getbalances` "mine": trusted, untrusted_pending, immature (satoshis)."""
        result = {"trusted": 0, "untrusted_pending": 0, "immature": 0}
        for coin in self.coins(chain, mempool):
            if not coin.mature:
                result["immature"] += coin.value
            elif coin.trusted:
                result["trusted"] += coin.value
            else:
                result["untrusted_pending"] += coin.value
        return result

    def balance(self, chain: Chain, mempool: Mempool, minconf: int = 0) -> int:
        """Core's `getbalance`: mature coins with ≥ minconf confirmations; with minconf 0,
        the wallet's own unconfirmed change too."""
        return sum(
            c.value
            for c in self.coins(chain, mempool)
            if c.mature and (c.depth >= minconf if minconf > 0 else (c.depth > 0 or c.trusted))
        )

    # -- paying --------------------------------------------------------------------------------

    def create_payment(
        self,
        chain: Chain,
        mempool: Mempool,
        payee: bytes,
        amount: int,
        feerate: int,
        *,
        subtract_fee: bool = False,
    ) -> Tx:
        """A signed transaction paying `amount` sats to the scriptPubKey `payee` at
        `feerate` sat/kvB, confirmed coins first (largest first), then own change."""
        if amount < scripts.dust_threshold(payee) and not scripts.is_unspendable(payee):
            raise RPCError(RPC_WALLET_ERROR, "Transaction amount too small")
        usable = [c for c in self.coins(chain, mempool) if c.mature and c.trusted]
        usable.sort(key=lambda c: (c.depth == 0, -c.value))
        change_weight = scripts.output_size(b"\x00\x14" + bytes(20)) * 4  # P2WPKH
        change_dust = scripts.dust_threshold(b"\x00\x14" + bytes(20))
        base_weight = OVERHEAD_WEIGHT + scripts.output_size(payee) * 4
        chosen: list[WalletCoin] = []
        total = fee_no_change = fee_change = 0
        for coin in usable:
            chosen.append(coin)
            total += coin.value
            weight = base_weight + INPUT_WEIGHT * len(chosen)
            fee_no_change = fee_for(feerate, (weight + 3) // 4)
            fee_change = fee_for(feerate, (weight + change_weight + 3) // 4)
            if total >= (amount if subtract_fee else amount + fee_no_change):
                break
        else:
            raise RPCError(RPC_WALLET_INSUFFICIENT_FUNDS, "Insufficient funds")
        if subtract_fee:
            pay, change = amount - fee_change, total - amount
            if change < change_dust:  # no change output: the rest goes to the fee
                pay, change = amount - fee_no_change, 0
        else:
            pay, change = amount, total - amount - fee_change
            if change < change_dust:
                change = 0
        if pay < scripts.dust_threshold(payee):
            raise RPCError(RPC_WALLET_ERROR, "The transaction amount is too small to pay the fee")
        outputs = [(pay, payee)]
        if change:
            outputs.insert(random.randrange(2), (change, self.new_key(change=True).script))
        tx = CMutableTransaction(
            [CTxIn(COutPoint(c.op[0], c.op[1]), CScript(), RBF_SEQUENCE) for c in chosen],
            [CTxOut(value, CScript(script)) for value, script in outputs],
            chain.height,
            2,
        )
        return sign_p2wpkh(tx, [(self.keys[c.script].secret, c.value) for c in chosen])
