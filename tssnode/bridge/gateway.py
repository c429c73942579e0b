"""The gateway contract, as a client of an EVM node (web3.py): has a deposit been minted,
and submit its mint with the group's signature.

Anyone may submit a mint: the recipient is inside the signed digest, so whoever pays the
gas cannot redirect it, and the gateway refuses a second mint of the same deposit output
(its nHash). The ABI is the committed artifact (`tssnode.bridge.contracts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from tssnode.bridge.contracts import load
from tssnode.bridge.evmlogs import BurnLog
from tssnode.errors import TssError


class GatewayError(TssError):
    """The EVM node or the gateway refused, or is not what the bridge's settings say."""


@dataclass(frozen=True)
class Minted:
    """A mint in a block: its transaction, gas, and the recipient's balance after it."""

    tx_hash: str
    block: int
    gas_used: int
    balance: int


@dataclass(frozen=True)
class Burnt:
    """A burn in a block: its transaction, the burn nonce the gateway gave it, its gas."""

    tx_hash: str
    block: int
    burn_nonce: int
    gas_used: int


def mint_signature(deposit: Mapping[str, Any]) -> bytes:
    """A signed deposit's (`GET /bridge/deposits/…`) signature as the gateway takes it:
    r ‖ s ‖ v, 65 bytes. (A minted one's too: the gateway is what refuses it again. An
    orphaned one's never: its bitcoin left the chain, whatever the gateway would take.)"""
    sig = deposit.get("signature")
    status = deposit.get("status")
    if status == "orphaned":
        raise GatewayError("the deposit is orphaned: its block left the Bitcoin chain")
    if status not in ("signed", "minted") or not sig:
        raise GatewayError(f"the deposit is {status}, not signed yet")
    r, s = int(sig["r"], 16), int(sig["s"], 16)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([int(sig["v"])])


class Gateway:
    """One deployed BridgeGateway and its token."""

    def __init__(self, w3: Web3, address: str) -> None:
        self.w3 = w3
        self.contract: Contract = w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=load("BridgeGateway")["abi"]
        )
        token = self.contract.functions.token().call()
        self.token: Contract = w3.eth.contract(address=token, abi=load("WrappedBTC")["abi"])

    @classmethod
    def connect(cls, url: str, address: str, chain_id: int, timeout: float = 30.0) -> Gateway:
        """The gateway at `address` on the EVM node at `url`, which must be chain
        `chain_id` (the one the bridge's signatures are bound to)."""
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        try:
            actual = w3.eth.chain_id
        except Exception as exc:  # (web3 raises its own and requests' errors)
            raise GatewayError(f"no EVM node answers at {url}: {exc}") from None
        if actual != chain_id:
            raise GatewayError(
                f"the EVM node at {url} is chain {actual}; the bridge mints on chain {chain_id}"
            )
        if not w3.eth.get_code(Web3.to_checksum_address(address)):
            raise GatewayError(f"no contract at {address} on chain {chain_id}")
        return cls(w3, address)

    def minted(self, n_hash: bytes) -> bool:
        return bool(self.contract.functions.nHashSpent(n_hash).call())

    def supply(self) -> int:
        """The wrapped token's total supply (satoshis)."""
        return int(self.token.functions.totalSupply().call())

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def burns(self, from_block: int, to_block: int) -> list[BurnLog]:
        """The gateway's `LogBurn`s in blocks [from_block, to_block], oldest first."""
        logs = self.contract.events.LogBurn().get_logs(from_block=from_block, to_block=to_block)
        out = [
            BurnLog(
                int(log["args"]["burnNonce"]),
                bytes(log["args"]["to"]),
                int(log["args"]["amount"]),
                bytes(log["transactionHash"]),
                bytes(log["blockHash"]),
                int(log["blockNumber"]),
            )
            for log in logs
        ]
        return sorted(out, key=lambda b: b.nonce)

    def balance(self, owner: str) -> int:
        return int(self.token.functions.balanceOf(Web3.to_checksum_address(owner)).call())

    def mint(self, deposit: Mapping[str, Any], sender: LocalAccount) -> Minted:
        """Submit the mint of a signed deposit, paid by `sender`, and wait for it."""
        fn = self.contract.functions.mint(
            bytes.fromhex(deposit["pHash"].removeprefix("0x")),
            int(deposit["amount"]),
            Web3.to_checksum_address(deposit["to"]),
            bytes.fromhex(deposit["nHash"].removeprefix("0x")),
            mint_signature(deposit),
        )
        receipt = self._send(fn, sender, "mint")
        return Minted(
            "0x" + bytes(receipt["transactionHash"]).hex(),
            int(receipt["blockNumber"]),
            int(receipt["gasUsed"]),
            self.balance(deposit["to"]),
        )

    def burn(self, to: str, amount: int, sender: LocalAccount) -> Burnt:
        """Burn `amount` of `sender`'s tokens for a release of as many satoshis (less the
        Bitcoin fee) to the Bitcoin address `to`, and wait for it."""
        fn = self.contract.functions.burn(to.encode("ascii"), amount)
        receipt = self._send(fn, sender, "burn")
        # (the token's Transfer is in the same receipt: only the gateway's LogBurn is read)
        (event,) = self.contract.events.LogBurn().process_receipt(receipt, errors=DISCARD)
        return Burnt(
            "0x" + bytes(receipt["transactionHash"]).hex(), int(receipt["blockNumber"]),
            int(event["args"]["burnNonce"]), int(receipt["gasUsed"]),
        )  # fmt: skip

    def _send(self, fn: Any, sender: LocalAccount, what: str) -> Any:
        """Sign `fn`'s transaction with `sender`, send it and wait for its receipt."""
        try:
            tx = fn.build_transaction(
                {
                    "from": sender.address,
                    "nonce": self.w3.eth.get_transaction_count(sender.address),
                    "chainId": self.w3.eth.chain_id,
                }
            )
        except Exception as exc:  # the gas estimate runs the call: a revert shows here
            raise GatewayError(f"the gateway refuses this {what}: {exc}") from None
        signed = sender.sign_transaction(dict(tx))
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(signed.raw_transaction)
        )
        if receipt["status"] != 1:
            raise GatewayError(f"the {what} reverted: {receipt['transactionHash'].hex()}")
        return receipt
