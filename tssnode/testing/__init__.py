"""Every test double and harness of the project, in one package (as trio's `testing` and
py-libp2p's test doubles are), each module with its own tests in `tests/testing/`.

In one process:

    memnet           an in-memory network of ledger transports (no libp2p), seeded drops
    pbftsim          a deterministic virtual-time network of PBFT replicas: drops,
                     duplicates, delays, partitions, crashes and restarts from a seed
    protocol_runner  the parties of one protocol phase in one process, over no network
    protocol_faults  the fault rules it applies: drop or tamper with (and re-sign) a message
    localgroup       a key's whole life (keygen, aux-info, reshare, presign, sign) through
                     the runner; what `tssnode simulate` runs
    presigstore      an in-memory single-use presignature store
    memstore         the store contract over a dict (the PBFT simulator's, `bench ledger`)
    fakenode         one node's HTTP API answered from frozen data (`fixtures/node1/`, made
                     by `python -m tssnode.testing.fixtures.make_fixtures`), with scripted
                     progress and events: what the console tests attach to
    fakecli          the same behind the blocking client the command line uses

With real processes and sockets:

    netcluster       N net nodes (libp2p) in this trio run, or as N OS processes
    netharness       `python -m tssnode.testing.netharness`: one net node as a process,
                     driven over a JSON line protocol (for netcluster and `bench net`)
    cluster          throw-away local networks of `tssnode run` processes (the
                     multi-node tests, `bench cluster`, `tssnode cluster demo`)
    netns            isolated hosts for a test network in Linux network namespaces
    faults           the manifest-driven fault runner (`tssnode faults MANIFEST`)
    anvil            a throw-away EVM dev chain (anvil from node_modules)
    evm              the bridge's gateway deployed on it, and a one-key mint authority
    bridgecluster    the regtest service, anvil and four nodes with the bridge brought up
                     (its tests are the bridge's on processes, tests/bridge/)
    loopback         a length-prefixed TCP transport and a replica process over it (the
                     ledger's multi-process test, without libp2p)

Nothing in the product imports this package (an import-linter contract in pyproject.toml
says so): it sits above everything, beside the command line and the benchmarks, which
may use it.
"""
