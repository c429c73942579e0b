"""The gateway on a dev chain, for tests: deployed from the committed artifacts with web3
(`deploy_gateway`, the command line's: `tssnode cluster up --bridge` deploys it too), and
a mint authority made of one secp256k1 key standing in for the group's threshold key.

Both sign the same thing the same way: the raw 32-byte digest (no Ethereum message
prefix), as 65 bytes r ‖ s ‖ v with low s and v = 27 + recovery id, the form OpenZeppelin's
ECDSA.recover takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from coincurve import PrivateKey
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from tssnode.cli.bridgenet import DEFAULT_MINIMUM_BURN, deploy_gateway
from tssnode.crypto.addresses import eth_address
from tssnode.crypto.group import Point, Q

__all__ = ["DEFAULT_MINIMUM_BURN", "KeyAuthority", "deploy_gateway", "rsv", "transact"]


def rsv(r: int, s: int, recovery_id: int) -> bytes:
    """r ‖ s ‖ v (65 bytes), s made low: q − s is the same signature's malleable twin, and
    taking it flips the parity of R, hence the recovery id."""
    if recovery_id not in (0, 1):
        raise ValueError("a recovery id is 0 or 1 (R.x ≥ q is not representable in v)")
    if s > Q // 2:
        s, recovery_id = Q - s, recovery_id ^ 1
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + recovery_id])


@dataclass(frozen=True)
class KeyAuthority:
    """A mint authority that is one private key (32 bytes), for tests."""

    secret: bytes

    @property
    def address(self) -> ChecksumAddress:
        public = PrivateKey(self.secret).public_key.format(compressed=True)
        return Web3.to_checksum_address(eth_address(Point.from_bytes(public)))

    def sign(self, digest: bytes) -> bytes:
        """The gateway's signature form over the raw `digest` (hasher=None: not hashed
        again, and no message prefix)."""
        if len(digest) != 32:
            raise ValueError("the gateway's digests are 32 bytes")
        compact = PrivateKey(self.secret).sign_recoverable(digest, hasher=None)
        r, s = int.from_bytes(compact[:32], "big"), int.from_bytes(compact[32:64], "big")
        return rsv(r, s, compact[64])


def transact(w3: Web3, call: ContractFunction, sender: ChecksumAddress) -> TxReceipt:
    """Sends a contract call from the unlocked `sender` and waits: its receipt (a revert
    raises from web3's gas estimate, with the contract's custom error)."""
    receipt = w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction reverted: {receipt['transactionHash'].hex()}")
    return receipt
