"""The PBFT engine: it orders transactions into blocks and drives the applications that
give them meaning (the key registry, `tssnode.registry`; later the bridge). It knows a
transaction as a signed envelope around payload bytes, and imports no protocol.

One module per concern:

- `app`: the application interface (check, deliver, begin/end block, changes and the
  state digest, validator-set changes, queries) and how payloads are routed to it.
- `state`: the engine's own replicated state (validators, replay protection,
  misbehaviour) over its applications', and the one state digest of them all.
- `transactions`: the signed envelope (`SignedTx`) and the engine's own `Misbehaviour`.
- `blocks`: blocks derived from committed batches, commit certificates, verification.
- `chain`: the persistent chain in the node's store (atomic per block).
- `genesis`: chain parameters and the first validator set (TOML).
- `messages`: PBFT messages and transport frames; `envelope`: signing and verifying them.
- `replica`: the sans-I/O PBFT replica, one module per part (normal case, checkpoints,
  view change, catch-up) over a common base.
- `journal`: the replica's durable votes and view (persisted before they are sent).
- `viewchange`: VIEW-CHANGE / NEW-VIEW checks and the computation of O.
- `evidence`: equivocation evidence.
- `bootstrap`: learning the genesis from bootstrap peers.
- `transport`: the transport protocol a replica needs.
- `service`: the replica as a trio service.
- `errors`: the ledger's exceptions.

Its test doubles (the deterministic simulated network, the memory transport) live in
`tssnode.testing`.
"""
