"""A regtest Bitcoin chain served with Bitcoin Core's RPC shapes, its blocks and transactions
validated by Bitcoin Core's own consensus engine (libbitcoinkernel): a stand-in for
`bitcoind`, which no package registry ships."""
