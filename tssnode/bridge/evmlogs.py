"""What the gateway's logs say, as the bridge's watch reads them (without web3: the node
imports this; `gateway.Gateway` fills it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BurnLog:
    """One `LogBurn(bytes to, uint256 amount, uint256 indexed burnNonce, address indexed
    from)` of the gateway, with where it is."""

    nonce: int
    to: bytes
    amount: int
    tx_hash: bytes
    block_hash: bytes
    block_number: int
