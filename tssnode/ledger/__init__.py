"""The PBFT-replicated ledger: every key, signature and membership change, in order.

One module per concern:

- `transactions`: typed payloads in a signed envelope (`SignedTx`).
- `state`: the deterministic state machine and its digest (validators, keys, requests).
- `blocks`: blocks derived from committed batches, commit certificates, verification.
- `chain`: the persistent chain in the node's store (atomic per block).
- `genesis`: chain parameters and the first validator set (TOML).
- `messages`: PBFT messages and transport frames; `envelope`: signing and verifying them.
- `replica`: the sans-I/O PBFT replica (normal case, checkpoints, view change, catch-up).
- `journal`: the replica's durable votes and view (persisted before they are sent).
- `viewchange`: VIEW-CHANGE / NEW-VIEW checks and the computation of O.
- `evidence`: equivocation evidence.
- `bootstrap`: learning the genesis from bootstrap peers.
- `transport`: the transport protocol a replica needs, and an in-memory implementation.
- `service`: the replica as a trio service; `sim`: a deterministic simulated network.
- `errors`: the ledger's exceptions.
"""
