"""CGGMP21 zero-knowledge proofs, one module per proof.

Every module has the same four parts (STYLE.md): a public statement (`Wire` dataclass), a
private witness (never printed), the proof (`Wire` dataclass) and `prove` / `verify`.
`verify` never returns False: it raises `ProofError(proof, check)` naming the check that
failed, so an abort can carry it as evidence.
"""
