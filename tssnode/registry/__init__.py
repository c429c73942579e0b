"""The threshold-key registry: the ledger application (`tssnode.ledger.app`) that keeps
keys, requests, the presignature pool, blames and membership votes.

- `app`: `KeyRegistry`, the application: checks and applies its transactions.
- `records`: its stored records (keys, requests, pooled presignatures, votes).
- `transactions`: its payloads (keygen, refresh, presign, sign, results, blames,
  withdrawals, validator joins and leaves).
"""
