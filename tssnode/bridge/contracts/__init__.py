"""The gateway's compiled contracts (ABI and bytecode), committed; `scripts/compile_contracts.py`
makes them from `contracts/` with solc-js."""
