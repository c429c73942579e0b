"""A throw-away EVM dev chain for tests: anvil (Foundry's), from node_modules, on a
loopback port the kernel picks, killed and reaped on exit.

    with running_anvil(chain_id=31337) as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.url))

The launcher is the command line's (`tssnode.cli.anvil`), since `tssnode cluster up
--bridge` and the bridge demo start anvil too; the tests use it from here.
"""

from __future__ import annotations

from tssnode.cli.anvil import (
    BINARY,
    ENV_BINARY,
    START_TIMEOUT,
    Anvil,
    AnvilError,
    anvil_binary,
    running_anvil,
)

__all__ = ["BINARY", "ENV_BINARY", "START_TIMEOUT", "Anvil", "AnvilError", "anvil_binary",
           "running_anvil"]  # fmt: skip
