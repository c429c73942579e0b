"""The Bitcoin → EVM bridge: the second application on the ledger (after the key registry).

`hashes` holds RenVM's hashes with the chain id and gateway bound into the signed one, and
the deposit address each gHash gets (docs/bridge.md).
"""
