"""A regtest Bitcoin chain served with Bitcoin Core's RPC shapes, its blocks and transactions
validated by Bitcoin Core's own consensus engine (libbitcoinkernel): a stand-in for
`bitcoind`, which no package registry ships.

`service` is the command (`tssnode regtest`); `kernel` wraps py-bitcoinkernel, `chain`
keeps what the kernel's API does not expose, `mempool`/`policy`/`consensus` are Core's
acceptance rules, `wallet` a demo wallet, `methods`/`views`/`jsonrpc` the RPC. Only the
CLI and the tests import this package. docs/regtest.md says what it does and how it
differs from bitcoind.
"""
